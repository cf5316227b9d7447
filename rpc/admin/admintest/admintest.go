package admintest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/rpc/admin"
)

// Now is the fixed clock of every fake, so outputs are reproducible.
var Now = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// Deps returns fresh fakes for every dependency, with a legion.
func Deps() admin.Deps {
	caches := NewCaches()
	return admin.Deps{Node: NewNode(caches), Legion: NewLegion(), Caches: caches, Alarms: NewAlarms()}
}

// Start starts an admin server with cfg and deps, stops it when the test
// ends, and returns it. cfg.Addr defaults to 127.0.0.1:0.
func Start(t testing.TB, cfg admin.Config, deps admin.Deps) *admin.Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	srv, err := admin.New(cfg, deps)
	if err != nil {
		t.Fatalf("start admin server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("admin server: %v", err)
		}
	})
	return srv
}

// Node is a fake node with three workers and two sockets; its caches are
// those of a Caches fake.
type Node struct {
	mu      sync.Mutex
	stats   admin.Stats
	caches  *Caches
	Reloads []bool // chain flag of every Reload call
}

// NewNode returns a Node with fixed stats reporting the given caches.
func NewNode(caches *Caches) *Node {
	w := func(id int, status string, reqs uint64, rt time.Duration) admin.Worker {
		return admin.Worker{
			ID: id, PID: 4200 + id, Accepting: true, Requests: reqs, DeltaRequests: reqs / 10,
			Status: status, RSS: uint64(id) * 21 << 20, VSZ: uint64(id) * 180 << 20,
			RunningTime: time.Duration(reqs) * rt, LastSpawn: Now.Add(-time.Hour),
			TX: reqs * 512, AvgRT: rt,
		}
	}
	return &Node{caches: caches, stats: admin.Stats{
		Version: "gouwsgi-test", NodeID: "n1", ListenQueue: 0, Load: 1, PID: 4200, UID: 1000, GID: 1000,
		Cwd:     "/srv/app",
		Workers: []admin.Worker{w(1, "idle", 1200, 3*time.Millisecond), w(2, "busy", 1180, 4*time.Millisecond), w(3, "cheap", 0, 0)},
		Sockets: []admin.Socket{{Name: "127.0.0.1:8080", Proto: "http", MaxQueue: 100}, {Name: "/run/app.sock", Proto: "uwsgi", Queue: 2, MaxQueue: 100, CanOffload: true}},
	}}
}

// Stats returns the fixed stats and the current cache stats.
func (n *Node) Stats(ctx context.Context) (admin.Stats, error) {
	caches, err := n.caches.Stats(ctx, "")
	if err != nil {
		return admin.Stats{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.stats
	st.Workers = slices.Clone(n.stats.Workers)
	st.Caches = caches
	return st, nil
}

// Reload records the call.
func (n *Node) Reload(_ context.Context, chain bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.Reloads = append(n.Reloads, chain)
	return nil
}

// Scale adds idle workers or removes the last ones.
func (n *Node) Scale(_ context.Context, delta int) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	count := len(n.stats.Workers) + delta
	if count < 1 {
		return 0, fmt.Errorf("%w: cannot scale %d workers by %d: at least one must remain",
			admin.ErrInvalidArgument, len(n.stats.Workers), delta)
	}
	for len(n.stats.Workers) < count {
		id := len(n.stats.Workers) + 1
		n.stats.Workers = append(n.stats.Workers, admin.Worker{ID: id, PID: 4200 + id, Status: "idle", Accepting: true})
	}
	n.stats.Workers = n.stats.Workers[:count]
	return count, nil
}

// Legion is a fake three-node cluster with one legion, "web", led by n1.
type Legion struct {
	mu     sync.Mutex
	status admin.ClusterStatus
	// NotLeader, when set, makes every write fail as on a follower that
	// cannot reach the leader.
	NotLeader *admin.NotLeaderError
	Joined    []string
	Removed   []string
}

// NewLegion returns the fixed cluster.
func NewLegion() *Legion {
	return &Legion{status: admin.ClusterStatus{
		NodeID: "n1", LeaderID: "n1", LeaderAddr: "10.0.0.1:7071", Role: admin.RoleLeader,
		Term: 3, CommitIndex: 42, AppliedIndex: 42,
		Legions: []admin.LegionInfo{{
			Name: "web", Lord: "n1", Epoch: 7, VIPs: []string{"10.0.0.100/24"},
			Members: []admin.LegionMember{{NodeID: "n1", Valor: 100}, {NodeID: "n2", Valor: 90}, {NodeID: "n3", Valor: 50}},
		}},
		Members: []admin.Member{
			{NodeID: "n1", Addr: "10.0.0.1:7946", RaftAddr: "10.0.0.1:7000", AdminAddr: "10.0.0.1:7071", Health: admin.HealthAlive, Role: admin.RoleLeader, LastContact: -1},
			{NodeID: "n2", Addr: "10.0.0.2:7946", RaftAddr: "10.0.0.2:7000", AdminAddr: "10.0.0.2:7071", Health: admin.HealthAlive, Role: admin.RoleFollower, LastContact: 12 * time.Millisecond},
			{NodeID: "n3", Addr: "10.0.0.3:7946", RaftAddr: "10.0.0.3:7000", AdminAddr: "10.0.0.3:7071", Health: admin.HealthDead, Role: admin.RoleFollower, LastContact: 41 * time.Second},
		},
	}}
}

// Status returns the cluster.
func (l *Legion) Status(context.Context) (admin.ClusterStatus, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status, nil
}

func (l *Legion) legion(name string) (*admin.LegionInfo, error) {
	for i := range l.status.Legions {
		if l.status.Legions[i].Name == name {
			return &l.status.Legions[i], nil
		}
	}
	return nil, fmt.Errorf("%w: no legion %q", admin.ErrNotFound, name)
}

// ResignLord hands the lordship to the member with the next highest valor.
func (l *Legion) ResignLord(_ context.Context, name string) (admin.LegionInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.NotLeader != nil {
		return admin.LegionInfo{}, l.NotLeader
	}
	lg, err := l.legion(name)
	if err != nil {
		return admin.LegionInfo{}, err
	}
	best := ""
	var valor int64
	for _, m := range lg.Members {
		if m.NodeID != lg.Lord && (best == "" || m.Valor > valor) {
			best, valor = m.NodeID, m.Valor
		}
	}
	lg.Lord, lg.Epoch = best, lg.Epoch+1
	return *lg, nil
}

// TransferLord makes nodeID the lord.
func (l *Legion) TransferLord(_ context.Context, name, nodeID string) (admin.LegionInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.NotLeader != nil {
		return admin.LegionInfo{}, l.NotLeader
	}
	lg, err := l.legion(name)
	if err != nil {
		return admin.LegionInfo{}, err
	}
	if !slices.ContainsFunc(lg.Members, func(m admin.LegionMember) bool { return m.NodeID == nodeID }) {
		return admin.LegionInfo{}, fmt.Errorf("%w: node %q is not a member of legion %q", admin.ErrNotFound, nodeID, name)
	}
	lg.Lord, lg.Epoch = nodeID, lg.Epoch+1
	return *lg, nil
}

// Join records the addresses and reports them all joined.
func (l *Legion) Join(_ context.Context, addrs []string) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.Joined = append(l.Joined, addrs...)
	return len(addrs), nil
}

// RemoveNode removes a dead member; removing a live one is refused.
func (l *Legion) RemoveNode(_ context.Context, nodeID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.NotLeader != nil {
		return l.NotLeader
	}
	i := slices.IndexFunc(l.status.Members, func(m admin.Member) bool { return m.NodeID == nodeID })
	if i < 0 {
		return fmt.Errorf("%w: no member %q", admin.ErrNotFound, nodeID)
	}
	if l.status.Members[i].Health == admin.HealthAlive {
		return fmt.Errorf("%w: node %q is alive; stop it first", admin.ErrFailedPrecondition, nodeID)
	}
	l.status.Members = slices.Delete(l.status.Members, i, i+1)
	l.Removed = append(l.Removed, nodeID)
	return nil
}

// Caches is a fake with a local "default" cache and a replicated
// "sessions" cache.
type Caches struct {
	mu     sync.Mutex
	caches map[string]*fakeCache
}

type fakeCache struct {
	stats admin.CacheStats
	items map[string]admin.Item
}

// NewCaches returns the two caches with a few items.
func NewCaches() *Caches {
	mk := func(name string, replicated bool, items map[string]admin.Item) *fakeCache {
		return &fakeCache{
			stats: admin.CacheStats{Name: name, Hash: "djb33x", HashSize: 65536, KeySize: 2048, MaxItems: 100,
				Blocks: 100, BlockSize: 65536, Hits: 31, Miss: 4, Replicated: replicated},
			items: items,
		}
	}
	return &Caches{caches: map[string]*fakeCache{
		"default": mk("default", false, map[string]admin.Item{
			"/index.html": {Value: []byte("<h1>hi</h1>")},
			"/about":      {Value: []byte("about us"), ExpiresAt: Now.Add(time.Minute)},
		}),
		"sessions": mk("sessions", true, map[string]admin.Item{"s:42": {Value: []byte("user=7")}}),
	}}
}

func (c *Caches) cache(name string) (*fakeCache, error) {
	if name == "" {
		name = "default"
	}
	fc, ok := c.caches[name]
	if !ok {
		return nil, fmt.Errorf("%w: no cache %q", admin.ErrNotFound, name)
	}
	return fc, nil
}

func (c *Caches) readable(name string, linearizable bool) (*fakeCache, error) {
	fc, err := c.cache(name)
	if err == nil && linearizable && !fc.stats.Replicated {
		return nil, fmt.Errorf("%w: cache %q is local; linearizable reads need a replicated cache", admin.ErrFailedPrecondition, fc.stats.Name)
	}
	return fc, err
}

// Get reads a key.
func (c *Caches) Get(_ context.Context, cache, key string, linearizable bool) (admin.Item, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fc, err := c.readable(cache, linearizable)
	if err != nil {
		return admin.Item{}, err
	}
	it, ok := fc.items[key]
	if !ok {
		return admin.Item{}, fmt.Errorf("%w: key %q in cache %q", admin.ErrNotFound, key, fc.stats.Name)
	}
	return it, nil
}

// Set writes a key with uWSGI's set/update semantics.
func (c *Caches) Set(_ context.Context, cache, key string, value []byte, ttl time.Duration, mode admin.SetMode) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	fc, err := c.cache(cache)
	if err != nil {
		return err
	}
	if _, ok := fc.items[key]; ok && mode == admin.SetModeSet {
		return fmt.Errorf("%w: key %q in cache %q (use update to replace it)", admin.ErrExists, key, fc.stats.Name)
	}
	it := admin.Item{Value: slices.Clone(value)}
	if ttl > 0 {
		it.ExpiresAt = Now.Add(ttl)
	}
	fc.items[key] = it
	return nil
}

// Delete removes a key.
func (c *Caches) Delete(_ context.Context, cache, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	fc, err := c.cache(cache)
	if err != nil {
		return err
	}
	if _, ok := fc.items[key]; !ok {
		return fmt.Errorf("%w: key %q in cache %q", admin.ErrNotFound, key, fc.stats.Name)
	}
	delete(fc.items, key)
	return nil
}

// Keys lists keys, sorted.
func (c *Caches) Keys(_ context.Context, cache string, linearizable bool) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fc, err := c.readable(cache, linearizable)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(fc.items))
	for k := range fc.items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}

// Stats returns one or all caches, sorted by name.
func (c *Caches) Stats(_ context.Context, cache string) ([]admin.CacheStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cache != "" {
		if _, err := c.cache(cache); err != nil {
			return nil, err
		}
	}
	var out []admin.CacheStats
	for name, fc := range c.caches {
		if cache == "" || cache == name {
			st := fc.stats
			st.Items = uint64(len(fc.items))
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Clear empties a cache.
func (c *Caches) Clear(_ context.Context, cache string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	fc, err := c.cache(cache)
	if err != nil {
		return err
	}
	clear(fc.items)
	return nil
}

// Alarms is a fake alarm log with two alarms, one acknowledged.
type Alarms struct {
	mu       sync.Mutex
	alarms   []admin.Alarm
	watchers map[chan admin.AlarmEvent]struct{}
}

// NewAlarms returns the fixed alarm log.
func NewAlarms() *Alarms {
	return &Alarms{
		alarms: []admin.Alarm{
			{ID: 1, Name: "mail", Source: "harakiri", Message: "worker 2 killed after 30s on /slow", NodeID: "n2",
				RaisedAt: Now.Add(-10 * time.Minute), Count: 1, Acknowledged: true, AcknowledgedAt: Now.Add(-5 * time.Minute)},
			{ID: 2, Name: "pager", Source: "backlog", Message: `listen queue of socket "/run/app.sock" full !!! (100/100)`, NodeID: "n1",
				RaisedAt: Now.Add(-time.Minute), Count: 3},
		},
		watchers: map[chan admin.AlarmEvent]struct{}{},
	}
}

// List returns the alarms, without acknowledged ones unless asked.
func (a *Alarms) List(_ context.Context, includeAcknowledged bool) ([]admin.Alarm, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []admin.Alarm
	for _, al := range a.alarms {
		if includeAcknowledged || !al.Acknowledged {
			out = append(out, al)
		}
	}
	return out, nil
}

// Raise records an alarm from the API and notifies watchers.
func (a *Alarms) Raise(_ context.Context, name, message string) (admin.Alarm, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	al := admin.Alarm{ID: uint64(len(a.alarms) + 1), Name: name, Source: "api", Message: message, NodeID: "n1", RaisedAt: Now, Count: 1}
	a.alarms = append(a.alarms, al)
	a.notifyLocked(admin.AlarmEvent{Type: admin.AlarmRaised, Alarm: al})
	return al, nil
}

// Acknowledge marks an alarm acknowledged and notifies watchers.
func (a *Alarms) Acknowledge(_ context.Context, id uint64) (admin.Alarm, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.alarms {
		if a.alarms[i].ID == id {
			a.alarms[i].Acknowledged, a.alarms[i].AcknowledgedAt = true, Now
			a.notifyLocked(admin.AlarmEvent{Type: admin.AlarmAcknowledged, Alarm: a.alarms[i]})
			return a.alarms[i], nil
		}
	}
	return admin.Alarm{}, fmt.Errorf("%w: no alarm with id %d", admin.ErrNotFound, id)
}

// Watch registers a watcher until ctx ends.
func (a *Alarms) Watch(ctx context.Context) (<-chan admin.AlarmEvent, error) {
	ch := make(chan admin.AlarmEvent, 16)
	a.mu.Lock()
	a.watchers[ch] = struct{}{}
	a.mu.Unlock()
	go func() {
		<-ctx.Done()
		a.mu.Lock()
		delete(a.watchers, ch)
		a.mu.Unlock()
		close(ch)
	}()
	return ch, nil
}

// Watchers returns the number of open watches (tests poll it before
// raising, so the event is not raised before the watch exists).
func (a *Alarms) Watchers() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.watchers)
}

// notifyLocked delivers ev to every watcher; a watcher whose buffer is full
// misses it rather than blocking the writer.
func (a *Alarms) notifyLocked(ev admin.AlarmEvent) {
	for ch := range a.watchers {
		select {
		case ch <- ev:
		default:
		}
	}
}
