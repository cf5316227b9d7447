package e2e

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"
)

// cacheApp exercises the uwsgi module's cache API inside a real worker and
// answers with what each call returned.
const cacheApp = `import json, uwsgi

def application(environ, start_response):
    r = {}
    r["set"] = uwsgi.cache_set("k", b"v1")
    r["set_again"] = uwsgi.cache_set("k", b"v2")
    r["get"] = (uwsgi.cache_get("k") or b"").decode()
    r["update"] = uwsgi.cache_update("k", b"v3", 60)
    r["get_updated"] = (uwsgi.cache_get("k") or b"").decode()
    r["exists"] = uwsgi.cache_exists("k")
    r["missing"] = uwsgi.cache_get("nope")
    r["inc"] = uwsgi.cache_inc("n", 5)
    r["inc2"] = uwsgi.cache_inc("n")
    r["mul"] = uwsgi.cache_mul("n", 3)
    r["num"] = uwsgi.cache_num("n")
    r["keys"] = sorted(k.decode() if isinstance(k, bytes) else k for k in uwsgi.cache_keys())
    r["other_cache"] = uwsgi.cache_update("x", b"y", 0, "second")
    r["other_get"] = (uwsgi.cache_get("x", "second") or b"").decode()
    r["del"] = uwsgi.cache_del("k")
    r["after_del"] = uwsgi.cache_get("k")
    r["too_large"] = uwsgi.cache_update("big", b"z" * 5000)
    r["clear"] = uwsgi.cache_clear()
    r["after_clear"] = uwsgi.cache_keys()
    body = json.dumps(r).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
`

// TestPythonCacheAPI: uwsgi.cache_* from a worker against local cache2
// caches, with uWSGI's return values (add-only set, None on misses and
// failures), the cache name argument, and a value over blocksize refused
// (and logged) rather than dropped silently.
func TestPythonCacheAPI(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "app.py"), cacheApp)
	s := start(t, dir, "--wsgi-file", "app.py", "--http", "127.0.0.1:0", "--master",
		"--cache2", "name=first,items=100,blocksize=4096", "--cache2", "name=second,items=10")
	base := s.httpAddr()
	s.ready(1)
	code, body, _ := get(t, base+"/")
	if code != 200 {
		t.Fatalf("GET: %d %s", code, body)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	want := map[string]any{
		"set": true, "set_again": nil, "get": "v1", "update": true, "get_updated": "v3", "exists": true,
		"missing": nil, "inc": true, "inc2": true, "mul": true, "num": float64(18),
		"keys": []any{"k", "n"}, "other_cache": true, "other_get": "y", "del": true, "after_del": nil,
		"too_large": nil, "clear": true, "after_clear": []any{},
	}
	for k, w := range want {
		gotJSON, _ := json.Marshal(got[k])
		wantJSON, _ := json.Marshal(w)
		if string(gotJSON) != string(wantJSON) {
			t.Errorf("%s = %s, want %s", k, gotJSON, wantJSON)
		}
	}
	s.waitLog(`cache_update failed: .*too large`, 10*time.Second)
}
