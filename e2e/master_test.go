package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func djangoArgs(root string, extra ...string) []string {
	return append([]string{"--chdir", filepath.Join(root, "examples/django"), "--module", "mysite.wsgi:application", "--master", "--http", "127.0.0.1:0"}, extra...)
}

// readStats reads one JSON document from a stats unix socket.
func readStats(t testing.TB, sock string) map[string]any {
	t.Helper()
	return readStatsFrom(t, "unix", sock)
}

func workersOf(doc map[string]any) []map[string]any {
	var out []map[string]any
	for _, w := range doc["workers"].([]any) {
		out = append(out, w.(map[string]any))
	}
	return out
}

// TestHarakiri: a view sleeping past harakiri gets a 504 within harakiri
// plus a margin, the log has uWSGI's lines, stats count it, and the next
// request is served by a fresh worker.
func TestHarakiri(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	stats := filepath.Join(dir, "stats.sock")
	s := start(t, dir, djangoArgs(repo(t), "--processes", "1", "--harakiri", "2", "--stats", stats)...)
	base := s.httpAddr()
	s.ready(1)
	begin := time.Now()
	code, body, _ := get(t, base+"/sleep?s=30")
	took := time.Since(begin)
	if code != http.StatusGatewayTimeout {
		t.Fatalf("GET /sleep past harakiri: %d %q, want 504", code, body)
	}
	if took > 2*time.Second+1500*time.Millisecond {
		t.Fatalf("harakiri answered after %s, want within 2s + margin", took)
	}
	s.waitLog(`\*\*\* HARAKIRI ON WORKER 1 \(pid: \d+, try: 1\) \*\*\*`, 5*time.Second)
	s.waitLog(`HARAKIRI \[core 0\] 127\.0\.0\.1 - GET /sleep\?s=30 since \d+`, 5*time.Second)
	s.waitLog(`DAMN ! worker 1 \(pid: \d+\) died, killed by signal 9`, 5*time.Second)
	s.waitLog(`Respawned uWSGI worker 1 \(new pid: \d+\)`, 30*time.Second)
	if code, _, _ := get(t, base+"/"); code != 200 {
		t.Fatalf("request after harakiri: %d", code)
	}
	w := workersOf(readStats(t, stats))[0]
	if w["harakiri_count"].(float64) != 1 || w["respawn_count"].(float64) != 1 {
		t.Fatalf("stats after harakiri: harakiri_count=%v respawn_count=%v", w["harakiri_count"], w["respawn_count"])
	}
}

// TestMaxRequests: with max-requests = 5 the worker is recycled after 5
// requests and 100 requests in a row all succeed.
func TestMaxRequests(t *testing.T) {
	requireE2E(t)
	s := start(t, t.TempDir(), djangoArgs(repo(t), "--processes", "1", "--max-requests", "5")...)
	base := s.httpAddr()
	s.ready(1)
	pids := map[string]bool{}
	for i := 0; i < 100; i++ {
		code, body, _ := get(t, base+"/feedback")
		if code != 200 {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
		var fb struct{ PID int }
		_ = json.Unmarshal([]byte(body), &fb)
		pids[strconv.Itoa(fb.PID)] = true
	}
	if len(pids) < 15 {
		t.Fatalf("100 requests were served by %d worker processes, want about 20 (max-requests 5)", len(pids))
	}
	s.waitLog(`\.\.\.The work of process \d+ is done\. Seeya!`, 5*time.Second)
	s.waitLog(`worker 1 killed successfully \(pid: \d+\)`, 5*time.Second)
}

// TestSegfault: a view that kills its process with SIGSEGV is logged and
// respawned, and following requests succeed; a crash loop backs off.
func TestSegfault(t *testing.T) {
	requireE2E(t)
	s := start(t, t.TempDir(), djangoArgs(repo(t), "--processes", "2")...)
	base := s.httpAddr()
	s.ready(2)
	code, _, _ := get(t, base+"/segv")
	if code != http.StatusBadGateway {
		t.Fatalf("GET /segv: %d, want 502", code)
	}
	s.waitLog(`!!! uWSGI process \d+ got Segmentation Fault !!!`, 5*time.Second)
	s.waitLog(`DAMN ! worker \d \(pid: \d+\) died, killed by signal 11`, 5*time.Second)
	s.waitLog(`Respawned uWSGI worker \d \(new pid: \d+\)`, 30*time.Second)
	for i := 0; i < 10; i++ {
		if code, _, _ := get(t, base+"/"); code != 200 {
			t.Fatalf("request after segfault: %d", code)
		}
	}
}

// TestCrashLoopBacksOff: an app that kills its worker at import under
// lazy-apps makes every worker die young; the master respawns with a
// growing delay instead of spinning.
func TestCrashLoopBacksOff(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "crash.py"), "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
	s := start(t, dir, "--wsgi-file", "crash.py", "--http", "127.0.0.1:0", "--lazy-apps", "--processes", "1")
	s.httpAddr()
	time.Sleep(4 * time.Second) // observe the loop for a fixed window
	attempts := s.countLog(`unable to spawn worker 1`)
	if attempts == 0 {
		t.Fatalf("no failed spawn logged:\n%s", s.logs())
	}
	// Without back-off a 50 ms import would be retried ~80 times in 4 s.
	if attempts > 15 {
		t.Fatalf("%d spawn attempts in 4 s: the crash loop is not backing off", attempts)
	}
	if !regexp.MustCompile(`retrying in [1-9]`).MatchString(s.logs()) {
		t.Fatalf("no growing back-off in the log:\n%s", s.logs())
	}
}

// load runs a bounded request loop until ctx ends and counts failures.
func load(ctx context.Context, url string, conc int) (ok, failed *atomic.Int64, wait func()) {
	ok, failed = new(atomic.Int64), new(atomic.Int64)
	var wg sync.WaitGroup
	c := &http.Client{Timeout: 30 * time.Second}
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 100000 && ctx.Err() == nil; n++ {
				resp, err := c.Get(url)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	return ok, failed, wg.Wait
}

// TestReloadsUnderLoad: SIGHUP, touch-reload, touch-chain-reload and the
// master FIFO reload every worker while a load loop runs, with zero failed
// requests; the listening socket never closes.
func TestReloadsUnderLoad(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	touch := filepath.Join(dir, "touch")
	chain := filepath.Join(dir, "chain")
	fifo := filepath.Join(dir, "fifo")
	writeFile(t, touch, "")
	writeFile(t, chain, "")
	s := start(t, dir, djangoArgs(repo(t), "--processes", "2", "--touch-reload", touch, "--touch-chain-reload", chain, "--master-fifo", fifo, "--disable-logging")...)
	base := s.httpAddr()
	s.ready(2)
	s.waitLog(`master fifo .* ready`, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ok, failed, wait := load(ctx, base+"/", 8)

	steps := []struct {
		name string
		do   func()
		log  string
	}{
		{"SIGHUP", func() { _ = s.cmd.Process.Signal(syscall.SIGHUP) }, `Gracefully killing worker`},
		{"touch-reload", func() { bump(t, touch) }, `has been touched\.\.\. grace them all`},
		{"touch-chain-reload", func() { bump(t, chain) }, `chain reloading complete`},
		{"fifo r", func() { writeFIFO(t, fifo, "r") }, `master-fifo 'r': graceful reload`},
		{"fifo c", func() { writeFIFO(t, fifo, "c") }, `chain reload starting`},
	}
	for i, st := range steps {
		before := s.countLog(`Respawned uWSGI worker`)
		st.do()
		s.waitLog(st.log, 20*time.Second)
		poll(t, 60*time.Second, st.name+": both workers respawned", func() error {
			if n := s.countLog(`Respawned uWSGI worker`); n < before+2 {
				return fmt.Errorf("%d respawns after step %d", n-before, i)
			}
			return nil
		})
	}
	cancel()
	wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads", failed.Load(), failed.Load()+ok.Load())
	}
	if ok.Load() < 50 {
		t.Fatalf("only %d requests ran during the reloads", ok.Load())
	}
}

func bump(t testing.TB, path string) {
	t.Helper()
	now := time.Now().Add(time.Second)
	if err := os.Chtimes(path, now, now); err != nil {
		t.Fatal(err)
	}
}

func writeFIFO(t testing.TB, path, cmd string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("open fifo: %v", err)
	}
	defer f.Close()
	if _, err := f.WriteString(cmd); err != nil {
		t.Fatal(err)
	}
}

// TestGracefulShutdown: SIGTERM lets a request in flight finish.
func TestGracefulShutdown(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	stats := filepath.Join(dir, "stats.sock")
	s := start(t, dir, djangoArgs(repo(t), "--processes", "1", "--stats", stats)...)
	base := s.httpAddr()
	s.ready(1)
	res := make(chan int, 1)
	go func() {
		resp, err := client.Get(base + "/sleep?s=1.5")
		if err != nil {
			res <- 0
			return
		}
		resp.Body.Close()
		res <- resp.StatusCode
	}()
	poll(t, 10*time.Second, "request in flight", func() error {
		if st := workersOf(readStats(t, stats))[0]["status"]; st != "busy" {
			return fmt.Errorf("worker status %v", st)
		}
		return nil
	})
	s.stop(syscall.SIGTERM, 30*time.Second)
	if code := <-res; code != 200 {
		t.Fatalf("request in flight during SIGTERM: %d, want 200", code)
	}
	s.waitLog(`goodbye to uWSGI\.`, 5*time.Second)
}

// TestCheaper: workers grow under a burst and shrink back when idle.
func TestCheaper(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	stats := filepath.Join(dir, "stats.sock")
	s := start(t, dir, djangoArgs(repo(t), "--processes", "4", "--cheaper", "1", "--cheaper-overload", "1", "--stats", stats, "--disable-logging")...)
	base := s.httpAddr()
	s.ready(1)
	if os.Getenv("GOMAXPROCS") == "" {
		// Sized for the most workers cheaper may run, not the current few.
		m := s.waitLog(`master uses (\d+) of \d+ cores for 4 workers`, 10*time.Second)
		if want := strconv.Itoa(min(2, runtime.NumCPU())); m[1] != want {
			t.Errorf("master uses %s cores for 4 workers, want %s (half a core per worker)", m[1], want)
		}
	}
	running := func() int {
		n := 0
		for _, w := range workersOf(readStats(t, stats)) {
			if w["pid"].(float64) != 0 {
				n++
			}
		}
		return n
	}
	if n := running(); n != 1 {
		t.Fatalf("%d workers at start, want cheaper = 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	_, _, wait := load(ctx, base+"/sleep?s=0.2", 8)
	poll(t, 25*time.Second, "workers grow under load", func() error {
		if n := running(); n < 3 {
			return fmt.Errorf("%d workers", n)
		}
		return nil
	})
	cancel()
	wait()
	poll(t, 30*time.Second, "workers shrink when idle", func() error {
		if n := running(); n != 1 {
			return fmt.Errorf("%d workers", n)
		}
		return nil
	})
}

// TestProcname: procname-master and procname name the processes as ps
// -o comm and top show them.
func TestProcname(t *testing.T) {
	requireE2E(t)
	s := start(t, t.TempDir(), djangoArgs(repo(t), "--processes", "1", "--procname-master", "gouwsgi-master", "--procname", "gouwsgi-worker")...)
	s.httpAddr()
	pid := s.waitLog(`spawned uWSGI worker 1 \(pid: (\d+)`, 60*time.Second)[1]
	comm := func(p string) string {
		b, err := os.ReadFile("/proc/" + p + "/comm")
		if err != nil {
			t.Fatalf("read comm of %s: %v", p, err)
		}
		return strings.TrimSpace(string(b))
	}
	if got := comm(strconv.Itoa(s.cmd.Process.Pid)); got != "gouwsgi-master" {
		t.Errorf("master comm %q, want gouwsgi-master", got)
	}
	if got := comm(pid); got != "gouwsgi-worker" {
		t.Errorf("worker comm %q, want gouwsgi-worker", got)
	}
}

// TestRecycleLifetimeAndRSS: max-worker-lifetime and reload-on-rss replace
// workers gracefully while requests keep succeeding.
func TestRecycleLifetimeAndRSS(t *testing.T) {
	requireE2E(t)
	for _, tc := range []struct {
		name string
		args []string
		log  string
	}{
		{"max-worker-lifetime", []string{"--max-worker-lifetime", "2"}, `worker 1 lifetime reached, it was running for \d+ second\(s\)`},
		// A Django worker is far above 1 MB: it is recycled at every check.
		{"reload-on-rss", []string{"--reload-on-rss", "1"}, `worker 1 \(pid: \d+\) rss \d+ bytes above reload-on-rss 1048576: recycling`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, t.TempDir(), djangoArgs(repo(t), append([]string{"--processes", "1", "--disable-logging"}, tc.args...)...)...)
			base := s.httpAddr()
			s.ready(1)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ok, failed, wait := load(ctx, base+"/", 4)
			s.waitLog(tc.log, 20*time.Second)
			poll(t, 20*time.Second, "worker respawned", func() error {
				if s.countLog(`Respawned uWSGI worker 1`) < 1 {
					return fmt.Errorf("no respawn yet")
				}
				return nil
			})
			cancel()
			wait()
			if failed.Load() != 0 || ok.Load() == 0 {
				t.Fatalf("%d requests failed, %d succeeded while recycling", failed.Load(), ok.Load())
			}
		})
	}
}

// TestGroupSIGTERM: SIGTERM to the whole process group (systemd's
// default KillMode) still lets a request in flight finish: the workers
// leave the shutdown to the master.
func TestGroupSIGTERM(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	stats := filepath.Join(dir, "stats.sock")
	s := start(t, dir, djangoArgs(repo(t), "--processes", "1", "--stats", stats)...)
	base := s.httpAddr()
	s.ready(1)
	res := make(chan int, 1)
	go func() {
		resp, err := client.Get(base + "/sleep?s=1.5")
		if err != nil {
			res <- 0
			return
		}
		resp.Body.Close()
		res <- resp.StatusCode
	}()
	poll(t, 10*time.Second, "request in flight", func() error {
		if st := workersOf(readStats(t, stats))[0]["status"]; st != "busy" {
			return fmt.Errorf("worker status %v", st)
		}
		return nil
	})
	// The master, the zygote and the workers share its process group.
	if err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatalf("signal the process group: %v", err)
	}
	if code := <-res; code != 200 {
		t.Fatalf("request in flight during a group SIGTERM: %d, want 200", code)
	}
	if err := s.wait(30 * time.Second); err != nil {
		t.Fatalf("gouwsgi after SIGTERM: %v", err)
	}
}
