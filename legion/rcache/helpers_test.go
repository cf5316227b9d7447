package rcache

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/gouwsgi/gouwsgi/cache"
	"github.com/gouwsgi/gouwsgi/legion"
	"github.com/gouwsgi/gouwsgi/rpc/cluster"
)

func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-node cluster test; skipped with -short")
	}
}

func mustConfig(t testing.TB, lines ...string) []cache.Config {
	t.Helper()
	var out []cache.Config
	for _, l := range lines {
		c, err := cache.ParseConfig(l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// freeGossipAddr reserves a loopback port p with p+1 and p+2 free too
// (Raft and RPC derive their ports from the gossip port).
func freeGossipAddr(t testing.TB) string {
	t.Helper()
	for range 200 {
		p := 20000 + 3*rand.IntN(10000)
		var closers []io.Closer
		ok := true
		for i := range 3 {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+i))
			if err != nil {
				ok = false
				break
			}
			closers = append(closers, ln)
		}
		if ok {
			pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
			} else {
				closers = append(closers, pc)
			}
		}
		for _, c := range closers {
			c.Close()
		}
		if ok {
			return "127.0.0.1:" + strconv.Itoa(p)
		}
	}
	t.Fatal("no free port block")
	return ""
}

// member is one node of a test cluster: a legion node and its caches.
type member struct {
	cfg   legion.Config
	node  *legion.Node
	group *Group
	done  chan error
	dead  atomic.Bool
}

func (m *member) store(t testing.TB, name string) *Store {
	t.Helper()
	s, ok := m.group.Store(name)
	if !ok {
		t.Fatalf("no cache %q", name)
	}
	return s
}

// crash stops the member as kill -9 would.
func (m *member) crash() {
	if m.dead.Swap(true) {
		return
	}
	m.group.Stop()
	m.node.Crash()
	<-m.done
}

type testCluster struct {
	t       testing.TB
	cfgs    []cache.Config
	opts    Options
	tune    func(*legion.Config)
	logger  *slog.Logger
	mu      sync.Mutex
	members []*member
}

func newTestCluster(t testing.TB, cfgs []cache.Config, tune func(*legion.Config)) *testCluster {
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	return &testCluster{
		t: t, cfgs: cfgs, tune: tune,
		opts:   Options{SweepInterval: 50 * time.Millisecond},
		logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level})),
	}
}

// testWriter sends logs to t.Log until the test ends.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a late log line after the test ended
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

func (c *testCluster) config(addr, dir string, peers []string) legion.Config {
	lc := legion.DefaultConfig()
	lc.Legions = []legion.LegionSpec{{Name: "web", Addr: addr, Valor: 1, Algo: "aes-256-cbc", Secret: "s3cret"}}
	lc.Peers = peers
	lc.DataDir = dir
	lc.NodeName = "n-" + addr
	lc.ProbeInterval = 100 * time.Millisecond
	lc.ProbeTimeout = 50 * time.Millisecond
	lc.GossipInterval = 50 * time.Millisecond
	lc.ReconcileInterval = time.Second
	lc.DeadNodeGrace = time.Minute
	lc.ApplyTimeout = 3 * time.Second
	if c.tune != nil {
		c.tune(&lc)
	}
	return lc
}

// launch starts a member on cfg (a new Group: a restarted process).
func (c *testCluster) launch(cfg legion.Config) (*member, error) {
	g, err := New(c.cfgs, Options{Logger: c.logger, SweepInterval: c.opts.SweepInterval, Timeout: c.opts.Timeout})
	if err != nil {
		return nil, err
	}
	n, err := legion.New(cfg, legion.Options{
		Logger:      c.logger,
		Machines:    []legion.Machine{g.Machine()},
		RegisterRPC: func(s *grpc.Server, n *legion.Node) { cluster.Register(s, n) },
	})
	if err != nil {
		return nil, err
	}
	m := &member{cfg: cfg, node: n, group: g, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { m.done <- n.Run(ctx); cancel() }()
	select {
	case <-n.Started():
	case err := <-m.done:
		return nil, fmt.Errorf("node did not start: %w", err)
	}
	g.Start(n)
	c.mu.Lock()
	c.members = append(c.members, m)
	c.mu.Unlock()
	c.t.Cleanup(m.crash)
	return m, nil
}

// start starts n members naming each other and waits for one leader of n
// voters.
func (c *testCluster) start(n int) []*member {
	c.t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = freeGossipAddr(c.t)
	}
	out := make([]*member, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		var peers []string
		for j, a := range addrs {
			if j != i {
				peers = append(peers, a)
			}
		}
		cfg := c.config(addrs[i], filepath.Join(c.t.TempDir(), "n"), peers)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = c.launch(cfg)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			c.t.Fatal(err)
		}
	}
	c.waitLeader(n)
	return out
}

// restart starts a crashed member again on its data directory.
func (c *testCluster) restart(m *member) *member {
	c.t.Helper()
	var back *member
	var err error
	// The ports were just released; retry briefly if the OS holds them.
	deadline := time.Now().Add(10 * time.Second)
	for back, err = c.launch(m.cfg); err != nil; back, err = c.launch(m.cfg) {
		if time.Now().After(deadline) {
			c.t.Fatalf("restart %s: %v", m.node.ID(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return back
}

func (c *testCluster) alive() []*member {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*member
	for _, m := range c.members {
		if !m.dead.Load() {
			out = append(out, m)
		}
	}
	return out
}

// leader returns the member every alive member agrees leads with voters
// voters, or nil.
func (c *testCluster) leader(voters int) *member {
	var id string
	var lead *member
	for _, m := range c.alive() {
		st := m.node.Status()
		if st.LeaderID == "" || (id != "" && st.LeaderID != id) {
			return nil
		}
		id = st.LeaderID
		if m.node.ID() == id {
			lead = m
			if len(st.Members) < voters {
				return nil
			}
			n := 0
			for _, mb := range st.Members {
				if mb.Role == legion.RoleLeader || mb.Role == legion.RoleFollower || mb.Role == legion.RoleCandidate {
					n++
				}
			}
			if n != voters {
				return nil
			}
		}
	}
	return lead
}

func (c *testCluster) waitLeader(voters int) *member {
	c.t.Helper()
	var l *member
	waitFor(c.t, 20*time.Second, fmt.Sprintf("one leader with %d voters", voters), func() bool {
		l = c.leader(voters)
		return l != nil
	})
	return l
}

func (c *testCluster) followers() []*member {
	var out []*member
	for _, m := range c.alive() {
		if !m.node.IsLeader() {
			out = append(out, m)
		}
	}
	return out
}

// waitConverged waits until every alive member applied the same last
// batch, then returns that index.
func (c *testCluster) waitConverged() {
	c.t.Helper()
	waitFor(c.t, 10*time.Second, "every replica at the same index", func() bool {
		var idx uint64
		for i, m := range c.alive() {
			li := m.group.State().LastIndex()
			if i > 0 && li != idx {
				return false
			}
			idx = li
		}
		return true
	})
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
