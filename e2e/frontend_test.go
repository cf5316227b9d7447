package e2e

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHTTPSAndHTTP2: https = addr,cert,key terminates TLS in gouwsgi and
// speaks HTTP/2 to clients that offer it; the app sees HTTPS.
func TestHTTPSAndHTTP2(t *testing.T) {
	requireE2E(t)
	root := repo(t)
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	s := start(t, dir, "--chdir", filepath.Join(root, "examples/django"), "--module", "mysite.wsgi:application",
		"--https", "127.0.0.1:0,"+cert+","+key, "--master", "--processes", "1")
	addr := s.waitLog(`HTTPS server bound on (\S+)`, 30*time.Second)[1]
	s.ready(1)
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	c := &http.Client{Timeout: 20 * time.Second, Transport: tr}
	resp, err := c.Get("https://" + addr + "/meta")
	if err != nil {
		t.Fatalf("GET over TLS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2", resp.Proto)
	}
	for _, want := range []string{`"HTTPS": "on"`, `"wsgi.url_scheme": "https"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("request.META lacks %s: %s", want, body)
		}
	}
	// HTTP/1.1 clients still work.
	c1 := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	resp, err = c1.Get("https://" + addr + "/")
	if err != nil {
		t.Fatalf("GET over TLS/1.1: %v", err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.StatusCode != 200 {
		t.Errorf("HTTP/1.1 over TLS: %s %d", resp.Proto, resp.StatusCode)
	}
}

// TestListenAboveSomaxconn: a listen backlog above net.core.somaxconn is
// said clearly at start (uWSGI refuses to start; gouwsgi runs with the
// kernel's cap and says so).
func TestListenAboveSomaxconn(t *testing.T) {
	requireE2E(t)
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		t.Skip("no /proc/sys/net/core/somaxconn")
	}
	max, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	root := repo(t)
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "app.pid")
	s := start(t, dir, "--wsgi-file", filepath.Join(root, "examples/hello/app.py"), "--http", "127.0.0.1:0",
		"--listen", strconv.Itoa(max*2), "--pidfile", pidfile, "--vacuum")
	s.waitLog(`listen queue size \d+ for 127\.0\.0\.1:0 is above the kernel's net\.core\.somaxconn \(`+strconv.Itoa(max)+`\)`, 30*time.Second)
	base := s.httpAddr()
	s.ready(1)
	if code, _, _ := get(t, base+"/"); code != 200 {
		t.Fatalf("GET: %d", code)
	}
	pid, err := os.ReadFile(pidfile)
	if err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(s.cmd.Process.Pid) {
		t.Fatalf("pidfile holds %q (%v), want %d", pid, err, s.cmd.Process.Pid)
	}
	s.stop(syscall.SIGTERM, 30*time.Second)
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Fatalf("vacuum left the pidfile (%v)", err)
	}
}

// TestPostBuffering: with post-buffering the body is read before a worker
// sees it (small ones in memory, large ones spooled to a file) and a
// chunked upload gets a CONTENT_LENGTH, so Django reads it whole.
func TestPostBuffering(t *testing.T) {
	requireE2E(t)
	root := repo(t)
	s := start(t, t.TempDir(), "--chdir", filepath.Join(root, "examples/django"), "--module", "mysite.wsgi:application",
		"--http", "127.0.0.1:0", "--master", "--processes", "1", "--post-buffering", "65536")
	base := s.httpAddr()
	s.ready(1)
	for _, size := range []int{1000, 3 << 20} {
		data := []byte(strings.Repeat("z", size))
		chunkedUpload(t, base, data)
	}
}
