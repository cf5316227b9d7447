package admin

import (
	"context"
	"time"
)

// Node is what NodeService needs from the local node.
type Node interface {
	// Stats returns the node's stats, as its uWSGI-style stats server would.
	Stats(ctx context.Context) (Stats, error)
	// Reload restarts the workers gracefully, one at a time when chain is set.
	Reload(ctx context.Context, chain bool) error
	// Scale adds (delta > 0) or removes workers and returns the new count.
	Scale(ctx context.Context, delta int) (int, error)
}

// Legion is what LegionService needs from the cluster. It is nil on a node
// that runs no legion.
type Legion interface {
	Status(ctx context.Context) (ClusterStatus, error)
	// ResignLord makes the lord of legion step down and returns the legion
	// after the change.
	ResignLord(ctx context.Context, legion string) (LegionInfo, error)
	// TransferLord hands the lordship of legion to nodeID.
	TransferLord(ctx context.Context, legion, nodeID string) (LegionInfo, error)
	// Join contacts the given gossip addresses and returns how many answered.
	Join(ctx context.Context, addrs []string) (int, error)
	// RemoveNode removes a node from gossip and Raft.
	RemoveNode(ctx context.Context, nodeID string) error
}

// Caches is what CacheService needs: the node's caches, local and
// replicated, by name ("" is the default cache).
type Caches interface {
	Get(ctx context.Context, cache, key string, linearizable bool) (Item, error)
	Set(ctx context.Context, cache, key string, value []byte, ttl time.Duration, mode SetMode) error
	Delete(ctx context.Context, cache, key string) error
	Keys(ctx context.Context, cache string, linearizable bool) ([]string, error)
	// Stats returns one cache, or every cache when cache is "".
	Stats(ctx context.Context, cache string) ([]CacheStats, error)
	Clear(ctx context.Context, cache string) error
}

// Alarms is what AlarmService needs.
type Alarms interface {
	List(ctx context.Context, includeAcknowledged bool) ([]Alarm, error)
	Raise(ctx context.Context, name, message string) (Alarm, error)
	Acknowledge(ctx context.Context, id uint64) (Alarm, error)
	// Watch returns a channel of events that is closed when ctx ends (or the
	// source stops).
	Watch(ctx context.Context) (<-chan AlarmEvent, error)
}

// Stats is the top level of the uWSGI stats JSON; field names follow it.
type Stats struct {
	Version           string
	NodeID            string
	ListenQueue       uint64
	ListenQueueErrors uint64
	SignalQueue       uint64
	Load              uint64
	PID, UID, GID     int
	Cwd               string
	Workers           []Worker
	Sockets           []Socket
	Caches            []CacheStats
}

// Worker is one worker in the stats.
type Worker struct {
	ID            int
	PID           int
	Accepting     bool
	Requests      uint64
	DeltaRequests uint64
	Exceptions    uint64
	HarakiriCount uint64
	Signals       uint64
	SignalQueue   uint64
	Status        string // idle, busy, cheap, pause, sig<N>
	RSS, VSZ      uint64 // bytes
	RunningTime   time.Duration
	LastSpawn     time.Time
	RespawnCount  uint64
	TX            uint64 // bytes sent
	AvgRT         time.Duration
}

// Socket is one listening socket in the stats.
type Socket struct {
	Name       string
	Proto      string
	Queue      uint64
	MaxQueue   uint64
	Shared     bool
	CanOffload bool
}

// CacheStats is one cache in the stats.
type CacheStats struct {
	Name           string
	Hash           string
	HashSize       uint64
	KeySize        uint64
	MaxItems       uint64
	Blocks         uint64
	BlockSize      uint64
	Items          uint64
	Hits           uint64
	Miss           uint64
	Full           uint64
	LastModifiedAt time.Time // zero without lastmod
	Replicated     bool
}

// Item is a cache value read by Caches.Get.
type Item struct {
	Value     []byte
	ExpiresAt time.Time // zero when it never expires
}

// SetMode chooses uWSGI's write semantics.
type SetMode int

const (
	// SetModeSet adds a key only if it is absent (uWSGI cache_set); an
	// existing key is ErrExists.
	SetModeSet SetMode = iota + 1
	// SetModeUpdate adds or replaces a key (uWSGI cache_update).
	SetModeUpdate
)

// Health is a member's state in gossip.
type Health int

// Health values.
const (
	HealthUnknown Health = iota
	HealthAlive
	HealthSuspect
	HealthDead
	HealthLeft
)

// RaftRole is a member's role in Raft.
type RaftRole int

// RaftRole values.
const (
	RoleUnknown RaftRole = iota
	RoleLeader
	RoleFollower
	RoleCandidate
	RoleNonvoter
	RoleNone
)

// ClusterStatus is the cluster as one node sees it.
type ClusterStatus struct {
	NodeID       string
	LeaderID     string
	LeaderAddr   string
	Role         RaftRole
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	Legions      []LegionInfo
	Members      []Member
}

// LegionInfo is one legion: lord, fencing epoch, VIPs and members' valor.
type LegionInfo struct {
	Name    string
	Lord    string // node id, "" while there is none
	Epoch   uint64
	VIPs    []string
	Members []LegionMember
}

// LegionMember is a node in a legion with its valor.
type LegionMember struct {
	NodeID string
	Valor  int64
}

// Member is a node of the cluster.
type Member struct {
	NodeID      string
	Addr        string
	RaftAddr    string
	AdminAddr   string
	Health      Health
	Role        RaftRole
	LastContact time.Duration // negative when unknown
}

// Alarm is one incident.
type Alarm struct {
	ID             uint64
	Name           string
	Source         string
	Message        string
	NodeID         string
	RaisedAt       time.Time
	Count          uint64
	Acknowledged   bool
	AcknowledgedAt time.Time
	// Cluster history only (zero without a legion): every node that
	// raised it, the node running its action, the outcome, how many
	// executions were reported, and the latest raise.
	Raisers      []AlarmRaiser
	Owner        string
	Outcome      string
	Runs         uint32
	LastRaisedAt time.Time
}

// AlarmRaiser is one node's share of a cluster incident.
type AlarmRaiser struct {
	NodeID, Name                string
	Count                       uint64
	FirstRaisedAt, LastRaisedAt time.Time
}

// AlarmEventType tells what happened to an alarm.
type AlarmEventType int

// AlarmEventType values.
const (
	AlarmRaised AlarmEventType = iota + 1
	AlarmAcknowledged
)

// AlarmEvent is one item of Alarms.Watch.
type AlarmEvent struct {
	Type  AlarmEventType
	Alarm Alarm
}
