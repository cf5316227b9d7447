package stats_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/cache"
	"github.com/gouwsgi/gouwsgi/node/frontend"
	"github.com/gouwsgi/gouwsgi/node/request"
	"github.com/gouwsgi/gouwsgi/node/stats"
	"github.com/gouwsgi/gouwsgi/node/worker"
	"github.com/gouwsgi/gouwsgi/node/wsgi"
)

// python is Debian's interpreter (the workers need nothing beyond it).
const python = "/usr/bin/python3"

// app answers every path with "ok" and raises on /boom.
const app = `def application(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
`

// testNode is the part of a node the stats server reads: two real Python
// workers behind a real HTTP frontend, and a real cache2 cache.
type testNode struct {
	src     stats.Sources
	base    string // http://addr of the frontend
	cache   *cache.Local
	metrics *stats.Metrics
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestNode(t *testing.T) *testNode {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skipf("%s not available: %v", python, err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr, err := os.Create(filepath.Join(dir, "workers.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stderr.Close() })
	log := quietLogger()
	ctx, cancel := context.WithCancel(context.Background())
	sp, err := wsgi.NewSpawner(ctx, wsgi.Spec{Python: python, Chdir: dir, WSGIFile: filepath.Join(dir, "app.py"), Processes: 2, Stderr: stderr}, log)
	if err != nil {
		cancel()
		t.Fatalf("spawner: %v", err)
	}
	cfg := worker.DefaultConfig()
	cfg.Processes = 2
	pool, err := worker.New(cfg, sp, nil, nil, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}

	cc, err := cache.ParseConfig("name=mycache,items=300,hash=murmur2")
	if err != nil {
		t.Fatal(err)
	}
	local, err := cache.NewLocal(cc, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	caches := &cache.Registry{}
	if err := caches.Add(local); err != nil {
		t.Fatal(err)
	}

	n := &testNode{cache: local}
	n.src = stats.Sources{Pool: pool, Caches: caches}
	n.metrics = stats.NewMetrics(n.src)
	front := frontend.New(frontend.DefaultConfig(), pool, n.metrics, log)
	addr, err := front.AddHTTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.src.Frontend = front
	n.base = "http://" + addr.String()

	poolDone, frontDone := make(chan struct{}), make(chan struct{})
	go func() { _ = pool.Run(ctx); close(poolDone) }()
	go func() { _ = front.Serve(ctx, time.Second); close(frontDone) }()
	t.Cleanup(func() {
		cancel()
		<-frontDone
		<-poolDone
		_ = sp.Close()
	})
	poll(t, 30*time.Second, "both workers running", func() error {
		for _, w := range n.src.Snapshot().Workers {
			if w.PID == 0 || w.Status != "idle" {
				return fmt.Errorf("worker %d: pid %d status %s", w.ID, w.PID, w.Status)
			}
		}
		return nil
	})
	return n
}

// get requests path from the frontend and returns the status.
func (n *testNode) get(t *testing.T, path string) int {
	t.Helper()
	resp, err := http.Get(n.base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func poll(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kind is a JSON value's type as encoding/json decodes it.
func kind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case bool:
		return "bool"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// uWSGI's layout, key by key, as Debian's uWSGI 2.0.21 writes it and
// uwsgitop/uwsgicachetop read it.
var (
	topKeys = map[string]string{
		"version": "string", "listen_queue": "number", "listen_queue_errors": "number", "signal_queue": "number",
		"load": "number", "pid": "number", "uid": "number", "gid": "number", "cwd": "string",
		"locks": "array", "caches": "array", "sockets": "array", "workers": "array",
		// uWSGI adds these only when it has daemons, spoolers, crons or
		// metrics; always present (empty) here, with uWSGI's types.
		"daemons": "array", "spoolers": "array", "crons": "array", "metrics": "object",
	}
	workerKeys = map[string]string{
		"id": "number", "pid": "number", "accepting": "number", "requests": "number", "delta_requests": "number",
		"exceptions": "number", "harakiri_count": "number", "signals": "number", "signal_queue": "number",
		"status": "string", "rss": "number", "vsz": "number", "running_time": "number", "last_spawn": "number",
		"respawn_count": "number", "tx": "number", "avg_rt": "number", "apps": "array", "cores": "array",
	}
	appKeys = map[string]string{
		"id": "number", "modifier1": "number", "mountpoint": "string", "startup_time": "number",
		"requests": "number", "exceptions": "number", "chdir": "string",
	}
	coreKeys = map[string]string{
		"id": "number", "requests": "number", "static_requests": "number", "routed_requests": "number",
		"offloaded_requests": "number", "write_errors": "number", "read_errors": "number", "in_request": "number",
		"vars": "array", "req_info": "object",
	}
	socketKeys = map[string]string{
		"name": "string", "proto": "string", "queue": "number", "max_queue": "number", "shared": "number", "can_offload": "number",
	}
	cacheKeys = map[string]string{
		"name": "string", "hash": "string", "hashsize": "number", "keysize": "number", "max_items": "number",
		"blocks": "number", "blocksize": "number", "items": "number", "hits": "number", "miss": "number",
		"full": "number", "last_modified_at": "number",
	}
)

// checkKeys fails unless obj has exactly the keys of want, each with its type.
func checkKeys(t *testing.T, where string, obj map[string]any, want map[string]string) {
	t.Helper()
	for k, typ := range want {
		v, ok := obj[k]
		if !ok {
			t.Errorf("%s: key %q missing", where, k)
			continue
		}
		if got := kind(v); got != typ {
			t.Errorf("%s.%s is a %s (%v), want a %s", where, k, got, v, typ)
		}
	}
	for k := range obj {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected key %q", where, k)
		}
	}
}

func objects(t *testing.T, where string, v any) []map[string]any {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("%s is %s, want an array", where, kind(v))
	}
	out := make([]map[string]any, 0, len(arr))
	for i, e := range arr {
		m, ok := e.(map[string]any)
		if !ok {
			t.Fatalf("%s[%d] is %s, want an object", where, i, kind(e))
		}
		out = append(out, m)
	}
	return out
}

// readRaw reads one document from a raw stats server.
func readRaw(t *testing.T, network, addr string) map[string]any {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial stats %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read stats: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("stats from %s is not JSON: %v\n%s", addr, err, b)
	}
	return doc
}

func listen(t *testing.T, addr string, asHTTP bool, src stats.Sources) *stats.Server {
	t.Helper()
	s, err := stats.Listen(addr, asHTTP, src, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// TestStatsLayout: the document on a unix socket has uWSGI's layout key by
// key, and its figures follow what the node did.
func TestStatsLayout(t *testing.T) {
	n := newTestNode(t)
	const requests = 10
	for i := range requests {
		if code := n.get(t, "/r"+strconv.Itoa(i)); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	if code := n.get(t, "/boom"); code != 500 {
		t.Fatalf("/boom: %d, want 500", code)
	}
	if err := n.cache.Set("k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	n.cache.Get("k")
	n.cache.Get("absent")

	sock := filepath.Join(t.TempDir(), "stats.sock")
	listen(t, sock, false, n.src)
	var doc map[string]any
	poll(t, 10*time.Second, "every request counted", func() error {
		doc = readRaw(t, "unix", sock)
		total := 0.0
		for _, w := range objects(t, "workers", doc["workers"]) {
			total += w["requests"].(float64)
		}
		if total != requests+1 {
			return fmt.Errorf("workers[].requests add up to %v, want %d", total, requests+1)
		}
		return nil
	})

	checkKeys(t, "stats", doc, topKeys)
	cwd, _ := os.Getwd()
	if doc["pid"] != float64(os.Getpid()) || doc["uid"] != float64(os.Getuid()) || doc["gid"] != float64(os.Getgid()) || doc["cwd"] != cwd {
		t.Errorf("pid/uid/gid/cwd = %v/%v/%v/%v, want this process's", doc["pid"], doc["uid"], doc["gid"], doc["cwd"])
	}
	if v, _ := doc["version"].(string); !strings.HasPrefix(v, "2.0.") {
		t.Errorf("version %q: uwsgitop expects a 2.0.x version", v)
	}

	locks := objects(t, "locks", doc["locks"])
	var lockNames []string
	for i, l := range locks {
		if len(l) != 1 {
			t.Errorf("locks[%d] = %v, want one name: count pair", i, l)
		}
		for k, v := range l {
			lockNames = append(lockNames, k)
			if kind(v) != "number" {
				t.Errorf("locks[%d].%s is %s", i, k, kind(v))
			}
		}
	}
	if want := "user 0,signal,filemon,timer,rbtimer,cron,rpc,snmp,cache_mycache"; strings.Join(lockNames, ",") != want {
		t.Errorf("locks %v, want %s", lockNames, want)
	}

	workers := objects(t, "workers", doc["workers"])
	if len(workers) != 2 {
		t.Fatalf("%d workers, want 2", len(workers))
	}
	exceptions := 0.0
	for i, w := range workers {
		where := fmt.Sprintf("workers[%d]", i)
		checkKeys(t, where, w, workerKeys)
		if w["id"] != float64(i+1) || w["pid"].(float64) <= 0 || w["status"] != "idle" || w["accepting"] != float64(1) {
			t.Errorf("%s: id %v pid %v status %v accepting %v", where, w["id"], w["pid"], w["status"], w["accepting"])
		}
		if w["rss"].(float64) <= 0 || w["vsz"].(float64) < w["rss"].(float64) {
			t.Errorf("%s: rss %v vsz %v", where, w["rss"], w["vsz"])
		}
		if w["last_spawn"].(float64) < float64(time.Now().Add(-time.Minute).Unix()) {
			t.Errorf("%s: last_spawn %v is not a recent unix time", where, w["last_spawn"])
		}
		if w["requests"].(float64) > 0 && (w["tx"].(float64) <= 0 || w["avg_rt"].(float64) <= 0) {
			t.Errorf("%s served %v requests but tx %v avg_rt %v", where, w["requests"], w["tx"], w["avg_rt"])
		}
		exceptions += w["exceptions"].(float64)
		for j, a := range objects(t, where+".apps", w["apps"]) {
			checkKeys(t, fmt.Sprintf("%s.apps[%d]", where, j), a, appKeys)
		}
		cores := objects(t, where+".cores", w["cores"])
		if len(cores) != 1 {
			t.Errorf("%s: %d cores, want 1 (threads = 1)", where, len(cores))
		}
		for j, c := range cores {
			checkKeys(t, fmt.Sprintf("%s.cores[%d]", where, j), c, coreKeys)
		}
	}
	if exceptions != 1 {
		t.Errorf("workers[].exceptions add up to %v, want 1 (/boom)", exceptions)
	}

	sockets := objects(t, "sockets", doc["sockets"])
	if len(sockets) != 1 {
		t.Fatalf("sockets %v, want the HTTP listener", sockets)
	}
	checkKeys(t, "sockets[0]", sockets[0], socketKeys)
	if sockets[0]["proto"] != "http" || sockets[0]["max_queue"] != float64(100) {
		t.Errorf("sockets[0] = %v, want proto http, max_queue 100 (listen)", sockets[0])
	}

	caches := objects(t, "caches", doc["caches"])
	if len(caches) != 1 {
		t.Fatalf("caches %v, want mycache", caches)
	}
	checkKeys(t, "caches[0]", caches[0], cacheKeys)
	want := map[string]any{"name": "mycache", "hash": "murmur2", "max_items": 300.0, "items": 1.0, "hits": 1.0, "miss": 1.0, "full": 0.0}
	for k, v := range want {
		if caches[0][k] != v {
			t.Errorf("caches[0].%s = %v, want %v", k, caches[0][k], v)
		}
	}
}

// TestStatsWithoutCaches: a node without caches has no caches[] (uWSGI
// leaves it out), and the rest is still there.
func TestStatsWithoutCaches(t *testing.T) {
	b, err := json.Marshal(stats.Sources{}.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for k, v := range topKeys {
		if k != "caches" {
			want[k] = v
		}
	}
	checkKeys(t, "stats", doc, want)
	for _, k := range []string{"sockets", "workers", "daemons"} {
		if arr, _ := doc[k].([]any); arr == nil || len(arr) != 0 {
			t.Errorf("%s = %v, want an empty array (never null)", k, doc[k])
		}
	}
}

// TestStatsServerAnswers: TCP and unix stats servers answer every
// connection with one document and close it; stats-http wraps it in an
// HTTP response for HTTP clients and for clients that send nothing.
func TestStatsServerAnswers(t *testing.T) {
	n := newTestNode(t)
	t.Run("tcp", func(t *testing.T) {
		s := listen(t, "127.0.0.1:0", false, n.src)
		for range 3 {
			if doc := readRaw(t, "tcp", s.Addr().String()); doc["pid"] != float64(os.Getpid()) {
				t.Fatalf("pid %v", doc["pid"])
			}
		}
	})
	t.Run("unix", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "s.sock")
		listen(t, sock, false, n.src)
		if doc := readRaw(t, "unix", sock); len(objects(t, "workers", doc["workers"])) != 2 {
			t.Fatalf("workers %v", doc["workers"])
		}
	})
	t.Run("stats-http GET", func(t *testing.T) {
		s := listen(t, "127.0.0.1:0", true, n.src)
		resp, err := http.Get("http://" + s.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("status %d content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		checkKeys(t, "stats", doc, topKeys)
	})
	t.Run("stats-http without a request", func(t *testing.T) {
		s := listen(t, "127.0.0.1:0", true, n.src)
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no HTTP response for a client that sent nothing: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !json.Valid(b) || int64(len(b)) != resp.ContentLength {
			t.Fatalf("status %d, %d bytes (Content-Length %d), valid JSON %v", resp.StatusCode, len(b), resp.ContentLength, json.Valid(b))
		}
	})
	t.Run("Handler", func(t *testing.T) {
		rec := httptest.NewRecorder()
		n.src.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/stats", nil))
		var doc map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("Handler: %v, content-type %q", err, rec.Header().Get("Content-Type"))
		}
		checkKeys(t, "stats", doc, topKeys)
	})
	t.Run("bad address", func(t *testing.T) {
		_, err := stats.Listen(filepath.Join(t.TempDir(), "no", "such", "dir.sock"), false, n.src, quietLogger())
		if err == nil || !strings.Contains(err.Error(), "stats server") {
			t.Fatalf("Listen on a missing directory: %v, want an error naming the stats server", err)
		}
	})
}

// scrape reads /metrics into series -> value ("name{labels}" as written).
func scrape(t *testing.T, m *stats.Metrics) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetrics: /metrics has request counters and a latency histogram
// observed per request, worker gauges and harakiri/respawn/exception
// counters read from the pool, and cache counters.
func TestMetrics(t *testing.T) {
	n := newTestNode(t)
	for range 4 {
		n.get(t, "/")
	}
	n.get(t, "/boom")
	// A cache hit answered in Go (no worker) is labelled worker="go".
	n.metrics.LogRequest(&request.Request{}, request.Result{Status: 200, Duration: 300 * time.Microsecond})
	n.cache.Get("absent")

	var m map[string]float64
	poll(t, 10*time.Second, "requests counted", func() error {
		m = scrape(t, n.metrics)
		if got := m[`gouwsgi_requests_total{code="2xx",worker="python"}`]; got != 4 {
			return fmt.Errorf("2xx python = %v", got)
		}
		return nil
	})
	want := map[string]float64{
		`gouwsgi_requests_total{code="5xx",worker="python"}`:                 1,
		`gouwsgi_requests_total{code="2xx",worker="go"}`:                     1,
		`gouwsgi_request_duration_seconds_count{worker="python"}`:            5,
		`gouwsgi_request_duration_seconds_count{worker="go"}`:                1,
		`gouwsgi_request_duration_seconds_bucket{worker="go",le="0.0005"}`:   1,
		`gouwsgi_request_duration_seconds_bucket{worker="python",le="+Inf"}`: 5,
		`gouwsgi_workers{status="idle"}`:                                     2,
		`gouwsgi_workers{status="busy"}`:                                     0,
		`gouwsgi_worker_harakiri_total{worker="1"}`:                          0,
		`gouwsgi_worker_respawns_total{worker="2"}`:                          0,
		`gouwsgi_listen_queue`:                                               0,
		`gouwsgi_cache_items{cache="mycache"}`:                               0,
		`gouwsgi_cache_misses_total{cache="mycache"}`:                        1,
		`gouwsgi_cache_hits_total{cache="mycache"}`:                          0,
		`gouwsgi_cache_full_total{cache="mycache"}`:                          0,
	}
	for k, v := range want {
		got, ok := m[k]
		if !ok {
			t.Errorf("/metrics has no %s", k)
		} else if got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	if s := m[`gouwsgi_request_duration_seconds_sum{worker="python"}`]; s <= 0 {
		t.Errorf("python latency sum %v", s)
	}
	if a, b := m[`gouwsgi_worker_requests_total{worker="1"}`], m[`gouwsgi_worker_requests_total{worker="2"}`]; a+b != 5 {
		t.Errorf("worker requests %v + %v, want 5", a, b)
	}
	if a, b := m[`gouwsgi_worker_exceptions_total{worker="1"}`], m[`gouwsgi_worker_exceptions_total{worker="2"}`]; a+b != 1 {
		t.Errorf("worker exceptions %v + %v, want 1", a, b)
	}
	for _, w := range []string{"1", "2"} {
		if m[`gouwsgi_worker_rss_bytes{worker="`+w+`"}`] <= 0 {
			t.Errorf("worker %s rss not reported", w)
		}
	}
	if _, ok := m["process_resident_memory_bytes"]; !ok {
		t.Error("no process collector")
	}
}

// TestKeysMatchUWSGI runs Debian's uWSGI with a stats socket, a cache and
// an HTTP socket, serves one request, and compares both documents key by
// key and type by type: every key uWSGI writes must be in ours with the
// same JSON type, and ours may only add the documented extras.
func TestKeysMatchUWSGI(t *testing.T) {
	uwsgi, err := exec.LookPath("uwsgi")
	if err != nil {
		t.Skip("uwsgi is not installed (apt-get install uwsgi uwsgi-plugin-python3): cannot compare with the real stats document")
	}
	if _, err := os.Stat("/usr/lib/uwsgi/plugins/python3_plugin.so"); err != nil {
		t.Skip("uwsgi-plugin-python3 is not installed: cannot compare with the real stats document")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "uwsgi-stats.sock")
	logf, err := os.Create(filepath.Join(dir, "uwsgi.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(uwsgi, "--plugin", "python3", "--master", "--processes", "1", "--wsgi-file", "app.py",
		"--http-socket", "127.0.0.1:0", "--stats", sock, "--cache2", "name=mycache,items=300,hash=murmur2")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start uwsgi: %v", err)
	}
	// SIGINT stops uWSGI with its workers (SIGTERM would be a reload in 2.0).
	defer func() {
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	bound := regexp.MustCompile(`uwsgi socket 0 bound to TCP address (127\.0\.0\.1:\d+)`)
	var addr string
	poll(t, 20*time.Second, "uwsgi serving", func() error {
		b, _ := os.ReadFile(logf.Name())
		m := bound.FindSubmatch(b)
		if m == nil || !strings.Contains(string(b), "spawned uWSGI worker 1") {
			return fmt.Errorf("not up yet; log:\n%s", b)
		}
		addr = string(m[1])
		if _, err := os.Stat(sock); err != nil {
			return err
		}
		return nil
	})
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("request to uwsgi: %v", err)
	}
	resp.Body.Close()
	theirs := readRaw(t, "unix", sock)

	n := newTestNode(t)
	n.get(t, "/")
	ours := readRaw(t, "unix", func() string {
		p := filepath.Join(t.TempDir(), "ours.sock")
		listen(t, p, false, n.src)
		return p
	}())

	// Keys only gouwsgi writes, each with why.
	extra := map[string]string{
		"daemons":  "uWSGI writes daemons[] only when it runs attached daemons",
		"spoolers": "uWSGI writes spoolers[] only with a spooler",
		"crons":    "uWSGI writes crons[] only with crons",
		"metrics":  "uWSGI writes metrics{} only with enable-metrics",
		// An idle core's req_info is {} in uWSGI; ours always carries
		// request_start (0 when idle), which uWSGI writes for busy cores.
		"request_start": "uWSGI writes req_info.request_start while a request runs",
	}
	var diffs []string
	compareKeys("", theirs, ours, extra, &diffs)
	sort.Strings(diffs)
	for _, d := range diffs {
		t.Error(d)
	}
}

// compareKeys walks uWSGI's document and ours together.
func compareKeys(path string, theirs, ours any, extra map[string]string, diffs *[]string) {
	if kind(theirs) != kind(ours) {
		*diffs = append(*diffs, fmt.Sprintf("%s: uWSGI has a %s, gouwsgi a %s", path, kind(theirs), kind(ours)))
		return
	}
	switch tv := theirs.(type) {
	case map[string]any:
		ov := ours.(map[string]any)
		for k, v := range tv {
			o, ok := ov[k]
			if !ok {
				*diffs = append(*diffs, fmt.Sprintf("%s.%s: in uWSGI's stats, missing from gouwsgi's", path, k))
				continue
			}
			compareKeys(path+"."+k, v, o, extra, diffs)
		}
		for k := range ov {
			if _, ok := tv[k]; !ok && extra[k] == "" {
				*diffs = append(*diffs, fmt.Sprintf("%s.%s: only in gouwsgi's stats", path, k))
			}
		}
	case []any:
		ov := ours.([]any)
		if path == ".locks" {
			compareLocks(tv, ov, diffs)
			return
		}
		if len(tv) > 0 && len(ov) > 0 {
			compareKeys(path+"[0]", tv[0], ov[0], extra, diffs)
		}
	}
}

// compareLocks checks the lock names, in order.
func compareLocks(theirs, ours []any, diffs *[]string) {
	names := func(ls []any) string {
		var out []string
		for _, l := range ls {
			for k := range l.(map[string]any) {
				out = append(out, k)
			}
		}
		return strings.Join(out, ",")
	}
	if a, b := names(theirs), names(ours); a != b {
		*diffs = append(*diffs, fmt.Sprintf(".locks: uWSGI %s, gouwsgi %s", a, b))
	}
}
