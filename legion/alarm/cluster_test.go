package alarm

import (
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
	"google.golang.org/protobuf/proto"

	"github.com/gouwsgi/gouwsgi/legion"
	raftv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/raft/v1"
	"github.com/gouwsgi/gouwsgi/rpc/cluster"
)

// These tests run real legion nodes (memberlist + Raft over loopback) in
// one process, each with its Service; the executor stands in for the
// node's alarm manager and records what it is handed.

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-node cluster test; skipped with -short")
	}
}

// testLog routes node logs to t.Log until the test ends.
type testLog struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// execRec is the executor: it records every incident handed over and,
// like the alarm manager, reports it done asynchronously.
type execRec struct {
	svc *Service
	mu  sync.Mutex
	got []Incident
}

func (e *execRec) Execute(inc Incident) error {
	e.mu.Lock()
	e.got = append(e.got, inc)
	e.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.svc.Done(ctx, inc.ID, "ok")
	}()
	return nil
}

func (e *execRec) executed() []Incident {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Incident(nil), e.got...)
}

type tnode struct {
	*legion.Node
	svc    *Service
	exec   *execRec
	stop   context.CancelFunc
	done   chan struct{}
	closed bool
}

// freeBlock reserves a loopback port p with p+1 and p+2 free (Raft and
// RPC take the next ports); memberlist needs its port before it starts.
func freeBlock(t *testing.T) string {
	t.Helper()
	for range 200 {
		p := 20000 + 3*rand.IntN(10000)
		var lns []net.Listener
		for i := range 3 {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+i))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p))
		ok := len(lns) == 3 && err == nil
		if pc != nil {
			pc.Close()
		}
		for _, ln := range lns {
			ln.Close()
		}
		if ok {
			return "127.0.0.1:" + strconv.Itoa(p)
		}
	}
	t.Fatal("no free port block")
	return ""
}

// startCluster starts n nodes that name each other; doneTimeout 0 keeps
// the default.
func startCluster(t *testing.T, n int, doneTimeout time.Duration) []*tnode {
	t.Helper()
	tl := &testLog{t: t}
	t.Cleanup(func() { tl.mu.Lock(); tl.done = true; tl.mu.Unlock() })
	log := slog.New(slog.NewTextHandler(tl, &slog.HandlerOptions{Level: slog.LevelInfo}))
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = freeBlock(t)
	}
	nodes := make([]*tnode, n)
	for i := range nodes {
		cfg := legion.DefaultConfig()
		cfg.Legions = []legion.LegionSpec{{Name: "web", Addr: addrs[i], Valor: uint32(i + 1), Algo: "aes-256-cbc", Secret: "s3cret"}}
		for j, a := range addrs {
			if j != i {
				cfg.Peers = append(cfg.Peers, a)
			}
		}
		cfg.DataDir = filepath.Join(t.TempDir(), "n")
		cfg.NodeName = fmt.Sprintf("n%d", i)
		cfg.ProbeInterval, cfg.ProbeTimeout, cfg.GossipInterval = 100*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
		cfg.ApplyTimeout = 3 * time.Second
		scfg := DefaultConfig()
		scfg.Interval, scfg.Logger = 50*time.Millisecond, log
		if doneTimeout > 0 {
			scfg.DoneTimeout = doneTimeout
		}
		svc := New(scfg)
		ln, err := legion.New(cfg, legion.Options{
			Logger:      log,
			RegisterRPC: func(s *grpc.Server, n *legion.Node) { cluster.Register(s, n) },
			Machines:    []legion.Machine{svc.Registration()},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		tn := &tnode{Node: ln, svc: svc, exec: &execRec{svc: svc}, stop: cancel, done: make(chan struct{})}
		go func() {
			defer close(tn.done)
			_ = ln.Run(ctx)
		}()
		nodes[i] = tn
	}
	t.Cleanup(func() {
		// Together and without waiting for removal: the test is over.
		var wg sync.WaitGroup
		for _, tn := range nodes {
			wg.Go(func() { tn.shutdown(200 * time.Millisecond) })
		}
		wg.Wait()
	})
	for _, tn := range nodes {
		select {
		case <-tn.Started():
		case <-tn.done:
			t.Fatal("node did not start")
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go tn.svc.Run(ctx, tn.Node, tn.exec)
	}
	waitFor(t, 20*time.Second, "one leader with every node a voter", func() bool { return leaderOf(nodes) != nil })
	return nodes
}

// shutdown stops the node (a graceful leave, waiting up to wait for the
// leader to remove it) and waits for it.
func (tn *tnode) shutdown(wait time.Duration) {
	if tn.closed {
		return
	}
	tn.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_ = tn.Shutdown(ctx)
	tn.stop()
	<-tn.done
}

func alive(nodes []*tnode) []*tnode {
	var out []*tnode
	for _, n := range nodes {
		if !n.closed {
			out = append(out, n)
		}
	}
	return out
}

// leaderOf returns the leader every alive node agrees on, once all of
// them are voters, or nil.
func leaderOf(nodes []*tnode) *tnode {
	live := alive(nodes)
	var id string
	for _, n := range live {
		st := n.Status()
		if st.LeaderID == "" || (id != "" && st.LeaderID != id) {
			return nil
		}
		id = st.LeaderID
		voters := 0
		for _, m := range st.Members {
			if m.Role == legion.RoleLeader || m.Role == legion.RoleFollower {
				voters++
			}
		}
		if voters < len(live) {
			return nil
		}
	}
	for _, n := range live {
		if n.ID() == id {
			return n
		}
	}
	return nil
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func raise(localID uint64, msg string) Raise {
	return Raise{Alarm: "pager", Message: msg, Kind: "log", NodeName: "host", LocalID: localID, Freq: time.Minute, At: time.Now()}
}

// The same raise on every node at once is one incident with one owner;
// every node's history shows it with all three raisers, and an
// acknowledgement made on one node shows everywhere.
func TestClusterOneIncidentOneOwner(t *testing.T) {
	skipShort(t)
	nodes := startCluster(t, 3, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	runs := make([]bool, len(nodes))
	ids := make([]uint64, len(nodes))
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Go(func() { ids[i], runs[i], errs[i] = n.svc.Record(ctx, raise(1, "RuntimeError: boom")) })
	}
	wg.Wait()
	owners := 0
	for i := range nodes {
		if errs[i] != nil {
			t.Fatalf("record on node %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("incident ids %v differ", ids)
		}
		if runs[i] {
			owners++
		}
	}
	if owners != 1 {
		t.Fatalf("%d nodes were told to run the action, want 1", owners)
	}
	for _, n := range nodes {
		waitFor(t, 5*time.Second, "the incident on "+n.ID(), func() bool {
			inc, ok := n.svc.Machine().Get(ids[0])
			return ok && inc.Count == 3 && len(inc.Raisers) == 3
		})
	}
	follower := nodes[0]
	if l := leaderOf(nodes); l == follower {
		follower = nodes[1]
	}
	if _, err := follower.svc.Acknowledge(ctx, ids[0]); err != nil {
		t.Fatalf("acknowledge through a follower: %v", err)
	}
	if _, err := follower.svc.Acknowledge(ctx, 999); err == nil {
		t.Fatal("acknowledging an unknown incident succeeded")
	}
	for _, n := range nodes {
		waitFor(t, 5*time.Second, "the acknowledgement on "+n.ID(), func() bool {
			inc, _ := n.svc.Machine().Get(ids[0])
			return !inc.AckedAt.IsZero()
		})
		if got := n.exec.executed(); len(got) != 0 {
			t.Fatalf("node %s was handed %d incidents, want none (the owner is alive)", n.ID(), len(got))
		}
	}
}

// The owner goes away before reporting: the leader reassigns the incident
// to a node that raised it, which runs it exactly once.
func TestClusterReassignsWhenOwnerDies(t *testing.T) {
	skipShort(t)
	nodes := startCluster(t, 3, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Make a follower the owner so that losing it keeps the leader (the
	// leader's death is covered by TestClusterLeaderChange).
	leader := leaderOf(nodes)
	var owner *tnode
	for _, n := range nodes {
		if n != leader {
			owner = n
			break
		}
	}
	id, run, err := owner.svc.Record(ctx, raise(1, "disk full"))
	if err != nil || !run {
		t.Fatalf("first record: run %v err %v", run, err)
	}
	for _, n := range nodes {
		if n != owner {
			if _, run, err := n.svc.Record(ctx, raise(1, "disk full")); err != nil || run {
				t.Fatalf("record on %s: run %v err %v", n.ID(), run, err)
			}
		}
	}
	owner.shutdown(5 * time.Second) // never reports Done
	var runner *tnode
	waitFor(t, 15*time.Second, "the incident to be reassigned and run", func() bool {
		inc, _ := leader.svc.Machine().Get(id)
		if !inc.Done {
			return false
		}
		for _, n := range alive(nodes) {
			if n.ID() == inc.DoneBy {
				runner = n
			}
		}
		return true
	})
	inc, _ := leader.svc.Machine().Get(id)
	if inc.Runs != 1 || inc.Reassignments != 1 || inc.Owner == owner.ID() || runner == nil {
		t.Fatalf("incident after reassignment: %+v", inc)
	}
	total := 0
	for _, n := range alive(nodes) {
		total += len(n.exec.executed())
	}
	if got := runner.exec.executed(); total != 1 || len(got) != 1 || got[0].ID != id || got[0].Origin.NodeID != owner.ID() {
		t.Fatalf("executions: %d in all, runner got %+v", total, got)
	}
}

// A leader change neither loses an open incident nor runs it again:
// later raises fold into it and its owner stays.
func TestClusterLeaderChange(t *testing.T) {
	skipShort(t)
	nodes := startCluster(t, 3, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	leader := leaderOf(nodes)
	var owner *tnode
	for _, n := range nodes {
		if n != leader {
			owner = n
			break
		}
	}
	id, run, err := owner.svc.Record(ctx, raise(1, "lord changed"))
	if err != nil || !run {
		t.Fatalf("record: run %v err %v", run, err)
	}
	leader.shutdown(5 * time.Second)
	waitFor(t, 15*time.Second, "a new leader", func() bool { return leaderOf(nodes) != nil })
	for _, n := range alive(nodes) {
		got, run, err := n.svc.Record(ctx, raise(2, "lord changed"))
		if err != nil || got != id || (run && n != owner) {
			t.Fatalf("record on %s after the leader change: id %d (want %d) run %v err %v", n.ID(), got, id, run, err)
		}
	}
	if err := owner.svc.Done(ctx, id, "ok"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the outcome on the owner", func() bool {
		inc, _ := owner.svc.Machine().Get(id)
		return inc.Done
	})
	inc, _ := owner.svc.Machine().Get(id)
	if !inc.Done || inc.Runs != 1 || inc.Owner != owner.ID() || inc.Reassignments != 0 || inc.Count != 3 {
		t.Fatalf("incident after the leader change: %+v", inc)
	}
	for _, n := range alive(nodes) {
		if got := n.exec.executed(); len(got) != 0 {
			t.Fatalf("node %s was handed %+v; the owner was alive", n.ID(), got)
		}
	}
}

// An owner alive in gossip that does not report within the done timeout
// loses the incident to a node that raised it.
func TestClusterReassignsAfterDoneTimeout(t *testing.T) {
	skipShort(t)
	nodes := startCluster(t, 3, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id, run, err := nodes[0].svc.Record(ctx, raise(1, "stuck"))
	if err != nil || !run {
		t.Fatalf("record: run %v err %v", run, err)
	}
	if _, _, err := nodes[2].svc.Record(ctx, raise(1, "stuck")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the incident done by the other raiser", func() bool {
		inc, _ := nodes[0].svc.Machine().Get(id)
		return inc.Done
	})
	inc, _ := nodes[0].svc.Machine().Get(id)
	if inc.DoneBy != nodes[2].ID() || inc.Runs != 1 || inc.Reassignments != 1 || len(nodes[2].exec.executed()) != 1 {
		t.Fatalf("incident %+v; node 2 executed %d", inc, len(nodes[2].exec.executed()))
	}
}

// An incident this node's previous process opened and never finished
// (the process died and came back before gossip called it dead) is
// claimed and run by the current process, once.
func TestClusterClaimsAfterRestart(t *testing.T) {
	skipShort(t)
	nodes := startCluster(t, 3, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := nodes[1]
	data, err := n.Apply(ctx, RecordType, &raftv1.AlarmRecord{Alarm: "pager", Message: "left behind", NodeId: n.ID(),
		Instance: "previous-process", LocalId: 4, FreqNanos: int64(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	var res raftv1.AlarmRecordResult
	if err := proto.Unmarshal(data, &res); err != nil || !res.GetRunHere() {
		t.Fatalf("record: %v %v", &res, err)
	}
	waitFor(t, 10*time.Second, "the current process to run it", func() bool {
		inc, _ := n.svc.Machine().Get(res.GetIncidentId())
		return inc.Done
	})
	inc, _ := n.svc.Machine().Get(res.GetIncidentId())
	got := n.exec.executed()
	if inc.Runs != 1 || inc.Reassignments != 0 || inc.OwnerInstance != n.svc.claimTag || len(got) != 1 || got[0].Origin.LocalID != 4 {
		t.Fatalf("incident %+v; executed %+v", inc, got)
	}
}
