package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gouwsgi/gouwsgi/node/sysinfo"
	"github.com/gouwsgi/gouwsgi/node/wire"
	"github.com/gouwsgi/gouwsgi/node/wsgi"
)

// Config is the pool's part of the node configuration.
type Config struct {
	Processes int // the maximum number of workers (processes/workers)
	Threads   int // concurrent requests per worker

	Harakiri        time.Duration
	HarakiriVerbose bool

	MaxRequests            int
	MaxRequestsDelta       int
	MinWorkerLifetime      time.Duration
	MaxWorkerLifetime      time.Duration
	MaxWorkerLifetimeDelta time.Duration
	ReloadOnRSS            uint64 // bytes, 0 = off
	Mercy                  time.Duration

	Cheaper         int // minimum workers; 0 = cheaper off
	CheaperInitial  int
	CheaperStep     int
	CheaperAlgo     string // spare, backlog, busyness
	CheaperOverload int    // cycles (seconds)

	// QueueTimeout bounds how long a request waits for a free worker.
	QueueTimeout time.Duration
	// RespawnBackoffMax caps the delay before respawning a worker that keeps
	// dying young.
	RespawnBackoffMax time.Duration
}

// DefaultConfig returns uWSGI's defaults for the options the pool reads.
func DefaultConfig() Config {
	return Config{
		Processes:         1,
		Threads:           1,
		Mercy:             60 * time.Second,
		CheaperStep:       1,
		CheaperAlgo:       "spare",
		CheaperOverload:   3,
		QueueTimeout:      60 * time.Second,
		RespawnBackoffMax: 5 * time.Second,
	}
}

// Validate checks the cross-option rules, naming the options involved.
func (c Config) Validate() error {
	switch {
	case c.Processes < 1:
		return fmt.Errorf("processes must be at least 1, got %d", c.Processes)
	case c.Threads < 1:
		return fmt.Errorf("threads must be at least 1, got %d", c.Threads)
	case c.Cheaper < 0 || (c.Cheaper > 0 && c.Cheaper >= c.Processes):
		return fmt.Errorf("cheaper (%d) must be below processes (%d)", c.Cheaper, c.Processes)
	case c.CheaperInitial < 0 || c.CheaperInitial > c.Processes:
		return fmt.Errorf("cheaper-initial (%d) must be between 0 and processes (%d)", c.CheaperInitial, c.Processes)
	case c.CheaperStep < 1:
		return fmt.Errorf("cheaper-step must be at least 1, got %d", c.CheaperStep)
	case c.CheaperOverload < 1:
		return fmt.Errorf("cheaper-overload must be at least 1, got %d", c.CheaperOverload)
	}
	switch c.CheaperAlgo {
	case "spare", "backlog", "busyness", "":
	default:
		return fmt.Errorf("cheaper-algo %q is not one of spare, backlog, busyness", c.CheaperAlgo)
	}
	return nil
}

// Spawner starts worker processes; node/wsgi provides the real one.
type Spawner interface {
	Spawn(ctx context.Context, wid int) (*wsgi.Process, error)
}

// Reloader is implemented by spawners that must re-import the app before a
// graceful reload (the zygote).
type Reloader interface {
	Reload(ctx context.Context) error
}

// CallHandler answers the calls workers make through the uwsgi Python
// module (cache_*, alarm): vars and body in, a reply status, vars and body out.
type CallHandler interface {
	Call(wid int, vars wire.Vars, body []byte) (status uint8, out wire.Vars, outBody []byte)
}

// Events receives what operators alarm on.
type Events interface {
	Harakiri(wid, pid int, head string)
	Segfault(wid, pid int)
}

// Pool is the master: it owns the workers and serves requests with them.
type Pool struct {
	cfg    Config
	sp     Spawner
	calls  CallHandler
	events Events
	log    *slog.Logger
	disp   dispatcher

	ev       chan func()
	started  time.Time
	runCtx   context.Context // Run's context: spawned workers live as long as it
	mu       sync.Mutex      // guards the fields below, read by Stats
	workers  []*worker       // by worker id (1-based); nil = not running
	want     []bool          // by worker id: should this worker run
	counters []counters      // by worker id, kept across respawns
	chain    []int           // worker ids still to chain-reload
	closing  bool
	done     chan struct{} // closed when every worker is gone after Shutdown
}

// counters survive respawns of a worker id, as uWSGI's per-worker stats do.
type counters struct {
	requests, exceptions, harakiri, respawns atomic.Int64
	tx, runningMicros, rtMicros              atomic.Int64
	lastSpawn                                atomic.Int64
	deaths                                   int // consecutive young deaths, for back-off
}

type worker struct {
	id, pid   int
	proc      *wsgi.Process
	slots     []*slot
	spawnedAt time.Time
	accepting atomic.Bool
	pending   atomic.Int32 // slots not yet back after retiring began
	requests  atomic.Int64
	lastBusy  atomic.Int64
	maxReqs   int64
	retiring  time.Time // zero unless retiring; master goroutine only
	killed    bool      // harakiri or mercy kill sent; master goroutine only
	respawn   bool      // respawn this id after it exits; master goroutine only
	why       string
	onDone    func()
}

// New builds a pool; Run starts its workers.
func New(cfg Config, sp Spawner, calls CallHandler, events Events, log *slog.Logger) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Mercy <= 0 {
		cfg.Mercy = DefaultConfig().Mercy
	}
	if cfg.QueueTimeout <= 0 {
		cfg.QueueTimeout = DefaultConfig().QueueTimeout
	}
	if cfg.RespawnBackoffMax <= 0 {
		cfg.RespawnBackoffMax = DefaultConfig().RespawnBackoffMax
	}
	return &Pool{
		cfg: cfg, sp: sp, calls: calls, events: events, log: log,
		disp:     dispatcher{maxDepth: pipelineDepth, maxAge: pipelineMaxAge},
		ev:       make(chan func(), 64),
		workers:  make([]*worker, cfg.Processes+1),
		want:     make([]bool, cfg.Processes+1),
		counters: make([]counters, cfg.Processes+1),
		done:     make(chan struct{}),
	}, nil
}

// Run starts the workers and runs the master loop until ctx ends; then it
// stops the workers gracefully within the mercy period.
func (p *Pool) Run(ctx context.Context) error {
	p.started = time.Now()
	p.runCtx = ctx
	initial := p.cfg.Processes
	if p.cfg.Cheaper > 0 {
		initial = max(p.cfg.Cheaper, p.cfg.CheaperInitial)
	}
	for wid := 1; wid <= initial; wid++ {
		p.setWant(wid, true)
		p.spawn(ctx, wid, 0)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	slow := time.NewTicker(time.Second)
	defer slow.Stop()
	var cs cheaperState
	for {
		select {
		case <-ctx.Done():
			return p.shutdown()
		case f := <-p.ev:
			f()
		case now := <-tick.C:
			p.disp.expire(now.Add(-p.cfg.QueueTimeout))
			p.checkHarakiri(now)
			p.checkMercy(now)
		case now := <-slow.C:
			p.checkRecycle(now)
			p.cheaper(ctx, &cs, now)
		}
	}
}

// do runs f on the master goroutine.
func (p *Pool) do(f func()) { p.ev <- f }

func (p *Pool) setWant(wid int, v bool) {
	p.mu.Lock()
	p.want[wid] = v
	p.mu.Unlock()
}

// spawn starts worker wid after delay, off the master goroutine (an app
// import can take seconds), and hands the result back to it.
func (p *Pool) spawn(ctx context.Context, wid int, delay time.Duration) {
	go func() {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
		}
		proc, err := p.sp.Spawn(ctx, wid)
		select {
		case p.ev <- func() { p.spawned(ctx, wid, proc, err) }:
		case <-ctx.Done():
			if proc != nil {
				closeProcess(proc)
				_ = unix.Kill(proc.PID, unix.SIGKILL)
			}
		}
	}()
}

func (p *Pool) spawned(ctx context.Context, wid int, proc *wsgi.Process, err error) {
	c := &p.counters[wid]
	if err != nil {
		c.deaths++
		delay := p.backoff(c.deaths)
		p.log.Error(fmt.Sprintf("unable to spawn worker %d: %v (retrying in %s)", wid, err, delay))
		p.spawn(ctx, wid, delay)
		return
	}
	p.mu.Lock()
	wanted := p.want[wid] && !p.closing
	p.mu.Unlock()
	if !wanted {
		closeProcess(proc)
		go func() { _, _ = wsgi.Wait(proc.PID) }()
		return
	}
	w := &worker{id: wid, pid: proc.PID, proc: proc, spawnedAt: time.Now(), respawn: true}
	if p.cfg.MaxRequests > 0 {
		w.maxReqs = int64(p.cfg.MaxRequests + (wid-1)*p.cfg.MaxRequestsDelta)
	}
	for i, conn := range proc.Data {
		w.slots = append(w.slots, &slot{w: w, core: i, conn: conn, fr: wire.NewFrameReader(conn)})
	}
	w.accepting.Store(true)
	w.lastBusy.Store(time.Now().UnixNano())
	respawned := c.lastSpawn.Load() != 0
	c.lastSpawn.Store(time.Now().Unix())
	p.mu.Lock()
	p.workers[wid] = w
	p.mu.Unlock()
	if respawned {
		c.respawns.Add(1)
		p.log.Info(fmt.Sprintf("Respawned uWSGI worker %d (new pid: %d)", wid, w.pid))
	} else {
		p.log.Info(fmt.Sprintf("spawned uWSGI worker %d (pid: %d, cores: %d)", wid, w.pid, len(w.slots)))
	}
	go p.serveCalls(w)
	go func() {
		st, err := wsgi.Wait(w.pid)
		p.do(func() { p.exited(ctx, w, st, err) })
	}()
	p.disp.add(w.slots)
	p.continueChain(wid)
}

// backoff is the delay before respawning after n consecutive young deaths,
// so a crash loop cannot burn the CPU.
func (p *Pool) backoff(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	d := 100 * time.Millisecond << min(n-2, 10)
	return min(d, p.cfg.RespawnBackoffMax)
}

// exited handles the death of a worker process, expected or not.
func (p *Pool) exited(ctx context.Context, w *worker, st unix.WaitStatus, err error) {
	w.accepting.Store(false)
	p.disp.remove(w)
	closeProcess(w.proc)
	c := &p.counters[w.id]
	c.runningMicros.Add(time.Since(w.spawnedAt).Microseconds())
	p.mu.Lock()
	if p.workers[w.id] == w {
		p.workers[w.id] = nil
	}
	want, closing := p.want[w.id], p.closing
	p.mu.Unlock()
	if w.onDone != nil {
		w.onDone()
	}
	graceful := !w.retiring.IsZero() && !w.killed && err == nil && st.Exited() && st.ExitStatus() == 0
	switch {
	case err != nil:
		p.log.Error(fmt.Sprintf("DAMN ! worker %d (pid: %d) could not be reaped: %v", w.id, w.pid, err))
	case graceful:
		p.log.Info(fmt.Sprintf("worker %d killed successfully (pid: %d)", w.id, w.pid))
	case st.Signaled():
		sig := st.Signal()
		if sig == syscall.SIGSEGV {
			p.log.Error(fmt.Sprintf("!!! uWSGI process %d got Segmentation Fault !!!", w.pid))
			if p.events != nil {
				p.events.Segfault(w.id, w.pid)
			}
		}
		p.log.Error(fmt.Sprintf("DAMN ! worker %d (pid: %d) died, killed by signal %d (%s) :( trying respawn ...", w.id, w.pid, int(sig), sig))
	default:
		p.log.Error(fmt.Sprintf("DAMN ! worker %d (pid: %d) died, exit status %d :( trying respawn ...", w.id, w.pid, st.ExitStatus()))
	}
	if closing {
		p.checkAllGone()
		return
	}
	if !want || !w.respawn {
		return
	}
	delay := time.Duration(0)
	if !graceful && time.Since(w.spawnedAt) < 2*time.Second {
		c.deaths++
		delay = p.backoff(c.deaths)
		if delay > 0 {
			p.log.Warn(fmt.Sprintf("worker %d respawning too fast: waiting %s before respawn", w.id, delay))
		}
	} else {
		c.deaths = 0
	}
	p.spawn(ctx, w.id, delay)
}

// retire stops giving requests to w; once its running requests end, its
// connections are closed and the Python side exits ("Seeya!").
func (p *Pool) retire(w *worker, why string, respawn bool) {
	if !w.retiring.IsZero() {
		w.respawn = w.respawn && respawn
		return
	}
	w.retiring = time.Now()
	w.respawn = respawn
	w.why = why
	w.pending.Store(int32(len(w.slots)))
	w.accepting.Store(false)
	if n := p.disp.remove(w); n > 0 {
		w.pendingDone(int32(n))
	}
}

// slotDone is called when a slot of a retiring worker comes back.
func (w *worker) slotDone() { w.pendingDone(1) }

func (w *worker) pendingDone(n int32) {
	if w.pending.Add(-n) == 0 {
		// Closing the data connections is the graceful stop signal.
		for _, s := range w.slots {
			_ = s.conn.Close()
		}
	}
}

// finished accounts for a cleanly answered request, applies max-requests
// and passes the slot on.
func (p *Pool) finished(t *ticket) {
	w := t.s.w
	n := w.requests.Add(1)
	w.lastBusy.Store(time.Now().UnixNano())
	p.counters[w.id].requests.Add(1)
	if w.maxReqs > 0 && n == w.maxReqs {
		p.do(func() {
			if time.Since(w.spawnedAt) < p.cfg.MinWorkerLifetime {
				w.maxReqs += int64(p.cfg.MaxRequests)
				return
			}
			p.log.Info(fmt.Sprintf("worker %d (pid: %d) served %d requests (max-requests): recycling", w.id, w.pid, n))
			p.retire(w, "max-requests", true)
		})
	}
	p.disp.done(t)
}

// broken handles a slot whose connection failed, after dispatcher.fail
// took its worker out of service: the worker is dead or about to be, so it
// is killed to make sure.
func (p *Pool) broken(s *slot, err error) {
	w := s.w
	if !s.harakiri.Load() {
		p.log.Error(fmt.Sprintf("worker %d (pid: %d) core %d failed: %v", w.id, w.pid, s.core, err))
	}
	p.counters[w.id].requests.Add(1)
	p.do(func() {
		if !w.killed {
			w.killed = true
			_ = unix.Kill(w.pid, unix.SIGKILL)
		}
	})
}

// checkHarakiri kills workers whose request runs longer than harakiri.
func (p *Pool) checkHarakiri(now time.Time) {
	if p.cfg.Harakiri <= 0 {
		return
	}
	limit := now.Add(-p.cfg.Harakiri).UnixNano()
	for _, w := range p.running() {
		if w.killed {
			continue
		}
		for _, s := range w.slots {
			start := s.start.Load()
			if start == 0 || start > limit {
				continue
			}
			var head, addr string
			if r := s.req.Load(); r != nil {
				head, addr = requestHead(r), r.Vars.Value("REMOTE_ADDR")
			}
			s.harakiri.Store(true)
			w.killed = true
			p.counters[w.id].harakiri.Add(1)
			p.log.Error(fmt.Sprintf("*** HARAKIRI ON WORKER %d (pid: %d, try: 1) ***", w.id, w.pid))
			p.log.Error(fmt.Sprintf("HARAKIRI !!! worker %d status !!!", w.id))
			p.log.Error(fmt.Sprintf("HARAKIRI [core %d] %s - %s since %d", s.core, addr, head, start/int64(time.Second)))
			if p.cfg.HarakiriVerbose {
				p.harakiriVerbose(w)
			}
			p.log.Error(fmt.Sprintf("HARAKIRI !!! end of worker %d status !!!", w.id))
			_ = unix.Kill(w.pid, unix.SIGKILL)
			if p.events != nil {
				p.events.Harakiri(w.id, w.pid, head)
			}
			break
		}
	}
}

// harakiriVerbose logs what the stuck worker was doing, from /proc.
func (p *Pool) harakiriVerbose(w *worker) {
	for _, f := range []string{"syscall", "wchan"} {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", w.pid, f)); err == nil {
			p.log.Error(fmt.Sprintf("HARAKIRI: -- %s> %s", f, trimNL(b)))
		}
	}
}

// checkMercy kills retiring workers that take longer than the mercy period.
func (p *Pool) checkMercy(now time.Time) {
	for _, w := range p.running() {
		if w.retiring.IsZero() || w.killed || now.Sub(w.retiring) < p.cfg.Mercy {
			continue
		}
		w.killed = true
		p.log.Error(fmt.Sprintf("worker %d (pid: %d) is taking too much time to die...NO MERCY !!!", w.id, w.pid))
		_ = unix.Kill(w.pid, unix.SIGKILL)
	}
}

// checkRecycle applies max-worker-lifetime and reload-on-rss.
func (p *Pool) checkRecycle(now time.Time) {
	for _, w := range p.running() {
		if !w.retiring.IsZero() {
			continue
		}
		age := now.Sub(w.spawnedAt)
		if lt := p.cfg.MaxWorkerLifetime; lt > 0 && age >= lt+time.Duration(w.id-1)*p.cfg.MaxWorkerLifetimeDelta {
			p.log.Info(fmt.Sprintf("worker %d lifetime reached, it was running for %d second(s)", w.id, int(age.Seconds())))
			p.retire(w, "max-worker-lifetime", true)
			continue
		}
		if p.cfg.ReloadOnRSS > 0 && age >= p.cfg.MinWorkerLifetime {
			if rss, _ := sysinfo.Memory(w.pid); rss > p.cfg.ReloadOnRSS {
				p.log.Info(fmt.Sprintf("worker %d (pid: %d) rss %d bytes above reload-on-rss %d: recycling", w.id, w.pid, rss, p.cfg.ReloadOnRSS))
				p.retire(w, "reload-on-rss", true)
			}
		}
	}
}

// running lists the live workers (master goroutine).
func (p *Pool) running() []*worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*worker, 0, len(p.workers))
	for _, w := range p.workers {
		if w != nil {
			out = append(out, w)
		}
	}
	return out
}

// Reload gracefully replaces every worker (SIGHUP, touch-reload, fifo r).
// With chain set, workers are replaced one at a time, each after its
// successor is ready, so capacity never drops by more than one worker.
func (p *Pool) Reload(ctx context.Context, chain bool) error {
	if r, ok := p.sp.(Reloader); ok {
		if err := r.Reload(ctx); err != nil {
			return fmt.Errorf("reload the application: %w", err)
		}
	}
	done := make(chan struct{})
	p.do(func() {
		defer close(done)
		ws := p.running()
		if chain {
			p.log.Info("chain reload starting...")
			for _, w := range ws {
				p.chain = append(p.chain, w.id)
			}
			p.continueChain(0)
			return
		}
		p.log.Info("...gracefully killing workers...")
		for _, w := range ws {
			p.log.Info(fmt.Sprintf("Gracefully killing worker %d (pid: %d)...", w.id, w.pid))
			p.retire(w, "reload", true)
		}
	})
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("reload: %w", ctx.Err())
	}
}

// continueChain retires the next worker of a chain reload once the worker
// spawned for id (0 = start) is up.
func (p *Pool) continueChain(id int) {
	if len(p.chain) == 0 || (id != 0 && p.chain[0] != id) {
		return
	}
	if id != 0 {
		p.chain = p.chain[1:]
	}
	if len(p.chain) == 0 {
		p.log.Info("chain reloading complete")
		return
	}
	p.mu.Lock()
	w := p.workers[p.chain[0]]
	p.mu.Unlock()
	if w == nil {
		// Gone meanwhile: its respawn is already fresh.
		p.chain = p.chain[1:]
		p.continueChain(0)
		return
	}
	p.log.Info(fmt.Sprintf("chain next victim is worker %d", w.id))
	p.retire(w, "chain reload", true)
}

// Scale adds (delta > 0) or removes workers within cheaper..processes, as
// the master FIFO's + and - do.
func (p *Pool) Scale(delta int) {
	p.do(func() { p.scale(p.runCtx, delta) })
}

func (p *Pool) scale(ctx context.Context, delta int) {
	minimum := max(p.cfg.Cheaper, 1)
	for ; delta > 0; delta-- {
		wid := p.firstWanted(false)
		if wid == 0 {
			return
		}
		p.setWant(wid, true)
		p.log.Info(fmt.Sprintf("spawning worker %d (cheaper)", wid))
		p.spawn(ctx, wid, 0)
	}
	for ; delta < 0; delta++ {
		if p.countWanted() <= minimum {
			return
		}
		wid := p.firstWanted(true)
		p.setWant(wid, false)
		p.mu.Lock()
		w := p.workers[wid]
		p.mu.Unlock()
		if w != nil {
			p.log.Info(fmt.Sprintf("worker %d (pid: %d) stopped (cheaper)", w.id, w.pid))
			p.retire(w, "cheaper", false)
		}
	}
}

// firstWanted returns the lowest unwanted id (wanted=false) or the highest
// wanted one (wanted=true); 0 when there is none.
func (p *Pool) firstWanted(wanted bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !wanted {
		for wid := 1; wid < len(p.want); wid++ {
			if !p.want[wid] {
				return wid
			}
		}
		return 0
	}
	for wid := len(p.want) - 1; wid >= 1; wid-- {
		if p.want[wid] {
			return wid
		}
	}
	return 0
}

func (p *Pool) countWanted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.want[1:] {
		if v {
			n++
		}
	}
	return n
}

// shutdown retires every worker and waits for them within the mercy period.
func (p *Pool) shutdown() error {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	p.log.Info("gracefully stopping workers...")
	for _, w := range p.running() {
		p.retire(w, "shutdown", false)
	}
	p.checkAllGone()
	deadline := time.NewTimer(p.cfg.Mercy)
	defer deadline.Stop()
	// No worker takes new requests any more: fail those that wait.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return nil
		case now := <-tick.C:
			p.disp.expire(now)
		case f := <-p.ev:
			f()
		case <-deadline.C:
			for _, w := range p.running() {
				p.log.Error(fmt.Sprintf("worker %d (pid: %d) is taking too much time to die...NO MERCY !!!", w.id, w.pid))
				_ = unix.Kill(w.pid, unix.SIGKILL)
			}
			deadline.Reset(time.Hour)
		}
	}
}

func (p *Pool) checkAllGone() {
	if len(p.running()) == 0 {
		select {
		case <-p.done:
		default:
			close(p.done)
		}
	}
}

// serveCalls answers the worker's uwsgi-module calls on its control
// connection until the worker goes away.
func (p *Pool) serveCalls(w *worker) {
	fr := wire.NewFrameReader(w.proc.Ctl)
	var out []byte
	for {
		h, payload, err := fr.Next()
		if err != nil {
			return
		}
		if h.Modifier1 != wire.ModCall {
			p.log.Warn(fmt.Sprintf("worker %d sent modifier1 %d on its control connection: ignored", w.id, h.Modifier1))
			continue
		}
		vars, err := wire.ParseVars(payload, 0)
		if err != nil {
			p.log.Error(fmt.Sprintf("worker %d sent a malformed call: %v", w.id, err))
			return
		}
		body, err := readBody(fr)
		if err != nil {
			return
		}
		status, rv, rb := uint8(wire.ReplyError), wire.Vars{{Key: "error", Value: "no handler for worker calls"}}, []byte(nil)
		if p.calls != nil {
			status, rv, rb = p.calls.Call(w.id, vars, body)
		}
		enc, err := rv.Append(nil)
		if err != nil {
			status, enc = wire.ReplyError, nil
		}
		out = wire.AppendFrame(out[:0], wire.ModReply, status, enc)
		out = wire.AppendBodyEnd(wire.AppendBody(out, rb))
		if _, err := w.proc.Ctl.Write(out); err != nil {
			return
		}
	}
}

// readBody collects a body stream that follows a call.
func readBody(fr *wire.FrameReader) ([]byte, error) {
	var body []byte
	for {
		h, payload, err := fr.Next()
		if err != nil {
			return nil, err
		}
		if h.Modifier1 != wire.ModBody {
			return nil, fmt.Errorf("expected a body frame, got modifier1 %d", h.Modifier1)
		}
		if h.Modifier2 != wire.BodyData {
			return body, nil
		}
		body = append(body, payload...)
	}
}

func closeProcess(proc *wsgi.Process) {
	for _, c := range proc.Data {
		_ = c.Close()
	}
	if proc.Ctl != nil {
		_ = proc.Ctl.Close()
	}
}

func trimNL(b []byte) string {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == 0) {
		b = b[:len(b)-1]
	}
	return string(b)
}
