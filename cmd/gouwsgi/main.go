// Command gouwsgi runs a node: it reads a uWSGI-style configuration (ini
// files, flags, UWSGI_* variables), serves the WSGI app through its worker
// pool, and joins the cluster when legion options are given.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gouwsgi/gouwsgi/node"
	"github.com/gouwsgi/gouwsgi/node/alarm"
	"github.com/gouwsgi/gouwsgi/node/config"
	"github.com/gouwsgi/gouwsgi/node/logging"
	"github.com/gouwsgi/gouwsgi/rpc/admin"
	"github.com/gouwsgi/gouwsgi/rpc/bind"
)

// daemonEnv marks the re-executed, detached child of daemonize.
const daemonEnv = "GOUWSGI_DAEMONIZED"

func main() {
	// Nothing reads gouwsgi's heap profiles: sampling one allocation per
	// 512 KiB would walk its stack and keep bucket records for nothing.
	runtime.MemProfileRate = 0
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: gouwsgi --ini app.ini[:section] | gouwsgi --http :9090 --wsgi-file app.py [--option value ...]\nRun `gouwsgi --help` for every option.")
		return 2
	}
	switch args[0] {
	case "--help", "-h", "help":
		printHelp(stdout)
		return 0
	case "--version", "version":
		fmt.Fprintln(stdout, "gouwsgi", version)
		return 0
	}
	cfg, err := config.Load(args, os.Environ())
	if err != nil {
		fmt.Fprintf(stderr, "gouwsgi: %v\n", err)
		return 1
	}
	if logfile := cfg.Str("daemonize"); logfile != "" && os.Getenv(daemonEnv) == "" {
		if err := daemonize(logfile, cfg.Bool("log-truncate")); err != nil {
			fmt.Fprintf(stderr, "gouwsgi: daemonize: %v\n", err)
			return 1
		}
		return 0
	}
	var out io.Writer = stderr
	if logto := cfg.Str("logto"); logto != "" {
		f, err := logging.OpenFile(logto, cfg.Bool("log-truncate"))
		if err != nil {
			fmt.Fprintf(stderr, "gouwsgi: logto: %v\n", err)
			return 1
		}
		defer f.Close()
		out = f
	}
	sink := logging.NewSink(out)
	log := sink.Logger(slog.LevelInfo)
	log.Info(fmt.Sprintf("*** Starting gouwsgi %s (uWSGI-compatible) ***", version))
	for _, n := range cfg.Notices() {
		log.Warn(n)
	}
	if name := cfg.Str("procname-master"); name != "" {
		setProcName(name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alarmCfg := alarm.FromConfig(cfg)
	// The cluster side of the alarms exists before the manager, which
	// offers it every incident; the legion node is built after both.
	cl, err := newCluster(cfg, alarmCfg, log)
	if err != nil {
		log.Error(fmt.Sprintf("gouwsgi: legion: %v", err))
		return 1
	}
	var alarmOpts []alarm.Option
	if cl != nil {
		alarmOpts = append(alarmOpts, alarm.WithCluster(cl.bridge), alarm.WithNode(cl.lc.NodeName))
	}
	am, err := alarm.New(alarmCfg, log, alarmOpts...)
	if err != nil {
		log.Error(fmt.Sprintf("gouwsgi: %v", err))
		return 1
	}
	sink.AddTap(am.LogLine)
	go func() { _ = am.Run(ctx) }()
	// A refused admin address is a configuration error: said before any
	// worker starts, not after the app is loaded.
	acfg, explicitAdmin := adminConfig(cfg, log)
	if err := acfg.Validate(); err != nil && explicitAdmin {
		log.Error(fmt.Sprintf("gouwsgi: admin API: %v", err))
		return 1
	}
	if cl != nil {
		if err := cl.build(cfg, am, log); err != nil {
			log.Error(fmt.Sprintf("gouwsgi: legion: %v", err))
			return 1
		}
	}
	deps := node.Deps{Sink: sink, Log: log, Alarms: am, Events: am, Backlog: am}
	if deps.Caches, err = cl.cacheRegistry(); err != nil {
		log.Error(fmt.Sprintf("gouwsgi: %v", err))
		return 1
	}
	adeps := admin.Deps{Alarms: bind.Alarms{M: am}}
	if cl != nil {
		// With a legion the admin API shows the cluster's history.
		adeps.Alarms = cl.bridge
		deps.Legions = func() []any { return bind.LegionStats(cl.node) }
		deps.BeforeStop = func() { cl.stop(log) }
		adeps.Legion = bind.Legion{L: cl.node}
	}
	n, err := node.New(ctx, cfg, deps)
	if err != nil {
		log.Error(fmt.Sprintf("gouwsgi: %v", err))
		if errors.Is(err, node.ErrNoApp) {
			return 22
		}
		return 1
	}
	adeps.Node, adeps.Caches = bind.Node{N: n, NodeID: nodeID(cl)}, bind.Caches{Reg: n.Caches()}
	adm, err := startAdmin(acfg, explicitAdmin, adeps, log)
	if err != nil {
		log.Error(fmt.Sprintf("gouwsgi: %v", err))
		return 1
	}
	if adm != nil {
		go func() {
			if err := adm.Serve(ctx); err != nil {
				log.Error(fmt.Sprintf("admin API stopped: %v", err))
			}
		}()
	}
	if cl != nil {
		// Joined only once the listeners are open, so a VIP this node
		// claims serves at once.
		clusterCtx, stopCluster := context.WithCancel(context.Background())
		defer stopCluster()
		cl.start(clusterCtx)
	}
	n.HandleSignals(ctx)
	log.Info(fmt.Sprintf("gouwsgi master ready (pid: %d)", os.Getpid()))
	sizeScheduler(max(cfg.Int("processes"), 1), n.ServesAlone(), log)
	trimMemory(ctx, n, log)
	if err := n.Run(ctx); err != nil {
		log.Error(fmt.Sprintf("gouwsgi: %v", err))
		return 1
	}
	return 0
}

// adminConfig is the admin API's configuration from the admin options;
// explicit is false when no address was configured (the default is used).
func adminConfig(cfg *config.Config, log *slog.Logger) (acfg admin.Config, explicit bool) {
	acfg = admin.Config{
		Addr: cfg.Str("admin"), CertFile: cfg.Str("admin-tls-cert"), KeyFile: cfg.Str("admin-tls-key"),
		ClientCAFile: cfg.Str("admin-tls-ca"), TokenFile: cfg.Str("admin-token-file"), Logger: log,
	}
	explicit = acfg.Addr != ""
	if !explicit {
		acfg.Addr = admin.DefaultAddr
	}
	return acfg, explicit
}

// startAdmin opens the admin API. Without an admin option it tries the
// default loopback address and, when another gouwsgi on this host holds
// it, goes on without one (said in the log); a configured address that
// cannot be opened is an error.
func startAdmin(acfg admin.Config, explicit bool, deps admin.Deps, log *slog.Logger) (*admin.Server, error) {
	srv, err := admin.New(acfg, deps)
	if err != nil {
		if explicit {
			return nil, fmt.Errorf("admin API on %s: %w", acfg.Addr, err)
		}
		log.Warn(fmt.Sprintf("admin API not started on the default %s: %v (set admin = unix:///path or host:port)", acfg.Addr, err))
		return nil, nil
	}
	log.Info(fmt.Sprintf("admin API (gRPC) on %s", srv.Addr()))
	return srv, nil
}

// nodeID names this node in the admin API: its legion node id, else the
// host name (as alarms name it).
func nodeID(cl *clusterNode) string {
	if cl != nil {
		return cl.node.ID()
	}
	host, _ := os.Hostname()
	return host
}

// masterProcs is how many cores the master's Go scheduler uses unless
// GOMAXPROCS says otherwise: half a core per worker, rounded up, at most
// what the runtime found (CPUs, cgroup quota). A Python worker runs under
// the GIL and never uses more than a core, and passing a request on costs
// the master well under half of what the cheapest request costs a worker
// (hello world: 40 µs against 90), so more would sit idle. Each one costs
// memory (a thread or two, per-P caches: 0.5 MiB of a 20 MiB hello-world
// tree with 2 workers). When routes or static files let the master answer
// requests alone (alone), those requests are all its own CPU, and it keeps
// every core the runtime found (measured: cache hits at 256 connections
// 25% slower on one core of two).
func masterProcs(workers, available int, alone bool) int {
	if alone {
		return available
	}
	return max(1, min((workers+1)/2, available))
}

// sizeScheduler applies masterProcs to this configuration.
func sizeScheduler(workers int, alone bool, log *slog.Logger) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	n := masterProcs(workers, runtime.GOMAXPROCS(0), alone)
	runtime.GOMAXPROCS(n)
	why := fmt.Sprintf("for %d workers", workers)
	if alone {
		why = "(routes or static files answer requests without a worker)"
	}
	log.Info(fmt.Sprintf("master uses %d of %d cores %s (set GOMAXPROCS to change)", n, runtime.NumCPU(), why))
}

// trimMemory keeps the master small: a lower GC target (its live heap is
// a few MiB, so this costs little CPU; GOGC in the environment wins), and,
// once start-up is over and then every minute, the pages start-up alone
// needed are handed back (node.TrimMemory; measured: 5 MiB of the master's
// PSS under load and 1.2 MiB of the zygote's).
func trimMemory(ctx context.Context, n *node.Node, log *slog.Logger) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	go func() {
		// Soon after start (start-up is over once the workers are up),
		// then now and then: code that ran once (a reload, an admin call)
		// should not stay resident either.
		t := time.NewTimer(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// Heap freed by start-up (config, app import bookkeeping) goes
			// back to the kernel now rather than when the scavenger gets to it.
			debug.FreeOSMemory()
			if err := n.TrimMemory(); err != nil {
				// A zygote being replaced is gone for a moment; try again
				// next time rather than never.
				log.Debug("could not trim start-up pages", "err", err)
			}
			t.Reset(time.Minute)
		}
	}()
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// daemonize re-executes gouwsgi detached (new session, no terminal) with
// its output in logfile, as uWSGI's daemonize does, and returns in the
// parent once the child started.
func daemonize(logfile string, truncate bool) error {
	f, err := logging.OpenFile(logfile, truncate)
	if err != nil {
		return err
	}
	defer f.Close()
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = append(os.Environ(), daemonEnv+"=1")
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start detached gouwsgi: %w", err)
	}
	return cmd.Process.Release()
}

// setProcName sets the master's name as ps -o comm and top show it (the
// kernel keeps 15 bytes).
func setProcName(name string) {
	if len(name) > 15 {
		name = name[:15]
	}
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return
	}
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(p)), 0, 0, 0)
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, `Usage: gouwsgi [--ini file.ini[:section]] [--OPTION VALUE | --OPTION=VALUE | --FLAG ...]

Every option can be given on the command line, in an ini file ([uwsgi]
section by default) or as a UWSGI_OPTION environment variable. Examples:

  gouwsgi --http :9090 --wsgi-file app.py --master --processes 2
  gouwsgi --chdir . --module mysite.wsgi:application --socket /tmp/app.sock --chmod-socket 664
  gouwsgi --ini uwsgi.ini:production

Options (see docs/options.md for defaults and differences from uWSGI):`)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, o := range config.Options() {
		if o.Status != config.Supported {
			continue
		}
		names := "--" + o.Name
		if o.Short != 0 {
			names = "-" + string(o.Short) + ", " + names
		}
		doc := o.Doc
		if i := strings.Index(doc, ". "); i > 0 {
			doc = doc[:i+1]
		}
		fmt.Fprintf(tw, "  %s\t%s\n", names, doc)
	}
	tw.Flush()
	fmt.Fprintln(w, `
Environment of the master (Go runtime):
  GOMAXPROCS  cores the master uses; default half a core per worker, or every
              core when routes or static files answer requests without a worker
  GOGC        garbage collector target; default 50`)
}
