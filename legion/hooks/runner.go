package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/gouwsgi/gouwsgi/legion/vip"
)

// Errors reported by the Runner.
var (
	// ErrNoAlarms is the failure of an alarm action when Config.Alarms is nil.
	ErrNoAlarms = errors.New("no alarm subsystem configured")
	// ErrClosed is returned by Close when called twice.
	ErrClosed = errors.New("hook runner closed")
)

// Event is one thing that happened to a legion, as seen by this node.
type Event struct {
	Phase  Phase
	Legion string
	// Node is this node's name.
	Node string
	// Lord is the current lord's name, "" when there is none.
	Lord string
	// Epoch is the fencing token of the lordship a lord or unlord event is
	// about; for other events, of the current lordship (0 when none).
	Epoch uint64
	// Member is the member that joined or left (node-joined, node-left).
	Member string
}

// Alarms is the part of the alarm subsystem that alarm actions use.
type Alarms interface {
	Raise(ctx context.Context, alarm, msg string) error
}

// VIP is what vip actions drive; *vip.Manager implements it. The Runner owns
// the VIPs it creates and closes them in Close.
type VIP interface {
	Claim(ctx context.Context, epoch uint64) error
	Release(ctx context.Context, epoch uint64) error
	// Drain keeps new connections away from a held address and waits for
	// those in progress, before a graceful handover.
	Drain(ctx context.Context) error
	CleanStale(ctx context.Context) error
	Reconcile(ctx context.Context, lord bool, epoch uint64) error
	// State reports whether the address is held, and under which epoch.
	State() (held bool, epoch uint64)
	Close() error
}

// Config configures a Runner.
type Config struct {
	// Hooks are the declared hooks, in declaration order.
	Hooks []Hook
	// Timeout bounds every action (a cmd is killed, with its children, when
	// it runs out).
	Timeout time.Duration
	// Shell runs cmd and exec actions as Shell -c <command>.
	Shell string
	// Env is the base environment of commands; nil means os.Environ().
	Env []string
	// Alarms receives alarm actions; nil makes them fail with ErrNoAlarms.
	Alarms Alarms
	// NewVIP builds the VIP for a vip action's spec; nil means a vip.Manager
	// with vip.DefaultConfig and this Logger.
	NewVIP func(vip.Spec) (VIP, error)
	// Logger receives hook log lines and command output; nil means slog.Default().
	Logger *slog.Logger
	// Fence, when set, tells whether this node is still lord of legion
	// under epoch; VIPs declared in legion-lord check it under their own lock
	// before adding the address (see vip.Config.Fence).
	Fence func(legion string, epoch uint64) bool
	// OnFailure, if set, is called (on the legion's hook goroutine) after a
	// failed action has been logged. The legion uses it for policies such as
	// uWSGI's legion-death-on-lord-error, or to stop the node when a VIP
	// cannot be released.
	OnFailure func(ev Event, a Action, err error)
}

// DefaultConfig returns a fully populated configuration without hooks.
func DefaultConfig() Config {
	return Config{
		Timeout: 30 * time.Second,
		Shell:   "/bin/sh",
		Logger:  slog.Default(),
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Timeout <= 0 {
		return fmt.Errorf("hooks: timeout %s must be positive", c.Timeout)
	}
	if c.Shell == "" {
		return errors.New("hooks: no shell")
	}
	owner := map[string]string{}
	for _, h := range c.Hooks {
		if h.Legion == "" || !phaseKnown(h.Phase) || h.Action.Kind == "" {
			return fmt.Errorf("hooks: incomplete hook %q", h)
		}
		if h.Action.Kind != KindVIP {
			continue
		}
		key := h.Action.VIP.Addr().String()
		if other, ok := owner[key]; ok && other != h.Legion {
			return fmt.Errorf("hooks: vip %s is declared by legions %s and %s; a VIP belongs to one legion", key, other, h.Legion)
		}
		owner[key] = h.Legion
	}
	return nil
}

// Runner runs hooks. Each legion has its own queue and goroutine, so hooks
// of one legion run one at a time in the order their events were fired, and
// a slow hook of one legion delays neither other legions nor the caller.
type Runner struct {
	cfg  Config
	log  *slog.Logger
	base context.Context // cancelled by Close when its deadline passes
	stop context.CancelFunc

	// vips maps a vip action's address to its VIP; lordVIPs lists, per legion,
	// the VIPs declared in legion-lord, which the runner also releases on
	// unlord and death and cleans at setup without being told.
	vips     map[string]VIP
	lordVIPs map[string][]vipRef

	mu     sync.Mutex
	closed bool
	queues map[string]*queue
	wg     sync.WaitGroup
}

type vipRef struct {
	spec vip.Spec
	v    VIP
}

// NewRunner validates cfg, creates the VIPs its vip actions name (so a bad
// interface is reported at start) and returns a running Runner.
func NewRunner(cfg Config) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Env == nil {
		cfg.Env = os.Environ()
	}
	log := cfg.Logger.With("component", "legion-hooks")
	owner := map[string]string{}
	for _, h := range cfg.Hooks {
		if h.Action.Kind == KindVIP {
			owner[h.Action.VIP.Addr().String()] = h.Legion
		}
	}
	if cfg.NewVIP == nil {
		cfg.NewVIP = func(s vip.Spec) (VIP, error) {
			vc := vip.DefaultConfig(s)
			vc.Logger = cfg.Logger
			if cfg.Fence != nil {
				legion := owner[s.Addr().String()]
				vc.Fence = func(epoch uint64) bool { return cfg.Fence(legion, epoch) }
			}
			return vip.New(vc)
		}
	}
	base, stop := context.WithCancel(context.Background())
	r := &Runner{
		cfg: cfg, log: log, base: base, stop: stop,
		vips:     map[string]VIP{},
		lordVIPs: map[string][]vipRef{},
		queues:   map[string]*queue{},
	}
	for _, h := range cfg.Hooks {
		if h.Action.Kind != KindVIP {
			continue
		}
		key := h.Action.VIP.Addr().String()
		v, ok := r.vips[key]
		if !ok {
			var err error
			if v, err = cfg.NewVIP(h.Action.VIP); err != nil {
				r.closeVIPs()
				stop()
				return nil, fmt.Errorf("%s: %w", h, err)
			}
			r.vips[key] = v
		}
		if h.Phase == PhaseLord {
			r.lordVIPs[h.Legion] = append(r.lordVIPs[h.Legion], vipRef{h.Action.VIP, v})
		}
	}
	return r, nil
}

// Fire queues the hooks of ev and returns at once. The returned channel is
// closed when they have all run (at once if there are none); callers that
// must wait, such as a shutdown running death hooks, wait on it with their
// own deadline.
func (r *Runner) Fire(ev Event) <-chan struct{} {
	steps := r.plan(ev)
	if len(steps) == 0 {
		return closedChan()
	}
	return r.enqueue(ev.Legion, func(ctx context.Context) {
		for _, s := range steps {
			r.runStep(ctx, ev, s)
		}
	})
}

// ReconcileVIPs queues, behind the legion's pending hooks, a reconcile of the
// VIPs declared in its legion-lord hooks: present if lord, absent otherwise.
// The legion's leader loop calls it periodically and on lease changes.
func (r *Runner) ReconcileVIPs(legion string, lord bool, epoch uint64) <-chan struct{} {
	refs := r.lordVIPs[legion]
	if len(refs) == 0 {
		return closedChan()
	}
	return r.enqueue(legion, func(ctx context.Context) {
		for _, ref := range refs {
			actx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
			err := ref.v.Reconcile(actx, lord, epoch)
			cancel()
			if err != nil {
				r.log.Error("[uwsgi-legion] ERROR, vip reconcile failed", "legion", legion, "vip", ref.spec.String(), "lord", lord, "epoch", epoch, "error", err)
			}
		}
	})
}

// ReleaseVIPs removes the VIPs of legion's legion-lord hooks now, on the
// caller's goroutine: a lord losing its lease must drop the address within
// the lease margin, which must not wait behind slow cmd: hooks in the
// legion's queue.
func (r *Runner) ReleaseVIPs(ctx context.Context, legion string, epoch uint64) error {
	var errs []error
	for _, ref := range r.lordVIPs[legion] {
		if err := ref.v.Release(ctx, epoch); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DrainVIPs drains the VIPs of legion's legion-lord hooks, all at once, on
// the caller's goroutine: a graceful handover calls it while this node is
// still lord, then releases them.
func (r *Runner) DrainVIPs(ctx context.Context, legion string) error {
	refs := r.lordVIPs[legion]
	errs := make([]error, len(refs))
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Go(func() { errs[i] = ref.v.Drain(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close stops accepting events, waits for queued hooks to finish, then
// closes the VIPs (without releasing them: death hooks do that). If ctx ends
// first, running actions are cancelled and ctx's error is returned.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.closed = true
	for _, q := range r.queues {
		q.close()
	}
	r.mu.Unlock()

	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("hooks: close: %w", ctx.Err())
		r.stop()
		<-done
	}
	r.stop()
	r.closeVIPs()
	return err
}

func (r *Runner) closeVIPs() {
	for key, v := range r.vips {
		if err := v.Close(); err != nil {
			r.log.Warn("closing vip failed", "vip", key, "error", err)
		}
	}
}

// step is one action to run for an event; implied marks a vip release or
// cleanup that the runner adds because the VIP is declared in legion-lord.
type step struct {
	action  Action
	implied bool
}

// plan lists the actions for ev: for unlord, death and setup, the implied
// VIP releases come first (a VIP must be gone before anything else happens),
// then the declared hooks in declaration order.
func (r *Runner) plan(ev Event) []step {
	var steps []step
	declared := map[string]bool{}
	for _, h := range r.cfg.Hooks {
		if h.Legion == ev.Legion && h.Phase == ev.Phase && h.Action.Kind == KindVIP {
			declared[h.Action.VIP.Addr().String()] = true
		}
	}
	switch ev.Phase {
	case PhaseUnlord, PhaseDeath, PhaseSetup:
		for _, ref := range r.lordVIPs[ev.Legion] {
			if !declared[ref.spec.Addr().String()] {
				steps = append(steps, step{action: Action{Kind: KindVIP, Arg: ref.spec.String(), VIP: ref.spec}, implied: true})
			}
		}
	}
	for _, h := range r.cfg.Hooks {
		if h.Legion == ev.Legion && h.Phase == ev.Phase {
			steps = append(steps, step{action: h.Action})
		}
	}
	return steps
}

// runStep runs one action, logging the call and any failure the way uWSGI
// does. A failure never stops the following actions.
func (r *Runner) runStep(ctx context.Context, ev Event, s step) {
	attrs := []any{"legion", ev.Legion, "phase", string(ev.Phase), "epoch", ev.Epoch}
	call := fmt.Sprintf("[uwsgi-legion] (phase: %s legion: %s) calling %s", ev.Phase, ev.Legion, s.action)
	if s.implied {
		call += " (implied by legion-lord)"
	}
	r.log.Info(call, attrs...)

	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	start := time.Now()
	code, err := r.do(ctx, ev, s.action)
	if code != 0 || err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %s: %w", r.cfg.Timeout, ctx.Err())
		}
		r.log.Error(fmt.Sprintf("[uwsgi-legion] ERROR, %s hook returned: %d", ev.Phase, code),
			append(attrs, "action", s.action.String(), "took", time.Since(start), "error", err)...)
		if r.cfg.OnFailure != nil {
			r.cfg.OnFailure(ev, s.action, fmt.Errorf("%s hook %s returned %d: %w", ev.Phase, s.action, code, err))
		}
	}
}

// do runs a, returning uWSGI's notion of its result (the exit status for
// commands, -1 for other failures) and the underlying error.
func (r *Runner) do(ctx context.Context, ev Event, a Action) (int, error) {
	var err error
	switch a.Kind {
	case KindCmd, KindExec:
		return r.runCommand(ctx, ev, a.Arg)
	case KindLog:
		r.log.Info(a.Arg, "legion", ev.Legion, "phase", string(ev.Phase), "epoch", ev.Epoch)
	case KindAlarm:
		if r.cfg.Alarms == nil {
			err = ErrNoAlarms
		} else {
			err = r.cfg.Alarms.Raise(ctx, a.AlarmName, a.AlarmMsg)
		}
	case KindVIP:
		err = r.doVIP(ctx, ev, a.VIP)
	default:
		err = fmt.Errorf("action kind %q cannot run", a.Kind)
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

func (r *Runner) doVIP(ctx context.Context, ev Event, spec vip.Spec) error {
	v := r.vips[spec.Addr().String()]
	switch ev.Phase {
	case PhaseLord:
		return v.Claim(ctx, ev.Epoch)
	case PhaseUnlord, PhaseDeath:
		return v.Release(ctx, ev.Epoch)
	case PhaseSetup:
		return v.CleanStale(ctx)
	}
	return fmt.Errorf("vip action in phase %s", ev.Phase)
}

// runCommand runs command through the shell with the event in its
// environment, sending its output to the log line by line.
func (r *Runner) runCommand(ctx context.Context, ev Event, command string) (int, error) {
	cmd := exec.CommandContext(ctx, r.cfg.Shell, "-c", command)
	cmd.Env = append(append([]string(nil), r.cfg.Env...), eventEnv(ev)...)
	attrs := []any{"legion", ev.Legion, "phase", string(ev.Phase)}
	stdout := newLineLogger(r.log, append(attrs, "stream", "stdout"))
	stderr := newLineLogger(r.log, append(attrs, "stream", "stderr"))
	cmd.Stdout, cmd.Stderr = stdout, stderr
	killGroupOnCancel(cmd)
	err := cmd.Run()
	stdout.flush()
	stderr.flush()
	if errors.Is(err, exec.ErrWaitDelay) {
		// It exited 0 but left a background child holding its output: the
		// hook succeeded; the child keeps running, unlogged.
		r.log.Warn("hook command left a background process holding its output", append(attrs, "command", command)...)
		return 0, nil
	}
	if err == nil {
		return 0, nil
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode(), err
	}
	return -1, fmt.Errorf("run %s -c: %w", r.cfg.Shell, err)
}

// eventEnv is the environment a command sees: gouwsgi's names, plus the
// legion name under the name a uWSGI-era script may look for.
func eventEnv(ev Event) []string {
	return []string{
		"GOUWSGI_LEGION=" + ev.Legion,
		"GOUWSGI_PHASE=" + string(ev.Phase),
		"GOUWSGI_NODE=" + ev.Node,
		"GOUWSGI_LORD=" + ev.Lord,
		"GOUWSGI_EPOCH=" + strconv.FormatUint(ev.Epoch, 10),
		"GOUWSGI_MEMBER=" + ev.Member,
		"UWSGI_LEGION_NAME=" + ev.Legion,
		"UWSGI_LEGION_PHASE=" + string(ev.Phase),
	}
}

func (r *Runner) enqueue(legion string, run func(context.Context)) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.log.Warn("hook event after close ignored", "legion", legion)
		return closedChan()
	}
	q, ok := r.queues[legion]
	if !ok {
		q = newQueue()
		r.queues[legion] = q
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			q.serve(r.base)
		}()
	}
	return q.push(run)
}

func closedChan() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
