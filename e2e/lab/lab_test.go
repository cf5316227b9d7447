package lab

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// echoServer accepts connections on h and echoes one line back.
func echoServer(t *testing.T, h *Host) string {
	t.Helper()
	ln, err := h.Listen("tcp", netip.AddrPortFrom(h.IP, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// reach reports whether from can exchange a message with addr within timeout.
func reach(from *Host, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := from.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "ping" {
		return errors.New("echo mismatch: " + string(buf))
	}
	return nil
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLabConnectivity(t *testing.T) {
	l := New(t, 2)
	h0, h1 := l.Hosts[0], l.Hosts[1]
	addr := echoServer(t, h1)

	if err := reach(h0, addr, 2*time.Second); err != nil {
		t.Fatalf("h0 -> h1 through the bridge: %v", err)
	}
	if err := reach(l.Client, addr, 2*time.Second); err != nil {
		t.Fatalf("client -> h1: %v", err)
	}

	t.Run("partition stops traffic, heal restores it", func(t *testing.T) {
		if err := h1.Partition(); err != nil {
			t.Fatal(err)
		}
		if err := reach(h0, addr, 300*time.Millisecond); err == nil {
			t.Fatal("h0 reached h1 through a partition")
		}
		if err := h1.Heal(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "h0 reaches h1 after heal", 3*time.Second, func() error { return reach(h0, addr, 500*time.Millisecond) })
	})

	t.Run("link down stops traffic, link up restores it", func(t *testing.T) {
		if err := h0.LinkDown(); err != nil {
			t.Fatal(err)
		}
		if err := reach(h0, addr, 300*time.Millisecond); err == nil {
			t.Fatal("h0 reached h1 with its link down")
		}
		if err := h0.LinkUp(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "h0 reaches h1 after link up", 3*time.Second, func() error { return reach(h0, addr, 500*time.Millisecond) })
	})

	t.Run("exec runs inside the namespace", func(t *testing.T) {
		out, err := h0.Exec(context.Background(), "ip", "-o", "addr", "show", "dev", Dev)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), h0.IP.String()+"/24") || strings.Contains(string(out), h1.IP.String()) {
			t.Fatalf("h0's addresses: %s", out)
		}
		if _, err := h0.Exec(context.Background(), "false"); err == nil || !strings.Contains(err.Error(), "h0: false") {
			t.Fatalf("failing command: err = %v", err)
		}
	})
}

func TestHoldersAndSampler(t *testing.T) {
	l := New(t, 2)
	vip := l.VIP(0)
	s := l.SampleVIP(vip.Addr())
	addVIP := func(h *Host, op string) {
		t.Helper()
		if _, err := h.Exec(context.Background(), "ip", "addr", op, vip.String(), "dev", Dev); err != nil {
			t.Fatal(err)
		}
	}
	// waitHolders waits until both a direct look and the sampler's latest
	// sample show want, so that every state is recorded.
	waitHolders := func(want ...string) {
		t.Helper()
		eventually(t, "holders "+strings.Join(want, ","), 2*time.Second, func() error {
			got, err := l.Holders(vip.Addr())
			if err != nil {
				return err
			}
			if !slices.Equal(got, want) {
				return errors.New("holders are " + strings.Join(got, ","))
			}
			samples := s.Report().Samples
			if len(samples) == 0 || !slices.Equal(samples[len(samples)-1].Holders, want) {
				return errors.New("sampler has not seen it yet")
			}
			return nil
		})
	}

	waitHolders()
	addVIP(l.Hosts[0], "add")
	waitHolders("h0")
	addVIP(l.Hosts[1], "add")
	waitHolders("h0", "h1")
	addVIP(l.Hosts[0], "del")
	waitHolders("h1")

	r := s.Stop()
	if r.Dual < 1 {
		t.Errorf("sampler saw no dual holders while both held the address:\n%s", r)
	}
	if r.Errors != 0 {
		t.Errorf("sampler errors:\n%s", r)
	}
	var seen [][]string
	for _, c := range r.Changes() {
		seen = append(seen, c.Holders)
	}
	wantSeq := [][]string{nil, {"h0"}, {"h0", "h1"}, {"h1"}}
	if !slices.EqualFunc(seen, wantSeq, slices.Equal) {
		t.Errorf("holder changes %v, want %v", seen, wantSeq)
	}
	if r.LongestGap() <= 0 {
		t.Errorf("the start without holders should count as a gap:\n%s", r)
	}
}

func TestCleanupRemovesEverything(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	var namespaces []string
	var pid int
	t.Run("lab", func(t *testing.T) {
		l := New(t, 2)
		namespaces = l.Namespaces()
		if len(namespaces) != 4 { // switch, h0, h1, client
			t.Fatalf("namespaces %v", namespaces)
		}
		p := l.Hosts[0].Start("sleep", "600")
		pid = p.PID()
		if err := syscall.Kill(pid, 0); err != nil {
			t.Fatalf("started process is not running: %v", err)
		}
	})
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	for _, ns := range namespaces {
		if strings.Contains(string(out), ns) {
			t.Errorf("namespace %s left behind", ns)
		}
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists after cleanup (kill 0: %v)", pid, err)
	}
}

func TestProcKillAndOutput(t *testing.T) {
	l := New(t, 1)
	p := l.Hosts[0].Start("sh", "-c", "echo ready; exec sleep 600")
	eventually(t, "process output", 2*time.Second, func() error {
		if !strings.Contains(p.Output(), "ready") {
			return errors.New("output so far: " + p.Output())
		}
		return nil
	})
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	var exitErr *exec.ExitError
	if err := p.Wait(context.Background()); !errors.As(err, &exitErr) {
		t.Fatalf("wait after kill: %v", err)
	}
	if err := p.Kill(); err != nil {
		t.Errorf("second kill: %v", err)
	}
}

func TestHostDialsFromItsNamespace(t *testing.T) {
	l := New(t, 1)
	h := l.Hosts[0]
	ln, err := l.Client.Listen("tcp", netip.AddrPortFrom(l.Client.IP, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte(c.RemoteAddr().String()))
			c.Close()
		}
	}()
	c, err := h.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	host, _, err := net.SplitHostPort(string(b))
	if err != nil || host != h.IP.String() {
		t.Fatalf("client saw the connection come from %q (%v), want %s", b, err, h.IP)
	}
}
