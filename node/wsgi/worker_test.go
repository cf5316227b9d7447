package wsgi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gouwsgi/gouwsgi/node/wire"
)

var modes = []struct {
	name string
	lazy bool
}{
	{"lazy", true},
	{"zygote", false},
}

// TestWorker runs the WSGI behaviours against a real worker in both
// spawning modes.
func TestWorker(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Setenv("GOUWSGI_TEST_ENV", "parent")
			spec, stderr := appSpec(t, m.lazy, 4)
			spec.Env = append(spec.Env, "GOUWSGI_TEST_ENV=spec")
			sp := newSpawner(t, spec)
			p := spawn(t, sp, 1)
			if p.WID != 1 || p.PID <= 0 || len(p.Data) != 4 {
				t.Fatalf("process = %+v, want wid 1, a pid and 4 data connections", p)
			}
			master := serveCalls(t, p.Ctl)
			c := newClient(p.Data[0])
			for _, tc := range behaviours {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, &env{c: c, p: p, master: master, stderr: stderr.Name()})
				})
			}
		})
	}
}

type env struct {
	c      *client
	p      *Process
	master *fakeMaster
	stderr string
}

var behaviours = []struct {
	name string
	run  func(t *testing.T, e *env)
}{
	{"hello", func(t *testing.T, e *env) {
		r := e.c.do(t, requestVars("GET", "/"), nil)
		wantResponse(t, r, "200 OK", "Hello World")
		if v, _ := r.header.Get("Content-Type"); v != "text/plain" {
			t.Errorf("Content-Type = %q", v)
		}
		if _, ok := r.header.Get("Content-Length"); ok {
			t.Error("the worker invented a Content-Length")
		}
		if len(r.end) != 0 {
			t.Errorf("end vars = %v, want none", r.end)
		}
	}},
	{"pipelined requests answered in order", func(t *testing.T, e *env) {
		// The master may send requests before the previous one is
		// answered; the worker must answer each in turn, with and without
		// a body.
		var batch []byte
		for i := range 5 {
			vars := requestVars("GET", "/")
			var body []byte
			if i%2 == 1 {
				body = []byte(fmt.Sprintf("body %d", i))
				vars = requestVars("POST", "/echo", wire.Var{Key: "CONTENT_LENGTH", Value: strconv.Itoa(len(body))})
			}
			b, err := AppendRequest(batch, vars, body)
			if err != nil {
				t.Fatal(err)
			}
			batch = b
		}
		if _, err := e.c.conn.Write(batch); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			r, err := e.c.read(nil)
			if err != nil {
				t.Fatalf("response %d: %v", i, err)
			}
			want := "Hello World"
			if i%2 == 1 {
				want = fmt.Sprintf("body %d", i)
			}
			wantResponse(t, r, "200 OK", want)
		}
	}},
	{"header list changed in place between requests", func(t *testing.T, e *env) {
		first := e.c.do(t, requestVars("GET", "/counter"), nil).header.Value("X-Count")
		second := e.c.do(t, requestVars("GET", "/counter"), nil).header.Value("X-Count")
		a, _ := strconv.Atoi(first)
		b, _ := strconv.Atoi(second)
		if a == 0 || b != a+1 {
			t.Errorf("X-Count %q then %q, want consecutive counts", first, second)
		}
	}},
	{"upload 5 MB streamed", func(t *testing.T, e *env) {
		base := e.c.do(t, requestVars("POST", "/upload"), []byte("x"))
		body := bytes.Repeat([]byte("0123456789abcdef"), 5<<20/16)
		r := e.c.do(t, requestVars("POST", "/upload"), body)
		sum := sha256.Sum256(body)
		wantResponse(t, r, "200 OK", hex.EncodeToString(sum[:]))
		if v := r.header.Value("X-Len"); v != strconv.Itoa(len(body)) {
			t.Errorf("app read %s bytes, want %d", v, len(body))
		}
		before, _ := strconv.Atoi(base.header.Value("X-Maxrss-Kb"))
		after, _ := strconv.Atoi(r.header.Value("X-Maxrss-Kb"))
		// Buffering the body would add at least its 5 MB to the peak RSS.
		if after-before > 2048 {
			t.Errorf("peak RSS grew by %d KiB for a 5 MiB body read in chunks", after-before)
		}
	}},
	{"readline", func(t *testing.T, e *env) {
		r := e.c.do(t, requestVars("POST", "/readline"), []byte("first line\nabcdef\nx\ny"))
		wantResponse(t, r, "200 OK", `[b'first line\n', b'abc', [b'def\n', b'x\n', b'y']]`)
	}},
	{"input iteration across chunks", func(t *testing.T, e *env) {
		long := strings.Repeat("z", 70000) // spans two body packets
		r := e.c.do(t, requestVars("POST", "/iterate"), []byte("a\n"+long+"\nb"))
		wantResponse(t, r, "200 OK", "a|"+long+"|b")
	}},
	{"write callable", func(t *testing.T, e *env) {
		wantResponse(t, e.c.do(t, requestVars("GET", "/write"), nil), "200 OK", "one two three")
	}},
	{"close called", func(t *testing.T, e *env) {
		wantResponse(t, e.c.do(t, requestVars("GET", "/closing?tag1"), nil), "200 OK", "gen-body")
		wantResponse(t, e.c.do(t, requestVars("GET", "/closed"), nil), "200 OK", "tag1")
	}},
	{"exc_info before headers", func(t *testing.T, e *env) {
		r := e.c.do(t, requestVars("GET", "/exc_info"), nil)
		wantResponse(t, r, "503 Service Unavailable", "recovered")
		if r.header.Value("X-After") != "1" || r.header.Value("X-Before") != "" {
			t.Errorf("headers = %v, want only the replacement's", r.header)
		}
	}},
	{"exc_info after headers re-raises", func(t *testing.T, e *env) {
		r := e.c.do(t, requestVars("GET", "/exc_info_late"), nil)
		wantResponse(t, r, "200 OK", "partial")
		wantEnd(t, r, "exception", "aborted")
		waitFor(t, "traceback of the re-raised error", fileContains(e.stderr, "ValueError: too late"))
	}},
	{"app raises then keeps serving", func(t *testing.T, e *env) {
		r := e.c.do(t, requestVars("GET", "/raise"), nil)
		wantResponse(t, r, "500 Internal Server Error", "Internal Server Error\n")
		wantEnd(t, r, "exception")
		waitFor(t, "traceback on stderr", fileContains(e.stderr, "RuntimeError: app exploded"))
		wantResponse(t, e.c.do(t, requestVars("GET", "/"), nil), "200 OK", "Hello World")
	}},
	{"body without start_response is an app error", func(t *testing.T, e *env) {
		r := e.c.do(t, requestVars("GET", "/no_start"), nil)
		wantResponse(t, r, "500 Internal Server Error", "Internal Server Error\n")
		wantEnd(t, r, "exception")
		waitFor(t, "the reason on stderr", fileContains(e.stderr, "before calling start_response"))
	}},
	{"empty body still sends headers", func(t *testing.T, e *env) {
		r := e.c.do(t, requestVars("GET", "/empty"), nil)
		wantResponse(t, r, "204 No Content", "")
		if r.header.Value("X-Empty") != "yes" || r.chunks != 0 {
			t.Errorf("headers %v, %d body packets: want X-Empty and no body", r.header, r.chunks)
		}
	}},
	{"app raises mid-stream", func(t *testing.T, e *env) {
		r := e.c.do(t, requestVars("GET", "/raise_mid"), nil)
		wantResponse(t, r, "200 OK", "first")
		wantEnd(t, r, "exception", "aborted")
	}},
	{"unicode header as latin-1", func(t *testing.T, e *env) {
		r := e.c.do(t, requestVars("GET", "/unicode"), nil)
		wantResponse(t, r, "200 OK", "ok")
		if v := r.header.Value("X-Latin"); v != "caf\xe9" {
			t.Errorf("X-Latin = %q, want latin-1 caf\\xe9", v)
		}
	}},
	{"non latin-1 header is an app error", func(t *testing.T, e *env) {
		r := e.c.do(t, requestVars("GET", "/bad_header"), nil)
		wantResponse(t, r, "500 Internal Server Error", "Internal Server Error\n")
		wantEnd(t, r, "exception")
		waitFor(t, "a message naming the header", fileContains(e.stderr, "value of header X-Snow"))
	}},
	{"environ", func(t *testing.T, e *env) {
		r := e.c.do(t, requestVars("GET", "/environ", wire.Var{Key: "UWSGI_SCHEME", Value: "https"},
			wire.Var{Key: "HTTP_X_LATIN", Value: "caf\xe9"}), nil)
		want := `{'wsgi.url_scheme': 'https', 'wsgi.multithread': True, 'wsgi.multiprocess': True, ` +
			`'wsgi.run_once': False, 'wsgi.input_terminated': True, 'wsgi.version': (1, 0), ` +
			`'REQUEST_METHOD': 'GET', 'PATH_INFO': '/environ', 'HTTP_X_LATIN': 'café'}`
		wantResponse(t, r, "200 OK", want)
		r = e.c.do(t, requestVars("GET", "/environ", wire.Var{Key: "HTTPS", Value: "on"}), nil)
		if !strings.Contains(string(r.body), `'wsgi.url_scheme': 'https'`) {
			t.Errorf("HTTPS=on did not make the scheme https: %s", r.body)
		}
	}},
	{"spec env overrides the master's", func(t *testing.T, e *env) {
		wantResponse(t, e.c.do(t, requestVars("GET", "/getenv?GOUWSGI_TEST_ENV"), nil), "200 OK", "spec")
		wantResponse(t, e.c.do(t, requestVars("GET", "/getenv?GOUWSGI_WORKER"), nil), "200 OK", "<unset>")
	}},
	{"file wrapper", func(t *testing.T, e *env) {
		data := bytes.Repeat([]byte("file-data-"), 10000)
		path := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		r := e.c.do(t, requestVars("GET", "/filewrap", wire.Var{Key: "HTTP_X_FILE", Value: path}), nil)
		wantResponse(t, r, "200 OK", string(data))
	}},
	{"unread body is drained", func(t *testing.T, e *env) {
		r := e.c.do(t, requestVars("POST", "/no_read"), bytes.Repeat([]byte("u"), 1<<20))
		wantResponse(t, r, "413 Request Entity Too Large", "nope")
		wantResponse(t, e.c.do(t, requestVars("GET", "/"), nil), "200 OK", "Hello World")
	}},
	{"aborted body raises in the app", func(t *testing.T, e *env) {
		vars := requestVars("POST", "/upload", wire.Var{Key: "CONTENT_LENGTH", Value: "100"})
		b, err := wire.AppendPacket(nil, wire.ModRequest, 0, vars)
		if err != nil {
			t.Fatal(err)
		}
		b = wire.AppendBody(b, []byte("only part"))
		b = wire.AppendFrame(b, wire.ModBody, wire.BodyAbort, nil)
		if _, err := e.c.conn.Write(b); err != nil {
			t.Fatal(err)
		}
		r, err := e.c.read(nil)
		if err != nil {
			t.Fatal(err)
		}
		wantResponse(t, r, "500 Internal Server Error", "Internal Server Error\n")
		wantEnd(t, r, "exception")
		waitFor(t, "BodyAborted traceback", fileContains(e.stderr, "request body cut short"))
	}},
	{"streaming arrives chunk by chunk", func(t *testing.T, e *env) {
		goPrefix := filepath.Join(t.TempDir(), "go")
		errc := e.c.send(requestVars("GET", "/stream", wire.Var{Key: "HTTP_X_GO", Value: goPrefix}), nil)
		n := 0
		// Each chunk must arrive while the app still waits for the test to
		// release it: a buffering worker would deadlock until the app's
		// own 10 s timeout and the deadline below would trip.
		_ = e.c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		r, err := e.c.read(func(p []byte) {
			if want := fmt.Sprintf("chunk%d", n); string(p) != want {
				t.Errorf("chunk %d = %q, want %q", n, p, want)
			}
			if err := os.WriteFile(goPrefix+strconv.Itoa(n), nil, 0o600); err != nil {
				t.Error(err)
			}
			n++
		})
		_ = e.c.conn.SetReadDeadline(time.Time{})
		if err != nil {
			t.Fatalf("read streamed response: %v", err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		wantResponse(t, r, "200 OK", "chunk0chunk1chunk2")
		if r.chunks != 3 {
			t.Errorf("got %d body packets, want 3", r.chunks)
		}
	}},
	{"threads serve concurrently", func(t *testing.T, e *env) {
		var wg sync.WaitGroup
		names := make([]string, len(e.p.Data))
		for i, conn := range e.p.Data {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := e.c
				if i > 0 {
					c = newClient(conn)
				}
				errc := c.send(requestVars("GET", "/concurrent"), nil)
				r, err := c.read(nil)
				if err != nil {
					t.Errorf("connection %d: %v", i, err)
					return
				}
				if err := <-errc; err != nil {
					t.Errorf("connection %d: %v", i, err)
				}
				if r.status != "200 OK" {
					t.Errorf("connection %d: status %q (the barrier needs 4 requests at once)", i, r.status)
				}
				names[i] = string(r.body)
			}()
		}
		wg.Wait()
		seen := map[string]bool{}
		for _, n := range names {
			seen[n] = true
		}
		if len(seen) != len(names) {
			t.Errorf("threads %v: want %d distinct", names, len(names))
		}
	}},
	{"uwsgi module calls reach the control connection", func(t *testing.T, e *env) {
		r := e.c.do(t, requestVars("GET", "/cache"), nil)
		want := "[True, None, b'v1', True, b'v3', None, True, 5, [b'k', b'n'], True, None, True, None, 1, 2, True, b'127.0.0.1:3031']"
		if string(r.body) != want && string(r.body) != strings.Replace(want, "[b'k', b'n']", "[b'n', b'k']", 1) {
			t.Errorf("cache results\n got %s\nwant %s", r.body, want)
		}
		if v := r.end.Value("logvar.user"); v != "alice" {
			t.Errorf("end vars %v: want logvar.user=alice", r.end)
		}
		e.master.mu.Lock()
		defer e.master.mu.Unlock()
		if len(e.master.alarms) != 1 || e.master.alarms[0] != "pager: disk full" {
			t.Errorf("alarms = %q", e.master.alarms)
		}
		var upd wire.Vars
		for _, c := range e.master.calls {
			if c.Value("op") == "cache_update" {
				upd = c
			}
		}
		if upd.Value("cache") != "other" || upd.Value("expires") != "10" || upd.Value("key") != "k" {
			t.Errorf("cache_update vars = %v", upd)
		}
	}},
}

func wantResponse(t *testing.T, r response, status, body string) {
	t.Helper()
	if r.status != status || string(r.body) != body {
		t.Errorf("response %q %.200q, want %q %.200q", r.status, r.body, status, body)
	}
}

func wantEnd(t *testing.T, r response, flags ...string) {
	t.Helper()
	for _, f := range flags {
		if r.end.Value(f) != "1" {
			t.Errorf("end vars %v: want %s=1", r.end, f)
		}
	}
}

// TestWorkerExit checks that a worker whose data connections close exits 0
// with uWSGI's goodbye line, in both modes, and that zygote workers are
// distinct processes reaped by this one.
func TestWorkerExit(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			spec, stderr := appSpec(t, m.lazy, 2)
			sp := newSpawner(t, spec)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			pids := map[int]bool{}
			for wid := 1; wid <= 2; wid++ {
				p, err := sp.Spawn(ctx, wid)
				if err != nil {
					t.Fatal(err)
				}
				r := newClient(p.Data[1]).do(t, requestVars("GET", "/pid"), nil)
				if string(r.body) != strconv.Itoa(p.PID) {
					t.Errorf("worker %d says pid %s, spawner says %d", wid, r.body, p.PID)
				}
				pids[p.PID] = true
				if code := stopWorker(t, p); code != 0 {
					t.Errorf("worker %d exited with %d, want 0", wid, code)
				}
				waitFor(t, "goodbye line", fileContains(stderr.Name(),
					fmt.Sprintf("...The work of process %d is done. Seeya!", p.PID)))
			}
			if len(pids) != 2 {
				t.Errorf("pids %v: want 2 distinct workers", pids)
			}
		})
	}
}

// TestImportFailure checks that an app that cannot be imported is an
// ErrAppLoad error carrying the Python traceback.
func TestImportFailure(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			spec, stderr := appSpec(t, m.lazy, 1)
			spec.Module = ""
			spec.WSGIFile = testdata(t, "apps", "broken.py")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sp, err := NewSpawner(ctx, spec, testLogger(t))
			if err == nil {
				defer sp.Close()
				_, err = sp.Spawn(ctx, 1)
			}
			if !errors.Is(err, ErrAppLoad) {
				t.Fatalf("err = %v, want ErrAppLoad", err)
			}
			for _, want := range []string{"Traceback (most recent call last)", "ModuleNotFoundError", "this_module_does_not_exist_gouwsgi"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			waitFor(t, "GAME OVER on stderr", fileContains(stderr.Name(), "*** no app loaded. GAME OVER ***"))
		})
	}
}

// TestSpecErrors checks that bad specs are refused with a clear message.
func TestSpecErrors(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"no app", Spec{Python: python}, "neither module nor wsgi-file"},
		{"two apps", Spec{Python: python, Module: "a", WSGIFile: "b.py"}, "choose one"},
		{"threads", Spec{Python: python, Module: "a", Threads: -1}, "threads must be at least 1"},
		{"python", Spec{Python: "/nonexistent/python9", Module: "a"}, "/nonexistent/python9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSpawner(context.Background(), tc.spec, testLogger(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestMissingCallable checks the error for a module without the callable.
func TestMissingCallable(t *testing.T) {
	spec, _ := appSpec(t, true, 1)
	spec.Module = "app:nothing_here"
	sp := newSpawner(t, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := sp.Spawn(ctx, 1)
	if !errors.Is(err, ErrAppLoad) || !strings.Contains(err.Error(), "callable 'nothing_here' not found in module app") {
		t.Errorf("err = %v, want ErrAppLoad naming the callable", err)
	}
}

// TestZygoteRespawnAndReload checks that a dead zygote is replaced on the
// next spawn and that Reload swaps in a fresh zygote.
func TestZygoteRespawnAndReload(t *testing.T) {
	spec, _ := appSpec(t, false, 1)
	sp := newSpawner(t, spec)
	zs := sp.(*zygoteSpawner)
	first := zs.z.pid
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := zs.Reload(ctx); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	second := zs.z.pid
	if second == first {
		t.Fatal("Reload kept the same zygote")
	}
	if err := unix.Kill(second, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "zygote death noticed", func() bool { return !zs.z.alive() })
	p := spawn(t, sp, 3)
	wantResponse(t, newClient(p.Data[0]).do(t, requestVars("GET", "/"), nil), "200 OK", "Hello World")
	if zs.z.pid == second {
		t.Error("spawn did not replace the dead zygote")
	}
}

// TestSpawnFailures checks the errors of workers that never say hello: one
// that dies while importing and one that is still importing when the
// context ends (it is killed and reaped, not left behind).
func TestSpawnFailures(t *testing.T) {
	tests := []struct {
		module  string
		timeout time.Duration
		want    error
	}{
		{"dies", 30 * time.Second, ErrWorkerDied},
		{"slow", 500 * time.Millisecond, context.DeadlineExceeded},
	}
	for _, m := range modes {
		for _, tc := range tests {
			t.Run(m.name+"/"+tc.module, func(t *testing.T) {
				spec, _ := appSpec(t, m.lazy, 1)
				spec.Module = tc.module
				ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
				defer cancel()
				start := time.Now()
				sp, err := NewSpawner(ctx, spec, testLogger(t))
				if err == nil {
					defer sp.Close()
					_, err = sp.Spawn(ctx, 1)
				}
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if d := time.Since(start); d > 10*time.Second {
					t.Errorf("failing took %s", d)
				}
				m := regexp.MustCompile(`\(pid (\d+)\)`).FindStringSubmatch(err.Error())
				if m == nil {
					t.Fatalf("error %q does not name the pid", err)
				}
				pid, _ := strconv.Atoi(m[1])
				if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
					t.Errorf("pid %d still exists (kill 0: %v): not reaped", pid, err)
				}
			})
		}
	}
}
