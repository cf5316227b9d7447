package router

import (
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/node/request"
	"github.com/gouwsgi/gouwsgi/node/wire"
)

func basic(userPass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userPass))
}

// actionCase runs lines against a request and checks the outcome; zero
// fields are not checked, except app (whether next was called), which is
// always checked.
type actionCase struct {
	name   string
	lines  []string
	req    *request.Request
	setup  func(e *env)
	status int
	body   *string
	header map[string]string // "" means the header must be absent
	app    bool
	appVar map[string]string
	log    string
	check  func(t *testing.T, e *env, rec *httptest.ResponseRecorder, r *request.Request)
}

func str(s string) *string { return &s }

func runActionCases(t *testing.T, cases []actionCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.lines...)
			if c.setup != nil {
				c.setup(e)
			}
			r := c.req
			if r == nil {
				r = newReq("GET", "/hello?y=2")
			}
			rec := e.do(r)
			if c.status != 0 && rec.Code != c.status {
				t.Errorf("status = %d, want %d", rec.Code, c.status)
			}
			if c.body != nil && rec.Body.String() != *c.body {
				t.Errorf("body = %q, want %q", rec.Body, *c.body)
			}
			for k, want := range c.header {
				got, present := rec.Header()[k]
				switch {
				case want == "" && present:
					t.Errorf("header %s = %q, want absent", k, got)
				case want != "" && rec.Header().Get(k) != want:
					t.Errorf("header %s = %q, want %q", k, rec.Header().Get(k), want)
				}
			}
			if called := e.app.Calls() > 0; called != c.app {
				t.Errorf("app called = %v, want %v", called, c.app)
			}
			for k, want := range c.appVar {
				if got := e.app.Var(k); got != want {
					t.Errorf("app saw %s = %q, want %q", k, got, want)
				}
			}
			if c.log != "" && !strings.Contains(e.Logs(), c.log) {
				t.Errorf("log %q does not contain %q", e.Logs(), c.log)
			}
			if c.check != nil {
				c.check(t, e, rec, r)
			}
		})
	}
}

func TestFlowActions(t *testing.T) {
	runActionCases(t, []actionCase{
		{name: "continue", lines: []string{"route = ^/ continue:", "route = ^/ return:403"}, status: 200, body: str("from app"), app: true},
		{name: "last", lines: []string{"route = ^/ last:", "route = ^/ return:403"}, status: 200, app: true},
		{name: "no match is NEXT", lines: []string{"route = ^/nomatch return:403"}, status: 200, app: true},
		{name: "break", lines: []string{"route = ^/ break:", "route = ^/ return:403"}, body: str(""), app: false},
		{name: "break with status", lines: []string{"route = ^/hello break:403 Forbidden"}, status: 403, body: str(""),
			header: map[string]string{"Content-Type": "text/plain", "Connection": "close"}},
		{name: "return", lines: []string{"route = ^/ return:404"}, status: 404, body: str("Not Found"),
			header: map[string]string{"Content-Type": "text/plain", "Content-Length": "9"}},
		{name: "break-with-status", lines: []string{"route = ^/ break-with-status:503"}, status: 503, body: str("Service Unavailable")},
		{name: "goto label", lines: []string{"route-run = goto:skip", "route-run = return:403", "route-label = skip",
			"route-run = addheader:X-After: 1"}, status: 200, app: true, header: map[string]string{"X-After": "1"}},
		{name: "goto rule number", lines: []string{"route-run = goto:2", "route-run = return:403", "route-run = addheader:X-After: 1"},
			status: 200, app: true, header: map[string]string{"X-After": "1"}},
		{name: "goto only when the rule matches", lines: []string{"route = ^/nomatch goto:end", "route-run = return:403", "route-label = end"},
			status: 403},
	})
}

func TestLogAndVarActions(t *testing.T) {
	runActionCases(t, []actionCase{
		{name: "log", lines: []string{"route = ^/(.*) log:path=$1 method=${REQUEST_METHOD}"}, app: true, log: "path=hello method=GET"},
		{name: "log in final-route sees the status", lines: []string{"final-route-run = log:done ${uwsgi[status]}"}, app: true, log: "done 200"},
		{name: "logvar", lines: []string{"route-run = logvar:client=${REMOTE_ADDR}"}, app: true,
			check: func(t *testing.T, _ *env, _ *httptest.ResponseRecorder, r *request.Request) {
				if !slices.Contains(r.Log.LogVars, wire.Var{Key: "client", Value: "192.168.1.10"}) {
					t.Errorf("LogVars = %v", r.Log.LogVars)
				}
			}},
		{name: "donotlog", lines: []string{"route-run = donotlog:"}, app: true,
			check: func(t *testing.T, _ *env, _ *httptest.ResponseRecorder, r *request.Request) {
				if !r.Log.NoLog {
					t.Error("NoLog not set")
				}
			}},
		{name: "donotlog in final-route", lines: []string{"final-route-status = ^200$ donotlog:"}, app: true,
			check: func(t *testing.T, _ *env, _ *httptest.ResponseRecorder, r *request.Request) {
				if !r.Log.NoLog {
					t.Error("NoLog not set")
				}
			}},
		{name: "addvar", lines: []string{"route-run = addvar:MYVAR=x${PATH_INFO}"}, app: true, appVar: map[string]string{"MYVAR": "x/hello"}},
		{name: "addvar replaces", lines: []string{"route-run = addvar:HTTP_HOST=other"}, app: true, appVar: map[string]string{"HTTP_HOST": "other"}},
		{name: "setscriptname", lines: []string{"route-run = setscriptname:/app"}, app: true, appVar: map[string]string{"SCRIPT_NAME": "/app"}},
		{name: "seturi", lines: []string{"route-run = seturi:/u?x"}, app: true, appVar: map[string]string{"REQUEST_URI": "/u?x"}},
		{name: "setpathinfo", lines: []string{"route-run = setpathinfo:/p"}, app: true, appVar: map[string]string{"PATH_INFO": "/p"}},
		{name: "setmethod", lines: []string{"route-run = setmethod:PUT"}, app: true, appVar: map[string]string{"REQUEST_METHOD": "PUT"}},
		{name: "setremoteaddr", lines: []string{"route-run = setremoteaddr:${HTTP_X_FORWARDED_FOR}"},
			req: newReq("GET", "/", "HTTP_X_FORWARDED_FOR", "1.2.3.4"), app: true, appVar: map[string]string{"REMOTE_ADDR": "1.2.3.4"}},
		{name: "setscheme", lines: []string{"route-run = setscheme:https"}, app: true, appVar: map[string]string{"UWSGI_SCHEME": "https"}},
		{name: "setdocroot", lines: []string{"route-run = setdocroot:/srv"}, app: true, appVar: map[string]string{"DOCUMENT_ROOT": "/srv"}},
	})
}

func TestRewriteActions(t *testing.T) {
	runActionCases(t, []actionCase{
		{name: "rewrite", lines: []string{"route = ^/old/(.*) rewrite:/new/$1?x=1", "route = ^/new addheader:X-Rewritten: yes"},
			req: newReq("GET", "/old/thing?y=2"), app: true, header: map[string]string{"X-Rewritten": "yes"},
			appVar: map[string]string{"PATH_INFO": "/new/thing", "QUERY_STRING": "x=1&y=2", "REQUEST_URI": "/old/thing?y=2"}},
		{name: "rewrite keeps the query string", lines: []string{"route = ^/old rewrite:/new"},
			req: newReq("GET", "/old?y=2"), app: true, appVar: map[string]string{"PATH_INFO": "/new", "QUERY_STRING": "y=2"}},
		{name: "rewrite decodes the path", lines: []string{"route-run = rewrite:/a%20b"}, app: true, appVar: map[string]string{"PATH_INFO": "/a b"}},
		{name: "rewrite-last stops the chain", lines: []string{"route = ^/old rewrite-last:/new", "route = ^/new return:403"},
			req: newReq("GET", "/old"), status: 200, app: true, appVar: map[string]string{"PATH_INFO": "/new"}},
	})
}

func TestHeaderActions(t *testing.T) {
	appHeaders := func(e *env) { e.app.headers = map[string]string{"X-Secret": "s", "X-Keep": "k"} }
	runActionCases(t, []actionCase{
		{name: "addheader", lines: []string{"route-run = addheader:X-Foo: bar ${REQUEST_METHOD}"}, app: true,
			header: map[string]string{"X-Foo": "bar GET"}},
		{name: "delheader", lines: []string{"route-run = delheader:X-Secret"}, setup: appHeaders, app: true,
			header: map[string]string{"X-Secret": "", "X-Keep": "k"}},
		{name: "remheader", lines: []string{"route-run = remheader:x-secret"}, setup: appHeaders, app: true,
			header: map[string]string{"X-Secret": ""}},
		{name: "clearheaders", lines: []string{"route-run = addheader:X-Added: 1", "route-run = clearheaders:202"}, setup: appHeaders,
			app: true, status: 202, body: str("from app"), header: map[string]string{"X-Secret": "", "X-Keep": "", "X-Added": "1"}},
		{name: "resetheaders in response-route", lines: []string{"response-route-status = ^404$ resetheaders:200"},
			setup: func(e *env) { e.app.status = 404; appHeaders(e) }, app: true, status: 200, header: map[string]string{"X-Keep": ""}},
		{name: "response-route addheader", lines: []string{"response-route = ^/hello addheader:X-Resp: ${uwsgi[status]}"},
			setup: func(e *env) { e.app.status = 201 }, app: true, status: 201, header: map[string]string{"X-Resp": "201"}},
		{name: "response-route delheader", lines: []string{"response-route-run = delheader:X-Secret"}, setup: appHeaders, app: true,
			header: map[string]string{"X-Secret": "", "X-Keep": "k"}},
		{name: "response-route on a cache hit", lines: []string{"route-run = cache:key=k", "response-route-run = addheader:X-Resp: hit"},
			setup: func(e *env) { _ = e.cache.Update("k", []byte("cached"), 0) }, app: false, body: str("cached"),
			header: map[string]string{"X-Resp": "hit"}},
		{name: "response-route goto", lines: []string{"response-route-run = goto:end", "response-route-run = addheader:X-No: 1",
			"response-route-label = end", "response-route-run = addheader:X-Yes: 1"}, app: true,
			header: map[string]string{"X-No": "", "X-Yes": "1"}},
	})
}

func TestResponseActions(t *testing.T) {
	dir := t.TempDir()
	css := writeFile(t, dir, "site.css", "body{}")
	runActionCases(t, []actionCase{
		{name: "redirect", lines: []string{"route = ^/old(.*) redirect:https://new.example$1"}, req: newReq("GET", "/old/x"),
			status: 302, body: str("Moved"), header: map[string]string{"Location": "https://new.example/x"}},
		{name: "redirect-302", lines: []string{"route-run = redirect-302:/there"}, status: 302, header: map[string]string{"Location": "/there"}},
		{name: "redirect-permanent", lines: []string{"route-run = redirect-permanent:/there"}, status: 301, body: str("Moved Permanently"),
			header: map[string]string{"Location": "/there"}},
		{name: "redirect-301", lines: []string{"route-run = redirect-301:/there"}, status: 301},
		{name: "send", lines: []string{"route-run = send:hello ${PATH_INFO}", "route-run = break:"}, status: 200, body: str("hello /hello")},
		{name: "send-crnl", lines: []string{"route-run = send-crnl:a", "route-run = send-crnl:b", "route-run = break:"}, body: str("a\r\nb\r\n")},
		{name: "static", lines: []string{"route = ^/style static:" + css}, req: newReq("GET", "/style"), status: 200, body: str("body{}"),
			header: map[string]string{"Content-Type": "text/css; charset=utf-8"}},
		{name: "static missing", lines: []string{"route-run = static:" + dir + "/nope"}, status: 404},
		{name: "file", lines: []string{"route-run = file:filename=" + css}, status: 200, body: str("body{}"),
			header: map[string]string{"Content-Type": "text/html", "Content-Length": "6"}},
		{name: "file mime status no_cl", lines: []string{"route-run = file:filename=" + css + ",mime=1,status=201,no_cl=1"},
			status: 201, header: map[string]string{"Content-Type": "text/css; charset=utf-8", "Content-Length": ""}},
		{name: "file content_type", lines: []string{"route-run = file:filename=" + css + ",content_type=text/plain"},
			header: map[string]string{"Content-Type": "text/plain"}},
		{name: "file missing breaks", lines: []string{"route-run = file:filename=" + dir + "/nope"}, body: str("")},
		{name: "file-next missing goes on", lines: []string{"route-run = file-next:filename=" + dir + "/nope"}, app: true},
	})
}

func TestBasicAuthActions(t *testing.T) {
	dir := t.TempDir()
	sum := sha1.Sum([]byte("sekret"))
	htp := writeFile(t, dir, "users", "# users\nalice:{SHA}"+base64.StdEncoding.EncodeToString(sum[:])+"\nbob:plainpw\n")
	auth := func(v string) *request.Request { return newReq("GET", "/", "HTTP_AUTHORIZATION", v) }
	denied := map[string]string{"Www-Authenticate": `Basic realm="Private Area"`}
	runActionCases(t, []actionCase{
		{name: "inline ok", lines: []string{"route-run = basicauth:Private Area,user:pass"}, req: auth(basic("user:pass")),
			app: true, appVar: map[string]string{"REMOTE_USER": "user"}},
		{name: "inline wrong", lines: []string{"route-run = basicauth:Private Area,user:pass"}, req: auth(basic("user:nope")),
			status: 401, body: str("Unauthorized"), header: denied},
		{name: "no credentials", lines: []string{"route-run = basicauth:Private Area,user:pass"}, status: 401, header: denied},
		{name: "not basic", lines: []string{"route-run = basicauth:Private Area,user:pass"}, req: auth("Bearer x"), status: 401},
		{name: "empty password", lines: []string{"route-run = basicauth:Private Area,guest:"}, req: auth(basic("guest:")),
			app: true, appVar: map[string]string{"REMOTE_USER": "guest"}},
		{name: "htpasswd sha", lines: []string{"route-run = basicauth:Private Area," + htp}, req: auth(basic("alice:sekret")),
			app: true, appVar: map[string]string{"REMOTE_USER": "alice"}},
		{name: "htpasswd plain", lines: []string{"route-run = basicauth:Private Area," + htp}, req: auth(basic("bob:plainpw")), app: true},
		{name: "htpasswd wrong", lines: []string{"route-run = basicauth:Private Area," + htp}, req: auth(basic("alice:plainpw")), status: 401},
		{name: "htpasswd unknown user", lines: []string{"route-run = basicauth:Private Area," + htp}, req: auth(basic("eve:x")), status: 401},
		{name: "basicauth-next chain second user", lines: []string{"route-run = basicauth-next:Private Area,a:1",
			"route-run = basicauth:Private Area,b:2"}, req: auth(basic("b:2")), app: true, appVar: map[string]string{"REMOTE_USER": "b"}},
		{name: "basicauth-next chain first user", lines: []string{"route-run = basicauth-next:Private Area,a:1",
			"route-run = basicauth:Private Area,b:2"}, req: auth(basic("a:1")), app: true, appVar: map[string]string{"REMOTE_USER": "a"}},
		{name: "basicauth-next chain nobody", lines: []string{"route-run = basicauth-next:Private Area,a:1",
			"route-run = basicauth:Private Area,b:2"}, req: auth(basic("c:3")), status: 401},
		{name: "basicauth-next wrong falls through", lines: []string{"route-run = basicauth-next:Private Area,a:1"},
			req: auth(basic("c:3")), app: true},
		{name: "basicauth-next without credentials still asks", lines: []string{"route-run = basicauth-next:Private Area,a:1"}, status: 401},
	})
}

func TestCacheActions(t *testing.T) {
	put := func(k, v string, exp time.Duration) func(e *env) {
		return func(e *env) { _ = e.cache.Update(k, []byte(v), exp) }
	}
	stored := func(k, want string) func(*testing.T, *env, *httptest.ResponseRecorder, *request.Request) {
		return func(t *testing.T, e *env, _ *httptest.ResponseRecorder, _ *request.Request) {
			if got, ok := e.cache.Get(k); ok != (want != "") || string(got) != want {
				t.Errorf("cache[%q] = %q (present %v), want %q", k, got, ok, want)
			}
		}
	}
	num := func(k string, want int64) func(*testing.T, *env, *httptest.ResponseRecorder, *request.Request) {
		return func(t *testing.T, e *env, _ *httptest.ResponseRecorder, _ *request.Request) {
			if got := e.cache.num(k); got != want {
				t.Errorf("cache[%q] = %d, want %d", k, got, want)
			}
		}
	}
	runActionCases(t, []actionCase{
		{name: "cache hit", lines: []string{"route = ^/hello cache:key=k${PATH_INFO}"}, setup: put("k/hello", "cached", 0),
			status: 200, body: str("cached"), header: map[string]string{"Content-Type": "text/html", "Content-Length": "6", "Expires": ""}},
		{name: "cache miss", lines: []string{"route-run = cache:key=absent"}, app: true, body: str("from app")},
		{name: "cache hit with expiry", lines: []string{"route-run = cache:key=k"}, setup: put("k", "v", 30*time.Second),
			header: map[string]string{"Expires": "Tue, 14 Nov 2023 22:13:50 GMT"}},
		{name: "cache mime", lines: []string{"route-run = cache:key=${PATH_INFO},mime=1"}, req: newReq("GET", "/a.css"),
			setup: put("/a.css", "x", 0), header: map[string]string{"Content-Type": "text/css; charset=utf-8"}},
		{name: "cache no_cl and content_encoding", lines: []string{"route-run = cache:key=k,no_cl=1,content_encoding=gzip,content_type=${HTTP_ACCEPT}"},
			req: newReq("GET", "/", "HTTP_ACCEPT", "text/x-dyn"), setup: put("k", "v", 0),
			header: map[string]string{"Content-Length": "", "Content-Encoding": "gzip", "Content-Type": "text/x-dyn"}},
		{name: "cache named", lines: []string{"route-run = cache:key=k,name=mycache"}, setup: put("k", "v", 0), body: str("v")},
		{name: "cache-continue", lines: []string{"route-run = cache-continue:key=k", "route-run = log:after", "route-run = break:"},
			setup: put("k", "v", 0), body: str("v"), log: "after"},
		{name: "addheader before a hit", lines: []string{"route-run = addheader:X-Pre: 1", "route-run = cache:key=k"},
			setup: put("k", "v", 0), header: map[string]string{"X-Pre": "1"}},
		{name: "cachestore", lines: []string{"route-run = cachestore:key=s${PATH_INFO},expires=5"}, app: true, body: str("from app"),
			check: func(t *testing.T, e *env, rec *httptest.ResponseRecorder, r *request.Request) {
				stored("s/hello", "from app")(t, e, rec, r)
				if exp, ok := e.cache.Expires("s/hello"); !ok || !exp.Equal(e.clock.Now().Add(5*time.Second)) {
					t.Errorf("expiry = %v %v", exp, ok)
				}
			}},
		{name: "cache-store alias", lines: []string{"route-run = cache-store:key=s"}, app: true, check: stored("s", "from app")},
		{name: "cachestore skips non-200", lines: []string{"route-run = cachestore:key=s"}, setup: func(e *env) { e.app.status = 201 },
			app: true, check: stored("s", "")},
		{name: "cachestore status", lines: []string{"route-run = cachestore:key=s,status=201"}, setup: func(e *env) { e.app.status = 201 },
			app: true, check: stored("s", "from app")},
		{name: "cachestore code", lines: []string{"route-run = cachestore:key=s,code=404"}, setup: func(e *env) { e.app.status = 404 },
			app: true, check: stored("s", "from app")},
		{name: "cachestore value", lines: []string{"route-run = cachestore:key=s,value=v=${REQUEST_METHOD}"}, app: true, check: stored("s", "v=GET")},
		{name: "cachestore gzip", lines: []string{"route-run = cachestore:key=s,gzip=sgz"}, app: true,
			check: func(t *testing.T, e *env, _ *httptest.ResponseRecorder, _ *request.Request) {
				v, _ := e.cache.Get("sgz")
				zr, err := gzip.NewReader(bytes.NewReader(v))
				if err != nil {
					t.Fatalf("gzip copy: %v", err)
				}
				if b, _ := io.ReadAll(zr); string(b) != "from app" {
					t.Errorf("gunzipped = %q", b)
				}
			}},
		{name: "cachestore in response-route", lines: []string{"response-route-run = cachestore:key=r"}, app: true, check: stored("r", "from app")},
		{name: "cachestore on a send", lines: []string{"route-run = cachestore:key=s", "route-run = send:sent", "route-run = break:"},
			body: str("sent"), check: stored("s", "sent")},
		{name: "cacheset", lines: []string{"route-run = cacheset:key=c,value=v${PATH_INFO}"}, app: true, check: stored("c", "v/hello")},
		{name: "cacheset existing breaks", lines: []string{"route-run = cacheset:key=c,value=new"}, setup: put("c", "old", 0),
			app: false, check: stored("c", "old")},
		{name: "cachevar", lines: []string{"route-run = cachevar:key=k,var=FROM_CACHE"}, setup: put("k", "val", 0), app: true,
			appVar: map[string]string{"FROM_CACHE": "val"}},
		{name: "cachevar as_num", lines: []string{"route-run = cacheinc:key=n,value=41", "route-run = cacheinc:key=n",
			"route-run = cachevar:key=n,var=N,as_num=1"}, app: true, appVar: map[string]string{"N": "42"}},
		{name: "cachevar missing", lines: []string{"route-run = cachevar:key=none,var=X"}, app: true, appVar: map[string]string{"X": ""}},
		{name: "cacheinc", lines: []string{"route-run = cacheinc:key=n", "route-run = cacheinc:key=n,value=${QUERY_STRING}"},
			req: newReq("GET", "/?5"), app: true, check: num("n", 6)},
		{name: "cachedec", lines: []string{"route-run = cachedec:key=n", "route-run = cachedec:key=n,value=3"}, app: true, check: num("n", -4)},
		{name: "cachemul", lines: []string{"route-run = cacheinc:key=n,value=3", "route-run = cachemul:key=n", "route-run = cachemul:key=n,value=5"},
			app: true, check: num("n", 30)},
		{name: "cachediv", lines: []string{"route-run = cacheinc:key=n,value=40", "route-run = cachediv:key=n", "route-run = cachediv:key=n,value=4"},
			app: true, check: num("n", 5)},
		{name: "cacheinc expires", lines: []string{"route-run = cacheinc:key=n,expires=7"}, app: true,
			check: func(t *testing.T, e *env, _ *httptest.ResponseRecorder, _ *request.Request) {
				if exp, ok := e.cache.Expires("n"); !ok || !exp.Equal(e.clock.Now().Add(7*time.Second)) {
					t.Errorf("expiry = %v %v", exp, ok)
				}
			}},
	})
}

// flushingApp streams its body in two flushed parts through
// http.ResponseController, as a streaming WSGI response does.
type flushingApp struct{ flushErr error }

func (a *flushingApp) ServeRequest(w http.ResponseWriter, _ *request.Request) {
	rc := http.NewResponseController(w)
	_, _ = io.WriteString(w, "part1 ")
	a.flushErr = rc.Flush()
	_, _ = io.WriteString(w, "part2")
}

func TestCacheStoreStreams(t *testing.T) {
	r, err := Parse(opts("route-run = cachestore:key=s"))
	if err != nil {
		t.Fatal(err)
	}
	cache := newMapCache(&fakeClock{})
	app := &flushingApp{}
	rec := httptest.NewRecorder()
	r.Handler(app, caches{"": cache}, nil).ServeRequest(rec, newReq("GET", "/"))
	if app.flushErr != nil || !rec.Flushed {
		t.Fatalf("flush did not reach the client: %v", app.flushErr)
	}
	if v, _ := cache.Get("s"); rec.Body.String() != "part1 part2" || string(v) != "part1 part2" {
		t.Fatalf("body %q stored %q", rec.Body, v)
	}
}

// bigApp writes more than cachestore buffers, in chunks.
type bigApp struct{}

func (bigApp) ServeRequest(w http.ResponseWriter, _ *request.Request) {
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for range maxStoreBody>>20 + 1 {
		_, _ = w.Write(chunk)
	}
}

func TestCacheStoreSkipsOversizedBodies(t *testing.T) {
	r, err := Parse(opts("route-run = cachestore:key=s"))
	if err != nil {
		t.Fatal(err)
	}
	cache := newMapCache(&fakeClock{})
	rec := httptest.NewRecorder()
	r.Handler(bigApp{}, caches{"": cache}, nil).ServeRequest(rec, newReq("GET", "/"))
	if rec.Body.Len() != maxStoreBody+1<<20 {
		t.Fatalf("client got %d bytes", rec.Body.Len())
	}
	if cache.Exists("s") {
		t.Fatal("an oversized body was stored")
	}
}
