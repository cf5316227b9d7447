// Package cache owns gouwsgi's cache2 stores.
//
// A cache2 store is a fixed-geometry key/value cache with uWSGI semantics:
// `items` slots (slot 0 reserved), values stored in `blocksize` blocks
// (or spread over contiguous blocks in bitmap mode), a bucketed hash table
// (djb33x or murmur2), add-only set, upsert update, 64-bit math, absolute
// expiry times, LRU purging and the full-cache policies of uWSGI.
//
// One engine implements all of that, parameterised by the caller's clock,
// and serves two front ends:
//
//   - Local: the per-node store used by routes, the Python API, stats and
//     the admin API. It is safe for concurrent use, honours lazy_expire,
//     counts hits and misses, and persists to a store= file.
//   - Machine: the deterministic state-machine form that the legion's Raft
//     FSM drives for replicated caches (replicate=1). It never reads the wall
//     clock: every time it uses comes from the Op, fixed by the leader.
//
// The package imports no Raft code; legion adapts Machine to raft.FSM.
// Store is the interface both a Local and legion's replicated store satisfy;
// Registry maps names to stores, the first one added being the default.
package cache
