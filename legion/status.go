package legion

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gouwsgi/gouwsgi/legion/fsm"
	"github.com/gouwsgi/gouwsgi/legion/lord"
	clusterv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/cluster/v1"
	raftv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/raft/v1"
)

// RaftRole is a member's role in the Raft group.
type RaftRole string

// RaftRole values.
const (
	RoleLeader    RaftRole = "leader"
	RoleFollower  RaftRole = "follower"
	RoleCandidate RaftRole = "candidate"
	RoleNonvoter  RaftRole = "nonvoter"
	RoleNone      RaftRole = "none" // not in the Raft configuration
)

// Status is the cluster as this node sees it.
type Status struct {
	NodeID       string
	Name         string
	LeaderID     string
	LeaderAddr   string // leader's Raft address
	Role         RaftRole
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	// LastContact is the time since this node last heard from the leader
	// (0 on the leader, -1 when never).
	LastContact time.Duration
	Legions     []LegionStatus
	Members     []MemberStatus
}

// LegionStatus is one legion.
type LegionStatus struct {
	Name      string
	Lord      string // node id, "" while there is none
	Epoch     uint64 // fencing token
	LordSince time.Time
	Pinned    string
	Quorum    int
	// IAmLord and LeaseLeft describe this node's own lordship.
	IAmLord   bool
	LeaseLeft time.Duration
	// VIPs are reported by the Reactor when it implements VIPReporter.
	VIPs    []string
	Members []LegionMemberStatus
}

// LegionMemberStatus is a member of one legion.
type LegionMemberStatus struct {
	NodeID   string
	Name     string
	Valor    uint32
	Scroll   string
	Health   Health
	Draining bool
}

// MemberStatus is one node of the cluster.
type MemberStatus struct {
	NodeID   string
	Name     string
	Addr     string // gossip
	RaftAddr string
	RPCAddr  string
	Health   Health
	Role     RaftRole
}

// VIPReporter is implemented by a Reactor that owns addresses (legion/vip)
// so Status can show them.
type VIPReporter interface {
	VIPs(legion string) []string
}

// Status returns this node's view of the cluster.
func (n *Node) Status() Status {
	st := Status{NodeID: n.id, Name: n.cfg.NodeName, LastContact: -1}
	if n.raft == nil {
		return st
	}
	addr, id := n.raft.LeaderWithID()
	st.LeaderID, st.LeaderAddr = string(id), string(addr)
	st.Term, st.CommitIndex, st.AppliedIndex = n.raft.CurrentTerm(), n.raft.CommitIndex(), n.raft.AppliedIndex()
	if lc := n.raft.LastContact(); !lc.IsZero() {
		st.LastContact = time.Since(lc)
	}
	cfg := n.raftServers()
	st.Members = n.Members()
	for _, m := range st.Members {
		if m.NodeID == n.id {
			st.Role = m.Role
		}
	}
	if st.Role == "" {
		st.Role = roleOf(n.raft.State(), cfg[n.id], true)
	}
	vr, _ := n.reactor.(VIPReporter)
	for _, lg := range n.fsm.Legions().All() {
		st.Legions = append(st.Legions, n.legionStatus(lg, vr))
	}
	return st
}

func (n *Node) legionStatus(lg fsm.Legion, vr VIPReporter) LegionStatus {
	ls := LegionStatus{Name: lg.Name, Lord: lg.Lord, Epoch: lg.Epoch, LordSince: lg.LordSince, Pinned: lg.Pinned}
	if k := n.keepers[lg.Name]; k != nil && lg.Lord == n.id {
		if until := k.lordingUntil(); until.After(time.Now()) {
			ls.IAmLord, ls.LeaseLeft = true, time.Until(until)
		}
	}
	if vr != nil {
		ls.VIPs = vr.VIPs(lg.Name)
	}
	for _, m := range lg.Members {
		ls.Quorum = max(ls.Quorum, int(m.Quorum))
		h := HealthUnknown
		if g, ok := n.members.get(m.NodeID); ok {
			h = g.Health
		}
		ls.Members = append(ls.Members, LegionMemberStatus{
			NodeID: m.NodeID, Name: m.Name, Valor: m.Valor, Scroll: m.Scroll, Health: h, Draining: m.Draining,
		})
	}
	return ls
}

func (n *Node) raftServers() map[string]raft.Server {
	out := map[string]raft.Server{}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			out[string(s.ID)] = s
		}
	}
	return out
}

func roleOf(state raft.RaftState, s raft.Server, inCfg bool) RaftRole {
	switch {
	case !inCfg:
		return RoleNone
	case s.Suffrage == raft.Nonvoter:
		return RoleNonvoter
	case state == raft.Leader:
		return RoleLeader
	case state == raft.Candidate:
		return RoleCandidate
	}
	return RoleFollower
}

// Members returns every node gossip knows, with its Raft role.
func (n *Node) Members() []MemberStatus {
	cfg := n.raftServers()
	_, leader := n.raft.LeaderWithID()
	var out []MemberStatus
	for _, g := range n.members.all() {
		s, in := cfg[g.ID]
		state := raft.Follower
		switch {
		case g.ID == n.id:
			state = n.raft.State()
		case g.ID == string(leader):
			state = raft.Leader
		}
		out = append(out, MemberStatus{
			NodeID: g.ID, Name: g.Meta.GetName(), Addr: g.Addr, RaftAddr: g.Meta.GetRaftAddr(),
			RPCAddr: g.Meta.GetRpcAddr(), Health: g.Health, Role: roleOf(state, s, in),
		})
	}
	return out
}

// TransferLord pins legion's lordship on nodeID and waits until it holds
// it. The old lord is revoked at its next renewal, gives up, releases,
// and the leader names nodeID; the pin keeps it lord ahead of valor order
// while it is alive. TransferLord(ctx, legion, "") returns to valor order.
func (n *Node) TransferLord(ctx context.Context, legion, nodeID string) (LegionStatus, error) {
	lg, ok := n.fsm.Legions().Get(legion)
	if !ok {
		return LegionStatus{}, fmt.Errorf("%w: %s", ErrUnknownLegion, legion)
	}
	if nodeID != "" {
		if _, ok := lg.Member(nodeID); !ok {
			return LegionStatus{}, fmt.Errorf("%w: %s is not a member of legion %s", ErrUnknownNode, nodeID, legion)
		}
	}
	if _, err := n.Apply(ctx, fsm.PinLordType, &raftv1.PinLord{Legion: legion, NodeId: nodeID}); err != nil {
		return LegionStatus{}, fmt.Errorf("transfer lord of %s to %s: %w", legion, nodeID, err)
	}
	if nodeID == "" {
		lg, _ = n.fsm.Legions().Get(legion)
		return n.legionStatus(lg, nil), nil
	}
	return n.waitLord(ctx, legion, func(l fsm.Legion) bool { return l.Lord == nodeID })
}

// ResignLord hands legion's lordship to the best other alive member.
func (n *Node) ResignLord(ctx context.Context, legion string) (LegionStatus, error) {
	lg, ok := n.fsm.Legions().Get(legion)
	if !ok {
		return LegionStatus{}, fmt.Errorf("%w: %s", ErrUnknownLegion, legion)
	}
	if lg.Lord == "" {
		return LegionStatus{}, fmt.Errorf("legion %s: nothing to resign: %w", legion, ErrNoLord)
	}
	var cands []lord.Candidate
	for _, m := range lg.Members {
		cands = append(cands, lord.Candidate{NodeID: m.NodeID, Valor: m.Valor,
			Eligible: m.NodeID != lg.Lord && !m.Draining && n.aliveInGossip(m.NodeID)})
	}
	next, ok := lord.Pick(cands, "")
	if !ok {
		return LegionStatus{}, fmt.Errorf("legion %s: %w", legion, ErrNoSuccessor)
	}
	return n.TransferLord(ctx, legion, next)
}

func (n *Node) waitLord(ctx context.Context, legion string, done func(fsm.Legion) bool) (LegionStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	for {
		lg, _ := n.fsm.Legions().Get(legion)
		if done(lg) {
			vr, _ := n.reactor.(VIPReporter)
			return n.legionStatus(lg, vr), nil
		}
		select {
		case <-ctx.Done():
			return n.legionStatus(lg, nil), fmt.Errorf("legion %s: lord is still %q at epoch %d: %w", legion, lg.Lord, lg.Epoch, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// RemoveNode removes a dead node from Raft and from every legion. An
// alive node is refused (ErrNodeAlive): stopping it removes it.
func (n *Node) RemoveNode(ctx context.Context, nodeID string) error {
	if nodeID == n.id {
		return fmt.Errorf("node %s is this node: shut it down instead: %w", nodeID, ErrNodeAlive)
	}
	if _, ok := n.raftServers()[nodeID]; !ok {
		if _, known := n.members.get(nodeID); !known {
			return fmt.Errorf("%w: %s", ErrUnknownNode, nodeID)
		}
	}
	if n.raft.State() == raft.Leader {
		return n.ForwardRemovePeer(ctx, nodeID)
	}
	c, err := n.leaderClient()
	if err != nil {
		return fmt.Errorf("remove node %s: %w", nodeID, err)
	}
	if _, err := c.RemovePeer(ctx, &clusterv1.RemovePeerRequest{NodeId: nodeID}); err != nil {
		return fmt.Errorf("remove node %s: %w", nodeID, fromStatus(err))
	}
	return nil
}

// Join contacts the given gossip addresses; it returns how many answered.
func (n *Node) Join(ctx context.Context, addrs []string) (int, error) {
	if n.ml == nil {
		return 0, ErrNotRunning
	}
	got, err := n.ml.Join(addrs)
	if err != nil {
		return got, fmt.Errorf("join %v (down, or a different legion secret?): %w", addrs, err)
	}
	return got, nil
}
