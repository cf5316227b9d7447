package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// appCase is one real app the frontends are checked against.
type appCase struct {
	name string
	args []string // app options, relative to the repo root
}

func apps(root string) []appCase {
	return []appCase{
		// The seed's interactive command, as written (port 0 instead of
		// :9090 so parallel runs cannot collide).
		{"django-seed-command", []string{"--chdir", filepath.Join(root, "examples/django"), "--file", "mysite/wsgi.py", "--callable", "application", "--master", "--processes", "1", "--harakiri", "10"}},
		{"django-module-lazy", []string{"--chdir", filepath.Join(root, "examples/django"), "--module", "mysite.wsgi:application", "--master", "--processes", "2", "--lazy-apps"}},
		{"flask-threads", []string{"--wsgi-file", filepath.Join(root, "examples/flask/app.py"), "--callable", "app", "--master", "--processes", "2", "--threads", "2"}},
	}
}

// TestServeApps runs the Django project and the Flask app through the HTTP
// frontend: GET, a large streamed POST, a streaming response, latin-1
// headers, 404, and an app that raises.
func TestServeApps(t *testing.T) {
	requireE2E(t)
	root := repo(t)
	for _, app := range apps(root) {
		t.Run(app.name, func(t *testing.T) {
			s := start(t, t.TempDir(), append(app.args, "--http", "127.0.0.1:0")...)
			base := s.httpAddr()
			s.ready(1)

			code, body, _ := get(t, base+"/")
			if code != 200 || !strings.Contains(body, "Hello World") {
				t.Fatalf("GET /: %d %q", code, body)
			}

			// 8 MiB upload: the view hashes it in chunks.
			payload := make([]byte, 8<<20)
			_, _ = rand.Read(payload)
			sum := sha256.Sum256(payload)
			resp, err := client.Post(base+"/upload", "application/octet-stream", bytes.NewReader(payload))
			if err != nil {
				t.Fatalf("POST /upload: %v", err)
			}
			var up struct {
				SHA256 string `json:"sha256"`
				Length int    `json:"length"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&up); err != nil {
				t.Fatalf("POST /upload: decode: %v", err)
			}
			resp.Body.Close()
			if up.Length != len(payload) || up.SHA256 != hex.EncodeToString(sum[:]) {
				t.Fatalf("POST /upload: app saw %d bytes %s, sent %d %x", up.Length, up.SHA256, len(payload), sum)
			}

			// A chunked upload of unknown length streams too; Werkzeug reads
			// it (wsgi.input_terminated), Django needs CONTENT_LENGTH.
			if strings.HasPrefix(app.name, "flask") {
				chunkedUpload(t, base, payload[:1<<20])
			}

			code, body, _ = get(t, base+"/stream")
			if code != 200 || body != "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n" {
				t.Fatalf("GET /stream: %d %q", code, body)
			}

			code, body, hdr := get(t, base+"/unicode")
			if code != 200 || !strings.Contains(body, "héllo wörld ✓ 你好") {
				t.Fatalf("GET /unicode: %d %q", code, body)
			}
			// PEP 3333 headers are latin-1 on the wire.
			if got := hdr.Get("X-Latin"); got != "caf\xe9 cr\xe8me" {
				t.Fatalf("X-Latin header: %q, want latin-1 bytes of café crème", got)
			}

			if code, _, _ = get(t, base+"/no/such/page"); code != 404 {
				t.Fatalf("GET /no/such/page: %d, want 404", code)
			}

			code, _, _ = get(t, base+"/boom")
			if code != 500 {
				t.Fatalf("GET /boom: %d, want 500", code)
			}
			s.waitLog(`RuntimeError: boom: raised on purpose`, 10*time.Second)
			for i := 0; i < 5; i++ {
				if code, _, _ = get(t, base+"/"); code != 200 {
					t.Fatalf("GET / after the exception: %d", code)
				}
			}
			// The request log has uWSGI's default line for it.
			s.waitLog(`\[pid: \d+\|app: 0\|req: \d+/\d+\] 127\.0\.0\.1 \(\) \{\d+ vars in \d+ bytes\} \[.*\] GET /boom => generated \d+ bytes in \d+ msecs \(HTTP/1\.1 500\)`, 5*time.Second)
		})
	}
}

// TestNeedApp: an app that does not import stops the start with the
// Python traceback and uWSGI's exit code 22.
func TestNeedApp(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "broken.py"), "import no_such_module_anywhere\n")
	s := start(t, dir, "--wsgi-file", "broken.py", "--http", "127.0.0.1:0", "--need-app", "--master")
	err := s.wait(60 * time.Second)
	if s.cmd.ProcessState.ExitCode() != 22 {
		t.Fatalf("exit: %v (code %d), want 22", err, s.cmd.ProcessState.ExitCode())
	}
	logs := s.logs()
	for _, want := range []string{"ModuleNotFoundError: No module named 'no_such_module_anywhere'", "Traceback", "GAME OVER"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

// TestUnknownOptions: underscores are read as dashes (said once), unknown
// keys are warnings, and strict makes them errors.
func TestUnknownOptions(t *testing.T) {
	requireE2E(t)
	root := repo(t)
	dir := t.TempDir()
	ini := filepath.Join(dir, "app.ini")
	writeFile(t, ini, fmt.Sprintf("[uwsgi]\nwsgi-file = %s\nhttp = 127.0.0.1:0\ncpu_affinity = 1\nmax_requests = 1000\nmisspeled-option = 3\n", filepath.Join(root, "examples/hello/app.py")))
	s := start(t, dir, "--ini", ini)
	s.httpAddr()
	logs := s.logs()
	for _, want := range []string{"cpu_affinity", "max_requests", "misspeled-option"} {
		if !strings.Contains(logs, want) {
			t.Errorf("start-up log does not name %q:\n%s", want, logs)
		}
	}
	strict := start(t, dir, "--ini", ini, "--strict")
	if err := strict.wait(30 * time.Second); err == nil {
		t.Fatalf("strict start with an unknown key succeeded")
	}
	if !strings.Contains(strict.logs(), "misspeled-option") {
		t.Fatalf("strict error does not name the key:\n%s", strict.logs())
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// chunkedUpload POSTs data with chunked transfer encoding and checks the
// app read all of it.
func chunkedUpload(t *testing.T, base string, data []byte) {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < len(data); i += 1 << 16 {
			_, _ = pw.Write(data[i:min(i+1<<16, len(data))])
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", base+"/upload", pr)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("chunked POST: %v", err)
	}
	defer resp.Body.Close()
	var up struct{ Length int }
	if err := json.NewDecoder(resp.Body).Decode(&up); err != nil || resp.StatusCode != 200 || up.Length != len(data) {
		t.Fatalf("chunked POST: status %d, app read %d of %d bytes (%v)", resp.StatusCode, up.Length, len(data), err)
	}
}
