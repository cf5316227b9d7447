package alarm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/gouwsgi/gouwsgi/legion"
	"github.com/gouwsgi/gouwsgi/legion/fsm"
	raftv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/raft/v1"
)

// Config tunes a Service.
type Config struct {
	// DoneTimeout: an owner alive in gossip that has not reported an
	// incident done this long after it was assigned loses it to another
	// node. It must exceed the longest an action can take with its
	// retries (node/alarm: tries × timeout + back-off, 93 s by default):
	// a live owner still running would otherwise run it a second time.
	DoneTimeout time.Duration
	// Interval is how often the leader checks owners and each node looks
	// for incidents assigned to it (every applied change wakes both too).
	Interval time.Duration
	// Retain is how many incidents the history keeps.
	Retain int
	// Logger receives the service's lines (slog.Default when nil).
	Logger *slog.Logger
}

// DefaultConfig returns the defaults: 10 min done timeout, 250 ms checks,
// 1000 incidents.
func DefaultConfig() Config {
	return Config{DoneTimeout: 10 * time.Minute, Interval: 250 * time.Millisecond, Retain: DefaultRetain}
}

// absentGrace is how long a new leader waits before it counts an owner
// that gossip does not know at all as dead: its gossip may still be
// filling in.
const absentGrace = 10 * time.Second

// Node is what Service needs from the legion node (*legion.Node).
type Node interface {
	ID() string
	Apply(ctx context.Context, t fsm.CommandType, msg proto.Message) ([]byte, error)
	// IsLeader: this node leads Raft now (a hint: every reassignment is a
	// compare-and-set, so a stale leader cannot do harm).
	IsLeader() bool
	Members() []legion.MemberStatus
}

// Executor runs the action of an incident the cluster hands to this node
// (node/alarm's Manager.Execute through an adapter). It must not block;
// the outcome comes back through Service.Done.
type Executor interface {
	Execute(inc Incident) error
}

// Raise is one local incident offered to the cluster.
type Raise struct {
	Alarm, Message, Kind string
	// NodeName is the raiser's name for humans; the node id comes from
	// the legion node.
	NodeName string
	// LocalID is the raiser's own sequence number of the incident.
	LocalID uint64
	// Freq is the raiser's alarm-freq (0: never fold).
	Freq time.Duration
	// At is the raiser's clock at the raise.
	At time.Time
}

// Service records a node's incidents in the cluster, claims the ones the
// cluster assigns to it, and, while its node leads, reassigns incidents
// whose owner died.
type Service struct {
	cfg      Config
	log      *slog.Logger
	m        *Machine
	instance string // this process
	claimTag string // owner_instance of incidents this process claimed

	node atomic.Pointer[nodeRef]

	mu      sync.Mutex
	handled map[uint64]int    // claimed incidents handed to the executor: reassignments+1
	noted   map[uint64]string // last reassignment problem logged per incident
}

type nodeRef struct{ n Node }

// ErrNotRunning: Record, Done or Acknowledge before Run started.
var ErrNotRunning = errors.New("cluster alarms are not running yet")

// New returns a Service with an empty machine; register it with the
// legion node (Registration) before the node starts.
func New(cfg Config) *Service {
	def := DefaultConfig()
	if cfg.DoneTimeout <= 0 {
		cfg.DoneTimeout = def.DoneTimeout
	}
	if cfg.Interval <= 0 {
		cfg.Interval = def.Interval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	var raw [8]byte
	_, _ = rand.Read(raw[:]) // crypto/rand does not fail on supported platforms
	inst := hex.EncodeToString(raw[:])
	return &Service{
		cfg: cfg, log: log.With("component", "cluster-alarms"), m: NewMachine(cfg.Retain),
		instance: inst, claimTag: inst + "+claim", handled: map[uint64]int{}, noted: map[uint64]string{},
	}
}

// Registration is the machine as legion.Options.Machines takes it.
func (s *Service) Registration() legion.Machine {
	return legion.Machine{Name: MachineName, Machine: s.m, Types: Types}
}

// Machine is the replicated state, for reads and watches.
func (s *Service) Machine() *Machine { return s.m }

// Run watches the state until ctx ends: it claims and executes incidents
// assigned to this node and, while n leads, reassigns incidents whose
// owner died. Call it once n has started (legion.Node.Started); Record
// and Done work from then on.
func (s *Service) Run(ctx context.Context, n Node, exec Executor) {
	s.node.Store(&nodeRef{n})
	kick := s.m.notify()
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	var leaderSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-t.C:
		}
		s.claimAssigned(ctx, n, exec)
		if !n.IsLeader() {
			leaderSince = time.Time{}
			continue
		}
		if leaderSince.IsZero() {
			leaderSince = time.Now()
		}
		s.reassignLost(ctx, n, leaderSince)
	}
}

func (s *Service) running() (Node, error) {
	r := s.node.Load()
	if r == nil {
		return nil, ErrNotRunning
	}
	return r.n, nil
}

// Record offers a local incident to the cluster. runHere tells whether
// this node runs its action (it opened the incident); id names the
// cluster incident for Done.
func (s *Service) Record(ctx context.Context, r Raise) (id uint64, runHere bool, err error) {
	n, err := s.running()
	if err != nil {
		return 0, false, err
	}
	data, err := s.apply(ctx, n, RecordType, &raftv1.AlarmRecord{
		Alarm: r.Alarm, Message: r.Message, Kind: r.Kind, NodeId: n.ID(), NodeName: r.NodeName,
		Instance: s.instance, LocalId: r.LocalID, FreqNanos: int64(r.Freq), RaisedUnixNano: r.At.UnixNano(),
	})
	if err != nil {
		return 0, false, fmt.Errorf("record alarm %s in the cluster: %w", r.Alarm, err)
	}
	var res raftv1.AlarmRecordResult
	if err := proto.Unmarshal(data, &res); err != nil {
		return 0, false, fmt.Errorf("record alarm %s: decode answer: %w", r.Alarm, err)
	}
	return res.GetIncidentId(), res.GetRunHere(), nil
}

// Done reports that this node ran incident id's action, with its outcome.
func (s *Service) Done(ctx context.Context, id uint64, outcome string) error {
	n, err := s.running()
	if err != nil {
		return err
	}
	if _, err := s.apply(ctx, n, DoneType, &raftv1.AlarmDone{IncidentId: id, NodeId: n.ID(), Instance: s.instance, Outcome: outcome}); err != nil {
		return fmt.Errorf("report incident %d done: %w", id, err)
	}
	return nil
}

// applyTries bounds the retries of an idempotent command whose outcome is
// unknown (leadership lost while committing, leader unreachable after
// sending).
const applyTries = 3

// apply proposes an idempotent command (Record and Done are: the machine
// recognises a repeat by instance and local id; an Ack keeps the first
// acknowledgement), retrying when the outcome is unknown. No quorum (the node already waited ApplyTimeout), a
// refusal or a stopped node end it at once.
func (s *Service) apply(ctx context.Context, n Node, t fsm.CommandType, msg proto.Message) ([]byte, error) {
	wait := 50 * time.Millisecond
	for try := 1; ; try++ {
		data, err := n.Apply(ctx, t, msg)
		if err == nil || try == applyTries || errors.Is(err, legion.ErrNoQuorum) || errors.Is(err, legion.ErrRefused) ||
			errors.Is(err, legion.ErrNotRunning) || ctx.Err() != nil {
			return data, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// Acknowledge records an operator's acknowledgement through Raft and
// returns the incident as committed.
func (s *Service) Acknowledge(ctx context.Context, id uint64) (Incident, error) {
	n, err := s.running()
	if err != nil {
		return Incident{}, err
	}
	if _, ok := s.m.Get(id); !ok {
		return Incident{}, fmt.Errorf("acknowledge incident %d: %w", id, ErrUnknownIncident)
	}
	if _, err := s.apply(ctx, n, AckType, &raftv1.AlarmAck{IncidentId: id, By: n.ID()}); err != nil {
		return Incident{}, fmt.Errorf("acknowledge incident %d: %w", id, err)
	}
	inc, ok := s.m.Get(id)
	if !ok {
		return Incident{}, fmt.Errorf("acknowledge incident %d: pruned meanwhile: %w", id, ErrUnknownIncident)
	}
	return inc, nil
}

// claimAssigned claims the unfinished incidents the cluster assigned to
// this node (reassigned to it, or owned by a previous process of it) and
// hands them to the executor. Incidents this process recorded itself
// are run by the node's alarm manager, not here.
func (s *Service) claimAssigned(ctx context.Context, n Node, exec Executor) {
	me := n.ID()
	for _, inc := range s.m.History() {
		if inc.Done {
			s.mu.Lock()
			delete(s.handled, inc.ID)
			s.mu.Unlock()
			continue
		}
		if inc.Owner != me || inc.OwnerInstance == s.instance {
			continue
		}
		if inc.OwnerInstance != s.claimTag {
			_, err := n.Apply(ctx, ClaimType, &raftv1.AlarmClaim{IncidentId: inc.ID, NodeId: me, Instance: s.claimTag, ExpectInstance: inc.OwnerInstance})
			if err != nil {
				if !errors.Is(err, legion.ErrRefused) {
					s.log.Warn("claiming an alarm incident assigned to this node failed; retrying", "incident", inc.ID, "alarm", inc.Alarm, "err", err)
				}
				continue // refused: it moved on; else the next pass retries
			}
		}
		// One execution per assignment: a claim retried after a lost
		// answer finds the incident claimed already.
		s.mu.Lock()
		seen := s.handled[inc.ID] == inc.Reassignments+1
		s.handled[inc.ID] = inc.Reassignments + 1
		s.mu.Unlock()
		if seen {
			continue
		}
		s.log.Info("running an alarm incident the cluster assigned to this node",
			"incident", inc.ID, "alarm", inc.Alarm, "raised_by", inc.Origin.Name, "reassignments", inc.Reassignments)
		if err := exec.Execute(inc); err != nil {
			s.log.Error("cannot run an assigned alarm incident", "incident", inc.ID, "alarm", inc.Alarm, "err", err)
			if derr := s.Done(ctx, inc.ID, "failed: "+err.Error()); derr != nil {
				s.log.Warn("reporting an alarm incident failed", "incident", inc.ID, "err", derr)
			}
		}
	}
}

// reassignLost runs on the leader: an unfinished incident whose owner is
// dead or gone (or silent past DoneTimeout) goes to another alive node.
func (s *Service) reassignLost(ctx context.Context, n Node, leaderSince time.Time) {
	health := map[string]legion.Health{}
	var alive []string
	for _, m := range n.Members() {
		health[m.NodeID] = m.Health
		if m.Health == legion.HealthAlive {
			alive = append(alive, m.NodeID)
		}
	}
	slices.Sort(alive)
	now := time.Now()
	for _, inc := range s.m.History() {
		if inc.Done {
			s.forget(inc.ID)
			continue
		}
		h, known := health[inc.Owner]
		var reason string
		switch {
		case known && (h == legion.HealthDead || h == legion.HealthLeft):
			reason = fmt.Sprintf("owner %s is %s", inc.Owner, h)
		case !known && now.Sub(leaderSince) > absentGrace:
			reason = fmt.Sprintf("owner %s is not a cluster member", inc.Owner)
		case known && h == legion.HealthAlive && !inc.AssignedAt.IsZero() && now.Sub(inc.AssignedAt) > s.cfg.DoneTimeout:
			reason = fmt.Sprintf("owner %s did not report within %s", inc.Owner, s.cfg.DoneTimeout)
		default:
			continue
		}
		to := pickOwner(inc, alive)
		if to == "" {
			s.note(inc.ID, "alarm incident lost its owner and no other node is alive to run it", "incident", inc.ID, "alarm", inc.Alarm, "reason", reason)
			continue
		}
		_, err := n.Apply(ctx, ReassignType, &raftv1.AlarmReassign{IncidentId: inc.ID, FromNode: inc.Owner, ToNode: to, Reason: reason})
		switch {
		case errors.Is(err, legion.ErrRefused):
			continue // done or moved meanwhile
		case err != nil:
			s.note(inc.ID, "reassigning an alarm incident failed; retrying", "incident", inc.ID, "err", err)
			continue
		}
		s.forget(inc.ID)
		s.log.Warn("reassigned alarm incident", "incident", inc.ID, "alarm", inc.Alarm, "from", inc.Owner, "to", to, "reason", reason)
	}
}

// pickOwner chooses the next owner among alive nodes (sorted): a node
// that raised the incident first (it defines the alarm), in raise order,
// else the lowest id; never the current owner.
func pickOwner(inc Incident, alive []string) string {
	for _, r := range inc.Raisers {
		if r.NodeID != inc.Owner && slices.Contains(alive, r.NodeID) {
			return r.NodeID
		}
	}
	for _, id := range alive {
		if id != inc.Owner {
			return id
		}
	}
	return ""
}

// note logs a reassignment problem once per incident and message.
func (s *Service) note(id uint64, msg string, args ...any) {
	s.mu.Lock()
	dup := s.noted[id] == msg
	s.noted[id] = msg
	s.mu.Unlock()
	if !dup {
		s.log.Warn(msg, args...)
	}
}

func (s *Service) forget(id uint64) {
	s.mu.Lock()
	delete(s.noted, id)
	s.mu.Unlock()
}
