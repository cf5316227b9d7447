package alarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gouwsgi/gouwsgi/node/config"
)

// The manager is what the node and the worker pool are wired to: these
// are node.AlarmRaiser and worker.Events, spelled out so that this
// package's tests do not build the whole node.
var (
	_ interface{ RaiseAlarm(name, msg string) error } = (*Manager)(nil)
	_ interface {
		Harakiri(wid, pid int, head string)
		Segfault(wid, pid int)
	} = (*Manager)(nil)
)

func TestNewRejectsBadConfig(t *testing.T) {
	good := []string{"pager log:PAGE"}
	tests := []struct {
		name string
		cfg  func(*Config)
		want []string // substrings of the error
	}{
		{"alarm without action", func(c *Config) { c.Alarms = []string{"pager"} }, []string{`alarm "pager"`, "<name> <action>"}},
		{"comma in name", func(c *Config) { c.Alarms = []string{"a,b log:x"} }, []string{"comma"}},
		{"signal", func(c *Config) { c.Alarms = []string{"pager signal:17"} }, []string{`alarm "pager signal:17"`, "signal: alarms need uWSGI signals, which gouwsgi does not have; use cmd:"}},
		{"mule", func(c *Config) { c.Alarms = []string{"pager mule:1"} }, []string{"mule:", "no mules"}},
		{"xmpp", func(c *Config) { c.Alarms = []string{"pager xmpp:a@b;pw;c@d"} }, []string{"xmpp"}},
		{"unknown action", func(c *Config) { c.Alarms = []string{"pager page:me"} }, []string{`unknown action "page"`}},
		{"empty cmd", func(c *Config) { c.Alarms = []string{"pager cmd:"} }, []string{"cmd: needs a shell command"}},
		{"smtp curl", func(c *Config) { c.Alarms = []string{"pager curl:smtp://mail.example.com;mail_to=a@b"} }, []string{"smtp urls (mail) are not supported", "cmd:mail"}},
		{"ftp curl", func(c *Config) { c.Alarms = []string{"pager curl:ftp://example.com/x"} }, []string{"http:// or https://"}},
		{"curl bad timeout", func(c *Config) { c.Alarms = []string{"pager curl:http://example.com;timeout=soon"} }, []string{"timeout=soon"}},
		{"curl huge timeout", func(c *Config) { c.Alarms = []string{"pager curl:http://example.com;timeout=36000"} }, []string{"timeout=36000", "at most"}},
		{"curl unknown option", func(c *Config) { c.Alarms = []string{"pager curl:http://example.com;retries=5"} }, []string{`unknown option "retries"`}},
		{"curl smtp option", func(c *Config) { c.Alarms = []string{"pager curl:https://example.com;subject=x"} }, []string{`"subject" is for smtp`}},
		{"curl method", func(c *Config) { c.Alarms = []string{"pager curl:https://example.com;method=DELETE"} }, []string{"method=DELETE"}},
		{"lookahead", func(c *Config) { c.LogRules = []LogRule{{Spec: "pager error(?!: expected)"}} }, []string{`log-alarm "pager error(?!: expected)"`, "RE2", "lookaround"}},
		{"backreference", func(c *Config) { c.LogRules = []LogRule{{Negate: true, Spec: `pager (a)\1`}} }, []string{"not-log-alarm", "RE2"}},
		{"possessive", func(c *Config) { c.LogRules = []LogRule{{Spec: `pager a*+b`}} }, []string{"log-alarm", "RE2"}},
		{"log-alarm without regexp", func(c *Config) { c.LogRules = []LogRule{{Spec: "pager"}} }, []string{`log-alarm "pager"`, "<regexp>"}},
		{"log-alarm unknown alarm", func(c *Config) { c.LogRules = []LogRule{{Spec: "pager,ghost ERROR"}} }, []string{`log-alarm "pager,ghost ERROR"`, `no alarm named "ghost"`}},
		{"segfault unknown alarm", func(c *Config) { c.Segfault = []string{"ghost"} }, []string{`alarm-segfault "ghost"`}},
		{"harakiri unknown alarm", func(c *Config) { c.Harakiri = []string{"ghost"} }, []string{`alarm-harakiri "ghost"`}},
		{"backlog unknown alarm", func(c *Config) { c.Backlog = []string{"ghost"} }, []string{`alarm-backlog "ghost"`}},
		{"fd not open", func(c *Config) { c.FD = []string{"pager 987 disk full"} }, []string{`alarm-fd "pager 987 disk full"`, "fd 987", "bad file descriptor"}},
		{"fd not a number", func(c *Config) { c.FD = []string{"pager stdin disk full"} }, []string{`"stdin" is not a file descriptor`}},
		{"fd without message", func(c *Config) { c.FD = []string{"pager 0"} }, []string{`alarm-fd "pager 0"`, "<message>"}},
		{"fd bad nbytes", func(c *Config) { c.FD = []string{"pager 0:0 x"} }, []string{"nbytes"}},
		{"msg size", func(c *Config) { c.MsgSize = 10 }, []string{"alarm-msg-size 10"}},
		{"negative freq", func(c *Config) { c.Freq = -time.Second }, []string{"alarm-freq -1s"}},
		{"every error reported", func(c *Config) { c.Alarms = []string{"a signal:1", "b mule:2"} }, []string{"signal:", "mule:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Alarms = good
			tt.cfg(&cfg)
			m, err := New(cfg, discard())
			if err == nil {
				t.Fatalf("New accepted the config: %+v", m)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNewAccepts(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*Config)
	}{
		{"not-log-alarm ignores its alarm list", func(c *Config) {
			c.LogRules = []LogRule{{Negate: true, Spec: "whatever,names healthcheck"}}
		}},
		{"regexp with spaces", func(c *Config) { c.LogRules = []LogRule{{Spec: "pager HARAKIRI ON WORKER \\d+"}} }},
		{"alarm lists", func(c *Config) {
			c.Alarms = append(c.Alarms, "mail cmd:true")
			c.Segfault, c.Harakiri, c.Backlog = []string{"pager,mail"}, []string{"mail"}, []string{"pager"}
		}},
		{"webhook options", func(c *Config) {
			c.Alarms = append(c.Alarms, "hook curl:https://hooks.example.com/x;timeout=5;conn_timeout=500ms;method=put;auth_user=u;auth_pass=p;ssl_insecure=1")
		}},
		{"cheap and no throttling", func(c *Config) { c.Cheap, c.Freq = true, 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Alarms = []string{"pager log:PAGE"}
			tt.cfg(&cfg)
			if _, err := New(cfg, discard()); err != nil {
				t.Fatalf("New: %v", err)
			}
		})
	}
}

// TestLogAlarmOncePerFreq: however many matching lines arrive, the cmd:
// action runs once per alarm-freq; the repeats are counted.
func TestLogAlarmOncePerFreq(t *testing.T) {
	spec, executions := recorder(t, "pager")
	cfg := testConfig()
	cfg.Freq = 3 * time.Second
	cfg.Alarms = []string{spec}
	cfg.LogRules = []LogRule{{Spec: "pager (DB down|sentinel \\d)"}}
	clock := newFakeClock()
	h := newHarness(t, cfg, true, WithClock(clock.Now))
	const lines = 500
	for range lines {
		h.sink.Line("ERROR: DB down")
		h.sink.Line("GET / => generated 12 bytes") // not matching
	}
	// A different message is never throttled; being queued after the
	// repeats, it proves they were all seen.
	h.sink.Line("sentinel 1")
	h.waitSettled(t, 2)
	clock.Advance(cfg.Freq)
	h.sink.Line("ERROR: DB down")
	hist := h.waitSettled(t, 3)

	if got, want := executions(), []string{"ERROR: DB down", "sentinel 1", "ERROR: DB down"}; !equal(got, want) {
		t.Fatalf("executions %q, want %q", got, want)
	}
	if hist[0].Count != lines || hist[0].Kind != KindLog || hist[0].Outcome != OutcomeOK {
		t.Errorf("first incident %+v, want count %d, kind log, outcome ok", hist[0], lines)
	}
	if hist[2].Count != 1 || !hist[2].At.Equal(hist[0].At.Add(cfg.Freq)) {
		t.Errorf("incident after alarm-freq %+v, want a new one at +%s", hist[2], cfg.Freq)
	}
}

// TestNotLogAlarm: a matching not-log-alarm stops the evaluation of the
// rules declared after it, and only those.
func TestNotLogAlarm(t *testing.T) {
	tests := []struct {
		name  string
		rules []LogRule
		line  string
		fires []string // alarms raised by the line
	}{
		{"masks later rules", []LogRule{{Negate: true, Spec: "x healthcheck"}, {Spec: "pager error"}, {Spec: "mail error"}}, "error in /healthcheck", nil},
		{"other lines pass", []LogRule{{Negate: true, Spec: "x healthcheck"}, {Spec: "pager error"}, {Spec: "mail error"}}, "error in /db", []string{"pager", "mail"}},
		{"does not mask earlier rules", []LogRule{{Spec: "pager error"}, {Negate: true, Spec: "x healthcheck"}, {Spec: "mail error"}}, "error in /healthcheck", []string{"pager"}},
		{"non-matching negation is ignored", []LogRule{{Negate: true, Spec: "x ^DEBUG"}, {Spec: "pager error"}}, "error in /healthcheck", []string{"pager"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Alarms = []string{"pager log:P", "mail log:M"}
			cfg.LogRules = append(tt.rules, LogRule{Spec: "pager sentinel"})
			h := newHarness(t, cfg, true)
			h.sink.Line(tt.line)
			h.sink.Line("sentinel")
			hist := h.waitSettled(t, len(tt.fires)+1)
			var got []string
			for _, inc := range hist[:len(hist)-1] {
				if inc.Message != tt.line {
					t.Errorf("incident message %q, want the line %q", inc.Message, tt.line)
				}
				got = append(got, inc.Alarm)
			}
			if !equal(got, tt.fires) {
				t.Errorf("alarms raised %q, want %q", got, tt.fires)
			}
		})
	}
}

// TestLogActionDoesNotLoop: the log: action's line matches the rule that
// raised it, yet raises nothing; neither do the subsystem's own lines.
func TestLogActionDoesNotLoop(t *testing.T) {
	cfg := testConfig()
	cfg.Alarms = []string{"pager log:PAGE", "broken cmd:echo boom failure; exit 1"}
	cfg.Tries = 2
	cfg.LogRules = []LogRule{{Spec: "pager,broken boom"}}
	h := newHarness(t, cfg, true)
	h.sink.Line("boom 1")
	h.waitSettled(t, 2)
	h.sink.Line("boom 2")
	hist := h.waitSettled(t, 4)
	for _, inc := range hist {
		if inc.Message != "boom 1" && inc.Message != "boom 2" {
			t.Errorf("an alarm's own line raised incident %+v", inc)
		}
	}
	log := h.out.String()
	for want, n := range map[string]int{"ALARM: ": 2, "ALARM: PAGE boom 1\n": 1, "ALARM: PAGE boom 2\n": 1, "[uwsgi-alarm] alarm broken: cmd:echo boom failure; exit 1 failed, giving up after 2 tries": 2} {
		if got := strings.Count(log, want); got != n {
			t.Errorf("log has %d lines %q, want %d; log:\n%s", got, want, n, log)
		}
	}
}

func TestActions(t *testing.T) {
	type hook struct {
		mu     sync.Mutex
		reqs   []*http.Request
		bodies []webhookBody
		status int
	}
	newHook := func(t *testing.T, status int) (*hook, *httptest.Server) {
		hk := &hook{status: status}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var b webhookBody
			err := json.NewDecoder(r.Body).Decode(&b)
			hk.mu.Lock()
			hk.reqs = append(hk.reqs, r)
			hk.bodies = append(hk.bodies, b)
			hk.mu.Unlock()
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.WriteHeader(hk.status)
		}))
		t.Cleanup(srv.Close)
		return hk, srv
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	tests := []struct {
		name    string
		alarm   func(t *testing.T) (spec string, check func(t *testing.T, inc Incident, log string))
		outcome string        // prefix
		timeout time.Duration // per try; testConfig's when zero
	}{
		{"cmd gets the message on stdin", func(t *testing.T) (string, func(*testing.T, Incident, string)) {
			spec, read := recorder(t, "pager")
			return spec, func(t *testing.T, _ Incident, _ string) {
				if got := read(); !equal(got, []string{"disk full on /var"}) {
					t.Errorf("cmd read %q from stdin", got)
				}
			}
		}, OutcomeOK, 0},
		{"log", func(t *testing.T) (string, func(*testing.T, Incident, string)) {
			return "pager log:[pager]", func(t *testing.T, _ Incident, log string) {
				if !strings.Contains(log, "ALARM: [pager] disk full on /var\n") {
					t.Errorf("log lacks the ALARM line:\n%s", log)
				}
			}
		}, OutcomeOK, 0},
		{"failing cmd is retried then logged", func(t *testing.T) (string, func(*testing.T, Incident, string)) {
			spec, read := recorder(t, "pager")
			return spec + "; echo no route to mx >&2; exit 3", func(t *testing.T, inc Incident, log string) {
				if got := read(); len(got) != 3 {
					t.Errorf("cmd ran %d times, want 3 tries", len(got))
				}
				for _, want := range []string{"failed (try 1 of 3, next in 10ms): exit status 3: no route to mx", "failed (try 2 of 3, next in 20ms)", "giving up after 3 tries"} {
					if !strings.Contains(log, want) {
						t.Errorf("log lacks %q:\n%s", want, log)
					}
				}
				if !strings.Contains(inc.Outcome, "exit status 3") {
					t.Errorf("outcome %q does not name the exit status", inc.Outcome)
				}
			}
		}, "failed: ", 0},
		{"cmd timeout kills the process group", func(t *testing.T) (string, func(*testing.T, Incident, string)) {
			pidfile := filepath.Join(t.TempDir(), "pid")
			return "pager cmd:sleep 60 & echo $! > " + pidfile + "; sleep 60", func(t *testing.T, inc Incident, _ string) {
				if !strings.Contains(inc.Outcome, "timed out after 300ms") {
					t.Errorf("outcome %q, want a timeout", inc.Outcome)
				}
				b, err := os.ReadFile(pidfile)
				if err != nil {
					t.Fatal(err)
				}
				stat := fmt.Sprintf("/proc/%s/stat", strings.TrimSpace(string(b)))
				waitFor(t, 10*time.Second, "the shell's background child to die", func() bool {
					st, err := os.ReadFile(stat)
					return err != nil || strings.Contains(string(st), ") Z ")
				})
			}
		}, "failed: ", 300 * time.Millisecond},
		{"webhook", func(t *testing.T) (string, func(*testing.T, Incident, string)) {
			hk, srv := newHook(t, http.StatusNoContent)
			return "pager curl:" + srv.URL + "/hook;method=put;auth_user=ops;auth_pass=s3cret;timeout=5", func(t *testing.T, inc Incident, _ string) {
				hk.mu.Lock()
				defer hk.mu.Unlock()
				if len(hk.reqs) != 1 {
					t.Fatalf("webhook got %d requests, want 1", len(hk.reqs))
				}
				r, b := hk.reqs[0], hk.bodies[0]
				user, pass, _ := r.BasicAuth()
				if r.Method != http.MethodPut || r.URL.Path != "/hook" || user != "ops" || pass != "s3cret" || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("webhook request %s %s user %q pass %q type %q", r.Method, r.URL.Path, user, pass, r.Header.Get("Content-Type"))
				}
				want := webhookBody{Alarm: "pager", Message: "disk full on /var", Node: "n1", Kind: KindAPI, Time: inc.At}
				if b.Alarm != want.Alarm || b.Message != want.Message || b.Node != want.Node || b.Kind != want.Kind || !b.Time.Equal(want.Time) {
					t.Errorf("webhook body %+v, want %+v", b, want)
				}
			}
		}, OutcomeOK, 0},
		{"webhook error status is retried", func(t *testing.T) (string, func(*testing.T, Incident, string)) {
			hk, srv := newHook(t, http.StatusServiceUnavailable)
			return "pager curl:" + srv.URL, func(t *testing.T, inc Incident, log string) {
				hk.mu.Lock()
				defer hk.mu.Unlock()
				if len(hk.reqs) != 3 || hk.reqs[0].Method != http.MethodPost {
					t.Errorf("webhook got %d requests, want 3 POSTs", len(hk.reqs))
				}
				if !strings.Contains(inc.Outcome, "503 Service Unavailable") || !strings.Contains(log, "giving up after 3 tries") {
					t.Errorf("outcome %q; log:\n%s", inc.Outcome, log)
				}
			}
		}, "failed: ", 0},
		{"webhook down, its secret path kept out of the log", func(t *testing.T) (string, func(*testing.T, Incident, string)) {
			return "pager curl:" + deadURL + "/services/T0/B0/s3cr3t;conn_timeout=1", func(t *testing.T, inc Incident, log string) {
				if !strings.Contains(inc.Outcome, "connection refused") || strings.Count(log, "connection refused") != 3 {
					t.Errorf("outcome %q; log:\n%s", inc.Outcome, log)
				}
				if strings.Contains(log+inc.Outcome, "s3cr3t") {
					t.Errorf("the webhook's secret path was logged:\n%s", log)
				}
			}
		}, "failed: ", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, check := tt.alarm(t)
			cfg := testConfig()
			if tt.timeout != 0 {
				cfg.Timeout = tt.timeout
			}
			cfg.Alarms = []string{spec}
			h := newHarness(t, cfg, true, WithNode("n1"))
			if err := h.m.RaiseAlarm("pager", "disk full on /var"); err != nil {
				t.Fatalf("RaiseAlarm: %v", err)
			}
			inc := h.waitSettled(t, 1)[0]
			if !strings.HasPrefix(inc.Outcome, tt.outcome) {
				t.Errorf("outcome %q, want %q...", inc.Outcome, tt.outcome)
			}
			check(t, inc, h.out.String())
		})
	}
}

func TestRaiseUnknownAlarm(t *testing.T) {
	cfg := testConfig()
	cfg.Alarms = []string{"pager log:x"}
	h := newHarness(t, cfg, false)
	err := h.m.RaiseAlarm("pagr", "typo")
	if err == nil || !strings.Contains(err.Error(), `alarm "pagr" is not defined`) {
		t.Fatalf("RaiseAlarm of an unknown alarm: %v", err)
	}
}

// TestMsgSize: a long message is cut to alarm-msg-size with a marker,
// without splitting a UTF-8 character, and still delivered.
func TestMsgSize(t *testing.T) {
	tests := []struct {
		name, msg, want string
	}{
		{"short", "fits", "fits"},
		{"exact", strings.Repeat("a", 100), strings.Repeat("a", 100)},
		{"ascii", strings.Repeat("a", 1000), strings.Repeat("a", 100-len(TruncatedMarker)) + TruncatedMarker},
		{"utf8", strings.Repeat("é", 500), strings.Repeat("é", (100-len(TruncatedMarker))/2) + TruncatedMarker},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, read := recorder(t, "pager")
			cfg := testConfig()
			cfg.MsgSize = 100
			cfg.Alarms = []string{spec}
			h := newHarness(t, cfg, true)
			if err := h.m.RaiseAlarm("pager", tt.msg); err != nil {
				t.Fatal(err)
			}
			h.waitSettled(t, 1)
			got := read()
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("delivered %q, want %q", got, tt.want)
			}
			if len(got[0]) > cfg.MsgSize || !utf8.ValidString(got[0]) {
				t.Errorf("delivered %d bytes (valid UTF-8: %v), limit %d", len(got[0]), utf8.ValidString(got[0]), cfg.MsgSize)
			}
		})
	}
}

// TestNeverBlocks: LogLine and the raise methods return while nothing
// drains their queues (the alarm goroutine stuck or not started), with
// hostile regexps and a 10 MB line; what does not fit is counted.
func TestNeverBlocks(t *testing.T) {
	huge := strings.Repeat("a", 10<<20) + "!"
	cfg := testConfig()
	cfg.Alarms = []string{"pager log:P"}
	cfg.LogRules = []LogRule{{Spec: "pager (a+)+$"}, {Spec: "pager (a|aa)*b"}, {Spec: "pager (x+x+)+y"}}
	cfg.Segfault, cfg.Harakiri, cfg.Backlog = []string{"pager"}, []string{"pager"}, []string{"pager"}
	h := newHarness(t, cfg, false)
	const n = 3 * lineQueue
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if i%100 == 0 {
				h.m.LogLine(huge)
			} else {
				h.sink.Line(fmt.Sprintf("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa %d", i))
			}
		}
		var err error
		for i := range n {
			h.m.Segfault(1, 100+i)
			h.m.Harakiri(1, 100+i, "GET /slow")
			h.m.Backlog("127.0.0.1:8000", 101, 100)
			if e := h.m.RaiseAlarm("pager", "from the app"); e != nil {
				err = e
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "queue is full") {
			t.Errorf("RaiseAlarm on a full queue: %v, want a queue-full error", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("LogLine or a raise blocked while the alarm goroutine was not running")
	}
	st := h.m.Stats()
	if st.LinesDropped != n-lineQueue || st.EventsDropped != 4*n-eventQueue {
		t.Errorf("stats %+v, want %d lines and %d raises dropped", st, n-lineQueue, 4*n-eventQueue)
	}
	for range len(h.m.lines) {
		if l := <-h.m.lines; len(l) > maxLine {
			t.Fatalf("a %d-byte line was queued, limit %d", len(l), maxLine)
		}
	}
}

// TestStuckActionDoesNotBlock: while one alarm's action hangs, raises keep
// returning, another alarm still runs, and overflowing incidents are
// dropped with a counter and a log line.
func TestStuckActionDoesNotBlock(t *testing.T) {
	spec, read := recorder(t, "mail")
	cfg := testConfig()
	cfg.Freq = 0
	cfg.Timeout = time.Minute
	cfg.Alarms = []string{"stuck cmd:sleep 60", spec}
	cfg.LogRules = []LogRule{{Spec: "stuck boom"}}
	h := newHarness(t, cfg, true)
	for i := range 3 * actionQueue {
		h.sink.Line(fmt.Sprintf("boom %d", i))
	}
	if err := h.m.RaiseAlarm("mail", "still delivered"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the other alarm to run", func() bool { return equal(read(), []string{"still delivered"}) })
	waitFor(t, 20*time.Second, "drops to be logged", func() bool {
		return strings.Contains(h.out.String(), "alarm actions not run: queue full")
	})
	if d := h.m.Stats().ActionsDropped; d == 0 {
		t.Error("no action counted as dropped")
	}
	var dropped int
	for _, inc := range h.m.History() {
		if inc.Outcome == OutcomeDropped {
			dropped++
		}
	}
	if dropped == 0 {
		t.Error("no incident has the dropped outcome")
	}
}

// TestHugeLineIsMatchedOnItsHead: 10 MB lines are matched on their first
// 64 KiB, hostile patterns included, and the alarm message is bounded by
// alarm-msg-size.
func TestHugeLineIsMatchedOnItsHead(t *testing.T) {
	cfg := testConfig()
	cfg.Alarms = []string{"pager log:P"}
	cfg.LogRules = []LogRule{{Spec: "pager (a+)+$"}, {Spec: "pager (a|aa)*b"}, {Spec: "pager (x+x+)+y"}, {Spec: "pager ^Traceback"}, {Spec: "pager TAIL"}}
	h := newHarness(t, cfg, true)
	h.m.LogLine(strings.Repeat("x", 10<<20)) // hostile for backtracking engines, matched by none
	h.m.LogLine("Traceback " + strings.Repeat("x", 10<<20) + " TAIL")
	inc := h.waitSettled(t, 1)[0]
	if len(inc.Message) != cfg.MsgSize || !strings.HasSuffix(inc.Message, TruncatedMarker) {
		t.Errorf("message of %d bytes, want %d ending in the marker", len(inc.Message), cfg.MsgSize)
	}
}

// TestHistory: every trigger is recorded with its kind, node and count.
func TestHistory(t *testing.T) {
	cfg := testConfig()
	cfg.Alarms = []string{"pager log:P", "mail log:M"}
	cfg.Segfault, cfg.Harakiri, cfg.Backlog = []string{"pager"}, []string{"pager,mail"}, []string{"mail"}
	h := newHarness(t, cfg, true, WithNode("web-1"))
	h.m.Segfault(2, 1234)
	h.m.Segfault(2, 1240) // same worker crashing again: a repeat
	h.m.Harakiri(1, 1235, "GET /sleep?s=30")
	h.m.Backlog(":8000", 101, 100)
	if err := h.m.Trigger(KindCluster, "pager", "lord changed to n2"); err != nil {
		t.Fatal(err)
	}
	hist := h.waitSettled(t, 5)
	want := []Incident{
		{ID: 1, Alarm: "pager", Kind: KindSegfault, Message: "uWSGI worker 2 got Segmentation Fault", Count: 2},
		{ID: 2, Alarm: "pager", Kind: KindHarakiri, Message: "HARAKIRI ON WORKER 1: GET /sleep?s=30", Count: 1},
		{ID: 3, Alarm: "mail", Kind: KindHarakiri, Message: "HARAKIRI ON WORKER 1: GET /sleep?s=30", Count: 1},
		{ID: 4, Alarm: "mail", Kind: KindBacklog, Message: `listen queue of socket ":8000" full !!! (101/100)`, Count: 1},
		{ID: 5, Alarm: "pager", Kind: KindCluster, Message: "lord changed to n2", Count: 1},
	}
	for i, w := range want {
		g := hist[i]
		if g.ID != w.ID || g.Alarm != w.Alarm || g.Kind != w.Kind || g.Message != w.Message || g.Count != w.Count || g.Node != "web-1" || g.Outcome != OutcomeOK || g.At.IsZero() || g.Last.Before(g.At) {
			t.Errorf("incident %d = %+v, want %+v on web-1, ok", i, g, w)
		}
	}
}

// TestHistoryIsBounded: only the latest incidents are kept.
func TestHistoryIsBounded(t *testing.T) {
	cfg := testConfig()
	cfg.Alarms = []string{"pager log:P"}
	h := newHarness(t, cfg, false)
	a := h.m.alarms["pager"]
	for i := range maxHistory + 5 {
		h.m.incident(event{kind: KindAPI, alarm: a, msg: fmt.Sprint(i)})
	}
	hist := h.m.History()
	if len(hist) != maxHistory || hist[0].ID != 6 || hist[len(hist)-1].ID != maxHistory+5 {
		t.Fatalf("history of %d from %d to %d, want %d from 6", len(hist), hist[0].ID, hist[len(hist)-1].ID, maxHistory)
	}
	if len(h.m.open) > maxOpen+1 {
		t.Errorf("throttling index grew to %d entries", len(h.m.open))
	}
}

// cluster is a stand-in for legion: it runs incidents of the alarms in
// here on this node and records what it was offered and told.
type cluster struct {
	mu      sync.Mutex
	here    map[string]bool
	err     error
	offered []Incident
	done    []Incident
}

func (c *cluster) Record(_ context.Context, inc Incident) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offered = append(c.offered, inc)
	return c.here[inc.Alarm], c.err
}

func (c *cluster) Done(_ context.Context, inc Incident) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = append(c.done, inc)
	return nil
}

func (c *cluster) reported() []Incident {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Incident(nil), c.done...)
}

func TestCluster(t *testing.T) {
	tests := []struct {
		name    string
		cl      *cluster
		runs    bool // the action runs here, and Done reports it
		outcome string
		log     string
	}{
		{"runs here", &cluster{here: map[string]bool{"pager": true}}, true, OutcomeOK, ""},
		{"runs elsewhere", &cluster{}, false, OutcomeElsewhere, ""},
		{"cluster unreachable", &cluster{err: errors.New("no raft leader")}, true, OutcomeOK, "[uwsgi-alarm] alarm pager: cluster record failed, running the action here: no raft leader"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, read := recorder(t, "pager")
			cfg := testConfig()
			cfg.Alarms = []string{spec}
			h := newHarness(t, cfg, true, WithCluster(tt.cl), WithNode("n3"))
			if err := h.m.RaiseAlarm("pager", "db down"); err != nil {
				t.Fatal(err)
			}
			_ = h.m.RaiseAlarm("pager", "db down") // a local repeat is not offered
			inc := h.waitSettled(t, 1)[0]
			if inc.Outcome != tt.outcome || (len(read()) == 1) != tt.runs {
				t.Errorf("outcome %q, executions %q; want %q, ran: %v", inc.Outcome, read(), tt.outcome, tt.runs)
			}
			wantDone := 0
			if tt.runs && tt.cl.err == nil {
				wantDone = 1
				// Done follows the outcome: wait for it.
				waitFor(t, 10*time.Second, "the report", func() bool { return len(tt.cl.reported()) == 1 })
			}
			tt.cl.mu.Lock()
			defer tt.cl.mu.Unlock()
			if len(tt.cl.offered) != 1 || tt.cl.offered[0].Node != "n3" || tt.cl.offered[0].Message != "db down" || tt.cl.offered[0].Kind != KindAPI {
				t.Errorf("cluster was offered %+v", tt.cl.offered)
			}
			if !strings.Contains(h.out.String(), tt.log) {
				t.Errorf("log lacks %q:\n%s", tt.log, h.out.String())
			}
			if len(tt.cl.done) != wantDone || (wantDone == 1 && (tt.cl.done[0].ID != inc.ID || tt.cl.done[0].Outcome != OutcomeOK)) {
				t.Errorf("cluster was told %+v, want %d report(s) of incident %d", tt.cl.done, wantDone, inc.ID)
			}
		})
	}
}

// TestExecute: the cluster hands this node an incident raised elsewhere;
// it runs without throttling or a new Record, keeps its identity, and is
// reported back with its outcome.
func TestExecute(t *testing.T) {
	spec, read := recorder(t, "pager")
	cl := &cluster{}
	cfg := testConfig()
	cfg.Alarms = []string{spec, "broken cmd:exit 1"}
	cfg.Tries = 1
	h := newHarness(t, cfg, true, WithCluster(cl), WithNode("n1"))
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	orphan := Incident{ID: 7, Alarm: "pager", Message: "db down", Node: "n2", Kind: KindLog, At: at, Last: at, Count: 3}
	for range 2 { // handed over twice (a second takeover): runs twice
		if err := h.m.Execute(orphan); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.m.Execute(Incident{ID: 8, Alarm: "broken", Node: "n2"}); err != nil {
		t.Fatal(err)
	}
	if err := h.m.Execute(Incident{Alarm: "nope"}); err == nil || !strings.Contains(err.Error(), `alarm "nope": not defined`) {
		t.Errorf("Execute of an unknown alarm: %v", err)
	}
	hist := h.waitSettled(t, 3)
	waitFor(t, 10*time.Second, "the reports", func() bool { return len(cl.reported()) == 3 })
	if got := read(); !equal(got, []string{"db down", "db down"}) {
		t.Errorf("executions %q", got)
	}
	if g := hist[0]; g.ID != 7 || g.Node != "n2" || !g.At.Equal(at) || g.Count != 3 || g.Outcome != OutcomeOK {
		t.Errorf("history kept %+v, want the incident as raised on n2, ok", g)
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if len(cl.offered) != 0 {
		t.Errorf("handed-over incidents were offered back: %+v", cl.offered)
	}
	for _, d := range cl.done {
		want := OutcomeOK
		if d.Alarm == "broken" {
			want = "failed: cmd:exit 1: exit status 1"
		}
		if d.Node != "n2" || d.Outcome != want {
			t.Errorf("reported %+v, want node n2 and outcome %q", d, want)
		}
	}
}

// TestAlarmFD: reads on the descriptor raise the alarm; its end is logged.
func TestAlarmFD(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfg := testConfig()
	cfg.Alarms = []string{"pager log:P"}
	cfg.FD = []string{fmt.Sprintf("pager %d:2 disk quota exceeded", r.Fd())}
	h := newHarness(t, cfg, true)
	if _, err := w.Write([]byte("xx")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the fd alarm", func() bool { return len(h.m.History()) == 1 })
	if _, err := w.Write([]byte("yy")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	waitFor(t, 10*time.Second, "the end of the fd to be logged", func() bool {
		return strings.Contains(h.out.String(), "no longer watched")
	})
	waitFor(t, 10*time.Second, "the second read to count as a repeat", func() bool { return h.m.History()[0].Count == 2 })
	inc := h.waitSettled(t, 1)[0]
	if inc.Kind != KindFD || inc.Message != "disk quota exceeded" || inc.Outcome != OutcomeOK {
		t.Errorf("incident %+v, want kind fd, the message, ok", inc)
	}
}

// TestFromConfig: the options as a node loads them, with log-alarm and
// not-log-alarm kept in declaration order across aliases.
func TestFromConfig(t *testing.T) {
	c, err := config.Load([]string{
		"--alarm", "pager cmd:true", "--alarm-freq", "5", "--alarm-msg-size", "100",
		"--alarm-log", "pager ERROR", "--not-log-alarm", "pager healthcheck", "--log-alarm", "pager FATAL",
		"--segfault-alarm", "pager", "--lq-alarm", "pager", "--alarm-fd", "pager 0 stdin",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := FromConfig(c)
	want := []LogRule{{Spec: "pager ERROR"}, {Negate: true, Spec: "pager healthcheck"}, {Spec: "pager FATAL"}}
	if fmt.Sprint(cfg.LogRules) != fmt.Sprint(want) {
		t.Errorf("log rules %+v, want %+v", cfg.LogRules, want)
	}
	if cfg.Freq != 5*time.Second || cfg.MsgSize != 100 || !equal(cfg.Alarms, []string{"pager cmd:true"}) ||
		!equal(cfg.Segfault, []string{"pager"}) || !equal(cfg.Backlog, []string{"pager"}) || !equal(cfg.FD, []string{"pager 0 stdin"}) {
		t.Errorf("config %+v", cfg)
	}
	if def := FromConfig(must(config.Load(nil, nil))); def.Freq != 3*time.Second || def.MsgSize != 8192 {
		t.Errorf("defaults: alarm-freq %s, alarm-msg-size %d; want uWSGI's 3s and 8192", def.Freq, def.MsgSize)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func equal(a, b []string) bool { return fmt.Sprintf("%q", a) == fmt.Sprintf("%q", b) }

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
