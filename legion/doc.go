// Package legion owns gouwsgi's cluster: the memberlist agent, the Raft
// group (raft-boltdb/v2 log and stable store, file snapshots, TLS
// transport), the leader's membership reconcile loop, lord election with
// leases, write forwarding, and the public surface the admin API and the
// node use.
//
// A Node is built from a Config that mirrors uWSGI's legion options
// (ParseLegion, ApplyOption), runs with Run(ctx) and leaves with
// Shutdown(ctx), which hands every lordship over first. Legion events
// reach the host through a Reactor (legion/hooks runs cmd: actions,
// legion/vip moves addresses). Sub-state machines (replicated caches,
// alarms) plug into the FSM through Options.Machines and write through
// Node.Apply, which forwards to the leader over rpc/cluster.
//
// Sub-packages: fsm (dispatcher, snapshot format, legions machine), lord
// (candidate choice and the leader's lease fence), secure (credentials
// derived from the legion secret), rcache (replicated cache2 caches). DESIGN.md gives the invariants,
// failure modes and timing mapping.
package legion
