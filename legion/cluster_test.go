package legion

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/legion/fsm"
	raftv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/raft/v1"
)

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-node cluster test; skipped with -short")
	}
}

func TestSingleNodeBootstraps(t *testing.T) {
	skipShort(t)
	c := newCluster(t)
	n := c.start(testConfig(freeGossipAddr(t), "s3cret", 1, t.TempDir()))
	c.waitLeader(1)
	c.waitLord("web", 10*time.Second, nil)
	if st := n.Status(); st.Role != RoleLeader || len(st.Legions) != 1 || st.Legions[0].Lord != n.ID() || !st.Legions[0].IAmLord {
		t.Fatalf("status %+v", st)
	}
	// Alone, the lord has nobody to resign to: a refusal callers can tell
	// apart, and the lordship stays.
	if _, err := n.ResignLord(context.Background(), "web"); !errors.Is(err, ErrNoSuccessor) {
		t.Fatalf("ResignLord with no other member: %v, want ErrNoSuccessor", err)
	}
	if !n.IsLord("web") {
		t.Fatal("a refused resignation gave up the lordship")
	}
}

// Three nodes started at once, each naming the other two, always form
// exactly one cluster, whose lord is the highest valor.
func TestFormConcurrently(t *testing.T) {
	skipShort(t)
	for range 3 {
		t.Run("round", func(t *testing.T) {
			c := newCluster(t)
			nodes := c.startN("s3cret", 5, 10, 0)
			c.waitLeader(3)
			// Valor decides once every member registered.
			c.waitLord("web", 10*time.Second, func(n *testNode) bool { return n == nodes[1] })
			for _, n := range nodes {
				if got := len(n.raftServers()); got != 3 {
					t.Fatalf("node %s sees %d raft servers, want 3", n.ID(), got)
				}
			}
		})
	}
}

func TestJoinLaterAndForward(t *testing.T) {
	skipShort(t)
	c := newCluster(t)
	nodes := c.startN("s3cret", 1, 2, 3)
	leader := c.waitLeader(3)
	late := c.start(testConfig(freeGossipAddr(t), "s3cret", 4, t.TempDir(), nodes[0].cfg.GossipAddr()))
	c.waitLeader(4)
	// The late node has the highest valor: it takes the lordship over.
	c.waitLord("web", 10*time.Second, func(n *testNode) bool { return n == late })

	var follower *testNode
	for _, n := range c.alive() {
		if n.ID() != leader.ID() {
			follower = n
			break
		}
	}
	t.Run("follower write is forwarded", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := follower.Apply(ctx, fsm.RegisterMemberType, &raftv1.RegisterMember{
			Legion: "extra", Member: &raftv1.LegionMember{NodeId: "outsider", Valor: 1},
		})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the write on every node", func() bool {
			for _, n := range c.alive() {
				if _, ok := n.FSM().Legions().Get("extra"); !ok {
					return false
				}
			}
			return true
		})
	})
	t.Run("refusal crosses forwarding", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := follower.Apply(ctx, fsm.SetLordType, &raftv1.SetLord{Legion: "extra", NodeId: "outsider", Epoch: 99})
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("err = %v, want ErrRefused", err)
		}
	})
}

// Killing the Raft leader: a new leader, and a lord again, within the
// failover target; the arbiter is never lord.
func TestLeaderKillAndArbiter(t *testing.T) {
	skipShort(t)
	c := newCluster(t)
	nodes := c.startN("s3cret", 0, 5, 10)
	c.waitLeader(3)
	lord := c.waitLord("web", 10*time.Second, func(n *testNode) bool { return n == nodes[2] })
	killedAt := time.Now()
	lord.kill()
	next := c.waitLord("web", 5*time.Second, nil)
	t.Logf("lord failover took %s", time.Since(killedAt))
	if next != nodes[1] {
		t.Fatalf("new lord %s, want the valor-5 node (the arbiter must never be lord)", next.ID())
	}
	c.rec.assertNoOverlap(t, map[string]time.Time{lord.ID(): lord.killed})
	for _, e := range c.rec.snapshot() {
		if e.kind == "lord" && e.node == nodes[0].ID() {
			t.Fatal("the arbiter became lord")
		}
	}
}

// Cutting the lord off: it gives up when its lease runs out, before the
// leader names a successor.
func TestLeaseIsolation(t *testing.T) {
	skipShort(t)
	c := newCluster(t)
	nodes := c.startN("s3cret", 1, 2, 10)
	c.waitLeader(3)
	old := c.waitLord("web", 10*time.Second, func(n *testNode) bool { return n == nodes[2] })
	old.gate.closeAll() // Raft and RPC traffic in both directions
	waitFor(t, 10*time.Second, "a new lord on the majority side", func() bool {
		for _, n := range c.alive() {
			if n != old && n.IsLord("web") {
				return true
			}
		}
		return false
	})
	waitFor(t, 5*time.Second, "the isolated lord to give up", func() bool { return !old.IsLord("web") })
	c.rec.assertNoOverlap(t, nil)
	if !c.logs.contains(old.ID(), "giving up lordship") {
		t.Fatal("the isolated lord did not log why it gave up")
	}
	old.gate.heal()
	// Healing lets valor decide again (after the lapse penalty).
	c.waitLord("web", 20*time.Second, func(n *testNode) bool { return n == old })
	c.rec.assertNoOverlap(t, nil)
}

func TestFiveNodesQuorum(t *testing.T) {
	skipShort(t)
	c := newCluster(t)
	nodes := c.startN("s3cret", 1, 2, 3, 4, 5)
	c.waitLeader(5)
	c.waitLord("web", 10*time.Second, func(n *testNode) bool { return n == nodes[4] })
	nodes[4].kill()
	nodes[3].kill()
	c.waitLord("web", 10*time.Second, func(n *testNode) bool { return n == nodes[2] })
	nodes[2].kill()
	killed := map[string]time.Time{}
	for _, n := range nodes[2:] {
		killed[n.ID()] = n.killed
	}
	// Two of five left: no quorum, so no lord, and the logs say why.
	waitFor(t, 10*time.Second, "no lord and the reason logged", func() bool {
		for _, n := range nodes[:2] {
			if n.IsLord("web") {
				return false
			}
		}
		// A leader that lost its quorum still leads until its lease check
		// runs; a write sent before that fails differently.
		for _, n := range nodes[:2] {
			if n.IsLeader() {
				return false
			}
		}
		return c.logs.contains(nodes[0].ID(), "no raft quorum") || c.logs.contains(nodes[1].ID(), "no raft quorum") ||
			c.logs.contains("", "failed to contact quorum")
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := nodes[0].Apply(ctx, fsm.PinLordType, &raftv1.PinLord{Legion: "web"})
	if !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("write without quorum: err = %v, want ErrNoQuorum", err)
	}
	t.Logf("error seen by a client: %v", err)
	c.rec.assertNoOverlap(t, killed)

	// A graceful stop without quorum cannot hand anything over: it says so
	// and leaves rather than wait out its whole timeout for a removal no
	// leader can make.
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer stopCancel()
	if err := nodes[0].Shutdown(stopCtx); err != nil {
		t.Fatalf("shutdown without quorum: %v", err)
	}
	if stopCtx.Err() != nil {
		t.Fatal("shutdown without quorum waited out its whole timeout")
	}
	if !c.logs.contains(nodes[0].ID(), "no raft leader for") {
		t.Error("shutdown without quorum did not say why it left without handing over")
	}
}

func TestWrongSecretRefused(t *testing.T) {
	skipShort(t)
	c := newCluster(t)
	nodes := c.startN("s3cret", 1, 2, 3)
	c.waitLeader(3)
	bad := c.start(testConfig(freeGossipAddr(t), "guess", 9, t.TempDir(), nodes[0].cfg.GossipAddr()))
	waitFor(t, 10*time.Second, "both sides to log the secret mismatch", func() bool {
		return c.logs.contains(bad.ID(), "legion secret") && c.logs.contains(nodes[0].ID(), "different legion secret")
	})
	t.Run("raft transport refuses the wrong secret", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := bad.raftNet.dial(ctx, nodes[0].raftAddr)
		if err == nil {
			t.Fatal("dial with the wrong secret succeeded")
		}
		waitFor(t, 5*time.Second, "the raft side to log the refused handshake", func() bool {
			return c.logs.contains(nodes[0].ID(), "raft TLS handshake failed")
		})
	})
	if got := len(nodes[0].raftServers()); got != 3 {
		t.Fatalf("cluster has %d raft servers after the intruder tried, want 3", got)
	}
	if st := bad.Status(); st.LeaderID != "" {
		t.Fatalf("the intruder found a leader: %+v", st)
	}
}

func TestRestartSameDataDir(t *testing.T) {
	skipShort(t)
	c := newCluster(t)
	nodes := c.startN("s3cret", 1, 2, 3)
	c.waitLeader(3)
	c.waitLord("web", 10*time.Second, nil)
	victim := nodes[0]
	id := victim.ID()
	victim.kill()
	waitFor(t, 5*time.Second, "the others to see it dead", func() bool {
		g, _ := nodes[1].members.get(id)
		return g.Health == HealthDead
	})
	back := c.start(victim.cfg)
	if back.ID() != id {
		t.Fatalf("restarted with id %s, want %s", back.ID(), id)
	}
	c.waitLeader(3)
	waitFor(t, 10*time.Second, "the member alive again", func() bool {
		g, _ := nodes[1].members.get(id)
		return g.Health == HealthAlive
	})
}

func TestGracefulShutdownHandsOver(t *testing.T) {
	skipShort(t)
	c := newCluster(t)
	nodes := c.startN("s3cret", 1, 2, 3)
	c.waitLeader(3)
	old := c.waitLord("web", 10*time.Second, func(n *testNode) bool { return n == nodes[2] })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := old.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	old.killed = time.Now()
	next := c.waitLord("web", 2*time.Second, nil)
	t.Logf("handover took %s", time.Since(start))
	if next != nodes[1] {
		t.Fatalf("new lord %s, want %s", next.ID(), nodes[1].ID())
	}
	c.rec.assertNoOverlap(t, nil)
	c.waitLeader(2)
}

func TestTransferAndResign(t *testing.T) {
	skipShort(t)
	c := newCluster(t)
	nodes := c.startN("s3cret", 1, 2, 3)
	c.waitLeader(3)
	c.waitLord("web", 10*time.Second, func(n *testNode) bool { return n == nodes[2] })
	// The lord may be named before the lowest-valor member registered.
	waitFor(t, 10*time.Second, "every member registered in the legion", func() bool {
		lg, _ := nodes[1].FSM().Legions().Get("web")
		return len(lg.Members) == len(nodes)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ls, err := nodes[1].TransferLord(ctx, "web", nodes[0].ID())
	if err != nil {
		t.Fatal(err)
	}
	if ls.Lord != nodes[0].ID() {
		t.Fatalf("after transfer lord is %s", ls.Lord)
	}
	c.waitLord("web", 5*time.Second, func(n *testNode) bool { return n == nodes[0] })
	ls, err = nodes[0].ResignLord(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if ls.Lord != nodes[2].ID() {
		t.Fatalf("after resign lord is %s, want the best other member %s", ls.Lord, nodes[2].ID())
	}
	if _, err := nodes[0].TransferLord(ctx, "nope", nodes[0].ID()); !errors.Is(err, ErrUnknownLegion) {
		t.Fatalf("unknown legion: %v", err)
	}
	if err := nodes[0].RemoveNode(ctx, nodes[1].ID()); !errors.Is(err, ErrNodeAlive) {
		t.Fatalf("removing an alive node: %v", err)
	}
	c.rec.assertNoOverlap(t, nil)
}
