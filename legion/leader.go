package legion

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gouwsgi/gouwsgi/legion/fsm"
	"github.com/gouwsgi/gouwsgi/legion/lord"
	raftv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/raft/v1"
)

// monitorLeadership follows raft's ordered NotifyCh and runs leaderLoop
// while this node leads (Consul's monitorLeadership).
func (n *Node) monitorLeadership() {
	var stop, done chan struct{}
	end := func() {
		if stop != nil {
			close(stop)
			<-done
			stop = nil
		}
	}
	for {
		select {
		case <-n.stopping:
			end()
			return
		case isLeader := <-n.leaderNote:
			if !isLeader {
				end()
				continue
			}
			if stop != nil {
				continue
			}
			stop, done = make(chan struct{}), make(chan struct{})
			took := time.Now() // every grant of a predecessor was received before this
			go func(stop, done chan struct{}) {
				defer close(done)
				n.leaderLoop(stop, took)
			}(stop, done)
		}
	}
}

// leaderLoop: Barrier -> establish -> reconcile and elect, on every event
// and periodically; revoke on the way out.
func (n *Node) leaderLoop(stop chan struct{}, took time.Time) {
	log := n.log.With("term", n.raft.CurrentTerm())
	log.Info("raft leadership acquired")
	for {
		err := n.raft.Barrier(n.cfg.ApplyTimeout).Error()
		if err == nil {
			break
		}
		log.Warn("barrier failed, retrying", "err", err)
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	n.fence.Store(lord.NewFence(n.cfg.LordLease, n.cfg.LordLeaseMargin, took))
	defer func() {
		n.fence.Store(nil)
		log.Info("raft leadership lost")
	}()
	reconcileEvery := min(n.cfg.ReconcileInterval, n.cfg.DeadNodeGrace/2)
	reconcileT := time.NewTicker(reconcileEvery)
	defer reconcileT.Stop()
	electT := time.NewTicker(n.cfg.LordRenewInterval)
	defer electT.Stop()
	e := &elector{n: n, noted: map[string]string{}}
	n.reconcile(took)
	e.elect()
	for {
		select {
		case <-stop:
			return
		case <-n.leaderKick:
			n.reconcile(took)
			e.elect()
		case <-reconcileT.C:
			n.reconcile(took)
		case <-electT.C:
			e.elect()
		}
	}
}

// reconcile diffs gossip against the Raft configuration: alive members
// become voters, members that left are removed at once, members dead
// longer than DeadNodeGrace are removed while at least MinVoters remain.
func (n *Node) reconcile(took time.Time) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		n.log.Warn("reconcile: read raft configuration", "err", err)
		return
	}
	inCfg := map[string]raft.Server{}
	voters := 0
	for _, s := range f.Configuration().Servers {
		inCfg[string(s.ID)] = s
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	seen := map[string]bool{}
	for _, g := range n.members.all() {
		seen[g.ID] = true
		if g.ID == n.id {
			continue
		}
		s, ok := inCfg[g.ID]
		switch g.Health {
		case HealthAlive:
			addr := g.Meta.GetRaftAddr()
			if addr == "" || (ok && string(s.Address) == addr && s.Suffrage == raft.Voter) {
				continue
			}
			if ok && string(s.Address) != addr {
				n.removeServer(g.ID, "raft address changed")
			}
			n.log.Info("adding raft voter", "member", g.ID, "raft_addr", addr)
			if err := n.raft.AddVoter(raft.ServerID(g.ID), raft.ServerAddress(addr), 0, n.cfg.ApplyTimeout).Error(); err != nil {
				n.log.Warn("add raft voter", "member", g.ID, "err", err)
			}
		case HealthLeft:
			if ok {
				n.removeServer(g.ID, "left the cluster")
				voters--
			}
		case HealthDead:
			// memberlist reports a graceful leave as a death to event
			// delegates; a node that drained its legions before going
			// away left.
			if ok && n.drained(g.ID) {
				n.removeServer(g.ID, "left the cluster (drained)")
				voters--
				continue
			}
			if ok && time.Since(g.Since) > n.cfg.DeadNodeGrace && n.canReap(voters, g.ID) {
				n.removeServer(g.ID, fmt.Sprintf("dead for %s", time.Since(g.Since).Round(time.Second)))
				voters--
			}
		}
	}
	// Voters gossip has never shown us (since this node started): count
	// them dead from the moment we took office.
	for id := range inCfg {
		if !seen[id] && id != n.id && time.Since(took) > n.cfg.DeadNodeGrace && n.canReap(voters, id) {
			n.removeServer(id, "unknown to gossip")
			voters--
		}
	}
}

// drained reports whether id is a member of some legion and draining in
// every one of them: it shut down gracefully.
func (n *Node) drained(id string) bool {
	found := false
	for _, lg := range n.fsm.Legions().All() {
		if m, ok := lg.Member(id); ok {
			if !m.Draining {
				return false
			}
			found = true
		}
	}
	return found
}

func (n *Node) canReap(voters int, id string) bool {
	if voters-1 < n.cfg.MinVoters {
		n.log.Warn("not removing dead voter: the cluster would shrink below the minimum voters",
			"member", id, "voters", voters, "min_voters", n.cfg.MinVoters)
		return false
	}
	return true
}

// removeServer drops a node from Raft and from every legion.
func (n *Node) removeServer(id, reason string) {
	n.log.Info("removing raft server", "member", id, "reason", reason)
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout).Error(); err != nil {
		n.log.Warn("remove raft server", "member", id, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	if _, err := n.Apply(ctx, fsm.RemoveNodeType, &raftv1.RemoveNode{NodeId: id, Reason: reason}); err != nil {
		n.log.Warn("remove node from legions", "member", id, "err", err)
	}
}

// elector runs lord elections on the leader.
type elector struct {
	n     *Node
	noted map[string]string // legion -> last condition logged, to log changes only
}

func (e *elector) note(legion, msg string, args ...any) {
	if e.noted[legion] == msg {
		return
	}
	e.noted[legion] = msg
	e.n.log.Warn(msg, append([]any{"legion", legion}, args...)...)
}

// elect decides, per legion, whether the lord must change, and commits
// the change only when it is safe (see package lord).
func (e *elector) elect() {
	n := e.n
	fence := n.fence.Load()
	if fence == nil {
		return
	}
	now := time.Now()
	for _, lg := range n.fsm.Legions().All() {
		want, reason := e.choose(lg, now)
		switch {
		case lg.Lord == "":
			// Nobody holds a grant: initial, released, or cleared after
			// a full lease wait.
			if want == "" {
				continue
			}
			if better := e.expected(lg, want, now); better != "" {
				e.note(lg.Name, "waiting for a member with more valor to register before naming a lord",
					"member", better, "candidate", want)
				continue
			}
			e.setLord(fence, lg, want, reason)
		case lg.Lord == want:
			if !fence.LeaseExpired(lg.Name, lg.Epoch, now) {
				delete(e.noted, lg.Name)
				continue
			}
			n.penalise(lg.Lord, now)
			next, why := e.choose(lg, now)
			e.n.log.Warn("lord lease lapsed: no renewal within lease+margin, naming a successor",
				"legion", lg.Name, "lord", lg.Lord, "epoch", lg.Epoch, "successor", next)
			fence.Revoke(lg.Name, lg.Epoch)
			e.setLord(fence, lg, next, "previous lord's lease lapsed; "+why)
		default:
			at := fence.Revoke(lg.Name, lg.Epoch)
			if now.Before(at) {
				e.note(lg.Name, "lord must change; waiting for its lease to run out",
					"lord", lg.Lord, "epoch", lg.Epoch, "successor", want, "reason", reason, "wait", at.Sub(now).Round(time.Millisecond))
				continue
			}
			e.setLord(fence, lg, want, reason)
		}
	}
}

// registerWait bounds how long a legion without a lord waits for a member
// that gossip has just seen, and that would outrank the candidate, to
// register: when a legion forms, the first member to register would
// otherwise be named, take the VIP and hand it over a moment later.
const registerWait = 2 * time.Second

// expected names a member that gossip saw join legion less than
// registerWait ago, whose registration is not committed yet, and that
// would be picked over want; "" when there is none.
func (e *elector) expected(lg fsm.Legion, want string, now time.Time) string {
	m, _ := lg.Member(want)
	cands := []lord.Candidate{{NodeID: want, Valor: m.Valor, Eligible: true}}
	for _, g := range e.n.members.all() {
		if _, ok := lg.Member(g.ID); ok || g.Health != HealthAlive || g.Meta == nil || now.Sub(g.Since) > registerWait {
			continue
		}
		for _, lv := range g.Meta.GetLegions() {
			if lv.GetName() == lg.Name {
				cands = append(cands, lord.Candidate{NodeID: g.ID, Valor: lv.GetValor(), Eligible: true})
			}
		}
	}
	if id, ok := lord.Pick(cands, lg.Pinned); ok && id != want {
		return id
	}
	return ""
}

// choose picks the lord a legion should have now; penalised members only
// when nobody else qualifies.
func (e *elector) choose(lg fsm.Legion, now time.Time) (string, string) {
	n := e.n
	var quorum uint32
	alive := 0
	var strict, lenient []lord.Candidate
	for _, m := range lg.Members {
		quorum = max(quorum, m.Quorum)
		up := n.aliveInGossip(m.NodeID)
		if up {
			alive++
		}
		ok := up && !m.Draining
		lenient = append(lenient, lord.Candidate{NodeID: m.NodeID, Valor: m.Valor, Eligible: ok})
		strict = append(strict, lord.Candidate{NodeID: m.NodeID, Valor: m.Valor, Eligible: ok && !n.penalised(m.NodeID, now)})
	}
	if alive < int(quorum) {
		e.note(lg.Name, fmt.Sprintf("no quorum: only %d alive member(s) for legion %s, %d needed to elect a lord", alive, lg.Name, quorum))
		return "", "legion-quorum not reached"
	}
	if id, ok := lord.Pick(strict, lg.Pinned); ok {
		return id, "best alive candidate"
	}
	// Only penalised members are left: better one of them than nobody.
	if id, ok := lord.Pick(lenient, lg.Pinned); ok {
		return id, "only candidate left"
	}
	return "", "no alive candidate (valor > 0)"
}

func (e *elector) setLord(fence *lord.Fence, lg fsm.Legion, nodeID, reason string) {
	n := e.n
	epoch := lg.Epoch + 1
	entry, err := fsm.Encode(fsm.SetLordType, &raftv1.SetLord{
		Legion: lg.Name, NodeId: nodeID, Epoch: epoch, TimeUnixNano: time.Now().UnixNano(), Reason: reason,
	})
	if err != nil {
		n.log.Error("encode set-lord", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	_, _, refusal, err := n.applyLeader(ctx, entry)
	if err != nil || refusal != "" {
		n.log.Debug("set lord not committed", "legion", lg.Name, "err", err, "refusal", refusal)
		return
	}
	// The new lord gets a full lease to make its first renewal.
	fence.Grant(lg.Name, epoch, time.Now())
	delete(e.noted, lg.Name)
	n.log.Info("named lord", "legion", lg.Name, "lord", nodeID, "epoch", epoch, "previous", lg.Lord, "reason", reason)
}

func (n *Node) aliveInGossip(id string) bool {
	if id == n.id {
		return true
	}
	g, ok := n.members.get(id)
	return ok && g.Health == HealthAlive
}

func (n *Node) penalise(id string, now time.Time) {
	n.penaltyMu.Lock()
	n.penalty[id] = now.Add(n.cfg.LapsePenalty)
	n.penaltyMu.Unlock()
}

func (n *Node) penalised(id string, now time.Time) bool {
	n.penaltyMu.Lock()
	defer n.penaltyMu.Unlock()
	return now.Before(n.penalty[id])
}

// watchQuorum logs when this node loses and regains a Raft leader, with
// the reason in words: without a quorum no lord can be named or renewed.
func (n *Node) watchQuorum() {
	t := time.NewTicker(n.cfg.ElectionTimeout)
	defer t.Stop()
	var since time.Time // when the leader went missing
	warned := false
	for {
		select {
		case <-n.stopping:
			return
		case <-t.C:
		}
		if _, id := n.raft.LeaderWithID(); id != "" {
			if warned {
				n.log.Info("raft quorum is back", "leader", id, "after", time.Since(since).Round(time.Millisecond))
			}
			since, warned = time.Time{}, false
			continue
		}
		if since.IsZero() {
			since = time.Now()
			continue
		}
		if !warned && time.Since(since) > 5*n.cfg.ElectionTimeout && n.hasState() {
			warned = true
			detail := n.noQuorum(time.Since(since)).Error()
			n.log.Error(detail + "; no lord can be named or keep its lease until a quorum is back")
			if q, ok := n.reactor.(QuorumReporter); ok {
				q.OnQuorumLost(detail)
			}
		}
	}
}
