// Package worker owns the worker pool and the master loop: spawning Python
// workers, dispatching requests to their persistent per-thread connections,
// harakiri, graceful recycling (max-requests, max-worker-lifetime,
// reload-on-rss), crash respawn with back-off, cheaper scaling, graceful and
// chain reloads, and the per-worker figures the stats server reports.
//
// The master always knows which worker slot holds which request since when:
// every slot records its running request and its start, and that record is
// what harakiri, the stats server and cheaper read.
//
// When every slot is busy, a request may be pipelined: sent on a slot behind
// a request that started recently, so the worker finds it waiting instead
// of idling for a round trip through the master. Responses come back in
// order; a pipelined request that never started because its worker died
// (harakiri, crash) is sent to another worker.
package worker
