//go:build linux

package hooks

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/e2e/lab"
	"github.com/gouwsgi/gouwsgi/legion/vip"
)

// TestRealVIPFollowsLordship drives a real vip.Manager inside a lab host:
// one legion-lord line claims the address, unlord releases it.
func TestRealVIPFollowsLordship(t *testing.T) {
	l := lab.New(t, 1)
	h0, addr := l.Hosts[0], l.VIP(0)
	// A stale copy from an earlier run, which setup must remove.
	if _, err := h0.Exec(context.Background(), "ip", "addr", "add", addr.String(), "dev", lab.Dev); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Hooks = mustHooks(t, "legion-lord = web vip:"+addr.String()+",dev="+lab.Dev)
	cfg.NewVIP = func(s vip.Spec) (VIP, error) {
		vc := vip.DefaultConfig(s)
		vc.NetNS = h0.NSPath()
		return vip.New(vc)
	}
	r, logs := newRunner(t, cfg)
	holders := func() []string {
		t.Helper()
		h, err := l.Holders(addr.Addr())
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	wait(t, r.Fire(Event{Phase: PhaseSetup, Legion: "web"}))
	if h := holders(); len(h) != 0 {
		t.Fatalf("stale vip survived setup: %v", h)
	}
	start := time.Now()
	wait(t, r.Fire(Event{Phase: PhaseLord, Legion: "web", Epoch: 3}))
	t.Logf("claim with announcement burst took %s", time.Since(start))
	if h := holders(); !slices.Equal(h, []string{"h0"}) {
		t.Fatalf("after lord: holders %v\n%s", h, logs)
	}
	wait(t, r.Fire(Event{Phase: PhaseUnlord, Legion: "web", Epoch: 4}))
	if h := holders(); len(h) != 0 {
		t.Fatalf("after unlord: holders %v\n%s", h, logs)
	}
}
