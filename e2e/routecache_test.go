package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// seedNotes is where the project keeps the users' real configurations.
const seedNotes = "/work/shared/seed/uwsgi-notes.txt"

// iniLines returns the [uwsgi] section of an ini text from its header up
// to the last non-empty line, one entry per line, trailing spaces removed.
func iniLines(text, last string) []string {
	var out []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t")
		if line == "[uwsgi]" {
			in = true
		}
		if !in {
			continue
		}
		out = append(out, line)
		if line == last {
			break
		}
	}
	return out
}

// TestSeedRouteCacheIsVerbatim: examples/seed-route-cache.ini is the
// seed's route-cache config line for line, but for chdir (the seed ran
// from the project directory).
func TestSeedRouteCacheIsVerbatim(t *testing.T) {
	notes, err := os.ReadFile(seedNotes)
	if err != nil {
		t.Skipf("seed notes not available here (%v): nothing to compare with", err)
	}
	i := strings.Index(string(notes), "\nroute-cache\n")
	if i < 0 {
		t.Fatalf("%s has no route-cache section", seedNotes)
	}
	seed := iniLines(string(notes[i:]), "autoload = true")
	example, err := os.ReadFile(filepath.Join(repo(t), "examples/seed-route-cache.ini"))
	if err != nil {
		t.Fatal(err)
	}
	ours := iniLines(string(example), "autoload = true")
	if len(seed) != len(ours) {
		t.Fatalf("seed section has %d lines, the example %d:\nseed:\n%s\nexample:\n%s", len(seed), len(ours), strings.Join(seed, "\n"), strings.Join(ours, "\n"))
	}
	for j := range seed {
		if strings.HasPrefix(seed[j], "chdir = ") && strings.HasPrefix(ours[j], "chdir = ") {
			continue
		}
		if seed[j] != ours[j] {
			t.Errorf("line %d: seed %q, example %q", j+1, seed[j], ours[j])
		}
	}
}

// boundHTTP returns the URL of the listener the test added with
// --http 127.0.0.1:0 (the seed's own http = :9090 is bound too).
func boundHTTP(s *server) string {
	m := s.waitLog(`HTTP server bound on (127\.0\.0\.1:\d+) \(fd 127\.0\.0\.1:0\)`, 30*time.Second)
	return "http://" + m[1]
}

// cacheStats returns caches[] of the stats document by name.
func cacheStats(t testing.TB, sock string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	caches, _ := readStats(t, sock)["caches"].([]any)
	for _, c := range caches {
		m := c.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

// TestSeedRouteCache runs the seed's route-cache config unchanged in front
// of the Django project (the test only adds its own http and stats
// addresses): a repeated request is answered from the cache without
// calling the view, as application/json; the entry expires after the
// seed's 10 s; query strings are separate keys; caches[] counts it all.
func TestSeedRouteCache(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "stats.sock")
	ini := filepath.Join(repo(t), "examples/seed-route-cache.ini")
	s := start(t, dir, "--ini", ini, "--http", "127.0.0.1:0", "--stats", sock)
	base := boundHTTP(s)
	s.ready(1)
	if os.Getenv("GOMAXPROCS") == "" {
		// Cache hits are the master's own work: it keeps every core.
		m := s.waitLog(`master uses (\d+) of (\d+) cores \(routes or static files answer requests without a worker\)`, 10*time.Second)
		if m[1] != strconv.Itoa(runtime.GOMAXPROCS(0)) {
			t.Errorf("master uses %s of %s cores with cache routes, want all %d the runtime found", m[1], m[2], runtime.GOMAXPROCS(0))
		}
	}

	type answer struct {
		calls  int
		xcalls string
		ctype  string
	}
	fetch := func(query string) answer {
		t.Helper()
		code, body, h := get(t, base+"/feedback"+query)
		if code != 200 {
			t.Fatalf("GET /feedback%s: %d %s", query, code, body)
		}
		var a answer
		if _, err := fmt.Sscanf(body, `{"calls": %d,`, &a.calls); err != nil {
			t.Fatalf("GET /feedback%s: body %q: %v", query, body, err)
		}
		a.xcalls, a.ctype = h.Get("X-Calls"), h.Get("Content-Type")
		return a
	}

	first := fetch("")
	stored := time.Now()
	if first.calls != 1 || first.xcalls != "1" || first.ctype != "application/json" {
		t.Fatalf("first request (a miss): %+v, want calls 1, X-Calls 1, application/json", first)
	}
	hit := fetch("")
	if hit.calls != 1 {
		t.Fatalf("second identical request called the view (calls %d): not a cache hit", hit.calls)
	}
	if hit.ctype != "application/json" {
		t.Fatalf("cache hit Content-Type %q, want the route's content_type=application/json", hit.ctype)
	}
	// The hit is answered in Go: its request line has no app, as uWSGI logs
	// a request its router answered, and log-micros (seed) is in effect.
	s.waitLog(`\[pid: \d+\|app: -1\|req: -1/2\] 127\.0\.0\.1 .* GET /feedback => generated \d+ bytes in \d+ micros \(HTTP/1\.1 200\)`, 10*time.Second)
	// The seed's log route runs when the app is called ($1 is empty: the
	// pattern has no group).
	s.waitLog(`hey i am printing`, 10*time.Second)

	other := fetch("?page=2")
	if other.calls != 2 {
		t.Fatalf("/feedback?page=2: calls %d, want 2 (another key, a miss)", other.calls)
	}
	if again := fetch("?page=2"); again.calls != 2 {
		t.Fatalf("repeated /feedback?page=2: calls %d, want 2 (a hit)", again.calls)
	}
	if again := fetch(""); again.calls != 1 {
		t.Fatalf("/feedback after /feedback?page=2: calls %d, want the cached 1", again.calls)
	}

	c, ok := cacheStats(t, sock)["mycache"]
	if !ok {
		t.Fatalf("stats has no caches[] entry for mycache")
	}
	if c["hits"] != 3.0 || c["miss"].(float64) < 2 || c["items"] != 2.0 || c["max_items"] != 300.0 || c["hash"] != "murmur2" {
		t.Fatalf("caches[mycache] = %v, want hits 3, miss >= 2, items 2, max_items 300, hash murmur2", c)
	}

	// Still a hit before expires = 10 s, a miss after it.
	if wait := time.Until(stored.Add(5 * time.Second)); wait > 0 {
		time.Sleep(wait) // the 10 s expiry is the behaviour under test
	}
	if mid := fetch(""); mid.calls != 1 && time.Since(stored) < 9*time.Second {
		t.Fatalf("/feedback %s after the store: calls %d, want still cached", time.Since(stored).Round(time.Millisecond), mid.calls)
	}
	poll(t, 20*time.Second, "cache entry expires", func() error {
		if a := fetch(""); a.calls == 1 {
			return fmt.Errorf("still cached after %s", time.Since(stored).Round(time.Millisecond))
		}
		return nil
	})
	if took := time.Since(stored); took < 9500*time.Millisecond {
		t.Fatalf("entry expired after %s, want expires=10 s", took)
	}
	if next := fetch(""); next.calls != 3 {
		t.Fatalf("request after the refetch: calls %d, want the freshly cached 3", next.calls)
	}
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// do sends req and returns the response with its body read.
func do(t testing.TB, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&b); err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp, b.String()
}

// TestRoutingActions: a few route actions and static-map, end to end
// through the Go frontend in front of Django.
func TestRoutingActions(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	static := filepath.Join(dir, "static")
	if err := os.MkdirAll(static, 0o755); err != nil {
		t.Fatal(err)
	}
	css := "body { color: red; }\n"
	writeFile(t, filepath.Join(static, "site.css"), css)
	writeFile(t, filepath.Join(static, "data.json"), `{"a": 1}`)
	s := start(t, dir, djangoArgs(repo(t), "--processes", "1",
		"--route", "^/old/(.*)$ redirect:/new/$1",
		"--route", "^/moved$ redirect-permanent:/feedback",
		"--route", "^/gone$ return:410",
		"--route", "^/feedback addheader:X-Routed: yes",
		"--route", "^/meta basicauth:Private Area,bob:secret",
		"--static-map", "/static="+static,
	)...)
	base := s.httpAddr()
	s.ready(1)

	req := func(path string, header ...string) *http.Request {
		r, err := http.NewRequest("GET", base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		return r
	}
	t.Run("redirect", func(t *testing.T) {
		resp, _ := do(t, req("/old/page"))
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/new/page" {
			t.Fatalf("%d Location %q, want 302 /new/page", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("redirect-permanent", func(t *testing.T) {
		resp, _ := do(t, req("/moved"))
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/feedback" {
			t.Fatalf("%d Location %q, want 301 /feedback", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("return", func(t *testing.T) {
		resp, body := do(t, req("/gone"))
		if resp.StatusCode != http.StatusGone || !strings.Contains(body, "Gone") {
			t.Fatalf("%d %q, want 410 with its status text", resp.StatusCode, body)
		}
	})
	t.Run("addheader", func(t *testing.T) {
		resp, body := do(t, req("/feedback"))
		if resp.StatusCode != 200 || resp.Header.Get("X-Routed") != "yes" || resp.Header.Get("X-Calls") == "" {
			t.Fatalf("%d X-Routed %q X-Calls %q body %q, want the app's answer with the added header", resp.StatusCode, resp.Header.Get("X-Routed"), resp.Header.Get("X-Calls"), body)
		}
	})
	t.Run("basicauth", func(t *testing.T) {
		resp, _ := do(t, req("/meta"))
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="Private Area"` {
			t.Fatalf("no credentials: %d WWW-Authenticate %q, want 401 Basic realm=\"Private Area\"", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		bad := req("/meta")
		bad.SetBasicAuth("bob", "wrong")
		if resp, _ := do(t, bad); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d, want 401", resp.StatusCode)
		}
		good := req("/meta")
		good.SetBasicAuth("bob", "secret")
		resp, body := do(t, good)
		if resp.StatusCode != 200 || !strings.Contains(body, `"REMOTE_USER": "bob"`) {
			t.Fatalf("right password: %d %s, want 200 with REMOTE_USER bob", resp.StatusCode, body)
		}
	})
	t.Run("static-map", func(t *testing.T) {
		before := s.countLog(`spawned uWSGI worker|Respawned`)
		tests := []struct {
			path, ctype, body string
		}{
			{"/static/site.css", "text/css", css},
			{"/static/data.json", "application/json", `{"a": 1}`},
		}
		for _, tt := range tests {
			resp, body := do(t, req(tt.path))
			if resp.StatusCode != 200 || body != tt.body || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ctype) {
				t.Fatalf("GET %s: %d %q Content-Type %q, want 200 %q %s", tt.path, resp.StatusCode, body, resp.Header.Get("Content-Type"), tt.body, tt.ctype)
			}
			lm := resp.Header.Get("Last-Modified")
			if _, err := http.ParseTime(lm); err != nil {
				t.Fatalf("GET %s: Last-Modified %q: %v", tt.path, lm, err)
			}
			resp, body = do(t, req(tt.path, "If-Modified-Since", lm))
			if resp.StatusCode != http.StatusNotModified || body != "" {
				t.Fatalf("GET %s If-Modified-Since %s: %d %q, want 304 without a body", tt.path, lm, resp.StatusCode, body)
			}
			old := time.Now().Add(-48 * time.Hour).UTC().Format(http.TimeFormat)
			if resp, _ := do(t, req(tt.path, "If-Modified-Since", old)); resp.StatusCode != 200 {
				t.Fatalf("GET %s If-Modified-Since two days ago: %d, want 200", tt.path, resp.StatusCode)
			}
		}
		if resp, _ := do(t, req("/static/missing.css")); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("missing static file: %d, want 404 (from the app)", resp.StatusCode)
		}
		// Static files are answered in Go: their request lines have no app.
		s.waitLog(`\|app: -1\|req: -1/\d+\] 127\.0\.0\.1 .* GET /static/site\.css => generated \d+ bytes`, 10*time.Second)
		if after := s.countLog(`spawned uWSGI worker|Respawned`); after != before {
			t.Fatalf("worker spawned while serving static files")
		}
	})
}
