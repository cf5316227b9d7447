package worker

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/node/request"
	"github.com/gouwsgi/gouwsgi/node/wire"
	"github.com/gouwsgi/gouwsgi/node/wsgi"
)

// python is Debian's interpreter, the one the node runs apps with.
const python = "/usr/bin/python3"

// testPool is a pool of real Python workers serving testdata/app.py.
type testPool struct {
	*Pool
	stderr string // path of the workers' stderr
}

// newTestPool starts a pool with cfg (Processes and Threads set by the
// caller) and waits until every slot is ready. tune, when not nil, adjusts
// the pool before it runs.
func newTestPool(tb testing.TB, cfg Config, tune func(*Pool)) *testPool {
	tb.Helper()
	if _, err := os.Stat(python); err != nil {
		tb.Skipf("%s not available: %v", python, err)
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		tb.Fatal(err)
	}
	errPath := filepath.Join(tb.TempDir(), "stderr.log")
	stderr, err := os.Create(errPath)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = stderr.Close() })
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, cancel := context.WithCancel(context.Background())
	sp, err := wsgi.NewSpawner(ctx, wsgi.Spec{
		Python: python, Chdir: dir, Module: "app", Threads: cfg.Threads, Processes: cfg.Processes,
		Stderr: stderr, Env: []string{"PYTHONDONTWRITEBYTECODE=1"},
	}, log)
	if err != nil {
		cancel()
		tb.Fatalf("start the zygote: %v", err)
	}
	p, err := New(cfg, sp, nil, nil, log)
	if err != nil {
		cancel()
		_ = sp.Close()
		tb.Fatalf("New: %v", err)
	}
	if tune != nil {
		tune(p)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
		if err := sp.Close(); err != nil {
			tb.Errorf("close spawner: %v", err)
		}
	})
	tp := &testPool{Pool: p, stderr: errPath}
	tp.waitIdle(tb, cfg.Processes*cfg.Threads)
	return tp
}

// waitIdle polls until n slots are idle.
func (tp *testPool) waitIdle(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for tp.disp.idle() < n {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(tp.stderr)
			tb.Fatalf("%d of %d slots idle after 30s; log:\n%s", tp.disp.idle(), n, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitFor polls cond until it holds.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// response is what a request got back.
type response struct {
	code   int
	header http.Header
	body   string
}

// recorder is a minimal http.ResponseWriter.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (rec *recorder) Header() http.Header {
	if rec.header == nil {
		rec.header = http.Header{}
	}
	return rec.header
}

func (rec *recorder) WriteHeader(code int) {
	if rec.code == 0 {
		rec.code = code
	}
}

func (rec *recorder) Write(b []byte) (int, error) {
	rec.WriteHeader(http.StatusOK)
	return rec.body.Write(b)
}

func (rec *recorder) HeadSent() bool { return rec.code != 0 }

// newRequest builds the request the HTTP frontend would for method and uri.
func newRequest(method, uri string, body []byte) *request.Request {
	path, query, _ := strings.Cut(uri, "?")
	r := &request.Request{Vars: wire.Vars{
		{Key: "REQUEST_METHOD", Value: method},
		{Key: "REQUEST_URI", Value: uri},
		{Key: "PATH_INFO", Value: path},
		{Key: "QUERY_STRING", Value: query},
		{Key: "SERVER_PROTOCOL", Value: "HTTP/1.1"},
		{Key: "REMOTE_ADDR", Value: "127.0.0.1"},
		{Key: "SERVER_NAME", Value: "localhost"},
		{Key: "SERVER_PORT", Value: "80"},
	}}
	if body != nil {
		r.Vars = append(r.Vars, wire.Var{Key: "CONTENT_LENGTH", Value: itoa(len(body))})
		r.Body = bytes.NewReader(body)
	}
	return r
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// do serves one request through the pool.
func (tp *testPool) do(r *request.Request) response {
	rec := &recorder{}
	tp.ServeRequest(rec, r)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	return response{code: rec.code, header: rec.header, body: rec.body.String()}
}

func (tp *testPool) get(uri string) response { return tp.do(newRequest("GET", uri, nil)) }

// unsizedBody hides the size of a body so the pool has to stream it.
type unsizedBody struct{ io.Reader }
