package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/legion"
	"github.com/gouwsgi/gouwsgi/legion/vip"
)

// logBuffer collects the runner's slog output (written from queue goroutines).
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// mustHooks parses "option = value" lines.
func mustHooks(t *testing.T, lines ...string) []Hook {
	t.Helper()
	var hooks []Hook
	for _, l := range lines {
		opt, val, _ := strings.Cut(l, "=")
		h, err := ParseOption(strings.TrimSpace(opt), val)
		if err != nil {
			t.Fatal(err)
		}
		hooks = append(hooks, h)
	}
	return hooks
}

// newRunner builds a runner logging into the returned buffer and closes it
// at the end of the test.
func newRunner(t *testing.T, cfg Config) (*Runner, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	r, err := NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
			t.Error(err)
		}
	})
	return r, logs
}

func wait(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("hooks did not finish within 10s")
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestHooksRunInOrderWithEnvironment(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	cfg := DefaultConfig()
	cfg.Hooks = mustHooks(t,
		"legion-lord = web cmd:echo 1 $GOUWSGI_LEGION $GOUWSGI_PHASE $GOUWSGI_NODE $GOUWSGI_LORD $GOUWSGI_EPOCH $UWSGI_LEGION_NAME $UWSGI_LEGION_PHASE >> "+out,
		"legion-lord = other cmd:echo other-legion >> "+out,
		"legion-lord = web log:i am now the lord",
		"legion-lord = web exec:echo 2 >> "+out,
		"legion-unlord = web cmd:echo 3 >> "+out,
		"legion-node-joined = web cmd:echo joined $GOUWSGI_MEMBER >> "+out,
	)
	r, logs := newRunner(t, cfg)

	r.Fire(Event{Phase: PhaseLord, Legion: "web", Node: "n1", Lord: "n1", Epoch: 42})
	r.Fire(Event{Phase: PhaseUnlord, Legion: "web", Node: "n1", Lord: "n2", Epoch: 43})
	wait(t, r.Fire(Event{Phase: PhaseNodeJoined, Legion: "web", Node: "n1", Lord: "n2", Epoch: 43, Member: "n3"}))

	want := []string{"1 web lord n1 n1 42 web lord", "2", "3", "joined n3"}
	if got := readLines(t, out); !slices.Equal(got, want) {
		t.Errorf("hook output\n got %q\nwant %q", got, want)
	}
	// The calls are logged in uWSGI's words and in order.
	log := logs.String()
	calls := []string{
		"[uwsgi-legion] (phase: lord legion: web) calling cmd:echo 1",
		"i am now the lord",
		"[uwsgi-legion] (phase: lord legion: web) calling exec:echo 2",
		"[uwsgi-legion] (phase: unlord legion: web) calling cmd:echo 3",
	}
	pos := 0
	for _, c := range calls {
		i := strings.Index(log[pos:], c)
		if i < 0 {
			t.Fatalf("log lacks %q after position %d:\n%s", c, pos, log)
		}
		pos += i + len(c)
	}
	if strings.Contains(log, "ERROR") {
		t.Errorf("unexpected error in log:\n%s", log)
	}
}

func TestFireDoesNotBlockAndKeepsOrder(t *testing.T) {
	dir := t.TempDir()
	gate, out := filepath.Join(dir, "gate"), filepath.Join(dir, "out")
	cfg := DefaultConfig()
	cfg.Hooks = mustHooks(t,
		// The lord hook waits for the test to open the gate.
		fmt.Sprintf("legion-lord = web cmd:while [ ! -e %s ]; do sleep 0.01; done; echo lord >> %s", gate, out),
		"legion-unlord = web cmd:echo unlord >> "+out,
		"legion-lord = db cmd:echo db-lord >> "+out,
	)
	r, _ := newRunner(t, cfg)

	lord := r.Fire(Event{Phase: PhaseLord, Legion: "web", Epoch: 1})
	unlord := r.Fire(Event{Phase: PhaseUnlord, Legion: "web", Epoch: 2})
	// Another legion's hooks run while web's lord hook is stuck.
	wait(t, r.Fire(Event{Phase: PhaseLord, Legion: "db", Epoch: 1}))
	select {
	case <-lord:
		t.Fatal("lord hooks finished before the gate opened")
	case <-unlord:
		t.Fatal("unlord hooks overtook the pending lord hook")
	default:
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	wait(t, unlord)
	select {
	case <-lord:
	default:
		t.Fatal("unlord finished before lord")
	}
	if got, want := readLines(t, out), []string{"db-lord", "lord", "unlord"}; !slices.Equal(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
}

func TestFailingHookIsLoggedAndDoesNotStopOthers(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	cfg := DefaultConfig()
	cfg.Hooks = mustHooks(t,
		"legion-lord = web cmd:echo to-stdout; echo to-stderr >&2; exit 3",
		"legion-lord = web alarm:pager lord changed",
		"legion-lord = web cmd:echo after >> "+out,
	)
	var failed []string // appended on the legion's goroutine, read after wait
	cfg.OnFailure = func(ev Event, a Action, err error) {
		failed = append(failed, fmt.Sprintf("%s %s: %v", ev.Phase, a.Kind, err))
	}
	r, logs := newRunner(t, cfg) // no alarm subsystem: that action fails too
	wait(t, r.Fire(Event{Phase: PhaseLord, Legion: "web", Epoch: 9}))

	wantFailed := []string{
		"lord cmd: lord hook cmd:echo to-stdout; echo to-stderr >&2; exit 3 returned 3: exit status 3",
		"lord alarm: lord hook alarm:pager lord changed returned -1: no alarm subsystem configured",
	}
	if !slices.Equal(failed, wantFailed) {
		t.Errorf("OnFailure calls\n got %q\nwant %q", failed, wantFailed)
	}

	if got := readLines(t, out); !slices.Equal(got, []string{"after"}) {
		t.Errorf("later hook output %q", got)
	}
	log := logs.String()
	for _, want := range []string{
		"[uwsgi-legion] ERROR, lord hook returned: 3",
		"[uwsgi-legion] ERROR, lord hook returned: -1",
		"no alarm subsystem configured",
		"line=to-stdout",
		"line=to-stderr",
		"epoch=9",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestHookTimeoutKillsCommand(t *testing.T) {
	dir := t.TempDir()
	late, out := filepath.Join(dir, "late"), filepath.Join(dir, "out")
	cfg := DefaultConfig()
	cfg.Timeout = 200 * time.Millisecond
	cfg.Hooks = mustHooks(t,
		fmt.Sprintf("legion-lord = web cmd:sleep 5; touch %s", late),
		"legion-lord = web cmd:echo next >> "+out,
	)
	r, logs := newRunner(t, cfg)
	start := time.Now()
	wait(t, r.Fire(Event{Phase: PhaseLord, Legion: "web"}))
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("hooks took %s: the timed-out command was not killed", took)
	}
	if got := readLines(t, out); !slices.Equal(got, []string{"next"}) {
		t.Errorf("hook after the timeout: %q", got)
	}
	log := logs.String()
	if !strings.Contains(log, "[uwsgi-legion] ERROR, lord hook returned: -1") || !strings.Contains(log, "timed out after 200ms") {
		t.Errorf("timeout not logged:\n%s", log)
	}
	// The shell's child (sleep) died with it: nothing touches the file later.
	time.Sleep(100 * time.Millisecond) // proving an absence needs a wait
	if _, err := os.Stat(late); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the killed command still ran its tail: %v", err)
	}
}

type alarmRecorder struct {
	mu     sync.Mutex
	raised []string
}

func (a *alarmRecorder) Raise(_ context.Context, alarm, msg string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.raised = append(a.raised, alarm+"|"+msg)
	return nil
}

func TestAlarmAction(t *testing.T) {
	alarms := &alarmRecorder{}
	cfg := DefaultConfig()
	cfg.Alarms = alarms
	cfg.Hooks = mustHooks(t, "legion-node-left = web alarm:pager a node left the legion")
	r, logs := newRunner(t, cfg)
	wait(t, r.Fire(Event{Phase: PhaseNodeLeft, Legion: "web", Member: "n2"}))
	alarms.mu.Lock()
	defer alarms.mu.Unlock()
	if want := []string{"pager|a node left the legion"}; !slices.Equal(alarms.raised, want) {
		t.Errorf("raised %q, want %q", alarms.raised, want)
	}
	if strings.Contains(logs.String(), "ERROR") {
		t.Errorf("unexpected error:\n%s", logs)
	}
}

// vipRecorder stands in for the network side of vip actions; the runner's
// part (which call, with which epoch, in which order) is what is tested here.
type vipRecorder struct {
	spec  vip.Spec
	mu    *sync.Mutex
	calls *[]string
}

func (v vipRecorder) record(s string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	*v.calls = append(*v.calls, v.spec.Addr().String()+" "+s)
	return nil
}

func (v vipRecorder) Claim(_ context.Context, epoch uint64) error {
	return v.record(fmt.Sprintf("claim %d", epoch))
}

func (v vipRecorder) Release(_ context.Context, epoch uint64) error {
	return v.record(fmt.Sprintf("release %d", epoch))
}
func (v vipRecorder) Drain(context.Context) error      { return v.record("drain") }
func (v vipRecorder) CleanStale(context.Context) error { return v.record("clean") }
func (v vipRecorder) Reconcile(_ context.Context, lord bool, epoch uint64) error {
	return v.record(fmt.Sprintf("reconcile %v %d", lord, epoch))
}
func (v vipRecorder) Close() error { return v.record("close") }

func (v vipRecorder) State() (bool, uint64) { return false, 0 }

func TestVIPActions(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	created := 0
	cfg := DefaultConfig()
	cfg.NewVIP = func(s vip.Spec) (VIP, error) {
		created++
		return vipRecorder{spec: s, mu: &mu, calls: &calls}, nil
	}
	cfg.Hooks = mustHooks(t,
		"legion-lord = web vip:10.0.0.100/24,dev=eth0",
		"legion-lord = web log:claimed",
		"legion-unlord = web log:unlording",
		"legion-unlord = other vip:10.0.0.200/24", // explicit release in another legion
	)
	r, _ := newRunner(t, cfg)
	if created != 2 {
		t.Errorf("created %d VIPs, want one per address", created)
	}
	wait(t, r.Fire(Event{Phase: PhaseSetup, Legion: "web"}))
	wait(t, r.Fire(Event{Phase: PhaseLord, Legion: "web", Epoch: 5}))
	wait(t, r.ReconcileVIPs("web", true, 5))
	wait(t, r.Fire(Event{Phase: PhaseUnlord, Legion: "web", Epoch: 6}))
	wait(t, r.Fire(Event{Phase: PhaseDeath, Legion: "web", Epoch: 6}))
	wait(t, r.Fire(Event{Phase: PhaseUnlord, Legion: "other", Epoch: 7}))
	wait(t, r.ReconcileVIPs("nolegion", true, 1)) // nothing to reconcile: done at once
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"10.0.0.100 clean",
		"10.0.0.100 claim 5",
		"10.0.0.100 reconcile true 5",
		"10.0.0.100 release 6",
		"10.0.0.100 release 6",
		"10.0.0.200 release 7",
	}
	if !slices.Equal(calls[:len(want)], want) {
		t.Errorf("vip calls\n got %q\nwant %q", calls, want)
	}
	closes := calls[len(want):]
	slices.Sort(closes)
	if !slices.Equal(closes, []string{"10.0.0.100 close", "10.0.0.200 close"}) {
		t.Errorf("close calls %q", closes)
	}
}

func TestRunnerConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "timeout"},
		{"no shell", func(c *Config) { c.Shell = "" }, "no shell"},
		{"incomplete hook", func(c *Config) { c.Hooks = []Hook{{Phase: PhaseLord}} }, "incomplete hook"},
		{"vip in two legions", func(c *Config) {
			c.Hooks = mustHooks(t, "legion-lord = a vip:10.0.0.100/24", "legion-lord = b vip:10.0.0.100/24")
		}, "declared by legions a and b"},
		{"vip manager fails", func(c *Config) {
			c.Hooks = mustHooks(t, "legion-lord = a vip:10.0.0.100/24,dev=nosuch0")
			c.NewVIP = func(vip.Spec) (VIP, error) { return nil, errors.New("interface nosuch0 not found") }
		}, "legion-lord = a vip:10.0.0.100/24,dev=nosuch0: interface nosuch0 not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mutate(&cfg)
			if _, err := NewRunner(cfg); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

func TestCloseDrainsAndRefusesLateEvents(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	cfg := DefaultConfig()
	cfg.Hooks = mustHooks(t, "legion-death = web cmd:sleep 0.1; echo bye >> "+out)
	r, logs := newRunner(t, cfg)
	r.Fire(Event{Phase: PhaseDeath, Legion: "web"})
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := readLines(t, out); !slices.Equal(got, []string{"bye"}) {
		t.Errorf("queued death hook did not run before Close returned: %q", got)
	}
	wait(t, r.Fire(Event{Phase: PhaseDeath, Legion: "web"}))
	if got := readLines(t, out); len(got) != 1 {
		t.Errorf("event after close ran: %q", got)
	}
	if !strings.Contains(logs.String(), "after close ignored") {
		t.Errorf("late event not logged:\n%s", logs)
	}
	if err := r.Close(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("second close: %v", err)
	}
}

func TestCloseDeadlineCancelsRunningHook(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Hooks = mustHooks(t, "legion-lord = web cmd:sleep 30")
	r, logs := newRunner(t, cfg)
	r.Fire(Event{Phase: PhaseLord, Legion: "web"})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := r.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("close: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("close took %s", took)
	}
	if !strings.Contains(logs.String(), "lord hook returned: -1") {
		t.Errorf("cancelled hook not logged as failed:\n%s", logs)
	}
}

func TestReactorEnvironmentAndDrain(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	var mu sync.Mutex
	var calls []string
	cfg := DefaultConfig()
	cfg.NewVIP = func(s vip.Spec) (VIP, error) { return vipRecorder{spec: s, mu: &mu, calls: &calls}, nil }
	line := "cmd:echo $GOUWSGI_PHASE $GOUWSGI_EPOCH lord=$GOUWSGI_LORD member=$GOUWSGI_MEMBER >> " + out
	cfg.Hooks = mustHooks(t,
		"legion-lord = web vip:10.0.0.100/24",
		"legion-join = web "+line,
		"legion-lord = web "+line,
		"legion-node-joined = web "+line,
		"legion-unlord = web "+line,
	)
	r, _ := newRunner(t, cfg)
	// The FSM's view: lord n2 at epoch 9 (the reactor names lords by name).
	x := &Reactor{R: r, Node: "n1", Lord: func(string) (string, uint64) { return "n2", 9 }}

	x.OnJoin("web")
	x.OnNodeJoined("web", legion.MemberInfo{Name: "n3"})
	x.OnLord("web", 10)
	x.OnDrain(context.Background(), "web", 10)
	x.OnUnlord("web", 10)
	wait(t, r.Fire(Event{Phase: PhaseSetup, Legion: "web"}))

	want := []string{
		"join 9 lord=n2 member=",          // not about a lordship: the current one
		"node-joined 9 lord=n2 member=n3", // likewise
		"lord 10 lord=n1 member=",         // about its own lordship: its epoch, itself
		"unlord 10 lord=n2 member=",
	}
	if got := readLines(t, out); !slices.Equal(got, want) {
		t.Errorf("hook environment\n got %q\nwant %q", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(calls, "10.0.0.100 drain") || slices.Index(calls, "10.0.0.100 drain") > slices.Index(calls, "10.0.0.100 release 10") {
		t.Errorf("vip calls %q: want a drain before the release", calls)
	}
}
