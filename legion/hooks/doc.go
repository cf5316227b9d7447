// Package hooks runs legion hooks: the actions a configuration attaches to
// the events of a legion, in uWSGI's syntax and with uWSGI's log lines.
//
//	legion-setup  = web cmd:/usr/local/bin/cleanup
//	legion-lord   = web vip:10.0.0.100/24,dev=eth0
//	legion-lord   = web cmd:systemctl start cron-jobs
//	legion-unlord = web log:giving up lordship
//	legion-death  = web alarm:pager web node going down
//
// Events (Phase): setup, join, lord, unlord, death, node-joined, node-left.
// Actions (Kind): cmd: and its alias exec: (shell command, waited for; a
// non-zero exit is a failure), log:, alarm:<name> <message> (through the
// Alarms interface), and vip: (through legion/vip). uWSGI's signal: is
// refused with a clear error.
//
// A vip action declared in legion-lord claims the address with the lord's
// epoch; the runner then also releases it first thing on unlord and death and
// removes a stale copy on setup, so one line is enough. ReconcileVIPs lets the
// legion re-apply "present if lord, absent otherwise" at any time.
//
// Every call logs `[uwsgi-legion] (phase: lord legion: web) calling cmd:...`
// and a failure logs `[uwsgi-legion] ERROR, lord hook returned: N` (the exit
// status, or -1 for timeouts and non-command failures); a failure never stops
// the following hooks. Commands see GOUWSGI_LEGION, GOUWSGI_PHASE,
// GOUWSGI_NODE, GOUWSGI_LORD, GOUWSGI_EPOCH, GOUWSGI_MEMBER (node-joined and
// node-left) and, for uWSGI-era scripts, UWSGI_LEGION_NAME and
// UWSGI_LEGION_PHASE; their output goes to the log line by line.
// GOUWSGI_LORD is the lord's member name (as GOUWSGI_NODE names this node),
// GOUWSGI_EPOCH the epoch of the lordship a lord or unlord event is about,
// or of the current lordship for the other events (0 when there is none).
//
// Hooks never block the caller: Fire queues an event on its legion's own
// goroutine, which runs hooks one at a time in firing order, each bounded by
// Config.Timeout (a command is killed with its whole process group).
package hooks
