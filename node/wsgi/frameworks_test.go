package wsgi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gouwsgi/gouwsgi/node/wire"
)

// TestDjango serves the minimal project in testdata/django through the
// protocol, in both spawning modes.
func TestDjango(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			spec, _ := appSpec(t, m.lazy, 1)
			spec.Chdir = testdata(t, "django")
			spec.Module = "mysite.wsgi:application"
			p := spawn(t, newSpawner(t, spec), 1)
			c := newClient(p.Data[0])

			r := c.do(t, requestVars("GET", "/hello/"), nil)
			wantResponse(t, r, "200 OK", "Hello from Django")
			if v := r.header.Value("Content-Type"); v != "text/plain" {
				t.Errorf("Content-Type = %q", v)
			}

			body := []byte(strings.Repeat("django body ", 20000))
			r = c.do(t, requestVars("POST", "/echo/?q=x", wire.Var{Key: "UWSGI_SCHEME", Value: "https"}), body)
			var got struct {
				Method, SHA256, Q string
				Len               int
				Secure            bool
			}
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("echo response %q: %v", r.body, err)
			}
			sum := sha256.Sum256(body)
			if got.Method != "POST" || got.Len != len(body) || got.SHA256 != hex.EncodeToString(sum[:]) || got.Q != "x" || !got.Secure {
				t.Errorf("echo = %+v", got)
			}

			r = c.do(t, requestVars("GET", "/missing/"), nil)
			if !strings.HasPrefix(r.status, "404") {
				t.Errorf("missing page: status %q", r.status)
			}
			r = c.do(t, requestVars("GET", "/boom/"), nil)
			if !strings.HasPrefix(r.status, "500") {
				t.Errorf("failing view: status %q", r.status)
			}
			wantResponse(t, c.do(t, requestVars("GET", "/hello/"), nil), "200 OK", "Hello from Django")
		})
	}
}

// TestFlask serves testdata/flask/flaskapp.py with the callable "app".
func TestFlask(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			spec, _ := appSpec(t, m.lazy, 2)
			spec.Chdir = ""
			spec.Module = ""
			spec.WSGIFile = testdata(t, "flask", "flaskapp.py")
			spec.Callable = "app"
			p := spawn(t, newSpawner(t, spec), 1)
			c := newClient(p.Data[1])

			wantResponse(t, c.do(t, requestVars("GET", "/"), nil), "200 OK", "Hello from Flask")
			r := c.do(t, requestVars("POST", "/echo?a=1", wire.Var{Key: "CONTENT_TYPE", Value: "application/json"}),
				[]byte(`{"n": [1, 2, 3]}`))
			var got struct {
				Got  map[string][]int
				Path string
				Args map[string]string
			}
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("echo response %q: %v", r.body, err)
			}
			if len(got.Got["n"]) != 3 || got.Path != "/echo" || got.Args["a"] != "1" {
				t.Errorf("echo = %+v", got)
			}
			r = c.do(t, requestVars("GET", "/nope"), nil)
			if !strings.HasPrefix(r.status, "404") {
				t.Errorf("missing page: status %q", r.status)
			}
		})
	}
}
