// Package fsm owns gouwsgi's replicated state machine: the dispatcher that
// hashicorp/raft drives, the command envelope, the snapshot format and the
// built-in legions sub-state machine.
//
// A log entry is one CommandType byte followed by a protobuf body
// (proto/gouwsgi/raft/v1 for legion commands). The dispatcher routes each
// type to the Machine registered for it (Consul's registerCommand table):
// the legions machine here, replicated caches and alarms later, each
// registering its own types without touching the dispatcher. A type with
// the IgnoreUnknown bit (0x80) that no machine claims is skipped with a
// warning; any other unknown type, or a body a machine cannot decode,
// panics, because applying it differently on some replicas would make them
// diverge silently.
//
// Apply is deterministic: machines read time only from the entry
// (leader-stamped) or from the command body, never from the wall clock.
//
// A snapshot is a versioned header followed by one typed record per
// machine; Restore reads and checks the whole stream before any machine
// swaps its state in.
package fsm
