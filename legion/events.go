package legion

import "context"

// LordEvents receives lordship changes of this node. OnUnlord must release
// fenced resources (the VIP) promptly: the leader names a successor once
// LordLeaseMargin has passed after the lease, whether or not OnUnlord has
// returned. Slow work (cmd: hooks) belongs after the fenced release.
type LordEvents interface {
	// OnLord: this node became lord of legion under epoch (the fencing
	// token, strictly increasing per legion).
	OnLord(legion string, epoch uint64)
	// OnUnlord: this node stopped being lord of legion for epoch.
	OnUnlord(legion string, epoch uint64)
}

// MemberInfo describes another member in node-joined/node-left events.
type MemberInfo struct {
	NodeID string
	Name   string
	Addr   string
	Valor  uint32
}

// Reactor reacts to legion events, as uWSGI's legion hooks do
// (legion/hooks runs cmd: actions, legion/vip moves addresses). Calls for
// one legion are made in order; calls for different legions may run
// concurrently. Embed NopReactor to implement only some methods.
type Reactor interface {
	LordEvents
	// OnSetup: the legion subsystem starts on this node (legion-setup);
	// the place to clean stale state such as a VIP left by a crash.
	OnSetup(legion string)
	// OnJoin: this node is part of the legion's quorum for the first time
	// since it started (legion-join).
	OnJoin(legion string)
	// OnNodeJoined / OnNodeLeft: another member appeared or disappeared
	// (legion-node-joined, legion-node-left).
	OnNodeJoined(legion string, m MemberInfo)
	OnNodeLeft(legion string, m MemberInfo)
	// OnDeath: this node is shutting down (legion-death), after any
	// lordship was released.
	OnDeath(legion string)
}

// Drainer is implemented by a Reactor whose fenced resources can be
// drained before a graceful handover (legion/hooks: VIPs stop taking new
// connections while those in progress finish).
type Drainer interface {
	// OnDrain: this node, lord of legion under epoch, is about to hand the
	// lordship over (graceful shutdown). It returns when the resources are
	// drained or ctx ends; the lordship and its lease hold meanwhile.
	OnDrain(ctx context.Context, legion string, epoch uint64)
}

// QuorumReporter is implemented by a Reactor that wants to know when this
// node has had no Raft leader for a while (cluster alarms raise on it).
// detail is the "no raft quorum: …" text the node logs. Called once per
// loss, from the quorum watcher; it must not block.
type QuorumReporter interface {
	OnQuorumLost(detail string)
}

// NopReactor implements Reactor with methods that do nothing.
type NopReactor struct{}

func (NopReactor) OnLord(string, uint64)           {}
func (NopReactor) OnUnlord(string, uint64)         {}
func (NopReactor) OnSetup(string)                  {}
func (NopReactor) OnJoin(string)                   {}
func (NopReactor) OnNodeJoined(string, MemberInfo) {}
func (NopReactor) OnNodeLeft(string, MemberInfo)   {}
func (NopReactor) OnDeath(string)                  {}

// Reactors fans every event out to rs, in order.
func Reactors(rs ...Reactor) Reactor { return multiReactor(rs) }

type multiReactor []Reactor

func (m multiReactor) OnLord(l string, e uint64) {
	for _, r := range m {
		r.OnLord(l, e)
	}
}
func (m multiReactor) OnUnlord(l string, e uint64) {
	for _, r := range m {
		r.OnUnlord(l, e)
	}
}
func (m multiReactor) OnSetup(l string) {
	for _, r := range m {
		r.OnSetup(l)
	}
}
func (m multiReactor) OnJoin(l string) {
	for _, r := range m {
		r.OnJoin(l)
	}
}
func (m multiReactor) OnNodeJoined(l string, mi MemberInfo) {
	for _, r := range m {
		r.OnNodeJoined(l, mi)
	}
}
func (m multiReactor) OnNodeLeft(l string, mi MemberInfo) {
	for _, r := range m {
		r.OnNodeLeft(l, mi)
	}
}

// OnDrain implements Drainer for the reactors that do.
func (m multiReactor) OnDrain(ctx context.Context, l string, e uint64) {
	for _, r := range m {
		if d, ok := r.(Drainer); ok {
			d.OnDrain(ctx, l, e)
		}
	}
}
func (m multiReactor) OnDeath(l string) {
	for _, r := range m {
		r.OnDeath(l)
	}
}

func (m multiReactor) OnQuorumLost(detail string) {
	for _, r := range m {
		if q, ok := r.(QuorumReporter); ok {
			q.OnQuorumLost(detail)
		}
	}
}
