package cache

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable clock the tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logCapture is a slog handler that routes records to t.Log and keeps the
// messages so tests can assert on the uWSGI log lines.
type logCapture struct {
	t    testing.TB
	mu   *sync.Mutex
	msgs *[]string
}

func newLogCapture(t testing.TB) (*slog.Logger, func() []string) {
	h := &logCapture{t: t, mu: &sync.Mutex{}, msgs: new([]string)}
	return slog.New(h), func() []string {
		h.mu.Lock()
		defer h.mu.Unlock()
		return append([]string(nil), *h.msgs...)
	}
}

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logCapture) WithGroup(string) slog.Handler            { return h }
func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	*h.msgs = append(*h.msgs, r.Message)
	h.mu.Unlock()
	h.t.Log(r.Level.String() + " " + r.Message)
	return nil
}

func countContaining(msgs []string, sub string) int {
	n := 0
	for _, m := range msgs {
		if strings.Contains(m, sub) {
			n++
		}
	}
	return n
}

// mustParse parses a cache2 line or fails the test.
func mustParse(t testing.TB, line string) Config {
	t.Helper()
	cfg, err := ParseConfig(line)
	if err != nil {
		t.Fatalf("ParseConfig(%q): %v", line, err)
	}
	return cfg
}

// newTestLocal builds a Local on a fake clock, logging to the test.
func newTestLocal(t testing.TB, line string) (*Local, *fakeClock, func() []string) {
	t.Helper()
	clock := newFakeClock()
	logger, logs := newLogCapture(t)
	l, err := NewLocal(mustParse(t, line), clock.Now, logger)
	if err != nil {
		t.Fatalf("NewLocal(%q): %v", line, err)
	}
	t.Cleanup(func() { l.Close() })
	return l, clock, logs
}

// checkInvariants verifies the engine's internal bookkeeping.
func checkInvariants(t testing.TB, e *engine) {
	t.Helper()
	used := 0
	usedBlocks := 0
	for i := uint32(1); i < uint32(len(e.slots)); i++ {
		s := e.slots[i]
		if s.keyLen == 0 {
			continue
		}
		used++
		usedBlocks += e.blocksFor(s.valLen)
		if got := e.lookup(string(e.keyAt(i))); got != i {
			t.Fatalf("slot %d key %q: lookup finds slot %d", i, e.keyAt(i), got)
		}
	}
	if used != e.count || used+len(e.free) != e.cfg.Items-1 {
		t.Fatalf("used %d, count %d, free %d, items %d", used, e.count, len(e.free), e.cfg.Items)
	}
	if e.blocks != nil && e.blocks.usedCount() != usedBlocks {
		t.Fatalf("bitmap marks %d blocks, items use %d", e.blocks.usedCount(), usedBlocks)
	}
	if e.cfg.PurgeLRU {
		n := 0
		for i := e.lruHead; i != 0; i = e.slots[i].lruNext {
			n++
		}
		if n != e.count {
			t.Fatalf("LRU list has %d items, count %d", n, e.count)
		}
	}
}
