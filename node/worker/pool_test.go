package worker

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func testConfig(processes, threads int) Config {
	cfg := DefaultConfig()
	cfg.Processes, cfg.Threads = processes, threads
	cfg.Mercy = 10 * time.Second
	cfg.RespawnBackoffMax = 200 * time.Millisecond
	return cfg
}

func TestServe(t *testing.T) {
	tp := newTestPool(t, testConfig(1, 2), nil)
	big := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320 kB: streamed
	tooLong := strings.Repeat("x", 70000)
	tests := []struct {
		name     string
		req      func() response
		code     int
		body     string
		bodySize int
	}{
		{"hello", func() response { return tp.get("/hello") }, 200, "Hello World", -1},
		{"404", func() response { return tp.get("/nowhere") }, 404, "not found", -1},
		{"small body in the head's write", func() response { return tp.do(newRequest("POST", "/echo", []byte("ping"))) }, 200, "ping", -1},
		{"large body streamed", func() response { return tp.do(newRequest("POST", "/echo", big)) }, 200, "", len(big)},
		{"body of unknown size streamed", func() response {
			r := newRequest("POST", "/echo", nil)
			r.Body = unsizedBody{bytes.NewReader([]byte("no length"))}
			return tp.do(r)
		}, 200, "no length", -1},
		{"var too long for the protocol", func() response { return tp.get("/hello?" + tooLong) }, 400, "", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.req()
			if got.code != tc.code {
				t.Fatalf("status %d, want %d (body %.200q)", got.code, tc.code, got.body)
			}
			if tc.body != "" && got.body != tc.body {
				t.Errorf("body %.200q, want %q", got.body, tc.body)
			}
			if tc.bodySize >= 0 && len(got.body) != tc.bodySize {
				t.Errorf("body of %d bytes, want %d", len(got.body), tc.bodySize)
			}
		})
	}
	if got := tp.get("/hello"); got.code != 200 {
		t.Errorf("after the cases: status %d, want the pool still serving", got.code)
	}
}

// TestPipelinedResponsesKeepOrder floods a pool so requests are sent behind
// running ones, and checks every client gets its own response.
func TestPipelinedResponsesKeepOrder(t *testing.T) {
	for _, tc := range []struct{ processes, threads int }{{1, 1}, {2, 2}} {
		t.Run(fmt.Sprintf("processes=%d,threads=%d", tc.processes, tc.threads), func(t *testing.T) {
			tp := newTestPool(t, testConfig(tc.processes, tc.threads), func(p *Pool) { p.disp.maxAge = time.Minute })
			const clients, rounds = 32, 20
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range rounds {
						want := fmt.Sprintf("client %d request %d", c, i)
						got := tp.do(newRequest("POST", "/echo", []byte(want)))
						if got.code != 200 || got.body != want {
							errs <- fmt.Errorf("sent %q, got %d %q", want, got.code, got.body)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if tp.disp.pipelined.Load() == 0 {
				t.Error("no request was pipelined: the test did not exercise pipelining")
			}
		})
	}
}

// TestNoPipeliningWhileIdle checks a request goes to an idle worker rather
// than behind a running request.
func TestNoPipeliningWhileIdle(t *testing.T) {
	tp := newTestPool(t, testConfig(2, 1), func(p *Pool) { p.disp.maxAge = time.Minute })
	slow := make(chan response, 1)
	go func() { slow <- tp.get("/sleep?ms=3000") }()
	waitFor(t, "the slow request to hold a worker", func() bool { return tp.disp.idle() == 1 })
	for range 5 {
		if got := tp.get("/hello"); got.code != 200 {
			t.Fatalf("status %d while one worker is busy", got.code)
		}
	}
	select {
	case <-slow:
		t.Fatal("the fast requests waited for the slow one")
	default:
	}
	if n := tp.disp.pipelined.Load(); n != 0 {
		t.Errorf("%d requests pipelined while a worker was idle", n)
	}
	if got := <-slow; got.code != 200 {
		t.Errorf("slow request: status %d", got.code)
	}
}

// queueBehind starts uri on a one-worker pool, then a /pid request that is
// pipelined behind it; it returns both results.
func queueBehind(t *testing.T, tp *testPool, uri string) (head, queued <-chan response) {
	t.Helper()
	hc, qc := make(chan response, 1), make(chan response, 1)
	go func() { hc <- tp.get(uri) }()
	waitFor(t, "the first request to hold the worker", func() bool { return tp.disp.idle() == 0 })
	go func() { qc <- tp.get("/pid") }()
	waitFor(t, "the second request to be pipelined", func() bool { return tp.disp.pipelined.Load() == 1 })
	return hc, qc
}

// TestPipelinedRequestRetried checks that a request queued behind one that
// kills its worker (harakiri, crash) runs on another worker, while the
// killed request's client gets the error.
func TestPipelinedRequestRetried(t *testing.T) {
	tests := []struct {
		name     string
		uri      string
		harakiri time.Duration
		code     int
	}{
		{"harakiri", "/sleep?ms=20000", time.Second, http.StatusGatewayTimeout},
		{"worker killed", "/crash?ms=300", 0, http.StatusBadGateway},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(1, 1)
			cfg.Harakiri = tc.harakiri
			tp := newTestPool(t, cfg, func(p *Pool) { p.disp.maxAge = time.Minute })
			first := tp.get("/pid")
			head, queued := queueBehind(t, tp, tc.uri)
			if got := <-head; got.code != tc.code {
				t.Errorf("killed request: status %d, want %d", got.code, tc.code)
			}
			got := <-queued
			if got.code != 200 {
				t.Fatalf("queued request: status %d %q, want 200 from a new worker", got.code, got.body)
			}
			if got.body == first.body {
				t.Errorf("queued request ran on the killed worker (pid %s)", got.body)
			}
			if tc.harakiri > 0 {
				if n := tp.counters[1].harakiri.Load(); n != 1 {
					t.Errorf("harakiri count %d, want 1", n)
				}
			}
		})
	}
}

func TestQueueTimeout(t *testing.T) {
	cfg := testConfig(1, 1)
	cfg.QueueTimeout = 200 * time.Millisecond
	// maxAge 0: nothing is ever pipelined, so the second request waits.
	tp := newTestPool(t, cfg, func(p *Pool) { p.disp.maxAge = 0 })
	slow := make(chan response, 1)
	go func() { slow <- tp.get("/sleep?ms=2000") }()
	waitFor(t, "the slow request to hold the worker", func() bool { return tp.disp.idle() == 0 })
	if got := tp.get("/hello"); got.code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503 once queue timeout passed", got.code)
	}
	if got := <-slow; got.code != 200 {
		t.Errorf("slow request: status %d", got.code)
	}
	if got := tp.get("/hello"); got.code != 200 {
		t.Errorf("after the timeout: status %d, want the pool serving", got.code)
	}
}

// discardWriter is the cheapest http.ResponseWriter, so a benchmark
// measures the pool.
type discardWriter struct {
	header http.Header
	code   int
}

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkPoolHello sends hello-world requests from many goroutines
// through a pool of two real workers; master-µs/op is the CPU this process
// (the master) spent per request.
func BenchmarkPoolHello(b *testing.B) {
	for _, depth := range []int{1, pipelineDepth} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			tp := newTestPool(b, testConfig(2, 1), func(p *Pool) { p.disp.maxDepth = depth })
			b.SetParallelism(16)
			cpu0 := cpuTime(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{header: http.Header{}}
				for pb.Next() {
					clear(w.header)
					w.code = 0
					tp.ServeRequest(w, newRequest("GET", "/hello", nil))
					if w.code != 200 {
						b.Errorf("status %d", w.code)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "master-µs/op")
		})
	}
}

func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
