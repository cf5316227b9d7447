package wsgi

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func threads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("parse %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// TestWaitNoThreadPerChild: waiting for many children at once does not
// hold an OS thread per child, and every wait returns the status its
// child died with.
func TestWaitNoThreadPerChild(t *testing.T) {
	const n = 24
	pids := make([]int, n)
	for i := range pids {
		cmd := exec.Command("/bin/sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pids[i] = cmd.Process.Pid
		t.Cleanup(func() { _ = unix.Kill(cmd.Process.Pid, unix.SIGKILL) })
	}
	before := threads(t)
	type result struct {
		pid int
		ws  unix.WaitStatus
		err error
	}
	done := make(chan result, n)
	for _, pid := range pids {
		go func() {
			ws, err := Wait(pid)
			done <- result{pid, ws, err}
		}()
	}
	// Give every waiter time to block.
	for i := 0; i < 50 && len(done) == 0; i++ {
		unix.Nanosleep(&unix.Timespec{Nsec: 10e6}, nil)
	}
	if during := threads(t); during-before >= n/2 {
		t.Fatalf("%d threads before waiting for %d children, %d while waiting: a thread per wait", before, n, during)
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, unix.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for range pids {
		r := <-done
		if r.err != nil {
			t.Fatalf("Wait(%d): %v", r.pid, r.err)
		}
		if !r.ws.Signaled() || r.ws.Signal() != unix.SIGTERM {
			t.Fatalf("Wait(%d) = %v, want killed by SIGTERM", r.pid, r.ws)
		}
	}
}

// TestWaitNotAChild: a pid that is not this process's child is an error
// naming it, not a hang.
func TestWaitNotAChild(t *testing.T) {
	_, err := Wait(1)
	if err == nil || !strings.Contains(err.Error(), "pid 1") {
		t.Fatalf("Wait(1) = %v, want an error naming pid 1", err)
	}
}
