//go:build linux

package vip

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/e2e/lab"
)

// logBuffer collects slog output from the manager and its announcer goroutine.
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

// newManager builds a Manager acting in h's namespace with fast timings.
func newManager(t *testing.T, h *lab.Host, spec string) (*Manager, *logBuffer) {
	t.Helper()
	s, err := ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	cfg := DefaultConfig(s)
	cfg.NetNS = h.NSPath()
	cfg.BurstInterval = 20 * time.Millisecond
	cfg.ReannounceInterval = 50 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m, logs
}

func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still false after 3s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func holdersAre(l *lab.Lab, addr netip.Addr, want ...string) func() (bool, error) {
	return func() (bool, error) {
		got, err := l.Holders(addr)
		return slices.Equal(got, want), err
	}
}

// neighborIs reports whether h's neighbour table maps addr to owner's MAC.
func neighborIs(h *lab.Host, addr netip.Addr, owner *lab.Host) func() (bool, error) {
	return func() (bool, error) {
		want, err := owner.MAC()
		if err != nil {
			return false, err
		}
		got, err := h.Neighbor(addr)
		return bytes.Equal(got, want), err
	}
}

// setNeighbor plants a stale entry for addr on h pointing at a MAC nobody owns.
func setNeighbor(t *testing.T, h *lab.Host, addr netip.Addr) {
	t.Helper()
	if _, err := h.Exec(context.Background(), "ip", "neigh", "replace", addr.String(), "lladdr", "02:00:00:00:00:99", "dev", lab.Dev, "nud", "stale"); err != nil {
		t.Fatal(err)
	}
}

func TestClaimAnnounceRelease(t *testing.T) {
	eachFamily(t, 2, func(t *testing.T, l *lab.Lab, vip netip.Prefix) {
		h0 := l.Hosts[0]
		m, logs := newManager(t, h0, vip.String()) // no dev: resolved from the subnet
		if got := m.Spec().Dev; got != lab.Dev {
			t.Fatalf("resolved dev %q, want %q", got, lab.Dev)
		}
		setNeighbor(t, l.Client, vip.Addr())

		if err := m.Claim(context.Background(), 7); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "h0 holds the vip", holdersAre(l, vip.Addr(), "h0"))
		waitFor(t, "client's neighbour entry moves to h0", neighborIs(l.Client, vip.Addr(), h0))
		if held, epoch := m.State(); !held || epoch != 7 {
			t.Errorf("state after claim: held %v epoch %d", held, epoch)
		}

		// The address works: the client reaches a listener on it.
		ln, err := h0.Listen("tcp", netip.AddrPortFrom(vip.Addr(), 0).String())
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := l.Client.DialContext(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("client -> vip: %v", err)
		}
		c.Close()

		if err := m.Release(context.Background(), 8); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "nobody holds the vip", holdersAre(l, vip.Addr()))
		if held, epoch := m.State(); held || epoch != 8 {
			t.Errorf("state after release: held %v epoch %d", held, epoch)
		}
		for _, want := range []string{`msg="vip claimed"`, "epoch=7", `msg="vip released"`, "epoch=8", "was_present=true"} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, logs)
			}
		}
	})
}

// eachFamily runs f in a fresh lab of n hosts, once with an IPv4 and once
// with an IPv6 VIP.
func eachFamily(t *testing.T, n int, f func(t *testing.T, l *lab.Lab, vip netip.Prefix)) {
	for _, family := range []string{"ipv4", "ipv6"} {
		t.Run(family, func(t *testing.T) {
			l := lab.New(t, n)
			vip := l.VIP(0)
			if family == "ipv6" {
				vip = l.VIP6(0)
			}
			f(t, l, vip)
		})
	}
}

// TestTakeoverMovesClient is a failover on one segment: the client talks to
// h0 through the VIP, h0 releases, h1 claims, and the client's ARP entry,
// freshly confirmed by real traffic, follows h1 without the client asking.
func TestTakeoverMovesClient(t *testing.T) {
	l := lab.New(t, 2)
	vip := l.VIP(0)
	h0, h1 := l.Hosts[0], l.Hosts[1]
	m0, _ := newManager(t, h0, vip.String()+",dev="+lab.Dev)
	m1, _ := newManager(t, h1, vip.String()+",dev="+lab.Dev)

	if err := m0.Claim(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	ln, err := h0.Listen("tcp", netip.AddrPortFrom(vip.Addr(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := l.Client.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("client -> vip on h0: %v", err)
	}
	c.Close()
	ln.Close()
	waitFor(t, "client learned h0's mac", neighborIs(l.Client, vip.Addr(), h0))

	if err := m0.Release(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if err := m1.Claim(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "h1 holds the vip alone", holdersAre(l, vip.Addr(), "h1"))
	waitFor(t, "client's neighbour entry moves to h1", neighborIs(l.Client, vip.Addr(), h1))
}

func TestCleanStale(t *testing.T) {
	l := lab.New(t, 1)
	vip := l.VIP(0)
	h0 := l.Hosts[0]
	// A leftover from a run that died holding the VIP.
	if _, err := h0.Exec(context.Background(), "ip", "addr", "add", vip.String(), "dev", lab.Dev); err != nil {
		t.Fatal(err)
	}
	m, logs := newManager(t, h0, vip.String())
	if err := m.CleanStale(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "stale vip removed", holdersAre(l, vip.Addr()))
	if !strings.Contains(logs.String(), "stale vip") {
		t.Errorf("stale removal not logged:\n%s", logs)
	}

	// While held, CleanStale leaves the address alone.
	if err := m.Claim(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	if err := m.CleanStale(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ok, err := m.Present(context.Background()); err != nil || !ok {
		t.Fatalf("held vip after CleanStale: present %v, %v", ok, err)
	}
}

func TestReconcileAndReassert(t *testing.T) {
	l := lab.New(t, 1)
	vip := l.VIP(0)
	h0 := l.Hosts[0]
	m, logs := newManager(t, h0, vip.String())
	ctx := context.Background()
	del := func() {
		t.Helper()
		if _, err := h0.Exec(ctx, "ip", "addr", "del", vip.String(), "dev", lab.Dev); err != nil {
			t.Fatal(err)
		}
	}

	if err := m.Reconcile(ctx, true, 5); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reconcile as lord adds the vip", holdersAre(l, vip.Addr(), "h0"))

	// Something else removes it: the announcer puts it back.
	del()
	waitFor(t, "announcer re-asserts the vip", holdersAre(l, vip.Addr(), "h0"))
	if !strings.Contains(logs.String(), "vanished") {
		t.Errorf("re-assertion not logged:\n%s", logs)
	}

	if err := m.Reconcile(ctx, false, 6); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reconcile as non-lord removes the vip", holdersAre(l, vip.Addr()))
	// Released: the announcer must not bring it back.
	time.Sleep(3 * m.cfg.ReannounceInterval) // proving an absence needs a wait
	if got, err := l.Holders(vip.Addr()); err != nil || len(got) != 0 {
		t.Fatalf("vip came back after release: %v %v", got, err)
	}

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Claim(ctx, 7); !errors.Is(err, ErrClosed) {
		t.Fatalf("claim after close: %v", err)
	}
}

func TestNewRejectsBadPlacement(t *testing.T) {
	l := lab.New(t, 1)
	ns := l.Hosts[0].NSPath()
	tests := []struct {
		spec, wantErr string
	}{
		{"192.168.77.10/24,dev=eth0", "not inside any subnet of eth0 (its addresses: 10.213.0.1/24)"},
		{"192.168.77.10/24", "no interface has a subnet containing 192.168.77.10"},
		{"10.213.0.100/24,dev=nosuch0", "interface nosuch0"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			s, err := ParseSpec(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig(s)
			cfg.NetNS = ns
			m, err := New(cfg)
			if err == nil {
				m.Close()
				t.Fatal("New accepted it")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
	t.Run("missing namespace", func(t *testing.T) {
		cfg := DefaultConfig(Spec{Prefix: l.VIP(0)})
		cfg.NetNS = "/run/netns/" + l.ID + "-nosuch"
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "open network namespace") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestHtons pins the byte order sockaddr_ll wants: network order in memory.
func TestHtons(t *testing.T) {
	b := binary.NativeEndian.AppendUint16(nil, htons(0x0806))
	if !bytes.Equal(b, []byte{0x08, 0x06}) {
		t.Fatalf("htons(0x0806) is stored as %x", b)
	}
}
