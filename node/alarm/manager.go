package alarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Kind says what raised an incident.
type Kind string

// The incident kinds.
const (
	KindLog      Kind = "log"      // a log-alarm rule matched a log line
	KindHarakiri Kind = "harakiri" // harakiri killed a worker
	KindSegfault Kind = "segfault" // a worker died of SIGSEGV
	KindBacklog  Kind = "backlog"  // a listen queue was full
	KindAPI      Kind = "api"      // uwsgi.alarm() from the app, or the admin API
	KindFD       Kind = "fd"       // an alarm-fd descriptor became readable
	KindCluster  Kind = "cluster"  // a cluster event (lord change, node dead, quorum lost)
)

// Outcomes of an incident, as History reports them.
const (
	OutcomePending   = "pending"   // queued, or its action is running
	OutcomeOK        = "ok"        // every action succeeded here
	OutcomeElsewhere = "elsewhere" // the cluster ran it on another node
	OutcomeDropped   = "dropped"   // the alarm's action queue was full
	// A failure is "failed: <last error>", after every try.
)

// Incident is one raise of an alarm that was not throttled, with the
// repeats folded into it.
type Incident struct {
	ID      uint64 // sequence number on Node, from 1: (Node, ID) names an incident in a cluster
	Alarm   string
	Message string
	Node    string // the node that raised it
	Kind    Kind
	At      time.Time // first raise
	Last    time.Time // latest repeat (At when none)
	Count   int       // raises folded into it, the first included
	Outcome string
	// AckedAt is when an operator acknowledged it (zero: not yet).
	AckedAt time.Time
}

// Cluster is where a cluster (legion) records incidents so that each runs
// its action once for the whole cluster.
//
// Record is called once per local incident (local repeats within
// alarm-freq are only counted here), before its action runs; runHere tells
// whether this node runs the action (false: another node did or will, or
// the cluster already has this incident). On error the action runs here:
// a duplicate page is better than none.
//
// Done reports, after this node ran the actions of an incident the
// cluster gave it (runHere, or through Execute), how that went
// (inc.Outcome). An incident recorded and never done is the cluster's to
// hand to another node with Execute when this one dies.
type Cluster interface {
	Record(ctx context.Context, inc Incident) (runHere bool, err error)
	Done(ctx context.Context, inc Incident) error
}

// Option tunes New.
type Option func(*Manager)

// WithCluster offers every incident to c before its action runs.
func WithCluster(c Cluster) Option { return func(m *Manager) { m.cluster = c } }

// WithNode names this node in incidents (the host name by default).
func WithNode(name string) Option { return func(m *Manager) { m.node = name } }

// WithClock replaces time.Now (tests of throttling).
func WithClock(now func() time.Time) Option { return func(m *Manager) { m.now = now } }

// Queue sizes and bounds. They are fixed: they only need to absorb bursts,
// since everything past them is counted and dropped, never waited for.
const (
	lineQueue   = 1024
	eventQueue  = 256
	actionQueue = 64
	// maxLine is how much of a log line the matcher reads.
	maxLine = 64 << 10
	// maxHistory is how many incidents History keeps.
	maxHistory = 1000
	// maxOpen bounds the throttling index before it is pruned.
	maxOpen = 1024
)

// selfPrefix starts every line the alarm subsystem logs about itself;
// log-alarm skips such lines, as uWSGI does, so alarms cannot loop.
const selfPrefix = "[uwsgi-alarm"

// warn and logError log the subsystem's own lines with uWSGI's tag.
func (m *Manager) warn(format string, args ...any) {
	m.log.Warn(selfPrefix + "] " + fmt.Sprintf(format, args...))
}

func (m *Manager) logError(format string, args ...any) {
	m.log.Error(selfPrefix + "] " + fmt.Sprintf(format, args...))
}

// Manager is the alarm subsystem of one node.
type Manager struct {
	cfg      Config
	log      *slog.Logger
	cluster  Cluster
	node     string
	now      func() time.Time
	self     *selfLines
	alarms   map[string]*alarm
	order    []*alarm // definition order, for starting runners
	rules    []logRule
	backlog  []*alarm
	segfault []*alarm
	harakiri []*alarm
	fds      []fdWatch

	lines  chan string
	events chan event

	linesDropped, eventsDropped, actionsDropped atomic.Uint64

	mu   sync.Mutex // guards the fields below
	seq  uint64
	hist []*Incident          // ring of the latest incidents
	head int                  // next slot of hist once it is full
	open map[string]*Incident // by alarm and message: throttling index
	subs map[chan Change]struct{}
}

// alarm is one defined alarm name and its actions.
type alarm struct {
	name    string
	actions []action
	queue   chan job
}

// job is an incident for an alarm's runner; assigned ones come from the
// cluster (Execute) and are not offered to it again.
type job struct {
	inc      *Incident
	assigned bool
}

// event is a raise waiting for the alarm goroutine.
type event struct {
	kind  Kind
	alarm *alarm
	msg   string
}

// New parses cfg; every error names the option and the value at fault.
// log receives the subsystem's own lines and the log: action's lines.
func New(cfg Config, log *slog.Logger, opts ...Option) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{
		cfg: cfg, log: log, now: time.Now, self: &selfLines{}, alarms: map[string]*alarm{},
		lines: make(chan string, lineQueue), events: make(chan event, eventQueue), open: map[string]*Incident{},
	}
	for _, o := range opts {
		o(m)
	}
	if m.node == "" {
		m.node, _ = os.Hostname()
	}
	var errs []error
	for _, spec := range cfg.Alarms {
		name, act, err := parseAlarm(spec, cfg, log, m.self)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a, ok := m.alarms[name]
		if !ok {
			a = &alarm{name: name, queue: make(chan job, actionQueue)}
			m.alarms[name] = a
			m.order = append(m.order, a)
		}
		a.actions = append(a.actions, act)
	}
	for _, r := range cfg.LogRules {
		lr, err := parseLogRule(r, m.alarms)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.rules = append(m.rules, lr)
	}
	for _, t := range []struct {
		opt    string
		values []string
		dst    *[]*alarm
	}{
		{"alarm-backlog", cfg.Backlog, &m.backlog},
		{"alarm-segfault", cfg.Segfault, &m.segfault},
		{"alarm-harakiri", cfg.Harakiri, &m.harakiri},
	} {
		for _, v := range t.values {
			as, err := lookup(t.opt, v, strings.TrimSpace(v), m.alarms)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			*t.dst = append(*t.dst, as...)
		}
	}
	for _, spec := range cfg.FD {
		w, err := parseFD(spec, m.alarms)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.fds = append(m.fds, w)
	}
	if err := errors.Join(errs...); err != nil {
		m.closeFDs()
		return nil, err
	}
	return m, nil
}

// Run is the alarm goroutine: it matches log lines, throttles, records
// history and hands incidents to one runner per alarm, so a slow action
// delays only its own alarm. Call it once. It returns when ctx ends;
// actions still running are cancelled.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, a := range m.order {
		wg.Go(func() { m.runner(ctx, a) })
	}
	for _, w := range m.fds {
		wg.Go(func() { m.watchFD(ctx, w) })
	}
	defer wg.Wait()
	defer m.closeFDs()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var reported [3]uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case line := <-m.lines:
			m.matchLine(line)
		case ev := <-m.events:
			m.incident(ev)
		case <-tick.C:
			m.reportDrops(&reported)
		}
	}
}

// reportDrops logs what the bounded queues dropped since the last report.
func (m *Manager) reportDrops(last *[3]uint64) {
	for i, d := range []struct {
		n    uint64
		what string
	}{
		{m.linesDropped.Load(), "log lines not checked by log-alarm"},
		{m.eventsDropped.Load(), "alarm raises dropped"},
		{m.actionsDropped.Load(), "alarm actions not run"},
	} {
		if d.n != last[i] {
			m.warn("%d %s: queue full", d.n-last[i], d.what)
			last[i] = d.n
		}
	}
}

// LogLine is the log tap: it queues the line for log-alarm matching and
// returns at once. Lines the alarm subsystem wrote are skipped; only the
// first 64 KiB of a line is matched; when the queue is full the line is
// dropped and counted.
func (m *Manager) LogLine(line string) {
	if len(m.rules) == 0 || strings.HasPrefix(line, selfPrefix) {
		return
	}
	if strings.HasPrefix(line, "ALARM: ") && m.self.has(line) {
		return
	}
	if len(line) > maxLine {
		// Clone, so the queue does not pin a huge line's memory.
		line = strings.Clone(truncateUTF8(line, maxLine))
	}
	select {
	case m.lines <- line:
	default:
		m.linesDropped.Add(1)
	}
}

// matchLine runs the log rules over one line, in declaration order: a
// matching not-log-alarm stops the evaluation, a matching log-alarm raises
// its alarms and evaluation goes on.
func (m *Manager) matchLine(line string) {
	for _, r := range m.rules {
		if !r.re.MatchString(line) {
			continue
		}
		if r.negate {
			return
		}
		for _, a := range r.alarms {
			m.incident(event{kind: KindLog, alarm: a, msg: m.truncate(line)})
		}
	}
}

// RaiseAlarm is uwsgi.alarm(name, msg) from an app: it queues the raise
// and returns; it fails for an unknown alarm or a full queue.
func (m *Manager) RaiseAlarm(name, msg string) error {
	return m.Trigger(KindAPI, name, msg)
}

// Trigger queues a raise of the named alarm from another source (legion's
// cluster events, the admin API) and returns at once.
func (m *Manager) Trigger(kind Kind, name, msg string) error {
	a, ok := m.alarms[name]
	if !ok {
		return fmt.Errorf("alarm %q is not defined (add `alarm = %s <action>:<arg>`)", name, name)
	}
	if !m.queue(event{kind: kind, alarm: a, msg: msg}) {
		return fmt.Errorf("alarm %q: the alarm queue is full, raise dropped", name)
	}
	return nil
}

// Harakiri raises the alarm-harakiri alarms (worker.Events). The message
// leaves out the pid so that one stuck view is one incident per alarm-freq.
func (m *Manager) Harakiri(wid, pid int, head string) {
	m.raiseAll(KindHarakiri, m.harakiri, fmt.Sprintf("HARAKIRI ON WORKER %d: %s", wid, head))
}

// Segfault raises the alarm-segfault alarms (worker.Events). Like uWSGI's
// backtrace message, it does not name the pid, so a crash loop is
// throttled.
func (m *Manager) Segfault(wid, pid int) {
	m.raiseAll(KindSegfault, m.segfault, fmt.Sprintf("uWSGI worker %d got Segmentation Fault", wid))
}

// Backlog raises the alarm-backlog alarms: the node calls it when a
// listen queue is full (queue >= maxQueue).
func (m *Manager) Backlog(socket string, queue, maxQueue int) {
	m.raiseAll(KindBacklog, m.backlog, fmt.Sprintf("listen queue of socket %q full !!! (%d/%d)", socket, queue, maxQueue))
}

func (m *Manager) raiseAll(kind Kind, alarms []*alarm, msg string) {
	for _, a := range alarms {
		m.queue(event{kind: kind, alarm: a, msg: msg})
	}
}

// queue hands a raise to the alarm goroutine without waiting.
func (m *Manager) queue(ev event) bool {
	ev.msg = m.truncate(ev.msg)
	select {
	case m.events <- ev:
		return true
	default:
		m.eventsDropped.Add(1)
		return false
	}
}

// TruncatedMarker ends a message cut to alarm-msg-size.
// TruncatedMarker ends a message cut at alarm-msg-size.
const TruncatedMarker = "... [truncated]"

// truncate bounds a message to alarm-msg-size, keeping valid UTF-8.
func (m *Manager) truncate(msg string) string {
	if len(msg) <= m.cfg.MsgSize {
		return msg
	}
	return truncateUTF8(msg, m.cfg.MsgSize-len(TruncatedMarker)) + TruncatedMarker
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// incident throttles a raise: an identical message of the same alarm
// within alarm-freq of an incident is folded into it; anything else is a
// new incident for the alarm's runner.
func (m *Manager) incident(ev event) {
	now := m.now()
	key := ev.alarm.name + "\x00" + ev.msg
	m.mu.Lock()
	if inc, ok := m.open[key]; ok && now.Sub(inc.At) < m.cfg.Freq {
		inc.Count++
		inc.Last = now
		m.mu.Unlock()
		return
	}
	m.seq++
	inc := &Incident{ID: m.seq, Alarm: ev.alarm.name, Message: ev.msg, Node: m.node, Kind: ev.kind, At: now, Last: now, Count: 1, Outcome: OutcomePending}
	m.remember(key, inc)
	m.publish(Change{Incident: *inc})
	m.mu.Unlock()
	m.enqueue(ev.alarm, job{inc: inc})
}

// enqueue hands a job to the alarm's runner without waiting.
func (m *Manager) enqueue(a *alarm, j job) bool {
	select {
	case a.queue <- j:
		return true
	default:
		m.actionsDropped.Add(1)
		m.setOutcome(j.inc, OutcomeDropped)
		return false
	}
}

// Execute runs the actions of an incident the cluster hands to this node
// (its raiser died before reporting Done), without throttling or offering
// it back; it is kept in the history as it was raised (node, ID, time) and
// reported with Done. It returns at once.
func (m *Manager) Execute(inc Incident) error {
	a, ok := m.alarms[inc.Alarm]
	if !ok {
		return fmt.Errorf("execute incident of alarm %q: not defined on this node", inc.Alarm)
	}
	inc.Message = m.truncate(inc.Message)
	inc.Outcome = OutcomePending
	m.mu.Lock()
	p := &inc
	m.remember("", p)
	m.mu.Unlock()
	if !m.enqueue(a, job{inc: p, assigned: true}) {
		return fmt.Errorf("execute incident of alarm %q: its action queue is full", inc.Alarm)
	}
	return nil
}

// remember adds inc to the history ring and, under a non-empty key, to the
// throttling index, pruning index entries whose window has passed.
// Callers hold m.mu.
func (m *Manager) remember(key string, inc *Incident) {
	if len(m.hist) < maxHistory {
		m.hist = append(m.hist, inc)
	} else {
		m.hist[m.head] = inc
		m.head = (m.head + 1) % maxHistory
	}
	if len(m.open) >= maxOpen {
		for k, o := range m.open {
			if inc.At.Sub(o.At) >= m.cfg.Freq {
				delete(m.open, k)
			}
		}
	}
	if key != "" && m.cfg.Freq > 0 {
		m.open[key] = inc
	}
}

// runner delivers one alarm's incidents in order.
func (m *Manager) runner(ctx context.Context, a *alarm) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-a.queue:
			m.deliver(ctx, a, j)
		}
	}
}

// deliver offers the incident to the cluster, runs every action of the
// alarm with bounded retries, and reports to the cluster when it gave
// this node the incident.
func (m *Manager) deliver(ctx context.Context, a *alarm, j job) {
	m.mu.Lock()
	snap := *j.inc
	m.mu.Unlock()
	report := j.assigned && m.cluster != nil
	if m.cluster != nil && !j.assigned {
		rctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
		runHere, err := m.cluster.Record(rctx, snap)
		cancel()
		switch {
		case err != nil:
			m.warn("alarm %s: cluster record failed, running the action here: %v", a.name, err)
		case !runHere:
			m.setOutcome(j.inc, OutcomeElsewhere)
			return
		default:
			report = true
		}
	}
	snap.Outcome = OutcomeOK
	for _, act := range a.actions {
		if err := m.try(ctx, a.name, act, snap); err != nil {
			snap.Outcome = "failed: " + err.Error()
		}
	}
	m.setOutcome(j.inc, snap.Outcome)
	if report {
		rctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
		defer cancel()
		if err := m.cluster.Done(rctx, snap); err != nil {
			m.warn("alarm %s: reporting incident %d to the cluster failed: %v", a.name, snap.ID, err)
		}
	}
}

// try runs one action up to cfg.Tries times with doubling back-off.
func (m *Manager) try(ctx context.Context, name string, act action, inc Incident) error {
	wait := m.cfg.Backoff
	var err error
	for i := 1; i <= m.cfg.Tries; i++ {
		if err = act.run(ctx, inc); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: cancelled at shutdown: %w", act, err)
		}
		if i == m.cfg.Tries {
			break
		}
		m.warn("alarm %s: %s failed (try %d of %d, next in %s): %v", name, act, i, m.cfg.Tries, wait, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: cancelled at shutdown: %w", act, err)
		case <-time.After(wait):
		}
		wait *= 2
	}
	m.logError("alarm %s: %s failed, giving up after %d tries: %v", name, act, m.cfg.Tries, err)
	return fmt.Errorf("%s: %w", act, err)
}

func (m *Manager) setOutcome(inc *Incident, outcome string) {
	m.mu.Lock()
	inc.Outcome = outcome
	m.mu.Unlock()
}

// History returns the kept incidents (the latest 1000), oldest first.
func (m *Manager) History() []Incident {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Incident, 0, len(m.hist))
	for i := range m.hist {
		out = append(out, *m.hist[(m.head+i)%len(m.hist)])
	}
	return out
}

// Stats counts what the bounded queues dropped.
type Stats struct {
	LinesDropped   uint64 // log lines not matched: the line queue was full
	EventsDropped  uint64 // raises lost: the event queue was full
	ActionsDropped uint64 // incidents whose alarm's action queue was full
}

// Stats returns the drop counters.
func (m *Manager) Stats() Stats {
	return Stats{LinesDropped: m.linesDropped.Load(), EventsDropped: m.eventsDropped.Load(), ActionsDropped: m.actionsDropped.Load()}
}
