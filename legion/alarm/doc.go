// Package alarm owns the cluster side of gouwsgi's alarms: a replicated
// incident history recorded through Raft so that one incident seen on
// every node runs its action once for the whole cluster (modelled on
// etcd's v3alarm, which keeps alarms as replicated state).
//
// # State (Machine)
//
// An incident is keyed by (alarm, message). A record of the same key
// within the raiser's alarm-freq of the incident's first raise, measured
// with leader-stamped entry times, is folded into it: the count grows and
// the raiser is added to the incident's raisers. Anything else opens a
// new incident whose owner is the recording node and process (instance):
// only the owner runs the action. Because the decision is committed state,
// a leader change cannot make two nodes owners, and a record retried
// after an unknown outcome is recognised by (instance, local id) and
// counted once.
//
// The owner reports the outcome (Done). The leader watches for owners
// that died before reporting (dead or left in gossip, or silent past
// Config.DoneTimeout) and reassigns the incident to another alive node,
// preferring nodes that raised it (they define the alarm). The new owner
// claims it with a compare-and-set on (owner, instance) and runs it: the
// claim is ordered by Raft after any Done, so a done incident is never
// claimed, and one process wins each assignment. A node that restarts
// claims the unfinished incidents its previous process owned the same
// way. Done reports are counted (Incident.Runs), so exactly-once is
// visible in the history: Runs is 1 unless an owner presumed dead was in
// fact still running (a timeout reassignment of a live owner).
//
// # Commands
//
// Types 0x30-0x34 of legion/fsm's alarm range: Record, Claim, Done,
// Reassign and Ack, with protobuf bodies in proto/gouwsgi/raft/v1
// (alarm.proto). Business refusals (unknown incident, lost claim) are
// returned in fsm.Result.Err.
//
// # What this package does not do
//
// It never imports node/alarm (legion does not depend on node): Service
// talks to the node's alarm manager through the Executor interface, and
// cmd/gouwsgi and rpc/bind adapt the types. Without a quorum Record fails
// and the node's alarm manager runs the action locally: an unreachable
// cluster must not silence an alarm.
package alarm
