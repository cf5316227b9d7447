package legion

import (
	"context"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gouwsgi/gouwsgi/legion/fsm"
	raftv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/raft/v1"
)

// joinLoop joins the named peers through gossip and, on a node without
// Raft state, decides whether this node bootstraps the cluster:
//
//   - every named peer plus this node (bootstrap-expect = peers + 1) must
//     be alive in gossip, and no member may already belong to a cluster
//     (has_state in its metadata: then the leader adds us instead);
//   - only the member with the lowest node id bootstraps, with every
//     member it sees as a voter, after the same set has been stable for a
//     settle period; the others wait to be added.
//
// With no peers a node bootstraps a one-node cluster at once. A node with
// Raft state never bootstraps.
func (n *Node) joinLoop() {
	peers := n.peers()
	joined := len(peers) == 0
	hadState := n.hasState()
	metaSent := false
	settle := 2*n.cfg.ProbeInterval + 2*n.cfg.GossipInterval
	var candidate string
	var candidateSince, lastWarn time.Time
	t := time.NewTicker(n.cfg.GossipInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stopping:
			return
		case <-t.C:
		}
		if !joined {
			if _, err := n.ml.Join(peers); err == nil {
				joined = true
				n.log.Info("joined gossip", "peers", peers)
			} else if time.Since(lastWarn) > 5*time.Second {
				lastWarn = time.Now()
				n.log.Warn("cannot reach any legion-node peer yet (down, or using a different legion secret)", "peers", peers, "err", err)
			}
		}
		if n.hasState() {
			if !metaSent {
				metaSent = true
				n.refreshMeta()
			}
			if joined {
				return
			}
			continue
		}
		if hadState {
			continue
		}
		servers, ok := n.bootstrapSet(peers)
		if !ok {
			candidate = ""
			continue
		}
		var ids []string
		for _, s := range servers {
			ids = append(ids, string(s.ID))
		}
		if set := strings.Join(ids, ","); set != candidate {
			candidate, candidateSince = set, time.Now()
			continue
		}
		if time.Since(candidateSince) < settle {
			continue
		}
		n.log.Info("bootstrapping the cluster", "voters", ids)
		if err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
			n.log.Warn("bootstrap", "err", err)
		}
		hadState = true
	}
}

// peers returns the legion-node addresses other than our own.
func (n *Node) peers() []string {
	var out []string
	for _, p := range n.cfg.Peers {
		if p != n.cfg.GossipAddr() && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// bootstrapSet returns the voters to bootstrap with when this node is the
// one that must bootstrap now.
func (n *Node) bootstrapSet(peers []string) ([]raft.Server, bool) {
	var servers []raft.Server
	seen := map[string]bool{}
	for _, g := range n.members.all() {
		if g.Health != HealthAlive || g.Meta == nil || g.Meta.GetRaftAddr() == "" {
			continue
		}
		if g.ID != n.id && g.Meta.GetHasState() {
			return nil, false // a cluster exists: wait to be added
		}
		seen[g.Addr] = true
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(g.ID), Address: raft.ServerAddress(g.Meta.GetRaftAddr())})
	}
	if len(servers) < len(peers)+1 || string(servers[0].ID) != n.id {
		return nil, false
	}
	for _, p := range peers {
		if a, err := net.ResolveTCPAddr("tcp", p); err == nil && !seen[a.String()] {
			return nil, false
		}
	}
	return servers, true
}

// registerLoop keeps this node's membership records in the FSM in line
// with its configuration, and fires OnJoin once per legion when the
// record is first committed.
func (n *Node) registerLoop() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.stopping:
			return
		case <-t.C:
		}
		if n.leaving.Load() {
			return
		}
		for _, l := range n.cfg.Legions {
			lg, _ := n.fsm.Legions().Get(l.Name)
			m, ok := lg.Member(n.id)
			if ok && m.Valor == l.Valor && m.Scroll == l.Scroll && m.Name == n.cfg.NodeName &&
				m.Quorum == uint32(l.Quorum) && !m.Draining {
				n.markJoined(l.Name)
				continue
			}
			if _, id := n.raft.LeaderWithID(); id == "" {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
			_, err := n.Apply(ctx, fsm.RegisterMemberType, &raftv1.RegisterMember{Legion: l.Name, Member: &raftv1.LegionMember{
				NodeId: n.id, Name: n.cfg.NodeName, Valor: l.Valor, Scroll: l.Scroll,
				Quorum: uint32(l.Quorum), JoinedUnixNano: time.Now().UnixNano(),
			}})
			cancel()
			if err != nil {
				n.log.Debug("register legion membership", "legion", l.Name, "err", err)
			}
		}
	}
}

// markJoined fires OnJoin for legion the first time it is called since the
// node started. registerLoop calls it once its membership is committed, and
// the keeper before its first OnLord: the election may name this node
// before registerLoop's next tick sees the record, and join must come
// before lord. The lock makes the first caller's OnJoin precede the
// keeper's OnLord.
func (n *Node) markJoined(legion string) {
	n.joinMu.Lock()
	defer n.joinMu.Unlock()
	if n.joined[legion] {
		return
	}
	n.joined[legion] = true
	n.log.Info("joined legion", "legion", legion)
	n.reactor.OnJoin(legion)
}
