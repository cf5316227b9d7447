// Package alarm owns a node's alarm subsystem in uWSGI's spirit: the
// `alarm = <name> <action>:<arg>` definitions, the triggers that raise them
// (log-alarm / not-log-alarm on every log line, alarm-segfault,
// alarm-harakiri, alarm-backlog and its aliases, alarm-fd, uwsgi.alarm()
// from apps), alarm-freq throttling, alarm-msg-size, the local incident
// history, and the hook through which a cluster decides which node runs an
// incident's action.
//
// # Flow
//
// Triggers never block their caller. LogLine (the log sink's tap) and the
// raise methods put the line or raise on a bounded queue and return; when
// a queue is full the item is dropped and counted (Stats), and the alarm
// goroutine logs the count once a second. Run is the alarm goroutine: it
// matches log lines, throttles, records the incident in the history and
// hands it to the alarm's own runner goroutine, so a slow webhook delays
// only its own alarm. The runner offers the incident to the Cluster when
// one is set (legion implements it; without it everything is local, as in
// uWSGI), runs the actions when the cluster says this node should, and
// reports the outcome back with Cluster.Done. When the node that ran an
// incident dies before reporting it, the cluster hands it to another node
// with Execute. Exactly-once across nodes is the cluster's part: this
// package only guarantees that a node runs what it is given once, and
// that an unreachable cluster never silences an alarm (the action then
// runs locally).
//
// # Actions
//
//   - cmd:<shell> runs /bin/sh -c <shell> with the message on stdin, in
//     its own process group (killed as a whole at the timeout).
//   - log:[prefix] logs `ALARM: <prefix> <msg>`.
//   - curl:<url>[;opt=val...] is a webhook: it sends {alarm, message, node,
//     kind, time} as JSON (POST unless method=PUT|PATCH), with uWSGI's
//     curl option names timeout, conn_timeout (seconds or a Go duration),
//     auth_user, auth_pass and ssl_insecure. Only http and https: smtp
//     urls are a start-up error (use cmd:mail).
//   - signal:, mule:, xmpp: and airbrake: are start-up errors that say
//     what to use instead: gouwsgi has no uWSGI signals and no mules.
//
// A failing try (non-zero exit, timeout, non-2xx answer, connection
// refused) is logged and retried with doubling back-off, Config.Tries
// times in all; then the failure is logged and kept as the incident's
// outcome. uWSGI tries once.
//
// # Differences from uWSGI
//
//   - Regexps are Go's RE2: matching is linear in the line, so a hostile
//     pattern cannot stall the log path; PCRE-only syntax (lookaround,
//     backreferences, possessive and atomic groups) is a start-up error
//     naming the option. Only the first 64 KiB of a log line is matched.
//   - Throttling keeps one window per distinct message of an alarm, not
//     only the last message: an identical message within alarm-freq of the
//     incident it repeats is folded into it (Incident.Count), whatever
//     came in between. alarm-freq = 0 turns throttling off.
//   - A message longer than alarm-msg-size is truncated with the marker
//     "... [truncated]" instead of being dropped silently.
//   - alarm-cheap is accepted and has no effect: matching and actions
//     always run on the alarm goroutines, never on the log path.
//   - alarm-harakiri = <alarm> is a gouwsgi extension (uWSGI's idiom is
//     `log-alarm = <alarm> HARAKIRI ON WORKER`, which works too). Harakiri
//     and segfault messages leave out the pid, so that a crash loop is one
//     incident per alarm-freq and the same fault on several nodes is one
//     incident for a cluster.
//   - An alarm name defined several times gets all its actions.
//   - Lines the subsystem logs about itself start with "[uwsgi-alarm]" and
//     are never matched; neither is the line a log: action is writing.
package alarm
