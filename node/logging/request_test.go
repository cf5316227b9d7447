package logging_test

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/node/logging"
	"github.com/gouwsgi/gouwsgi/node/request"
	"github.com/gouwsgi/gouwsgi/node/sysinfo"
	"github.com/gouwsgi/gouwsgi/node/wire"
)

// lines collects what a sink writes, one entry per line.
type lines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSuffix(l.b.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// newLog returns a request log writing into a fresh buffer.
func newLog(t *testing.T, cfg logging.RequestConfig) (*logging.RequestLog, *lines) {
	t.Helper()
	out := &lines{}
	l, err := logging.NewRequestLog(cfg, logging.NewSink(out))
	if err != nil {
		t.Fatalf("NewRequestLog(%+v): %v", cfg, err)
	}
	return l, out
}

// uwsgiVars are the 13 vars Debian's uWSGI 2.0.21 http-socket built for
// `curl -H 'X-A: b' http://127.0.0.1:19561/x?y=1` (dumped from environ).
func uwsgiVars() wire.Vars {
	return wire.Vars{
		{Key: "REQUEST_METHOD", Value: "GET"}, {Key: "REQUEST_URI", Value: "/x?y=1"},
		{Key: "PATH_INFO", Value: "/x"}, {Key: "QUERY_STRING", Value: "y=1"},
		{Key: "SERVER_PROTOCOL", Value: "HTTP/1.1"}, {Key: "SCRIPT_NAME", Value: ""},
		{Key: "SERVER_NAME", Value: "vm"}, {Key: "SERVER_PORT", Value: "19561"},
		{Key: "REMOTE_ADDR", Value: "127.0.0.1"}, {Key: "HTTP_HOST", Value: "127.0.0.1:19561"},
		{Key: "HTTP_USER_AGENT", Value: "curl/7.88.1"}, {Key: "HTTP_ACCEPT", Value: "*/*"},
		{Key: "HTTP_X_A", Value: "b"},
	}
}

// uwsgiRequest is that request as the worker with pid 32349 served it.
func uwsgiRequest() (*request.Request, request.Result) {
	r := &request.Request{
		Vars:  uwsgiVars(),
		Start: time.Date(2026, time.November, 25, 16, 52, 18, 0, time.UTC),
		Log:   request.LogInfo{WorkerID: 1, WorkerPID: 32349},
	}
	return r, request.Result{Status: 200, Size: 2, Headers: 1, HeaderBytes: 45, Duration: 192 * time.Microsecond}
}

// TestDefaultLineIsUWSGIs compares the default request line with lines
// Debian's uWSGI 2.0.21 wrote for the same request (recorded verbatim).
func TestDefaultLineIsUWSGIs(t *testing.T) {
	tests := []struct {
		name string
		cfg  logging.RequestConfig
		want string
	}{
		{"default", logging.RequestConfig{},
			"[pid: 32349|app: 0|req: 1/1] 127.0.0.1 () {26 vars in 268 bytes} [Wed Nov 25 16:52:18 2026] GET /x?y=1 => generated 2 bytes in 0 msecs (HTTP/1.1 200) 1 headers in 45 bytes (1 switches on core 0)"},
		{"log-micros", logging.RequestConfig{Micros: true},
			"[pid: 32349|app: 0|req: 1/1] 127.0.0.1 () {26 vars in 268 bytes} [Wed Nov 25 16:52:18 2026] GET /x?y=1 => generated 2 bytes in 192 micros (HTTP/1.1 200) 1 headers in 45 bytes (1 switches on core 0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, out := newLog(t, tt.cfg)
			l.LogRequest(uwsgiRequest())
			got := out.all()
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("request line:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestDefaultLineCounters: "req: R/T" is the serving worker process's
// count over the node's total; R restarts when the worker is respawned,
// and a request no worker served logs "app: -1|req: -1/T".
func TestDefaultLineCounters(t *testing.T) {
	l, out := newLog(t, logging.RequestConfig{})
	served := []request.LogInfo{
		{WorkerID: 1, WorkerPID: 100},
		{WorkerID: 2, WorkerPID: 200},
		{WorkerID: 1, WorkerPID: 100},
		{},                            // a cache hit answered in Go
		{WorkerID: 1, WorkerPID: 101}, // worker 1 respawned
	}
	for _, li := range served {
		r, res := uwsgiRequest()
		r.Log = li
		l.LogRequest(r, res)
	}
	want := []string{
		"[pid: 100|app: 0|req: 1/1]",
		"[pid: 200|app: 0|req: 1/2]",
		"[pid: 100|app: 0|req: 2/3]",
		fmt.Sprintf("[pid: %d|app: -1|req: -1/4]", os.Getpid()),
		"[pid: 101|app: 0|req: 1/5]",
	}
	got := out.all()
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]+" ") {
			t.Errorf("line %d: %q, want prefix %q", i, got[i], want[i])
		}
	}
}

// TestMemoryReport: memory-report prefixes the default line with the
// serving process's memory in uWSGI's words; a logformat line is not
// prefixed (it has %(rss) and %(vsz)), as in uWSGI.
func TestMemoryReport(t *testing.T) {
	prefix := regexp.MustCompile(`^\{address space usage: (\d+) bytes/(\d+)MB\} \{rss usage: (\d+) bytes/(\d+)MB\} \[pid: (\d+)\|`)
	t.Run("default line", func(t *testing.T) {
		l, out := newLog(t, logging.RequestConfig{MemoryReport: true})
		r, res := uwsgiRequest()
		r.Log.WorkerPID = os.Getpid()
		l.LogRequest(r, res)
		got := out.all()
		if len(got) != 1 {
			t.Fatalf("lines: %q", got)
		}
		m := prefix.FindStringSubmatch(got[0])
		if m == nil {
			t.Fatalf("no memory prefix: %q", got[0])
		}
		n := func(i int) uint64 { v, _ := strconv.ParseUint(m[i], 10, 64); return v }
		vsz, vszM, rss, rssM := n(1), n(2), n(3), n(4)
		if vsz == 0 || rss == 0 || vszM != vsz>>20 || rssM != rss>>20 || rss > vsz {
			t.Fatalf("memory figures do not add up: %q", got[0])
		}
		if m[5] != strconv.Itoa(os.Getpid()) {
			t.Fatalf("pid %s, want %d", m[5], os.Getpid())
		}
	})
	t.Run("cache hit reports this process", func(t *testing.T) {
		l, out := newLog(t, logging.RequestConfig{MemoryReport: true})
		r, res := uwsgiRequest()
		r.Log = request.LogInfo{}
		l.LogRequest(r, res)
		if got := out.all(); len(got) != 1 || !prefix.MatchString(got[0]) {
			t.Fatalf("line: %q", got)
		}
	})
	t.Run("logformat is not prefixed", func(t *testing.T) {
		l, out := newLog(t, logging.RequestConfig{MemoryReport: true, Format: "%(method) %(uri)"})
		l.LogRequest(uwsgiRequest())
		if got := out.all(); len(got) != 1 || got[0] != "GET /x?y=1" {
			t.Fatalf("line: %q, want %q", got, "GET /x?y=1")
		}
	})
}

// TestLogformatVariables checks every logformat variable. Expected values
// follow what Debian's uWSGI 2.0.21 printed for the same variables: "-"
// for an empty user, user agent, referer or %(var.X); %(cl) 0 without a
// body; %(size) the whole response (head + body), %(rsize) the body;
// %(vars) counting keys and values.
func TestLogformatVariables(t *testing.T) {
	start := time.Date(2024, time.March, 5, 9, 7, 3, 123456000, time.UTC)
	full := &request.Request{
		Vars: wire.Vars{
			{Key: "REQUEST_METHOD", Value: "POST"}, {Key: "REQUEST_URI", Value: "/x?y=1"},
			{Key: "SERVER_PROTOCOL", Value: "HTTP/1.1"}, {Key: "REMOTE_ADDR", Value: "10.0.0.7"},
			{Key: "REMOTE_USER", Value: "bob"}, {Key: "HTTP_HOST", Value: "example.org"},
			{Key: "HTTP_USER_AGENT", Value: "curl/8"}, {Key: "HTTP_REFERER", Value: "http://r/"},
			{Key: "CONTENT_LENGTH", Value: "3"}, {Key: "HTTP_X_A", Value: "b"},
		},
		Modifier1: 5, Modifier2: 1, Start: start,
		Log: request.LogInfo{WorkerID: 3, WorkerPID: 4242},
	}
	res := request.Result{Status: 201, Size: 2, Headers: 1, HeaderBytes: 45, Duration: 1500 * time.Microsecond}
	bare := &request.Request{
		Vars:  wire.Vars{{Key: "REQUEST_METHOD", Value: "GET"}, {Key: "SERVER_NAME", Value: "vm"}},
		Start: start,
	}
	tests := []struct {
		format string
		r      *request.Request
		want   string
	}{
		{"%(uri)", full, "/x?y=1"},
		{"%(method)", full, "POST"},
		{"%(user)", full, "bob"},
		{"%(user)", bare, "-"},
		{"%(addr)", full, "10.0.0.7"},
		{"%(host)", full, "example.org"},
		{"%(host)", bare, "vm"},
		{"%(proto)", full, "HTTP/1.1"},
		{"%(uagent)", full, "curl/8"},
		{"%(uagent)", bare, "-"},
		{"%(referer)", full, "http://r/"},
		{"%(referer)", bare, "-"},
		{"%(status)", full, "201"},
		{"%(micros)", full, "1500"},
		{"%(msecs)", full, "1"},
		{"%(secs)", full, "0.001500"},
		{"%(time)", full, strconv.FormatInt(start.Unix(), 10)},
		{"%(tmsecs)", full, strconv.FormatInt(start.UnixMilli(), 10)},
		{"%(tmicros)", full, strconv.FormatInt(start.UnixMicro(), 10)},
		{"%(ctime)", full, "Tue Mar  5 09:07:03 2024"},
		{"%(ltime)", full, "05/Mar/2024:09:07:03 +0000"},
		{"%(ftime)", full, "05/Mar/2024:09:07:03 +0000"},
		{"%(size)", full, "47"},
		{"%(rsize)", full, "2"},
		{"%(hsize)", full, "45"},
		{"%(headers)", full, "1"},
		{"%(cl)", full, "3"},
		{"%(cl)", bare, "0"},
		{"%(pid)", full, "4242"},
		{"%(pid)", bare, strconv.Itoa(os.Getpid())},
		{"%(wid)", full, "3"},
		{"%(wid)", bare, "0"},
		{"%(core)", full, "0"},
		{"%(switches)", full, "1"},
		{"%(vars)", full, "20"},
		{"%(pktsize)", full, strconv.Itoa(full.Vars.EncodedLen())},
		{"%(modifier1)", full, "5"},
		{"%(modifier2)", full, "1"},
		{"%(rerr)", full, "0"},
		{"%(werr)", full, "0"},
		{"%(ioerr)", full, "0"},
		{"%(var.HTTP_X_A)", full, "b"},
		{"%(var.HTTP_X_A)", bare, "-"},
		{"[%(method) %(uri) %(proto)] %(status)", full, "[POST /x?y=1 HTTP/1.1] 201"},
		{"no variables at all", full, "no variables at all"},
		{"100% %(status)%", full, "100% 201%"},
	}
	for _, tt := range tests {
		name := tt.format
		if tt.r == bare {
			name += " (bare)"
		}
		t.Run(name, func(t *testing.T) {
			l, out := newLog(t, logging.RequestConfig{Format: tt.format})
			l.LogRequest(tt.r, res)
			if got := out.all(); len(got) != 1 || got[0] != tt.want {
				t.Fatalf("logformat %q: %q, want %q", tt.format, got, tt.want)
			}
		})
	}
}

// TestLogformatTimeIsEpochNow: %(epoch) is when the line is written, not
// when the request started.
func TestLogformatTimeIsEpochNow(t *testing.T) {
	l, out := newLog(t, logging.RequestConfig{Format: "%(epoch)"})
	r, res := uwsgiRequest() // started in 2026-11, maybe in the future
	before := time.Now().Unix()
	l.LogRequest(r, res)
	after := time.Now().Unix()
	got, err := strconv.ParseInt(strings.Join(out.all(), ""), 10, 64)
	if err != nil || got < before || got > after {
		t.Fatalf("%%(epoch) = %q, want a unix time in [%d, %d]", out.all(), before, after)
	}
}

// TestLogformatMemory: %(rss) %(vsz) and their MB forms are the serving
// process's memory.
func TestLogformatMemory(t *testing.T) {
	l, out := newLog(t, logging.RequestConfig{Format: "%(rss) %(vsz) %(rssM) %(vszM)"})
	r, res := uwsgiRequest()
	r.Log.WorkerPID = os.Getpid()
	l.LogRequest(r, res)
	got := out.all()
	if len(got) != 1 {
		t.Fatalf("lines: %q", got)
	}
	var rss, vsz, rssM, vszM uint64
	if _, err := fmt.Sscanf(got[0], "%d %d %d %d", &rss, &vsz, &rssM, &vszM); err != nil {
		t.Fatalf("line %q: %v", got[0], err)
	}
	_, nowVSZ := sysinfo.Memory(os.Getpid())
	if rss == 0 || vsz == 0 || rssM != rss>>20 || vszM != vsz>>20 || vsz > 2*nowVSZ {
		t.Fatalf("memory variables do not add up: %q (vsz now %d)", got[0], nowVSZ)
	}
}

// TestLogvars: %(name) of a logvar set by a route or the app; "-" when the
// request did not set it.
func TestLogvars(t *testing.T) {
	l, out := newLog(t, logging.RequestConfig{Format: "user=%(user_id) trace=%(trace.id) %(status)"})
	r, res := uwsgiRequest()
	r.Log.LogVars = []wire.Var{{Key: "user_id", Value: "42"}, {Key: "trace.id", Value: "abc"}}
	l.LogRequest(r, res)
	r2, res2 := uwsgiRequest()
	l.LogRequest(r2, res2)
	want := []string{"user=42 trace=abc 200", "user=- trace=- 200"}
	if got := out.all(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines %q, want %q", got, want)
	}
}

// TestNoRequestLine: disable-logging and the donotlog route action write
// nothing, but the requests still count in "req: R/T".
func TestNoRequestLine(t *testing.T) {
	t.Run("disable-logging", func(t *testing.T) {
		l, out := newLog(t, logging.RequestConfig{Disabled: true})
		for range 3 {
			l.LogRequest(uwsgiRequest())
		}
		if got := out.all(); len(got) != 0 {
			t.Fatalf("disable-logging wrote %q", got)
		}
	})
	t.Run("donotlog", func(t *testing.T) {
		l, out := newLog(t, logging.RequestConfig{})
		r, res := uwsgiRequest()
		r.Log.NoLog = true
		l.LogRequest(r, res)
		l.LogRequest(uwsgiRequest())
		got := out.all()
		if len(got) != 1 || !strings.HasPrefix(got[0], "[pid: 32349|app: 0|req: 2/2] ") {
			t.Fatalf("lines %q, want one line counting the unlogged request", got)
		}
	})
}

// TestLogformatErrors: a format that cannot be compiled is refused at
// start-up with an error naming the problem.
func TestLogformatErrors(t *testing.T) {
	tests := []struct {
		format, want string
	}{
		{"%(status", "unterminated %( at offset 0"},
		{"ok %(uri) %(", "unterminated %( at offset 10"},
		{"%()", "unknown variable %()"},
		{"%(bad name)", "unknown variable %(bad name)"},
		{"%(var.)", "unknown variable %(var.)"},
		{"%(a/b)", "unknown variable %(a/b)"},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			_, err := logging.NewRequestLog(logging.RequestConfig{Format: tt.format}, logging.NewSink(&lines{}))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "logformat") {
				t.Fatalf("NewRequestLog(%q) error = %v, want one containing %q", tt.format, err, tt.want)
			}
		})
	}
}

// TestRequestLogConcurrent: lines written from many goroutines stay whole
// and every request is counted once.
func TestRequestLogConcurrent(t *testing.T) {
	l, out := newLog(t, logging.RequestConfig{})
	const goroutines, each = 8, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				r, res := uwsgiRequest()
				r.Log = request.LogInfo{WorkerID: g%2 + 1, WorkerPID: 1000 + g%2}
				l.LogRequest(r, res)
			}
		}()
	}
	wg.Wait()
	got := out.all()
	if len(got) != goroutines*each {
		t.Fatalf("%d lines, want %d", len(got), goroutines*each)
	}
	seen := map[string]bool{}
	line := regexp.MustCompile(`^\[pid: \d+\|app: 0\|req: \d+/(\d+)\] 127\.0\.0\.1 .* \(1 switches on core 0\)$`)
	for _, g := range got {
		m := line.FindStringSubmatch(g)
		if m == nil {
			t.Fatalf("torn or malformed line: %q", g)
		}
		if seen[m[1]] {
			t.Fatalf("total %s logged twice", m[1])
		}
		seen[m[1]] = true
	}
}
