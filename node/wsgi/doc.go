// Package wsgi owns gouwsgi's bundled Python worker (worker.py, embedded in
// the binary) and the Go code that starts worker processes and hands their
// connections to the worker pool.
//
// A worker talks to the master over socketpairs it inherits: one control
// connection and one persistent data connection per thread, all framed as
// uwsgi packets (see node/wire/frame.go). Two spawning modes exist, as in
// uWSGI: lazy-apps, where every worker is a fresh interpreter that imports
// the app itself, and the default zygote mode, where one interpreter imports
// the app once and forks workers that share its memory pages. Zygote
// workers are double-forked so they are reparented to the master (a child
// subreaper), which reaps every worker itself with Wait to see how it died.
//
// # Calls from the uwsgi Python module
//
// The worker's `uwsgi` module turns cache_* and alarm calls into a ModCall
// packet on the control connection: vars "op" (cache_get, cache_set,
// cache_update, cache_del, cache_exists, cache_clear, cache_inc, cache_dec,
// cache_mul, cache_div, cache_num, cache_keys, alarm), "key" (the alarm
// name for alarm), "cache" (absent for the default cache), "expires"
// (seconds, absent for 0) and "value" (the decimal operand of the math
// ops), followed by a body stream carrying the value of cache_set and
// cache_update or the alarm message. The master answers with a ModReply
// whose modifier2 is a wire.ReplyStatus, vars ("error" with ReplyError) and
// a body stream, which the module maps to uWSGI's return values:
//
//	cache_get       ReplyOK + the value as body -> bytes; otherwise None
//	cache_num       ReplyOK + 8-byte little-endian int64 -> int; otherwise 0
//	cache_keys      ReplyOK + the keys as a vars block (key, "") -> [bytes]; otherwise []
//	alarm           always None
//	everything else ReplyOK -> True; otherwise None
//
// ReplyError also prints the error to the worker's stderr.
package wsgi
