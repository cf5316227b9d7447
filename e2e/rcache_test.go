package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rcacheApp exposes the uwsgi cache API of a replicated cache over HTTP:
// /set/KEY/VALUE, /get/KEY, /inc/KEY, /num/KEY, /del/KEY. Errors are the body of a
// 500 so the test can show them.
const rcacheApp = `import uwsgi

def application(environ, start_response):
    parts = environ['PATH_INFO'].strip('/').split('/')
    op, key = parts[0], parts[1]
    try:
        if op == 'set':
            res = uwsgi.cache_update(key, parts[2].encode(), 0, 'sessions')
            body = b'ok' if res else b'refused'
        elif op == 'get':
            v = uwsgi.cache_get(key, 'sessions')
            body = b'<none>' if v is None else v
        elif op == 'inc':
            body = b'ok' if uwsgi.cache_inc(key, 1, 0, 'sessions') else b'refused'
        elif op == 'num':
            body = str(uwsgi.cache_num(key, 'sessions')).encode()
        elif op == 'del':
            body = b'ok' if uwsgi.cache_del(key, 'sessions') else b'missing'
        else:
            body = b'unknown op'
        status = '200 OK'
    except Exception as e:
        status, body = '500 Internal Server Error', repr(e).encode()
    start_response(status, [('Content-Type', 'text/plain')])
    return [body]
`

// TestReplicatedCache runs three gouwsgi processes with a replicated
// cache: the Python API writes on one node and reads on the others, and
// gouwsgictl reads linearizably through a follower.
func TestReplicatedCache(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	app := filepath.Join(dir, "app.py")
	if err := os.WriteFile(app, []byte(rcacheApp), 0o644); err != nil {
		t.Fatal(err)
	}
	taken := map[int]bool{}
	ports := []int{legionPorts(t, taken), legionPorts(t, taken), legionPorts(t, taken)}
	type rnode struct {
		s    *server
		base string
		ctl  ctl
	}
	nodes := make([]*rnode, 3)
	for i := range nodes {
		ini := []string{
			"[uwsgi]", "wsgi-file = " + app, "home = /usr", "master = true", "processes = 1",
			"http = 127.0.0.1:0", "admin = 127.0.0.1:0", "disable-logging = true",
			"cache2 = name=sessions,items=1000,blocksize=256,replicate=1",
			"cache2 = name=local,items=10",
			fmt.Sprintf("legion = web 127.0.0.1:%d %d aes256:e2e-secret", ports[i], 10+i),
			"legion-data-dir = " + filepath.Join(dir, fmt.Sprintf("n%d", i)),
		}
		for j := range nodes {
			if j != i {
				ini = append(ini, fmt.Sprintf("legion-node = web 127.0.0.1:%d", ports[j]))
			}
		}
		path := filepath.Join(dir, fmt.Sprintf("n%d.ini", i))
		if err := os.WriteFile(path, []byte(strings.Join(ini, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		nodes[i] = &rnode{s: start(t, dir, "--ini", path)}
	}
	for _, n := range nodes {
		n.base = n.s.httpAddr()
		n.s.ready(1)
		n.ctl = newCtl(t, n.s.adminAddr())
	}
	call := func(n *rnode, path string) (int, string) {
		code, body, _ := get(t, n.base+path)
		return code, body
	}
	// The first write waits for the cluster to form (no leader yet: the
	// write is held, then refused with a clear error; retry until formed).
	poll(t, 60*time.Second, "a write through the Python API", func() error {
		if code, body := call(nodes[0], "/set/user/alice"); code != 200 || body != "ok" {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	for i, n := range nodes[1:] {
		poll(t, 10*time.Second, fmt.Sprintf("the write on node %d", i+1), func() error {
			if code, body := call(n, "/get/user"); code != 200 || body != "alice" {
				return fmt.Errorf("%d %s", code, body)
			}
			return nil
		})
	}
	// Counters from every node: each increment counted once.
	for _, n := range nodes {
		if code, body := call(n, "/inc/hits"); code != 200 || body != "ok" {
			t.Fatalf("inc: %d %s", code, body)
		}
	}
	for _, n := range nodes {
		poll(t, 10*time.Second, "the counter on every node", func() error {
			if code, body := call(n, "/num/hits"); code != 200 || body != "3" {
				return fmt.Errorf("hits = %d %s, want 3", code, body)
			}
			return nil
		})
		if out := n.ctl.ok(t, "cache", "get", "--cache", "sessions", "--linearizable", "user"); !strings.Contains(out, "alice") {
			t.Fatalf("linearizable get through gouwsgictl: %q", out)
		}
	}
	// gouwsgictl writes on node 2; the app on node 0 reads it.
	nodes[2].ctl.ok(t, "cache", "set", "--cache", "sessions", "from-ctl", "bob")
	poll(t, 10*time.Second, "the ctl write through the app on node 0", func() error {
		if code, body := call(nodes[0], "/get/from-ctl"); code != 200 || body != "bob" {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	keys := nodes[1].ctl.ok(t, "cache", "keys", "--cache", "sessions", "--linearizable")
	for _, k := range []string{"user", "hits", "from-ctl"} {
		if !strings.Contains(keys, k) {
			t.Errorf("keys on node 1 %q miss %s", keys, k)
		}
	}
	stats := nodes[1].ctl.ok(t, "cache", "stats", "sessions")
	if !strings.Contains(stats, "sessions") || !strings.Contains(strings.ToLower(stats), "replicated") {
		t.Errorf("stats of a replicated cache: %q", stats)
	}
	t.Logf("gouwsgictl cache stats sessions on node 1:\n%s", stats)
	nodes[0].ctl.fails(t, 1, []string{"cache", "get", "--cache", "local", "--linearizable", "x"}, "linearizable reads need a replicated cache")
}
