// Package node owns one host's server: it turns a loaded configuration into
// listeners, the router, caches, the worker pool and its master loop, the
// stats server and the request log, and runs them until shutdown. The
// sub-packages hold each concern; this package only assembles them and
// handles the master's signals, touch files and FIFO commands.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gouwsgi/gouwsgi/cache"
	"github.com/gouwsgi/gouwsgi/node/config"
	"github.com/gouwsgi/gouwsgi/node/frontend"
	"github.com/gouwsgi/gouwsgi/node/logging"
	"github.com/gouwsgi/gouwsgi/node/request"
	"github.com/gouwsgi/gouwsgi/node/stats"
	"github.com/gouwsgi/gouwsgi/node/worker"
	"github.com/gouwsgi/gouwsgi/node/wsgi"
)

// ErrNoApp is returned when need-app is set and the app does not import;
// the process exits with uWSGI's code 22.
var ErrNoApp = errors.New("no app loaded")

// Deps are what cmd wires in from outside the node.
type Deps struct {
	Sink   *logging.Sink
	Log    *slog.Logger
	Alarms AlarmRaiser
	// Events receives harakiri and segfault events (alarms).
	Events worker.Events
	// Backlog receives full listen queues (alarm-backlog); nil = not watched.
	Backlog BacklogAlarm
	// BeforeStop runs when shutdown begins, while the listeners still
	// serve: the legion hands lordship (and the VIP) over there, so clients
	// move to the successor before this node stops answering.
	BeforeStop func()
	// Legions fills the stats server's legions[] when a cluster runs.
	Legions func() []any
	// Caches may hold stores built elsewhere (replicated caches); local
	// cache2 caches are added to it.
	Caches *cache.Registry
}

// Node is a configured server, ready to Run.
type Node struct {
	cfg      *config.Config
	log      *slog.Logger
	sink     *logging.Sink
	spawner  wsgi.Spawner
	pool     *worker.Pool
	front    *frontend.Server
	caches   *cache.Registry
	locals   []*cache.Local
	stats    *stats.Server
	metrics  *stats.Metrics
	metricsL net.Listener
	src      stats.Sources
	pidfile  string
	backlog  BacklogAlarm
	before   func()
	// workerOut is the write end of the pipe every worker's stdout and
	// stderr go to; it stays open while workers may be spawned.
	workerOut *os.File
	reload    chan bool // true = chain
	stop      chan bool // true = graceful
	// servesAlone: routes or static files answer some requests without
	// a worker.
	servesAlone bool
}

// New builds a node from cfg: it opens every listener and starts the
// Python side (the zygote imports the app here, so need-app fails early).
func New(ctx context.Context, cfg *config.Config, deps Deps) (_ *Node, err error) {
	n := &Node{cfg: cfg, log: deps.Log, sink: deps.Sink, caches: deps.Caches, backlog: deps.Backlog, before: deps.BeforeStop, reload: make(chan bool, 4), stop: make(chan bool, 2)}
	if n.caches == nil {
		n.caches = &cache.Registry{}
	}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	if err := n.openCaches(); err != nil {
		return nil, err
	}
	poolCfg, err := poolConfig(cfg)
	if err != nil {
		return nil, err
	}
	if n.spawner, err = n.newSpawner(ctx, poolCfg.Processes); err != nil {
		return nil, err
	}
	n.pool, err = worker.New(poolCfg, n.spawner, &calls{caches: n.caches, alarms: deps.Alarms}, deps.Events, n.log)
	if err != nil {
		return nil, fmt.Errorf("worker pool: %w", err)
	}
	reqLog, err := logging.NewRequestLog(logging.RequestConfig{
		Disabled: cfg.Bool("disable-logging"), Format: cfg.Str("logformat"),
		Micros: cfg.Bool("log-micros"), MemoryReport: cfg.Bool("memory-report"),
	}, n.sink)
	if err != nil {
		return nil, err
	}
	loggers := &multiLogger{reqLog}
	var pool request.Handler = n.pool
	if limit := cfg.Int("post-buffering"); limit > 0 {
		pool = postBuffer{next: n.pool, limit: int64(limit)}
	}
	handler, err := n.router(pool)
	if err != nil {
		return nil, err
	}
	fc, err := frontendConfig(cfg)
	if err != nil {
		return nil, err
	}
	n.front = frontend.New(fc, handler, loggers, n.log)
	n.src = stats.Sources{Pool: n.pool, Frontend: n.front, Caches: n.caches, Legions: deps.Legions}
	if cfg.Str("metrics") != "" {
		// Added before any listener serves, so no request is missed.
		n.metrics = stats.NewMetrics(n.src)
		*loggers = append(*loggers, n.metrics)
	}
	if err := n.listen(); err != nil {
		return nil, err
	}
	if addr := cfg.Str("stats"); addr != "" {
		if n.stats, err = stats.Listen(addr, cfg.Bool("stats-http"), n.src, n.log); err != nil {
			return nil, err
		}
	}
	if addr := cfg.Str("metrics"); addr != "" {
		if n.metricsL, err = frontend.Listen(addr, frontend.ListenConfig{Backlog: 128}, n.log); err != nil {
			return nil, fmt.Errorf("metrics %s: %w", addr, err)
		}
		n.log.Info(fmt.Sprintf("Prometheus metrics on http://%s/metrics", n.metricsL.Addr()))
	}
	if p := cfg.Str("pidfile"); p != "" {
		if err := os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("pidfile %s: %w", p, err)
		}
		n.pidfile = p
	}
	return n, nil
}

// multiLogger fans a finished request out to every logger.
type multiLogger []request.Logger

func (m *multiLogger) LogRequest(r *request.Request, res request.Result) {
	for _, l := range *m {
		l.LogRequest(r, res)
	}
}

func (n *Node) newSpawner(ctx context.Context, processes int) (wsgi.Spawner, error) {
	cfg := n.cfg
	python := cfg.Str("python-bin")
	if python == "" && cfg.Str("home") != "" {
		python = filepath.Join(cfg.Str("home"), "bin", "python3")
	}
	chdir := cfg.Str("chdir")
	if chdir != "" {
		abs, err := filepath.Abs(chdir)
		if err != nil {
			return nil, fmt.Errorf("chdir %s: %w", chdir, err)
		}
		if st, err := os.Stat(abs); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("chdir %s: not a directory", chdir)
		}
		chdir = abs
	}
	wsgiFile := cfg.Str("wsgi-file")
	if wsgiFile != "" && !filepath.IsAbs(wsgiFile) && chdir != "" {
		wsgiFile = filepath.Join(chdir, wsgiFile)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe for worker output: %w", err)
	}
	n.workerOut = w
	go func() { n.sink.CopyLines(r); r.Close() }()
	spec := wsgi.Spec{
		Python: python, Chdir: chdir, Module: cfg.Str("module"), WSGIFile: wsgiFile,
		Callable: cfg.Str("callable"), PythonPath: cfg.List("pythonpath"), Env: cfg.List("env"),
		Threads: cfg.Int("threads"), Processes: processes, Lazy: cfg.Bool("lazy-apps"), Stderr: w,
		Procname: cfg.Str("procname"), Opt: uwsgiOpt(cfg),
	}
	sp, err := wsgi.NewSpawner(ctx, spec, n.log)
	if err != nil && errors.Is(err, wsgi.ErrAppLoad) && !spec.Lazy {
		if cfg.Bool("need-app") {
			// The worker already wrote the traceback and GAME OVER to the log.
			return nil, fmt.Errorf("%w: the app failed to import (traceback above) and need-app is set", ErrNoApp)
		}
		// Without need-app uWSGI keeps running; every worker then retries
		// the import (with back-off), so fixing the app needs no restart.
		n.log.Error(err.Error())
		n.log.Warn("*** no app loaded: workers will retry importing it (set need-app to fail instead) ***")
		spec.Lazy = true
		sp, err = wsgi.NewSpawner(ctx, spec, n.log)
	}
	if err != nil {
		return nil, fmt.Errorf("start workers: %w", err)
	}
	return sp, nil
}

func (n *Node) openCaches() error {
	var cfgs []cache.Config
	for _, line := range n.cfg.List("cache2") {
		c, err := cache.ParseConfig(line)
		if err != nil {
			return fmt.Errorf("cache2 %q: %w", line, err)
		}
		cfgs = append(cfgs, c)
	}
	if n.cfg.IsSet("cache") {
		cfgs = append(cfgs, cache.LegacyConfig(n.cfg.Int("cache"), n.cfg.Int("cache-blocksize"), n.cfg.Str("cache-store")))
	}
	for _, c := range cfgs {
		if c.Replicate {
			if _, ok := n.caches.Get(c.Name); !ok {
				return fmt.Errorf("cache2 %s: replicate=1 needs a legion (add a legion option)", c.Name)
			}
			continue
		}
		l, err := cache.NewLocal(c, time.Now, n.log)
		if err != nil {
			return fmt.Errorf("cache2 %s: %w", c.Name, err)
		}
		n.locals = append(n.locals, l)
		if err := n.caches.Add(l); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) listen() error {
	cfg := n.cfg
	for _, addr := range append(cfg.List("http"), cfg.List("http-socket")...) {
		if _, err := n.front.AddHTTP(addr); err != nil {
			return err
		}
	}
	for _, spec := range cfg.List("https") {
		if _, err := n.front.AddHTTPS(spec); err != nil {
			return err
		}
	}
	for _, addr := range cfg.List("socket") {
		if _, err := n.front.AddUWSGI(addr); err != nil {
			return err
		}
	}
	if len(n.front.Sockets()) == 0 {
		return errors.New("no socket configured: add http, http-socket, https or socket")
	}
	return nil
}

// Frontend exposes the listeners (tests read the bound addresses).
func (n *Node) Frontend() *frontend.Server { return n.front }

// Pool exposes the worker pool to the admin API.
func (n *Node) Pool() *worker.Pool { return n.pool }

// Stats is the stats server's document, now.
func (n *Node) Stats() stats.Stats { return n.src.Snapshot() }

// Caches exposes the cache registry to the admin API.
func (n *Node) Caches() *cache.Registry { return n.caches }

// StatsAddr is where the stats server listens, or nil.
func (n *Node) StatsAddr() net.Addr {
	if n.stats == nil {
		return nil
	}
	return n.stats.Addr()
}

// Reload asks the master for a graceful (or chain) reload.
func (n *Node) Reload(chain bool) { n.reload <- chain }

// Stop asks the master to stop; graceful lets requests in flight finish.
func (n *Node) Stop(graceful bool) {
	select {
	case n.stop <- graceful:
	default:
	}
}

// Run serves until ctx ends or Stop is called, then shuts down gracefully
// within the mercy period: listeners stop accepting first, requests in
// flight finish, then workers exit.
func (n *Node) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	poolCtx, stopPool := context.WithCancel(context.Background())
	defer stopPool()
	poolErr := make(chan error, 1)
	go func() { poolErr <- n.pool.Run(poolCtx) }()
	frontCtx, stopFront := context.WithCancel(context.Background())
	defer stopFront()
	frontErr := make(chan error, 1)
	mercy := time.Duration(n.cfg.Int("reload-mercy")) * time.Second
	if mercy <= 0 {
		mercy = 60 * time.Second
	}
	go func() { frontErr <- n.front.Serve(frontCtx, mercy) }()
	if n.stats != nil {
		wg.Add(1)
		go func() { defer wg.Done(); _ = n.stats.Serve(ctx) }()
	}
	if n.metricsL != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", n.metrics.Handler())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		wg.Add(1)
		go func() { defer wg.Done(); _ = srv.Serve(n.metricsL) }()
		go func() { <-ctx.Done(); _ = srv.Close() }()
	}
	if len(n.locals) > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); n.sweep(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); n.watchTouch(ctx) }()
	if n.backlog != nil {
		wg.Add(1)
		go func() { defer wg.Done(); n.watchBacklog(ctx, n.backlog) }()
	}
	for _, fifo := range n.cfg.List("master-fifo") {
		wg.Add(1)
		go func() { defer wg.Done(); n.readFIFO(ctx, fifo) }()
	}
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			n.log.Info("graceful shutdown triggered...")
			break loop
		case graceful := <-n.stop:
			if graceful {
				n.log.Info("graceful shutdown triggered...")
			} else {
				n.log.Info("SIGINT/SIGTERM received...killing workers...")
				mercy = time.Second
			}
			break loop
		case chain := <-n.reload:
			rctx, rcancel := context.WithTimeout(ctx, time.Minute)
			if err := n.pool.Reload(rctx, chain); err != nil {
				n.log.Error(fmt.Sprintf("reload failed, workers keep serving the old code: %v", err))
			}
			rcancel()
		case err := <-frontErr:
			runErr = err
			frontErr = nil
			break loop
		case err := <-poolErr:
			runErr = fmt.Errorf("worker pool stopped: %w", err)
			poolErr = nil
			break loop
		}
	}
	if n.before != nil {
		n.before()
	}
	// Stop accepting, let requests in flight finish, then stop workers.
	stopFront()
	if frontErr != nil {
		<-frontErr
	}
	stopPool()
	if poolErr != nil {
		<-poolErr
	}
	cancel()
	wg.Wait()
	n.close()
	n.log.Info("goodbye to uWSGI.")
	return runErr
}

// sweep removes expired cache items every cache-expire-freq seconds.
func (n *Node) sweep(ctx context.Context) {
	freq := time.Duration(n.cfg.Int("cache-expire-freq")) * time.Second
	if freq <= 0 {
		freq = 3 * time.Second
	}
	t := time.NewTicker(freq)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, l := range n.locals {
				l.Sweep(now)
			}
		}
	}
}

// watchTouch polls touch-reload and touch-chain-reload files once a second.
func (n *Node) watchTouch(ctx context.Context) {
	type watched struct {
		path  string
		chain bool
		mtime time.Time
	}
	var ws []*watched
	for _, p := range n.cfg.List("touch-reload") {
		ws = append(ws, &watched{path: p})
	}
	for _, p := range n.cfg.List("touch-chain-reload") {
		ws = append(ws, &watched{path: p, chain: true})
	}
	if len(ws) == 0 {
		return
	}
	for _, w := range ws {
		if st, err := os.Stat(w.path); err == nil {
			w.mtime = st.ModTime()
		}
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, w := range ws {
				st, err := os.Stat(w.path)
				if err != nil || st.ModTime().Equal(w.mtime) {
					continue
				}
				w.mtime = st.ModTime()
				if w.chain {
					n.log.Info(fmt.Sprintf("*** %s has been touched... chain reload !!! ***", w.path))
				} else {
					n.log.Info(fmt.Sprintf("*** %s has been touched... grace them all !!! ***", w.path))
				}
				n.Reload(w.chain)
			}
		}
	}
}

func (n *Node) close() {
	if n.front != nil && n.cfg.Bool("vacuum") {
		n.front.Vacuum()
	}
	if n.stats != nil {
		_ = n.stats.Close()
	}
	if n.metricsL != nil {
		_ = n.metricsL.Close()
	}
	for _, l := range n.locals {
		if err := l.Close(); err != nil {
			n.log.Error(fmt.Sprintf("cache %s: %v", l.Name(), err))
		}
	}
	if n.spawner != nil {
		_ = n.spawner.Close()
	}
	if n.workerOut != nil {
		_ = n.workerOut.Close()
	}
	if n.pidfile != "" && n.cfg.Bool("vacuum") {
		if err := os.Remove(n.pidfile); err == nil {
			n.log.Info("VACUUM: pidfile removed.")
		}
	}
	for _, f := range n.cfg.List("master-fifo") {
		if n.cfg.Bool("vacuum") {
			_ = os.Remove(f)
		}
	}
}

// poolConfig maps the worker options onto the pool's configuration.
func poolConfig(cfg *config.Config) (worker.Config, error) {
	pc := worker.DefaultConfig()
	secs := func(name string) time.Duration { return time.Duration(cfg.Int(name)) * time.Second }
	pc.Processes = max(cfg.Int("processes"), 1)
	pc.Threads = max(cfg.Int("threads"), 1)
	pc.Harakiri = secs("harakiri")
	pc.HarakiriVerbose = cfg.Bool("harakiri-verbose")
	pc.MaxRequests = cfg.Int("max-requests")
	pc.MaxRequestsDelta = cfg.Int("max-requests-delta")
	pc.MinWorkerLifetime = secs("min-worker-lifetime")
	pc.MaxWorkerLifetime = secs("max-worker-lifetime")
	pc.MaxWorkerLifetimeDelta = secs("max-worker-lifetime-delta")
	pc.ReloadOnRSS = uint64(cfg.Int("reload-on-rss")) << 20
	if m := cfg.Int("worker-reload-mercy"); m > 0 {
		pc.Mercy = time.Duration(m) * time.Second
	}
	pc.Cheaper = cfg.Int("cheaper")
	pc.CheaperInitial = cfg.Int("cheaper-initial")
	if cfg.IsSet("cheaper-step") {
		pc.CheaperStep = cfg.Int("cheaper-step")
	}
	if a := cfg.Str("cheaper-algo"); a != "" {
		pc.CheaperAlgo = a
	}
	if cfg.IsSet("cheaper-overload") {
		pc.CheaperOverload = cfg.Int("cheaper-overload")
	}
	if t := cfg.Int("http-timeout"); t > 0 {
		pc.QueueTimeout = time.Duration(t) * time.Second
	}
	if err := pc.Validate(); err != nil {
		return pc, err
	}
	return pc, nil
}

func frontendConfig(cfg *config.Config) (frontend.Config, error) {
	fc := frontend.DefaultConfig()
	if v := cfg.Int("buffer-size"); v > 0 {
		fc.BufferSize = min(v, 65535)
	}
	if v := cfg.Int("http-timeout"); v > 0 {
		fc.HTTPTimeout = time.Duration(v) * time.Second
	}
	if v := cfg.Int("socket-timeout"); v > 0 {
		fc.SocketTimeout = time.Duration(v) * time.Second
	}
	if v := cfg.Int("listen"); v > 0 {
		fc.Listen.Backlog = v
	}
	fc.Listen.SoKeepalive = cfg.Bool("so-keepalive")
	if m := cfg.Str("chmod-socket"); m != "" {
		mode, err := strconv.ParseUint(strings.TrimSpace(m), 8, 32)
		if err != nil || mode > 0o7777 {
			return fc, fmt.Errorf("chmod-socket %q is not an octal file mode such as 660", m)
		}
		fc.Listen.ChmodSocket = os.FileMode(mode)
	}
	return fc, nil
}

// uwsgiOpt is what apps read as uwsgi.opt: every option given, by its
// canonical name (the last value of repeated ones, as a string).
func uwsgiOpt(cfg *config.Config) map[string]string {
	opt := map[string]string{}
	for _, e := range cfg.Entries() {
		opt[e.Name] = e.Value
	}
	return opt
}
