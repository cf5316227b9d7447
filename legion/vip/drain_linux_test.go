//go:build linux

package vip

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/gouwsgi/gouwsgi/e2e/lab"
)

// hasDrainFilter reports whether m's SYN filter is attached.
func hasDrainFilter(t *testing.T, m *Manager) bool {
	t.Helper()
	filters, err := m.h.FilterList(m.link, netlink.MakeHandle(0xffff, 0))
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return false // no ingress qdisc: no filter either
	}
	for _, f := range filters {
		if f.Attrs().Priority == m.drainFilter().Priority {
			return true
		}
	}
	return false
}

// claimAndListen claims m's VIP under epoch and listens on it in h.
func claimAndListen(t *testing.T, m *Manager, epoch uint64, h *lab.Host) net.Listener {
	t.Helper()
	if err := m.Claim(context.Background(), epoch); err != nil {
		t.Fatal(err)
	}
	ln, err := h.Listen("tcp", netip.AddrPortFrom(m.cfg.Spec.Addr(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func TestDrain(t *testing.T) {
	eachFamily(t, 1, func(t *testing.T, l *lab.Lab, vip netip.Prefix) {
		h0 := l.Hosts[0]
		m, logs := newManager(t, h0, vip.String())
		ctx := context.Background()
		ln := claimAndListen(t, m, 4, h0)
		accepted := make(chan net.Conn, 4)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted <- c
			}
		}()
		dial := func(timeout time.Duration) (net.Conn, error) {
			dctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			return l.Client.DialContext(dctx, "tcp", ln.Addr().String())
		}
		open, err := dial(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer open.Close()
		served := <-accepted

		// A connection in progress holds the drain back.
		drained := make(chan error, 1)
		go func() {
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			drained <- m.Drain(dctx)
		}()
		waitFor(t, "drain filter attached", func() (bool, error) { return hasDrainFilter(t, m), nil })
		// New connections are dropped, not refused: the client keeps
		// retrying its SYN (and would reach a successor).
		if c, err := dial(400 * time.Millisecond); err == nil {
			c.Close()
			t.Fatal("a new connection was accepted while draining")
		} else if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("new connection while draining: %v; want a timeout (SYN dropped)", err)
		}
		select {
		case err := <-drained:
			t.Fatalf("drain returned (%v) with a connection still open", err)
		default:
		}

		open.Close()
		served.Close()
		select {
		case err := <-drained:
			if err != nil {
				t.Fatalf("drain: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("drain still waiting after the last connection closed; log:\n%s", logs)
		}
		if ok, err := m.Present(ctx); err != nil || !ok {
			t.Fatalf("drain removed the address: present %v, %v", ok, err)
		}

		// Release removes the address, then the filter.
		if err := m.Release(ctx, 4); err != nil {
			t.Fatal(err)
		}
		if hasDrainFilter(t, m) {
			t.Error("drain filter still attached after release")
		}
	})
}

func TestDrainTimeoutAndStaleFilter(t *testing.T) {
	eachFamily(t, 1, func(t *testing.T, l *lab.Lab, vip netip.Prefix) {
		h0 := l.Hosts[0]
		m, _ := newManager(t, h0, vip.String())
		ctx := context.Background()

		// Not held: nothing to drain.
		if err := m.Drain(ctx); err != nil || hasDrainFilter(t, m) {
			t.Fatalf("drain of an unheld vip: %v, filter %v", err, hasDrainFilter(t, m))
		}
		ln := claimAndListen(t, m, 1, h0)
		c, err := l.Client.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if err := m.Drain(dctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("drain with a connection open past its deadline: %v; want the deadline", err)
		}

		// The process dies while draining: address and filter stay; the next
		// run removes both at setup.
		next, _ := newManager(t, h0, vip.String())
		if err := next.CleanStale(ctx); err != nil {
			t.Fatal(err)
		}
		if ok, err := next.Present(ctx); err != nil || ok {
			t.Errorf("stale vip after CleanStale: present %v, %v", ok, err)
		}
		if hasDrainFilter(t, next) {
			t.Error("stale drain filter after CleanStale")
		}
	})
}
