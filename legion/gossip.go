package legion

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"google.golang.org/protobuf/proto"

	clusterv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/cluster/v1"
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

func (h Health) String() string {
	return [...]string{"unknown", "alive", "suspect", "dead", "left"}[h]
}

// gossipMember is what this node knows of another node from gossip.
type gossipMember struct {
	ID     string
	Addr   string // gossip address
	Meta   *clusterv1.NodeMeta
	Health Health
	Since  time.Time // when Health last changed
}

// memberTable is the node's view of gossip, fed by memberlist events.
type memberTable struct {
	mu sync.RWMutex
	m  map[string]*gossipMember
}

func newMemberTable() *memberTable { return &memberTable{m: make(map[string]*gossipMember)} }

func (t *memberTable) get(id string) (gossipMember, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	g, ok := t.m[id]
	if !ok {
		return gossipMember{}, false
	}
	return *g, true
}

func (t *memberTable) all() []gossipMember {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]gossipMember, 0, len(t.m))
	for _, g := range t.m {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// update records a node's state; it returns the previous health.
func (t *memberTable) update(n *memberlist.Node, h Health) (prev Health, g gossipMember) {
	meta := &clusterv1.NodeMeta{}
	_ = proto.Unmarshal(n.Meta, meta) // a foreign node's meta: keep it empty
	t.mu.Lock()
	defer t.mu.Unlock()
	cur, ok := t.m[n.Name]
	if !ok {
		cur = &gossipMember{ID: n.Name}
		t.m[n.Name] = cur
	}
	prev = cur.Health
	cur.Addr = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	if len(n.Meta) > 0 {
		cur.Meta = meta
	}
	if prev != h {
		cur.Health, cur.Since = h, time.Now()
	}
	return prev, *cur
}

func healthOf(s memberlist.NodeStateType) Health {
	switch s {
	case memberlist.StateAlive:
		return HealthAlive
	case memberlist.StateSuspect:
		return HealthSuspect
	case memberlist.StateDead:
		return HealthDead
	case memberlist.StateLeft:
		return HealthLeft
	}
	return HealthUnknown
}

// delegate serves this node's metadata to memberlist.
type delegate struct{ n *Node }

func (d delegate) NodeMeta(limit int) []byte {
	b := d.n.metaBytes()
	if len(b) > limit {
		d.n.log.Error("node metadata exceeds memberlist's limit; too many legions on one node", "bytes", len(b), "limit", limit)
		return nil
	}
	return b
}
func (delegate) NotifyMsg([]byte)                           {}
func (delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (delegate) LocalState(join bool) []byte                { return nil }
func (delegate) MergeRemoteState(buf []byte, join bool)     {}

func (n *Node) metaBytes() []byte {
	meta := &clusterv1.NodeMeta{
		Version: 1, RaftAddr: n.raftAddr, RpcAddr: n.rpcAddr, Name: n.cfg.NodeName,
		HasState: n.hasState(),
	}
	for _, l := range n.cfg.Legions {
		meta.Legions = append(meta.Legions, &clusterv1.LegionValor{Name: l.Name, Valor: l.Valor})
	}
	b, _ := proto.Marshal(meta)
	return b
}

// hasState reports whether this node belongs to a Raft cluster already.
func (n *Node) hasState() bool {
	if n.raft == nil {
		return false
	}
	if n.raft.LastIndex() > 0 {
		return true
	}
	addr, _ := n.raft.LeaderWithID()
	return addr != ""
}

// events relays memberlist events into the member table, the leader loop
// and the reactor. It must not block memberlist for long.
type events struct{ n *Node }

func (e events) NotifyJoin(node *memberlist.Node)   { e.n.onGossip(node, HealthAlive) }
func (e events) NotifyUpdate(node *memberlist.Node) { e.n.onGossip(node, healthOf(node.State)) }
func (e events) NotifyLeave(node *memberlist.Node) {
	h := HealthDead
	if node.State == memberlist.StateLeft {
		h = HealthLeft
	}
	e.n.onGossip(node, h)
}

func (n *Node) onGossip(node *memberlist.Node, h Health) {
	prev, g := n.members.update(node, h)
	if node.Name == n.id || prev == h {
		n.kick()
		return
	}
	wasIn, isIn := prev == HealthAlive || prev == HealthSuspect, h == HealthAlive || h == HealthSuspect
	n.log.Info("gossip member changed", "member", g.ID, "addr", g.Addr, "from", prev.String(), "to", h.String())
	if wasIn != isIn && g.Meta != nil {
		for _, lv := range g.Meta.GetLegions() {
			if !n.inLegion(lv.GetName()) {
				continue
			}
			mi := MemberInfo{NodeID: g.ID, Name: g.Meta.GetName(), Addr: g.Addr, Valor: lv.GetValor()}
			if isIn {
				n.reactor.OnNodeJoined(lv.GetName(), mi)
			} else {
				n.reactor.OnNodeLeft(lv.GetName(), mi)
			}
		}
	}
	n.kick()
}

func (n *Node) inLegion(name string) bool {
	for _, l := range n.cfg.Legions {
		if l.Name == name {
			return true
		}
	}
	return false
}

func (n *Node) startGossip() error {
	host, port, err := net.SplitHostPort(n.cfg.GossipAddr())
	if err != nil {
		return fmt.Errorf("legion address: %w", err)
	}
	p, _ := strconv.Atoi(port)
	mc := memberlist.DefaultLANConfig()
	mc.Name = n.id
	mc.BindAddr, mc.BindPort = host, p
	mc.AdvertisePort = p
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		mc.AdvertiseAddr = host
	}
	mc.SecretKey = n.gossipKey
	mc.ProbeInterval = n.cfg.ProbeInterval
	mc.ProbeTimeout = n.cfg.ProbeTimeout
	mc.SuspicionMult = n.cfg.SuspicionMult
	mc.GossipInterval = n.cfg.GossipInterval
	mc.PushPullInterval = 10 * time.Second
	mc.TCPTimeout = 2 * time.Second
	mc.Delegate = delegate{n}
	mc.Events = events{n}
	mc.Logger = newStdLogger(n.log.With("component", "memberlist"))
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("start gossip on %s: %w", n.cfg.GossipAddr(), err)
	}
	n.ml = ml
	return nil
}

// refreshMeta re-gossips this node's metadata (has_state changed).
func (n *Node) refreshMeta() {
	if err := n.ml.UpdateNode(time.Second); err != nil {
		n.log.Debug("gossip metadata update", "err", err)
	}
}
