package router

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/node/request"
	"github.com/gouwsgi/gouwsgi/node/wire"
)

// fakeClock is the time the test caches see.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// mapCache is a small map-based CacheStore with uWSGI's set/update/math
// semantics and lazy expiry on an injected clock.
type mapCache struct {
	mu    sync.Mutex
	clock *fakeClock
	items map[string]mapItem
}

type mapItem struct {
	v   []byte
	exp time.Time
}

var errExists = errors.New("key exists")

func newMapCache(clock *fakeClock) *mapCache {
	return &mapCache{clock: clock, items: map[string]mapItem{}}
}

func (c *mapCache) live(key string) (mapItem, bool) {
	it, ok := c.items[key]
	if ok && !it.exp.IsZero() && !c.clock.Now().Before(it.exp) {
		delete(c.items, key)
		return mapItem{}, false
	}
	return it, ok
}

func (c *mapCache) expAt(d time.Duration) time.Time {
	if d == 0 {
		return time.Time{}
	}
	return c.clock.Now().Add(d)
}

func (c *mapCache) Get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.live(key)
	return it.v, ok
}

func (c *mapCache) Update(key string, v []byte, expires time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items[key] = mapItem{v: v, exp: c.expAt(expires)}
	return nil
}

func (c *mapCache) Set(key string, v []byte, expires time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.live(key); ok {
		return errExists
	}
	c.items[key] = mapItem{v: v, exp: c.expAt(expires)}
	return nil
}

func (c *mapCache) Expires(key string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.live(key)
	return it.exp, ok && !it.exp.IsZero()
}

func (c *mapCache) Math(op, key string, operand int64, expires time.Duration) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.live(key)
	var n int64
	if ok && len(it.v) == 8 {
		n = int64(binary.NativeEndian.Uint64(it.v))
	}
	switch op {
	case "inc":
		n += operand
	case "dec":
		n -= operand
	case "mul":
		n *= operand
	case "div":
		if operand == 0 {
			n = 0
		} else {
			n /= operand
		}
	default:
		return 0, errors.New("bad op " + op)
	}
	if !ok {
		it.exp = c.expAt(expires)
	}
	it.v = binary.NativeEndian.AppendUint64(nil, uint64(n))
	c.items[key] = it
	return n, nil
}

func (c *mapCache) Exists(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.live(key)
	return ok
}

func (c *mapCache) num(key string) int64 {
	v, _ := c.Get(key)
	if len(v) != 8 {
		return -1
	}
	return int64(binary.NativeEndian.Uint64(v))
}

// caches is a Caches over map caches.
type caches map[string]*mapCache

func (cs caches) Get(name string) (CacheStore, bool) {
	c, ok := cs[name]
	if !ok {
		return nil, false
	}
	return c, true
}

// recApp is the real next handler: it records its calls and the vars it
// saw, and answers with a configurable response.
type recApp struct {
	mu      sync.Mutex
	calls   int
	vars    wire.Vars
	status  int
	body    string
	headers map[string]string
}

func (a *recApp) ServeRequest(w http.ResponseWriter, r *request.Request) {
	a.mu.Lock()
	a.calls++
	a.vars = slices.Clone(r.Vars)
	status, body := a.status, a.body
	for k, v := range a.headers {
		w.Header().Set(k, v)
	}
	a.mu.Unlock()
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (a *recApp) Calls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

func (a *recApp) Var(k string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.vars.Value(k)
}

// opts turns "name = value" lines into Options.
func opts(lines ...string) Options {
	var o Options
	for _, l := range lines {
		name, value, _ := strings.Cut(l, "=")
		o = append(o, Option{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)})
	}
	return o
}

// newReq builds the vars nginx or the HTTP frontend would send; kv adds or
// replaces vars.
func newReq(method, uri string, kv ...string) *request.Request {
	p, q, _ := strings.Cut(uri, "?")
	vs := wire.Vars{
		{Key: "REQUEST_METHOD", Value: method}, {Key: "REQUEST_URI", Value: uri},
		{Key: "PATH_INFO", Value: p}, {Key: "QUERY_STRING", Value: q},
		{Key: "SERVER_PROTOCOL", Value: "HTTP/1.1"}, {Key: "HTTP_HOST", Value: "example.com"},
		{Key: "REMOTE_ADDR", Value: "192.168.1.10"}, {Key: "HTTP_USER_AGENT", Value: "curl/8.0"},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		vs.Set(kv[i], kv[i+1])
	}
	return &request.Request{Vars: vs, Start: time.Now()}
}

// env is a router in front of a recording app, with a cache and a log.
type env struct {
	h     request.Handler
	app   *recApp
	cache *mapCache
	clock *fakeClock
	logs  *bytes.Buffer
	mu    sync.Mutex
}

func newEnv(t *testing.T, lines ...string) *env {
	t.Helper()
	r, err := Parse(opts(lines...))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	e := &env{app: &recApp{body: "from app"}, clock: &fakeClock{t: time.Unix(1_700_000_000, 0)}, logs: &bytes.Buffer{}}
	e.cache = newMapCache(e.clock)
	cs := caches{"": e.cache, "mycache": e.cache}
	if err := r.Validate(cs); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	e.h = r.Handler(e.app, cs, slog.New(slog.NewTextHandler(lockedWriter{e}, nil)))
	return e
}

// lockedWriter serialises log writes from concurrent requests.
type lockedWriter struct{ e *env }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	return w.e.logs.Write(b)
}

func (e *env) Logs() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.logs.String()
}

func (e *env) do(r *request.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.h.ServeRequest(rec, r)
	return rec
}

// The seed's route-cache section, verbatim (uwsgi-notes.txt).
var seedConfig = []string{
	"chdir = .",
	"module = mysite.wsgi:application",
	"master = True",
	"processes = 1",
	"stats = /tmp/test_stat.sock",
	"http = :9090",
	"harakiri = 8",
	"cpu_affinity = 1",
	"log-micros = true",
	"cache2 = name=mycache,items=300,hash=murmur2",
	"route = ^/feedback cache:key=${REQUEST_METHOD}${REQUEST_URI}${QUERY_STRING},name=mycache,content_type=application/json",
	"route = ^/feedback cachestore:key=${REQUEST_METHOD}${REQUEST_URI}${QUERY_STRING},name=mycache,expires=10",
	"route = ^/feedback log:hey i am printing $1",
	"autoload = true",
}

func TestSeedRouteCache(t *testing.T) {
	e := newEnv(t, seedConfig...)
	e.app.body = `{"ok":true}`
	e.app.headers = map[string]string{"Content-Type": "text/html; charset=utf-8", "X-App": "1"}

	first := e.do(newReq("GET", "/feedback?a=1"))
	if first.Code != 200 || first.Body.String() != `{"ok":true}` || e.app.Calls() != 1 {
		t.Fatalf("first request: code %d body %q calls %d", first.Code, first.Body, e.app.Calls())
	}
	if !strings.Contains(e.Logs(), "hey i am printing ") {
		t.Errorf("log action did not run on the miss: %q", e.Logs())
	}

	hit := e.do(newReq("GET", "/feedback?a=1"))
	if e.app.Calls() != 1 {
		t.Fatalf("second identical request reached the app (calls %d)", e.app.Calls())
	}
	if hit.Code != 200 || hit.Body.String() != `{"ok":true}` {
		t.Fatalf("hit: code %d body %q", hit.Code, hit.Body)
	}
	if ct := hit.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("hit Content-Type = %q, want application/json", ct)
	}
	if cl := hit.Header().Get("Content-Length"); cl != "11" {
		t.Errorf("hit Content-Length = %q", cl)
	}
	if hit.Header().Get("X-App") != "" {
		t.Errorf("a hit must not carry the app's headers")
	}
	wantExp := e.clock.Now().Add(10 * time.Second).UTC().Format(http.TimeFormat)
	if exp := hit.Header().Get("Expires"); exp != wantExp {
		t.Errorf("Expires = %q, want %q", exp, wantExp)
	}

	e.do(newReq("GET", "/feedback?a=2"))
	if e.app.Calls() != 2 {
		t.Fatalf("a different query string must be a different key (calls %d)", e.app.Calls())
	}
	e.do(newReq("POST", "/feedback?a=1"))
	if e.app.Calls() != 3 {
		t.Fatalf("the method is part of the key (calls %d)", e.app.Calls())
	}

	e.clock.Advance(11 * time.Second)
	e.do(newReq("GET", "/feedback?a=1"))
	if e.app.Calls() != 4 {
		t.Fatalf("after expires the request must miss (calls %d)", e.app.Calls())
	}
	e.do(newReq("GET", "/feedback?a=1"))
	if e.app.Calls() != 4 {
		t.Fatalf("the refreshed item must hit again (calls %d)", e.app.Calls())
	}

	e.do(newReq("GET", "/other"))
	if e.app.Calls() != 5 || e.cache.Exists("GET/other") {
		t.Fatalf("paths outside ^/feedback are neither cached nor served from cache")
	}
}

func TestSeedDoesNotStoreFailures(t *testing.T) {
	e := newEnv(t, seedConfig...)
	e.app.status = 500
	e.do(newReq("GET", "/feedback"))
	e.do(newReq("GET", "/feedback"))
	if e.app.Calls() != 2 {
		t.Fatalf("a 500 must not be cached (calls %d)", e.app.Calls())
	}
	e.app.status, e.app.body = 200, ""
	e.do(newReq("GET", "/feedback"))
	e.do(newReq("GET", "/feedback"))
	if e.app.Calls() != 4 {
		t.Fatalf("an empty body must not be cached (calls %d)", e.app.Calls())
	}
}

func TestConcurrentHitsAndMisses(t *testing.T) {
	e := newEnv(t, seedConfig...)
	e.app.body = "payload"
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				uri := "/feedback?k=" + string(rune('a'+(g+i)%5))
				rec := e.do(newReq("GET", uri))
				if rec.Code != 200 || rec.Body.String() != "payload" {
					t.Errorf("%s: code %d body %q", uri, rec.Code, rec.Body)
					return
				}
			}
		})
	}
	wg.Wait()
	if c := e.app.Calls(); c < 5 || c > 100 {
		t.Errorf("app calls = %d; want the 5 keys to be mostly hits", c)
	}
}

func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	bcrypt := writeFile(t, dir, "bcrypt.htpasswd", "bob:$2y$05$abcdefghijklmnopqrstuv\n")
	des := writeFile(t, dir, "des.htpasswd", "alice:{SHA}fEqNCco3Yq9h5ZUglD3CZJT4lBs=\ncarol:rOQvxdwXUg5fY\n")
	badSHA := writeFile(t, dir, "sha.htpasswd", "dave:{SHA}notbase64!\n")
	cases := []struct {
		line string
		want string
	}{
		{"route = ^/x", "expected <test> <action>"},
		{"route = ^/x nosuch:1", `unknown action "nosuch"`},
		{"route = ^/x continue", "needs a colon"},
		{"route = (?<=a)b break:", "Go RE2"},
		{"route = ^/x uwsgi:127.0.0.1:3031,0,0", "not supported by gouwsgi"},
		{"route-if = nosuch:a;b break:", `unknown route condition "nosuch"`},
		{"route-if = lord:mylegion break:", "lord: not available"},
		{"route-if = equal:${PATH_INFO} break:", "needs two arguments"},
		{"route-if = regexp:${PATH_INFO};(?!x) break:", "Go RE2"},
		{"route-if = ipv4in:${REMOTE_ADDR};10.0.0.0/99 break:", "network"},
		{"route-if = noColon break:", "expected <condition>:<args>"},
		{"route-run = log:${PATH_INFO", "unterminated ${"},
		{"route-run = log:${nosuch[x]}", `unknown function "nosuch"`},
		{"route-run = log:${time[days]}", "unix or micros"},
		{"route-run = log:${uwsgi[lq]}", "uwsgi[wid"},
		{"route-run = log:${math[1 +]}", "math"},
		{"route-run = return:999", "known HTTP status"},
		{"route-run = break:abc", "three-digit"},
		{"route-run = cache:name=mycache", "key= is required"},
		{"route-run = cache:key=a,bogus=1", `unknown key "bogus"`},
		{"route-run = cachestore:key=a,expires=soon", "expected seconds"},
		{"route-run = cachestore:key=a,status=abc", "expected an HTTP status"},
		{"route-run = cacheset:key=a", "value= is required"},
		{"route-run = cachevar:key=a", "var= is required"},
		{"route-run = cache:key=a,name=${HTTP_HOST}", "variables are not supported in cache names"},
		{"route-run = addheader:NoColon", "expected <Header-Name>"},
		{"route-run = logvar:novalue", "expected <name>=<value>"},
		{"route-run = basicauth:realm-only", "expected <realm>,"},
		{"route-run = basicauth:realm," + bcrypt, "$2y$ is not supported"},
		{"route-run = basicauth:realm," + dir + "/missing", "htpasswd file"},
		{"route-run = basicauth:realm," + des, "line 2 (user \"carol\"): looks like a DES crypt hash"},
		{"route-run = basicauth:realm," + badSHA, "malformed {SHA} hash"},
		{"route-run = file:status=200", "filename= is required"},
		{"final-route = ^/ addheader:X: y", `cannot be used in final-route`},
		{"response-route-run = return:404", `cannot be used in response-route`},
		{"response-route = ^/ break:404", "only be sent from route rules"},
		{"route-run = goto:nowhere", `no label "nowhere"`},
		{"static-map = /static", "expected <mountpoint>="},
		{"static-map = /static=" + dir + "/nope", "static path"},
		{"check-static = " + dir + "/nope", "static path"},
	}
	for _, c := range cases {
		t.Run(c.line, func(t *testing.T) {
			_, err := Parse(opts(c.line))
			if err == nil {
				t.Fatalf("Parse accepted %q", c.line)
			}
			name, value, _ := strings.Cut(c.line, "=")
			if !strings.Contains(err.Error(), strings.TrimSpace(name)+" = "+strings.TrimSpace(value)) {
				t.Errorf("error does not name the line: %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestParseGotoMustJumpForward(t *testing.T) {
	_, err := Parse(opts("route-label = top", "route-run = goto:top"))
	if err == nil || !strings.Contains(err.Error(), "goto only jumps forward") || !strings.Contains(err.Error(), "route-run = goto:top") {
		t.Fatalf("backward goto: %v", err)
	}
	// The same label name in another chain is not visible.
	_, err = Parse(opts("route-run = goto:end", "final-route-label = end"))
	if err == nil || !strings.Contains(err.Error(), `no label "end"`) {
		t.Fatalf("cross-chain goto: %v", err)
	}
}

func TestParseKeepsOrderAndIgnoresOtherOptions(t *testing.T) {
	r, err := Parse(opts("master = true", "route = ^/a log:a", "route-if = empty:${QUERY_STRING} log:b",
		"route-label = l", "response-route-run = addheader:X: y", "final-route-run = log:f", "processes = 4"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.Config()
	var got []string
	for _, ru := range cfg.Routes {
		got = append(got, ru.Option)
	}
	if want := []string{"route", "route-if", "route-label"}; !slices.Equal(got, want) {
		t.Errorf("request chain = %v, want %v", got, want)
	}
	if len(cfg.ResponseRoutes) != 1 || len(cfg.FinalRoutes) != 1 {
		t.Errorf("response/final chains: %d/%d", len(cfg.ResponseRoutes), len(cfg.FinalRoutes))
	}
}

func TestIsOption(t *testing.T) {
	for name, want := range map[string]bool{
		"route": true, "route-if-not": true, "route-remote-addr": true, "response-route-status": true,
		"final-route-run": true, "static-map2": true, "check-static": true, "route-status": false,
		"routes": false, "cache2": false, "route-bogus": false,
	} {
		if got := IsOption(name); got != want {
			t.Errorf("IsOption(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestValidateNamesMissingCaches(t *testing.T) {
	r, err := Parse(opts("route-run = cache:key=a,name=nope", "route-run = cacheinc:key=b"))
	if err != nil {
		t.Fatal(err)
	}
	err = r.Validate(caches{"mycache": nil})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "(default)") {
		t.Fatalf("Validate: %v", err)
	}
	// At request time a missing cache is a miss, and a cache op on it fails
	// (stopping the chain, as a failed cacheinc does in uWSGI).
	app := &recApp{}
	h := r.Handler(app, caches{}, slog.New(slog.DiscardHandler))
	h.ServeRequest(httptest.NewRecorder(), newReq("GET", "/"))
	if app.Calls() != 0 {
		t.Fatalf("cacheinc on a missing cache must stop the chain")
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := dir + "/" + name
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServesAlone: the master's CPU share is sized by its workers unless
// some request can be answered without one.
func TestServesAlone(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		lines []string
		want  bool
	}{
		{[]string{"route = ^/old rewrite:/new", "route = .* addheader:X-A: 1", "response-route = .* delheader:Server"}, false},
		{[]string{"route = ^/feedback cachestore:key=${REQUEST_URI},name=c"}, false},
		{[]string{"final-route = .* break:"}, false},
		{[]string{"route = ^/feedback cache:key=${REQUEST_URI},name=c"}, true},
		{[]string{"route = ^/old redirect:/new"}, true},
		{[]string{"route-if = equal:${PATH_INFO};/ping return:200"}, true},
		{[]string{"static-map = /static=" + dir}, true},
		{[]string{"check-static = " + dir}, true},
	} {
		r, err := Parse(opts(c.lines...))
		if err != nil {
			t.Fatalf("%q: %v", c.lines, err)
		}
		if got := r.ServesAlone(); got != c.want {
			t.Errorf("%q: ServesAlone = %v, want %v", c.lines, got, c.want)
		}
	}
}
