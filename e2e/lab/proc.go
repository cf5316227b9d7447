package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// killWait bounds how long Kill waits for a killed process to be reaped.
const killWait = 10 * time.Second

// Proc is a process started inside a lab host.
type Proc struct {
	host string
	cmd  *exec.Cmd
	out  *SyncBuffer // nil when the caller redirected both streams
	done chan struct{}
	err  error // set before done is closed
}

func startProc(host string, cmd *exec.Cmd) (*Proc, error) {
	p := &Proc{host: host, cmd: cmd, done: make(chan struct{})}
	if cmd.Stdout == nil || cmd.Stderr == nil {
		p.out = &SyncBuffer{}
		if cmd.Stdout == nil {
			cmd.Stdout = p.out
		}
		if cmd.Stderr == nil {
			cmd.Stderr = p.out
		}
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Its own process group, so a kill reaches the children it forks.
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start %s: %w", host, strings.Join(cmd.Args, " "), err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id (the command's own: `ip netns exec` execs it).
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process group.
func (p *Proc) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return fmt.Errorf("%s: pid %d: %w", p.host, p.PID(), os.ErrProcessDone)
	default:
	}
	if err := syscall.Kill(-p.PID(), sig); err != nil {
		return fmt.Errorf("%s: signal %v to pid %d: %w", p.host, sig, p.PID(), err)
	}
	return nil
}

// Kill sends SIGKILL to the process group, even when its leader already
// exited (children it forked may linger and would keep the namespace alive),
// and waits for the process to be reaped. Killing an exited process is not
// an error.
func (p *Proc) Kill() error {
	if err := syscall.Kill(-p.PID(), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%s: kill pid %d: %w", p.host, p.PID(), err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("%s: pid %d not reaped %s after SIGKILL", p.host, p.PID(), killWait)
	}
}

// Wait waits for the process to exit and returns its exit error (nil for
// status 0), or ctx's error if ctx ends first.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Output returns what the process wrote so far to the streams the caller did
// not redirect.
func (p *Proc) Output() string {
	if p.out == nil {
		return ""
	}
	return p.out.String()
}

// SyncBuffer is a bytes.Buffer safe for the writer goroutines of exec and
// concurrent readers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
