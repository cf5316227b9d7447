package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// built holds the binaries built once for the whole package, by name.
var built sync.Map // name -> *buildResult

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// repo returns the repository root (the e2e package's parent).
func repo(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// requireE2E skips unless end-to-end tests are enabled: they build the
// binaries and start real Python workers, nginx and network namespaces.
func requireE2E(t testing.TB) {
	t.Helper()
	if os.Getenv("GOUWSGI_E2E") == "" {
		t.Skip("end-to-end test: set GOUWSGI_E2E=1 (make test does)")
	}
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
}

// buildBinary builds ./cmd/<name> once into a temporary directory.
func buildBinary(t testing.TB, name string) string {
	t.Helper()
	requireE2E(t)
	v, _ := built.LoadOrStore(name, &buildResult{})
	br := v.(*buildResult)
	br.once.Do(func() {
		// make test builds bin/ first and says where (GOUWSGI_BIN).
		if b := os.Getenv("GOUWSGI_BIN"); b != "" {
			p := filepath.Join(filepath.Dir(b), name)
			if _, err := os.Stat(p); err == nil {
				br.path = p
				return
			}
		}
		dir, err := os.MkdirTemp("", "gouwsgi-e2e-bin-")
		if err != nil {
			br.err = err
			return
		}
		out := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", out, "./cmd/"+name)
		cmd.Dir = repo(t)
		if b, err := cmd.CombinedOutput(); err != nil {
			br.err = fmt.Errorf("go build %s: %v\n%s", name, err, b)
			return
		}
		br.path = out
	})
	if br.err != nil {
		t.Fatal(br.err)
	}
	return br.path
}

// debianPath puts Debian's python3 (which has Django and Flask) first, as
// a server's environment would have it.
func debianPath() string {
	return "PATH=/usr/local/go/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

// server is a gouwsgi process started by a test.
type server struct {
	t    testing.TB
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  strings.Builder
	cond *sync.Cond
	done chan struct{}
	err  error
}

// start runs gouwsgi with args in dir and collects its log.
func start(t testing.TB, dir string, args ...string) *server {
	t.Helper()
	gouwsgi := buildBinary(t, "gouwsgi")
	s := &server{t: t, done: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	s.cmd = exec.Command(gouwsgi, args...)
	s.cmd.Dir = dir
	s.cmd.Env = append(os.Environ(), debianPath())
	// Its own process group, as a service has: tests can signal the group.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start gouwsgi: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.mu.Lock()
			s.log.WriteString(sc.Text() + "\n")
			s.cond.Broadcast()
			s.mu.Unlock()
		}
	}()
	go func() {
		s.err = s.cmd.Wait()
		pw.Close()
		close(s.done)
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	t.Cleanup(func() {
		s.stop(syscall.SIGTERM, 30*time.Second)
		if t.Failed() {
			t.Logf("gouwsgi log:\n%s", s.logs())
		}
	})
	return s
}

// logs returns everything the server logged so far.
func (s *server) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// waitLog waits until the log matches re and returns the submatches of the
// first match.
func (s *server) waitLog(re string, timeout time.Duration) []string {
	s.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() { s.mu.Lock(); s.cond.Broadcast(); s.mu.Unlock() })
	defer timer.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if m := rx.FindStringSubmatch(s.log.String()); m != nil {
			return m
		}
		select {
		case <-s.done:
			s.t.Fatalf("gouwsgi exited (%v) before logging %q; log:\n%s", s.err, re, s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %s waiting for log %q; log:\n%s", timeout, re, s.log.String())
		}
		s.cond.Wait()
	}
}

// countLog counts lines matching re.
func (s *server) countLog(re string) int {
	return len(regexp.MustCompile(re).FindAllStringIndex(s.logs(), -1))
}

// httpAddr waits for the HTTP listener and returns its base URL.
func (s *server) httpAddr() string {
	s.t.Helper()
	m := s.waitLog(`HTTP server bound on (\S+)`, 30*time.Second)
	return "http://" + m[1]
}

// ready waits until n workers were spawned.
func (s *server) ready(n int) {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for s.countLog(`spawned uWSGI worker \d+ \(pid`) < n {
		if time.Now().After(deadline) {
			s.t.Fatalf("only %d of %d workers spawned in time; log:\n%s", s.countLog(`spawned uWSGI worker`), n, s.logs())
		}
		select {
		case <-s.done:
			s.t.Fatalf("gouwsgi exited (%v); log:\n%s", s.err, s.logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop signals the server and waits for it to exit, killing it after timeout.
func (s *server) stop(sig syscall.Signal, timeout time.Duration) {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(timeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		s.t.Errorf("gouwsgi did not exit within %s of %s", timeout, sig)
	}
}

// wait waits for the process to exit on its own.
func (s *server) wait(timeout time.Duration) error {
	select {
	case <-s.done:
		return s.err
	case <-time.After(timeout):
		s.t.Fatalf("gouwsgi still running after %s", timeout)
		return nil
	}
}

// client is an HTTP client with a bounded timeout for every test request.
var client = &http.Client{Timeout: 30 * time.Second}

// get fetches url and returns status, body and headers.
func get(t testing.TB, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// poll retries f until it returns nil or the deadline passes.
func poll(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ctxTimeout is a context for a bounded load loop.
func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
