//go:build linux

package cli

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/gouwsgi/gouwsgi/rpc/admin"
	"golang.org/x/sys/unix"
)

// TestTopInPTY runs top on a real pseudo-terminal, checks that the screen
// shows the worker rows and redraws, and that q quits and restores the
// terminal.
func TestTopInPTY(t *testing.T) {
	n := startNode(t, admin.Config{})
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 160}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"--addr", n.addr, "top", "--interval", "100ms"},
			IO{In: tty, Out: tty, Err: tty}, func(string) string { return "" })
	}()

	screen := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := ptmx.Read(buf)
			if k > 0 {
				screen <- string(buf[:k])
			}
			if err != nil {
				close(screen)
				return
			}
		}
	}()
	var seen strings.Builder
	readUntil := func(cond func(string) bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for !cond(seen.String()) {
			select {
			case s, ok := <-screen:
				if !ok {
					t.Fatalf("pty closed; screen so far:\n%s", seen.String())
				}
				seen.WriteString(s)
			case <-deadline:
				t.Fatalf("timed out; screen so far:\n%s", seen.String())
			}
		}
	}
	// The alternate screen is entered, the worker table shows each worker
	// (WID, PID, status) and the cache table, and a second frame is drawn.
	readUntil(func(s string) bool {
		return strings.Contains(s, enterScreen) && strings.Contains(s, "WID") &&
			strings.Contains(s, "4202") && strings.Contains(s, "busy") && strings.Contains(s, "sessions") &&
			strings.Count(s, clearScreen) >= 2
	})
	if _, err := ptmx.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("top exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("top did not quit on q")
	}
	readUntil(func(s string) bool { return strings.Contains(s, leaveScreen) })
	if !isCanonical(t, tty) {
		t.Error("terminal mode not restored after top")
	}
}

// TestTopWithoutTerminal checks that top also runs on pipes (no terminal
// control sequences) and quits on q.
func TestTopWithoutTerminal(t *testing.T) {
	n := startNode(t, admin.Config{})
	pr, pw := io.Pipe()
	defer pw.Close()
	var out syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(context.Background(), []string{"--addr", n.addr, "top", "--interval", "100ms"},
			IO{In: pr, Out: &out, Err: &out}, func(string) string { return "" })
	}()
	waitFor(t, func() bool { return strings.Contains(out.String(), "q: quit") })
	if _, err := pw.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != ExitOK || strings.Contains(out.String(), enterScreen) {
			t.Fatalf("exit %d, output %q", code, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("top did not quit on q")
	}
}

// isCanonical reports whether the terminal is back in line mode with echo.
func isCanonical(t *testing.T, f *os.File) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ICANON != 0 && tio.Lflag&unix.ECHO != 0
}
