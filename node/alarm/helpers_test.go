package alarm

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/node/logging"
)

// syncBuffer collects the log output of a test manager.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fakeClock is a settable clock for throttling tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testConfig is DefaultConfig with short retry waits and a throttling
// window no test outlives.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Freq = time.Hour
	cfg.Backoff = 10 * time.Millisecond
	cfg.Timeout = 10 * time.Second
	return cfg
}

// harness is a manager wired to a real log sink, as the node wires it:
// every line logged through sink (and log) reaches LogLine.
type harness struct {
	m    *Manager
	sink *logging.Sink
	out  *syncBuffer
}

// newHarness builds a manager; run starts its alarm goroutine, stopped
// at the end of the test.
func newHarness(t *testing.T, cfg Config, run bool, opts ...Option) *harness {
	t.Helper()
	out := &syncBuffer{}
	sink := logging.NewSink(out)
	m, err := New(cfg, sink.Logger(slog.LevelInfo), opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	sink.AddTap(m.LogLine)
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			if t.Failed() {
				t.Logf("alarm log:\n%s", out.String())
			}
		})
	}
	return &harness{m: m, sink: sink, out: out}
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitSettled waits until every incident in the history has an outcome
// and returns the history.
func (h *harness) waitSettled(t *testing.T, n int) []Incident {
	t.Helper()
	var hist []Incident
	waitFor(t, 20*time.Second, "incidents to settle", func() bool {
		hist = h.m.History()
		if len(hist) < n {
			return false
		}
		for _, inc := range hist {
			if inc.Outcome == OutcomePending {
				return false
			}
		}
		return true
	})
	if len(hist) != n {
		t.Fatalf("history has %d incidents, want %d: %+v", len(hist), n, hist)
	}
	return hist
}

// recorder returns an alarm spec whose cmd: action appends the message
// and a newline to a file, and a function reading the recorded messages.
func recorder(t *testing.T, name string) (spec string, read func() []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".out")
	spec = name + " cmd:cat >> " + path + "; echo >> " + path
	return spec, func() []string {
		b, err := os.ReadFile(path)
		if err != nil || len(b) == 0 {
			return nil
		}
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
}
