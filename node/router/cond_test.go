package router

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestConditions(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "f.txt", "x")
	exe := writeFile(t, dir, "run.sh", "#!/bin/sh\n")
	if err := os.Chmod(exe, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		cond string
		want bool
	}{
		{"equal:${PATH_INFO};/hello", true},
		{"equal:${PATH_INFO};/other", false},
		{"isequal:${REQUEST_METHOD};GET", true},
		{"eq:a;b", false},
		{"==:${QUERY_STRING};y=2", true},
		{"ishigher:10;9", true},
		{"ishigher:9;10", false},
		{">:${HTTP_CONTENT_LENGTH};100", true},
		{"ishigherequal:5;5", true},
		{">=:4;5", false},
		{"islower:4;5", true},
		{"<:5;5", false},
		{"islowerequal:5;5", true},
		{"<=:6;5", false},
		{"startswith:${PATH_INFO};/he", true},
		{"startswith:${PATH_INFO};/x", false},
		{"endswith:${PATH_INFO};llo", true},
		{"endswith:${PATH_INFO};/he", false},
		{"contains:${HTTP_USER_AGENT};curl", true},
		{"contain:${HTTP_USER_AGENT};wget", false},
		{"regexp:${PATH_INFO};^/h.l+o$", true},
		{"re:${PATH_INFO};^/x", false},
		{"empty:${HTTP_COOKIE}", true},
		{"empty:${PATH_INFO}", false},
		{"exists:" + dir, true},
		{"exists:" + dir + "/nope", false},
		{"isfile:" + file, true},
		{"isfile:" + dir, false},
		{"isdir:" + dir, true},
		{"isdir:" + file, false},
		{"islink:" + link, true},
		{"islink:" + file, false},
		{"isexec:" + exe, true},
		{"isexec:" + file, false},
		{"ipv4in:${REMOTE_ADDR};192.168.1.0/24", true},
		{"ipv4in:${REMOTE_ADDR};10.0.0.0/8", false},
		{"ipv4in:${REMOTE_ADDR};192.168.1.10", true},
		{"ipv4in:${HTTP_X_REAL_IP};${HTTP_X_NET}", true},
		{"ipv6in:${HTTP_X_V6};2001:db8::/32", true},
		{"ipv6in:${REMOTE_ADDR};::/0", false},
		{"incache:key=present", true},
		{"incache:key=${PATH_INFO},name=mycache", false},
	}
	for _, c := range cases {
		t.Run(c.cond, func(t *testing.T) {
			for _, negate := range []bool{false, true} {
				opt := "route-if"
				if negate {
					opt = "route-if-not"
				}
				e := newEnv(t, opt+" = "+c.cond+" addheader:X-Match: yes")
				_ = e.cache.Update("present", []byte("1"), 0)
				rec := e.do(newReq("GET", "/hello?y=2", "HTTP_CONTENT_LENGTH", "200",
					"HTTP_X_V6", "2001:db8::1", "HTTP_X_REAL_IP", "172.16.0.5", "HTTP_X_NET", "172.16.0.0/12"))
				if got := rec.Header().Get("X-Match") == "yes"; got != (c.want != negate) {
					t.Errorf("%s: matched = %v, want %v", opt, got, c.want != negate)
				}
				if e.app.Calls() != 1 {
					t.Errorf("app calls = %d", e.app.Calls())
				}
			}
		})
	}
}

func TestRegexpConditionCaptures(t *testing.T) {
	e := newEnv(t, "route-if = regexp:${PATH_INFO};^/user/(\\d+)/(\\w+)$ addvar:ID=$1-$2")
	e.do(newReq("GET", "/user/42/edit"))
	if got := e.app.Var("ID"); got != "42-edit" {
		t.Fatalf("ID = %q", got)
	}
}

func TestSubjects(t *testing.T) {
	cases := []struct{ opt, pattern string }{
		{"route", "^/hello$"},
		{"route-uri", `^/hello\?y=2$`},
		{"route-qs", "^y=2$"},
		{"route-host", `^example\.com$`},
		{"route-user-agent", "^curl/"},
		{"route-remote-addr", `^192\.168\.`},
		{"route-referer", "^https://ref/"},
		{"route-remote-user", "^alice$"},
	}
	for _, c := range cases {
		t.Run(c.opt, func(t *testing.T) {
			e := newEnv(t, c.opt+" = "+c.pattern+" addheader:X-Match: yes", c.opt+" = ^nomatch$ addheader:X-Bad: yes")
			rec := e.do(newReq("GET", "/hello?y=2", "HTTP_REFERER", "https://ref/x", "REMOTE_USER", "alice"))
			if rec.Header().Get("X-Match") != "yes" || rec.Header().Get("X-Bad") != "" {
				t.Errorf("headers %v", rec.Header())
			}
		})
	}
}

func TestVariables(t *testing.T) {
	req := func() []string {
		return []string{"HTTP_COOKIE", "a=1; PHPSESSID=abc123; z=9", "DOCUMENT_NAME", "/x/report.pdf", "NUM", "6"}
	}
	unix := time.Now().Unix()
	cases := []struct {
		tmpl string
		want string // exact, or a regexp when it starts with ^
	}{
		{"${PATH_INFO}", "/p/q"},
		{"${MISSING}", ""},
		{"${cookie[PHPSESSID]}", "abc123"},
		{"${cookie[nope]}", ""},
		{"${qs[b]}", "x%20y"},
		{"${qs[a]}-${qs[c]}", "1-"},
		{"${mime[DOCUMENT_NAME]}", "application/pdf"},
		{"${time[unix]}", `^\d{10}$`},
		{"${time[micros]}", `^\d{16}$`},
		{"${httptime[]}", `^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$`},
		{"${httptime[+3600]}", `^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$`},
		{"${math[NUM * 7 + 1]}", "43"},
		{"${math[(NUM + 2) / 4]}", "2"},
		{"${math[-NUM % 4]}", "-2"},
		{"${math[1/0]}", "0"},
		{"${base64[REQUEST_METHOD]}", "R0VU"},
		{"${hex[REQUEST_METHOD]}", "474554"},
		{"${upper[HTTP_HOST]}", "EXAMPLE.COM"},
		{"${lower[REQUEST_METHOD]}", "get"},
		{"${uwsgi[wid]}", "0"},
		{"${uwsgi[pid]}", `^[1-9]\d*$`},
		{"${uwsgi[uuid]}", `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`},
		{"${uwsgi[rtime]}", `^\d+$`},
		{"${uwsgi[sor]}", `^\d{16}$`},
		{"$1/$2/$9", "p/q/"},
		{"literal $ sign and $", "literal $ sign and $"},
	}
	for _, c := range cases {
		t.Run(c.tmpl, func(t *testing.T) {
			e := newEnv(t, `route = ^/(\w+)/(\w+)$ addvar:OUT=`+c.tmpl)
			e.do(newReq("GET", "/p/q?a=1&b=x%20y", req()...))
			got := e.app.Var("OUT")
			if strings.HasPrefix(c.want, "^") {
				if !regexp.MustCompile(c.want).MatchString(got) {
					t.Errorf("%s = %q, want match %s", c.tmpl, got, c.want)
				}
				return
			}
			if got != c.want {
				t.Errorf("%s = %q, want %q", c.tmpl, got, c.want)
			}
		})
	}
	if n := atoi64(newEnvTime(t)); n < unix {
		t.Errorf("time[unix] = %d, before the test started (%d)", n, unix)
	}
}

// newEnvTime returns ${time[unix]} as the router expands it.
func newEnvTime(t *testing.T) string {
	e := newEnv(t, "route-run = addvar:T=${time[unix]}")
	e.do(newReq("GET", "/"))
	return e.app.Var("T")
}

func TestUwsgiStatusAndSizeInFinalRoute(t *testing.T) {
	e := newEnv(t, "final-route-run = log:status=${uwsgi[status]} size=${uwsgi[rsize]}")
	e.app.status = 418
	e.do(newReq("GET", "/"))
	if !strings.Contains(e.Logs(), "status=418 size=8") {
		t.Fatalf("log: %q", e.Logs())
	}
}
