package wsgi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gouwsgi/gouwsgi/node/wire"
)

// python is Debian's interpreter, the one with Django and Flask.
const python = "/usr/bin/python3"

func skipWithoutPython(tb testing.TB) {
	tb.Helper()
	if _, err := os.Stat(python); err != nil {
		tb.Skipf("%s not available: %v", python, err)
	}
}

// testLogger sends slog output to t.Log.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testdata(tb testing.TB, elem ...string) string {
	tb.Helper()
	p, err := filepath.Abs(filepath.Join(append([]string{"testdata"}, elem...)...))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// appSpec is the spec of testdata/apps/app.py; stderr goes to a file the
// test can read back.
func appSpec(tb testing.TB, lazy bool, threads int) (Spec, *os.File) {
	tb.Helper()
	skipWithoutPython(tb)
	stderr, err := os.Create(filepath.Join(tb.TempDir(), "stderr.log"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = stderr.Close() })
	return Spec{
		Python:    python,
		Chdir:     testdata(tb, "apps"),
		Module:    "app",
		Threads:   threads,
		Processes: 2,
		Opt:       map[string]string{"master": "", "socket": "127.0.0.1:3031"},
		Lazy:      lazy,
		Stderr:    stderr,
		Env:       []string{"PYTHONDONTWRITEBYTECODE=1"},
	}, stderr
}

func newSpawner(tb testing.TB, spec Spec) Spawner {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sp, err := NewSpawner(ctx, spec, testLogger(tb))
	if err != nil {
		tb.Fatalf("NewSpawner: %v", err)
	}
	tb.Cleanup(func() {
		if err := sp.Close(); err != nil {
			tb.Errorf("close spawner: %v", err)
		}
	})
	return sp
}

// spawn starts worker wid; cleanup closes its connections and reaps it.
func spawn(tb testing.TB, sp Spawner, wid int) *Process {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := sp.Spawn(ctx, wid)
	if err != nil {
		tb.Fatalf("Spawn(%d): %v", wid, err)
	}
	tb.Cleanup(func() { stopWorker(tb, p) })
	return p
}

// stopWorker closes p's connections and waits for it to exit, killing it
// after a deadline; it returns the exit code.
func stopWorker(tb testing.TB, p *Process) int {
	tb.Helper()
	_ = p.Close()
	done := make(chan int, 1)
	go func() {
		ws, err := Wait(p.PID)
		if err != nil {
			done <- -1
			return
		}
		done <- ws.ExitStatus()
	}()
	select {
	case code := <-done:
		return code
	case <-time.After(15 * time.Second):
		tb.Errorf("worker %d (pid %d) did not exit after its connections closed", p.WID, p.PID)
		_ = unix.Kill(p.PID, unix.SIGKILL)
		return <-done
	}
}

// serveCalls answers the worker's uwsgi-module calls with an in-memory
// cache, the way the pool does. It records alarms.
type fakeMaster struct {
	mu     sync.Mutex
	caches map[string]map[string][]byte
	alarms []string
	calls  []wire.Vars
}

func serveCalls(tb testing.TB, ctl net.Conn) *fakeMaster {
	m := &fakeMaster{caches: map[string]map[string][]byte{}}
	go func() {
		fr := wire.NewFrameReader(ctl)
		var out []byte
		for {
			h, p, err := fr.Next()
			if err != nil {
				return
			}
			if h.Modifier1 != wire.ModCall {
				tb.Errorf("unexpected modifier %d on ctl", h.Modifier1)
				return
			}
			vars, err := wire.ParseVars(p, 0)
			if err != nil {
				tb.Errorf("malformed call: %v", err)
				return
			}
			body, err := readBodyStream(fr)
			if err != nil {
				return
			}
			status, rv, rb := m.call(vars, body)
			out, err = wire.AppendPacket(out[:0], wire.ModReply, status, rv)
			if err != nil {
				tb.Errorf("encode reply: %v", err)
				return
			}
			out = wire.AppendBodyEnd(wire.AppendBody(out, rb))
			if _, err := ctl.Write(out); err != nil {
				return
			}
		}
	}()
	return m
}

func (m *fakeMaster) call(vars wire.Vars, body []byte) (uint8, wire.Vars, []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, vars)
	name := vars.Value("cache")
	c := m.caches[name]
	if c == nil {
		c = map[string][]byte{}
		m.caches[name] = c
	}
	key := vars.Value("key")
	v, found := c[key]
	switch vars.Value("op") {
	case "cache_get":
		if !found {
			return wire.ReplyNone, nil, nil
		}
		return wire.ReplyOK, nil, v
	case "cache_set":
		if found {
			return wire.ReplyNone, nil, nil
		}
		c[key] = body
	case "cache_update":
		c[key] = body
	case "cache_del", "cache_exists":
		if !found {
			return wire.ReplyNone, nil, nil
		}
		if vars.Value("op") == "cache_del" {
			delete(c, key)
		}
	case "cache_clear":
		clear(c)
	case "cache_inc":
		delta, _ := strconv.ParseInt(vars.Value("value"), 10, 64)
		var n int64
		if found {
			n = int64(binary.LittleEndian.Uint64(v))
		}
		c[key] = binary.LittleEndian.AppendUint64(nil, uint64(n+delta))
	case "cache_num":
		if !found {
			return wire.ReplyNotFound, nil, nil
		}
		return wire.ReplyOK, nil, v
	case "cache_keys":
		var kv wire.Vars
		for k := range c {
			kv = append(kv, wire.Var{Key: k})
		}
		enc, _ := kv.Append(nil)
		return wire.ReplyOK, nil, enc
	case "alarm":
		m.alarms = append(m.alarms, key+": "+string(body))
	default:
		return wire.ReplyError, wire.Vars{{Key: "error", Value: "unknown op " + vars.Value("op")}}, nil
	}
	return wire.ReplyOK, nil, nil
}

func readBodyStream(fr *wire.FrameReader) ([]byte, error) {
	var body []byte
	for {
		h, p, err := fr.Next()
		if err != nil {
			return nil, err
		}
		if h.Modifier1 != wire.ModBody {
			return nil, fmt.Errorf("expected a body packet, got modifier %d", h.Modifier1)
		}
		body = append(body, p...)
		if h.Modifier2 != wire.BodyData {
			return body, nil
		}
	}
}

// response is one response read off a data connection.
type response struct {
	status string
	header wire.Vars
	body   []byte
	chunks int
	end    wire.Vars
}

// client drives one data connection the way the pool does.
type client struct {
	conn net.Conn
	fr   *wire.FrameReader
}

func newClient(c net.Conn) *client { return &client{conn: c, fr: wire.NewFrameReader(c)} }

func requestVars(method, path string, extra ...wire.Var) wire.Vars {
	p, q, _ := strings.Cut(path, "?")
	vs := wire.Vars{
		{Key: "REQUEST_METHOD", Value: method},
		{Key: "REQUEST_URI", Value: path},
		{Key: "PATH_INFO", Value: p},
		{Key: "QUERY_STRING", Value: q},
		{Key: "SERVER_PROTOCOL", Value: "HTTP/1.1"},
		{Key: "SERVER_NAME", Value: "localhost"},
		{Key: "SERVER_PORT", Value: "80"},
		{Key: "REMOTE_ADDR", Value: "127.0.0.1"},
		{Key: "HTTP_HOST", Value: "localhost"},
	}
	return append(vs, extra...)
}

// send writes the request; the body goes out concurrently with reading
// the response, as it must (the app may answer before it reads the body).
func (c *client) send(vars wire.Vars, body []byte) <-chan error {
	errc := make(chan error, 1)
	if body != nil {
		vars = append(vars, wire.Var{Key: "CONTENT_LENGTH", Value: strconv.Itoa(len(body))})
	}
	go func() {
		b, err := AppendRequest(nil, vars, body)
		if err == nil {
			_, err = c.conn.Write(b)
		}
		errc <- err
	}()
	return errc
}

func (c *client) do(tb testing.TB, vars wire.Vars, body []byte) response {
	tb.Helper()
	errc := c.send(vars, body)
	r, err := c.read(nil)
	if err != nil {
		tb.Fatalf("read response: %v", err)
	}
	if err := <-errc; err != nil {
		tb.Fatalf("write request: %v", err)
	}
	return r
}

// read reads one response; onChunk, when set, sees every body chunk as it
// arrives.
func (c *client) read(onChunk func([]byte)) (response, error) {
	var r response
	for {
		h, p, err := c.fr.Next()
		if err != nil {
			return r, err
		}
		switch h.Modifier1 {
		case wire.ModHeaders:
			vs, err := wire.ParseVars(p, 0)
			if err != nil {
				return r, err
			}
			if len(vs) == 0 || vs[0].Key != ":status" {
				return r, fmt.Errorf("headers without :status: %v", vs)
			}
			r.status, r.header = vs[0].Value, vs[1:]
		case wire.ModBody:
			if r.status == "" {
				return r, errors.New("body before headers")
			}
			r.body = append(r.body, p...)
			r.chunks++
			if onChunk != nil {
				onChunk(p)
			}
		case wire.ModEnd:
			if r.status == "" {
				return r, errors.New("end before headers")
			}
			vs, err := wire.ParseVars(p, 0)
			r.end = vs
			return r, err
		default:
			return r, fmt.Errorf("unexpected modifier %d", h.Modifier1)
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fileContains(path, s string) func() bool {
	return func() bool {
		b, _ := os.ReadFile(path)
		return strings.Contains(string(b), s)
	}
}
