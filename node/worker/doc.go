// Package worker owns the worker pool and the master loop: spawning Python
// workers, dispatching requests to their persistent per-thread connections,
// harakiri, graceful recycling (max-requests, max-worker-lifetime,
// reload-on-rss), crash respawn with back-off, cheaper scaling, graceful and
// chain reloads, and the per-worker figures the stats server reports.
//
// The master always knows which worker slot holds which request since when:
// every slot records its request start and head, and that record is what
// harakiri, the stats server and cheaper read.
package worker
