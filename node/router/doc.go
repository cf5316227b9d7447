// Package router owns gouwsgi's internal routing and static files: the
// uWSGI route tables (route*, response-route*, final-route*), their
// conditions, variables and actions, the cache route actions (cache,
// cachestore, cacheset, cachevar, cacheinc...), and static-map,
// static-map2, static-index, check-static and static-skip-ext.
//
// Parse compiles the options once: regexes, variable templates, cache
// names, goto targets and htpasswd files are all resolved at start-up, and
// anything that does not parse is an error naming the option and the line.
// Router.Handler wraps the application handler; a cache hit is answered
// there, in Go, without touching a worker.
//
// Chains. The request chain runs before the app; the response chain runs
// when the response headers are about to be sent, whoever sends them (app,
// cache hit, static file); the final chain runs after the response. Rules
// return NEXT, CONTINUE (continue/last: stop and run the app), BREAK (the
// response is complete) or GOTO (forward only; a backward or unknown
// target is a start-up error). Static files are looked up first; when one
// is found the request chain still runs (it may deny it) and the app is
// not called, as in uWSGI.
//
// Differences from uWSGI, all deliberate:
//   - Regexes are Go RE2: lookaround, backreferences and possessive
//     quantifiers are a start-up error naming the rule. The regexp
//     condition's pattern is compiled once, not per request.
//   - The legion condition lord: is not available here (node does not
//     import legion); use legion-lord/legion-unlord hooks instead.
//   - ${math[...]} supports numbers, request vars by name, + - * / %,
//     unary minus and parentheses; ${uwsgi[...]} offers wid, pid, uuid,
//     status, rtime, rsize and sor (not lq); metric, geoip and xattr vars
//     are unknown functions.
//   - Status lines carry Go's standard reason phrase, not a custom one.
//   - send/send-crnl write body data (after default 200 headers), not raw
//     bytes on the socket.
//   - basicauth htpasswd files support {SHA} and plain entries and are read
//     at start-up; crypt, $apr1$ and bcrypt entries are a start-up error.
//   - Cache names in rules must be literal; a cache the node lacks is
//     reported by Router.Validate and otherwise acts as a miss.
//   - A path traversal (".." segment, symlink out of the root) is answered
//     403 instead of falling through to the app.
package router
