package legion

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/gouwsgi/gouwsgi/rpc/cluster"
)

// logSink routes node logs to t.Log and keeps them for assertions.
type logSink struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
	buf  bytes.Buffer
}

func newLogSink(t *testing.T) *logSink {
	s := &logSink{t: t}
	t.Cleanup(func() { // registered first: runs after the nodes stopped
		s.mu.Lock()
		s.done = true
		s.mu.Unlock()
	})
	return s
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	if !s.done {
		s.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// contains reports whether any line logged by node id contains all subs.
func (s *logSink) contains(id string, subs ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range strings.Split(s.buf.String(), "\n") {
		if id != "" && !strings.Contains(line, "node_id="+id) {
			continue
		}
		ok := true
		for _, sub := range subs {
			ok = ok && strings.Contains(line, sub)
		}
		if ok {
			return true
		}
	}
	return false
}

// freeGossipAddr reserves a loopback port p with p+1 and p+2 free too
// (Raft and RPC derive their ports from it). memberlist must be told its
// port before it starts, so :0 cannot be used for it.
func freeGossipAddr(t *testing.T) string {
	t.Helper()
	for range 200 {
		p := 20000 + 3*rand.IntN(10000)
		var closers []func() error
		ok := true
		for i := range 3 {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+i))
			if err != nil {
				ok = false
				break
			}
			closers = append(closers, ln.Close)
		}
		if ok {
			pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
			} else {
				closers = append(closers, pc.Close)
			}
		}
		for _, c := range closers {
			c()
		}
		if ok {
			return "127.0.0.1:" + strconv.Itoa(p)
		}
	}
	t.Fatal("no free port block")
	return ""
}

// testConfig tightens timings like Nomad's TestConfigForServer.
func testConfig(addr, secret string, valor uint32, dir string, peers ...string) Config {
	c := DefaultConfig()
	c.Legions = []LegionSpec{{Name: "web", Addr: addr, Valor: valor, Algo: "aes-256-cbc", Secret: secret}}
	c.Peers = peers
	c.DataDir = dir
	c.NodeName = "n-" + addr
	c.ProbeInterval = 100 * time.Millisecond
	c.ProbeTimeout = 50 * time.Millisecond
	c.GossipInterval = 50 * time.Millisecond
	c.ReconcileInterval = time.Second
	c.DeadNodeGrace = 3 * time.Second
	c.LapsePenalty = 5 * time.Second
	c.ApplyTimeout = 3 * time.Second
	return c
}

// event is one reactor call.
type event struct {
	kind   string
	node   string
	legion string
	epoch  uint64
	at     time.Time
}

// recorder is a Reactor shared by every node of a test cluster.
type recorder struct {
	mu     sync.Mutex
	events []event
}

type nodeReactor struct {
	NopReactor
	r  *recorder
	id func() string
}

func (nr nodeReactor) add(kind, legion string, epoch uint64) {
	nr.r.mu.Lock()
	nr.r.events = append(nr.r.events, event{kind, nr.id(), legion, epoch, time.Now()})
	nr.r.mu.Unlock()
}
func (nr nodeReactor) OnLord(l string, e uint64)   { nr.add("lord", l, e) }
func (nr nodeReactor) OnUnlord(l string, e uint64) { nr.add("unlord", l, e) }
func (nr nodeReactor) OnJoin(l string)             { nr.add("join", l, 0) }

func (r *recorder) snapshot() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events...)
}

// assertNoOverlap checks that no two nodes were lord of one legion at the
// same time. A killed node's lordship ends at its kill time.
func (r *recorder) assertNoOverlap(t *testing.T, killed map[string]time.Time) {
	t.Helper()
	type span struct {
		node       string
		epoch      uint64
		start, end time.Time
	}
	var spans []span
	open := map[string]*span{}
	for _, e := range r.snapshot() {
		switch e.kind {
		case "lord":
			open[e.node] = &span{node: e.node, epoch: e.epoch, start: e.at}
		case "unlord":
			if s := open[e.node]; s != nil {
				s.end = e.at
				spans = append(spans, *s)
				delete(open, e.node)
			}
		}
	}
	for node, s := range open {
		s.end = time.Now().Add(time.Hour)
		if k, ok := killed[node]; ok {
			s.end = k
		}
		spans = append(spans, *s)
	}
	for i := range spans {
		for j := range spans {
			a, b := spans[i], spans[j]
			if i != j && a.node != b.node && a.start.Before(b.end) && b.start.Before(a.end) {
				t.Errorf("two lords at once: %s epoch %d [%s..%s] and %s epoch %d [%s..%s]",
					a.node, a.epoch, a.start.Format("15:04:05.000"), a.end.Format("15:04:05.000"),
					b.node, b.epoch, b.start.Format("15:04:05.000"), b.end.Format("15:04:05.000"))
			}
		}
	}
}

// testNode is one node of an in-process cluster.
type testNode struct {
	*Node
	cfg    Config
	cancel context.CancelFunc
	done   chan error
	killed time.Time
}

type testCluster struct {
	t     *testing.T
	mu    sync.Mutex // guards nodes (startN launches concurrently)
	logs  *logSink
	rec   *recorder
	nodes []*testNode
}

func newCluster(t *testing.T) *testCluster {
	return &testCluster{t: t, logs: newLogSink(t), rec: &recorder{}}
}

// start creates and runs a node; it returns once its listeners are up.
func (c *testCluster) start(cfg Config) *testNode {
	c.t.Helper()
	tn, err := c.launch(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	return tn
}

func (c *testCluster) launch(cfg Config) (*testNode, error) {
	logger := slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	tn := &testNode{cfg: cfg, done: make(chan error, 1)}
	n, err := New(cfg, Options{
		Logger:      logger,
		Reactor:     nodeReactor{r: c.rec, id: func() string { return tn.ID() }},
		RegisterRPC: func(s *grpc.Server, n *Node) { cluster.Register(s, n) },
	})
	if err != nil {
		return nil, err
	}
	tn.Node = n
	ctx, cancel := context.WithCancel(context.Background())
	tn.cancel = cancel
	go func() { tn.done <- n.Run(ctx) }()
	select {
	case <-n.Started():
	case err := <-tn.done:
		cancel()
		return nil, fmt.Errorf("node did not start: %w", err)
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, tn)
	c.mu.Unlock()
	c.t.Cleanup(func() { tn.kill() })
	return tn, nil
}

// kill stops a node abruptly, as kill -9 would.
func (tn *testNode) kill() {
	if tn.killed.IsZero() {
		tn.killed = time.Now()
	}
	tn.halt()
	tn.cancel()
}

// startN starts n nodes concurrently, each naming all the others, with
// the given valors.
func (c *testCluster) startN(secret string, valors ...uint32) []*testNode {
	c.t.Helper()
	addrs := make([]string, len(valors))
	for i := range addrs {
		addrs[i] = freeGossipAddr(c.t)
	}
	out := make([]*testNode, len(valors))
	var wg sync.WaitGroup
	errs := make(chan error, len(valors))
	var mu sync.Mutex
	for i, v := range valors {
		var peers []string
		for j, a := range addrs {
			if j != i {
				peers = append(peers, a)
			}
		}
		cfg := testConfig(addrs[i], secret, v, filepath.Join(c.t.TempDir(), "n"), peers...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			tn, err := c.launch(cfg)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			out[i] = tn
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		c.t.Fatal(err)
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive returns the nodes not killed.
func (c *testCluster) alive() []*testNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*testNode
	for _, n := range c.nodes {
		if n.killed.IsZero() {
			out = append(out, n)
		}
	}
	return out
}

// leader returns the node all alive nodes agree leads, with voters
// voters in its configuration, or nil.
func (c *testCluster) leader(voters int) *testNode {
	var leaderID string
	for _, n := range c.alive() {
		st := n.Status()
		if st.LeaderID == "" || (leaderID != "" && st.LeaderID != leaderID) {
			return nil
		}
		leaderID = st.LeaderID
	}
	for _, n := range c.alive() {
		if n.ID() == leaderID {
			if len(n.raftServers()) != voters {
				return nil
			}
			return n
		}
	}
	return nil
}

func (c *testCluster) waitLeader(voters int) *testNode {
	c.t.Helper()
	var l *testNode
	waitFor(c.t, 15*time.Second, fmt.Sprintf("one leader with %d voters", voters), func() bool {
		l = c.leader(voters)
		return l != nil
	})
	return l
}

// lordOf returns the node that holds legion's lordship (lease valid) and
// that every alive node's FSM names, or nil.
func (c *testCluster) lordOf(legion string) *testNode {
	var holder *testNode
	for _, n := range c.alive() {
		if n.IsLord(legion) {
			if holder != nil {
				c.t.Errorf("two nodes claim lordship of %s: %s and %s", legion, holder.ID(), n.ID())
			}
			holder = n
		}
	}
	if holder == nil {
		return nil
	}
	for _, n := range c.alive() {
		if lg, _ := n.FSM().Legions().Get(legion); lg.Lord != holder.ID() {
			return nil
		}
	}
	return holder
}

func (c *testCluster) waitLord(legion string, d time.Duration, ok func(*testNode) bool) *testNode {
	c.t.Helper()
	var l *testNode
	waitFor(c.t, d, "a lord of "+legion, func() bool {
		l = c.lordOf(legion)
		return l != nil && (ok == nil || ok(l))
	})
	return l
}
