package main

import (
	"fmt"
	"strings"

	"github.com/gouwsgi/gouwsgi/legion"
	"github.com/gouwsgi/gouwsgi/legion/hooks"
	"github.com/gouwsgi/gouwsgi/node/alarm"
	"github.com/gouwsgi/gouwsgi/node/config"
)

// clusterEvents raises the alarm-cluster alarms (a gouwsgi extension) on
// cluster events. Like any alarm in a legion they are recorded through
// Raft, so an event every node sees (a member gone) is one incident whose
// action runs once; a lost quorum cannot be recorded and runs on each
// node that lost it.
type clusterEvents struct {
	am    *alarm.Manager
	names []string
	node  string // this node's name, in messages
}

// newClusterEvents reads alarm-cluster = <alarm>[,<alarm>...]; every name
// must be a defined alarm.
func newClusterEvents(cfg *config.Config, am *alarm.Manager, node string) (*clusterEvents, error) {
	defined := map[string]bool{}
	for _, spec := range cfg.List("alarm") {
		if f := strings.Fields(spec); len(f) > 0 {
			defined[f[0]] = true
		}
	}
	e := &clusterEvents{am: am, node: node}
	for _, v := range cfg.List("alarm-cluster") {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			switch {
			case name == "":
				return nil, fmt.Errorf("alarm-cluster %q: empty alarm name (want <alarm>[,<alarm>...])", v)
			case !defined[name]:
				return nil, fmt.Errorf("alarm-cluster %q: alarm %q is not defined (add `alarm = %s <action>:<arg>`)", v, name, name)
			}
			e.names = append(e.names, name)
		}
	}
	return e, nil
}

// raise queues the alarms without waiting: a full queue is counted and
// reported by the alarm manager itself.
func (e *clusterEvents) raise(msg string) {
	for _, name := range e.names {
		_ = e.am.Trigger(alarm.KindCluster, name, msg)
	}
}

// clusterReactor is the legion hooks' reactor with the cluster events
// added. It embeds *hooks.Reactor so that every optional interface the
// hooks implement stays visible to the legion node.
type clusterReactor struct {
	*hooks.Reactor
	events *clusterEvents
}

var (
	_ legion.VIPReporter    = clusterReactor{}
	_ legion.Drainer        = clusterReactor{}
	_ legion.QuorumReporter = clusterReactor{}
)

// OnLord runs the lord hooks first: fenced resources come before alarms.
func (r clusterReactor) OnLord(l string, epoch uint64) {
	r.Reactor.OnLord(l, epoch)
	r.events.raise(fmt.Sprintf("legion %s: %s is the new lord (epoch %d)", l, r.events.node, epoch))
}

// OnNodeLeft: every node sees it, with the same message: one incident.
func (r clusterReactor) OnNodeLeft(l string, m legion.MemberInfo) {
	r.Reactor.OnNodeLeft(l, m)
	r.events.raise(fmt.Sprintf("legion %s: member %s (%s) is gone (dead or left)", l, m.Name, m.NodeID))
}

// OnQuorumLost implements legion.QuorumReporter.
func (r clusterReactor) OnQuorumLost(detail string) {
	r.events.raise(fmt.Sprintf("%s: %s", r.events.node, detail))
}
