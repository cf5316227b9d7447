// Package rcache owns gouwsgi's replicated cache2 caches (`replicate=1`):
// caches that are the same on every node of a legion cluster because every
// write goes through its Raft log.
//
// A Group holds every replicated cache of a node. Its Machine (a
// cache.Machine behind a legion/fsm.Machine) is registered with the
// legion's FSM under the command type BatchType; its Stores implement
// cache.Store, so cache routes, the Python uwsgi.cache_* API, stats and the
// admin API use them like local caches.
//
// Writes are queued and proposed in batches: while one batch is in flight,
// the writes that arrive meanwhile gather into the next, so many writes
// share one log entry (and one fsync). Followers forward their batches to
// the leader through legion.Node.ApplyEntry. The leader's append time of
// the entry is the only clock the machine uses, so every replica fixes the
// same absolute expiry; the leader also proposes the sweeps that remove
// expired items. Reads are local; linearizable reads commit a read marker
// through the log first (shared with the writes of the same batch) and
// read once the local replica has applied it. DESIGN.md in legion/ gives
// the details and failure modes.
package rcache
