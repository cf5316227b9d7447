package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// statsKeys are the keys uwsgitop needs at the top level and in workers[].
var (
	statsTopKeys    = []string{"version", "listen_queue", "listen_queue_errors", "signal_queue", "load", "pid", "uid", "gid", "cwd", "locks", "sockets", "workers"}
	statsWorkerKeys = []string{"id", "pid", "accepting", "requests", "delta_requests", "exceptions", "harakiri_count", "signals", "signal_queue", "status", "rss", "vsz", "running_time", "last_spawn", "respawn_count", "tx", "avg_rt", "apps", "cores"}
)

// readStatsFrom reads one document from a stats server on a unix socket
// or a TCP address.
func readStatsFrom(t testing.TB, network, addr string) map[string]any {
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
		t.Fatalf("stats is not JSON: %v\n%s", err, b)
	}
	return doc
}

// checkStatsDoc checks the keys uwsgitop reads.
func checkStatsDoc(t testing.TB, doc map[string]any) {
	t.Helper()
	for _, k := range statsTopKeys {
		if _, ok := doc[k]; !ok {
			t.Errorf("stats: top-level key %q missing", k)
		}
	}
	for i, w := range workersOf(doc) {
		for _, k := range statsWorkerKeys {
			if _, ok := w[k]; !ok {
				t.Errorf("stats: workers[%d].%s missing", i, k)
			}
		}
		if _, ok := w["status"].(string); !ok {
			t.Errorf("stats: workers[%d].status = %v, want a string", i, w["status"])
		}
	}
}

// TestStatsServer: the stats server on a unix socket and on TCP answers
// with uWSGI's layout, and counts every request against the worker that
// served it.
func TestStatsServer(t *testing.T) {
	requireE2E(t)
	tests := []struct {
		name    string
		network string
		addr    func(dir string) string
	}{
		{"unix", "unix", func(dir string) string { return filepath.Join(dir, "stats.sock") }},
		{"tcp", "tcp", func(string) string { return "127.0.0.1:0" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := start(t, dir, djangoArgs(repo(t), "--processes", "2", "--stats", tt.addr(dir), "--disable-logging")...)
			base := s.httpAddr()
			s.ready(2)
			m := s.waitLog(`\*\*\* Stats server enabled on \S+ fd: (\S+) \*\*\*`, 10*time.Second)
			addr := m[1]
			served := map[int]int{}
			const requests = 20
			for range requests {
				pid, _, _ := feedback(t, base, "")
				served[pid]++
			}
			var doc map[string]any
			poll(t, 10*time.Second, "requests counted per worker", func() error {
				doc = readStatsFrom(t, tt.network, addr)
				got := map[int]int{}
				for _, w := range workersOf(doc) {
					got[int(w["pid"].(float64))] = int(w["requests"].(float64))
				}
				for pid, n := range served {
					if got[pid] != n {
						return fmt.Errorf("worker pid %d served %d requests, stats say %d (stats %v)", pid, n, got[pid], got)
					}
				}
				return nil
			})
			checkStatsDoc(t, doc)
			if len(workersOf(doc)) != 2 {
				t.Errorf("%d workers in stats, want 2", len(workersOf(doc)))
			}
			socks, _ := doc["sockets"].([]any)
			if len(socks) != 1 || socks[0].(map[string]any)["proto"] != "http" {
				t.Errorf("sockets = %v, want the HTTP listener", doc["sockets"])
			}
			if _, ok := doc["caches"]; ok {
				t.Errorf("caches[] present without a cache: %v", doc["caches"])
			}
		})
	}
}

// TestStatsHTTP: with stats-http an HTTP GET gets the document as
// application/json.
func TestStatsHTTP(t *testing.T) {
	requireE2E(t)
	s := start(t, t.TempDir(), djangoArgs(repo(t), "--processes", "1", "--stats", "127.0.0.1:0", "--stats-http")...)
	base := s.httpAddr()
	s.ready(1)
	feedback(t, base, "")
	m := s.waitLog(`\*\*\* Stats server enabled on \S+ fd: (\S+) \*\*\*`, 10*time.Second)
	var doc map[string]any
	poll(t, 10*time.Second, "request counted", func() error {
		resp, err := client.Get("http://" + m[1] + "/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/json" {
			return fmt.Errorf("status %d, content-type %q", resp.StatusCode, ct)
		}
		doc = nil
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			return fmt.Errorf("body is not JSON: %w", err)
		}
		if n := workersOf(doc)[0]["requests"]; n != 1.0 {
			return fmt.Errorf("workers[0].requests = %v", n)
		}
		return nil
	})
	checkStatsDoc(t, doc)
}

// scrapeMetrics fetches /metrics and returns series -> value.
func scrapeMetrics(t testing.TB, url string) map[string]float64 {
	t.Helper()
	code, body, h := get(t, url)
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET %s: %d %q", url, code, h.Get("Content-Type"))
	}
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
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

// TestMetricsEndpoint: with metrics the /metrics scrape shows request
// counters and the latency histogram growing with the requests served,
// and the worker gauges.
func TestMetricsEndpoint(t *testing.T) {
	requireE2E(t)
	s := start(t, t.TempDir(), djangoArgs(repo(t), "--processes", "2", "--metrics", "127.0.0.1:0", "--disable-logging")...)
	base := s.httpAddr()
	s.ready(2)
	m := s.waitLog(`Prometheus metrics on (http://\S+/metrics)`, 10*time.Second)
	url := m[1]
	const ok2xx = `gouwsgi_requests_total{code="2xx",worker="python"}`
	const count = `gouwsgi_request_duration_seconds_count{worker="python"}`
	before := scrapeMetrics(t, url)
	const requests = 7
	for range requests {
		feedback(t, base, "")
	}
	if code, _, _ := get(t, base+"/no-such-page"); code != http.StatusNotFound {
		t.Fatalf("GET /no-such-page: %d", code)
	}
	var after map[string]float64
	poll(t, 10*time.Second, "counters grow", func() error {
		after = scrapeMetrics(t, url)
		if d := after[ok2xx] - before[ok2xx]; d != requests {
			return fmt.Errorf("%s grew by %v, want %d", ok2xx, d, requests)
		}
		return nil
	})
	if d := after[count] - before[count]; d != requests+1 {
		t.Errorf("%s grew by %v, want %d", count, d, requests+1)
	}
	if v := after[`gouwsgi_requests_total{code="4xx",worker="python"}`]; v != 1 {
		t.Errorf("4xx counter %v, want 1", v)
	}
	if v := after[`gouwsgi_workers{status="idle"}`]; v != 2 {
		t.Errorf("idle workers %v, want 2", v)
	}
	perWorker := regexp.MustCompile(`^gouwsgi_worker_requests_total\{worker="[12]"\}$`)
	total := 0.0
	for k, v := range after {
		if perWorker.MatchString(k) {
			total += v
		}
	}
	if total != requests+1 {
		t.Errorf("gouwsgi_worker_requests_total adds up to %v, want %d", total, requests+1)
	}
	for _, k := range []string{`gouwsgi_worker_harakiri_total{worker="1"}`, `gouwsgi_worker_respawns_total{worker="1"}`} {
		if _, ok := after[k]; !ok {
			t.Errorf("/metrics has no %s", k)
		}
	}
}
