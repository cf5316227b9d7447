package e2e

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// uwsgiPacket encodes vars as a uwsgi request packet.
func uwsgiPacket(vars ...string) []byte {
	var block []byte
	for _, s := range vars {
		block = binary.LittleEndian.AppendUint16(block, uint16(len(s)))
		block = append(block, s...)
	}
	out := []byte{0, byte(len(block)), byte(len(block) >> 8), 0}
	return append(out, block...)
}

// uwsgiRequest sends raw bytes to a uwsgi socket and returns what comes
// back before the server closes the connection.
func uwsgiRequest(t testing.TB, sock string, raw []byte, closeWrite bool) string {
	t.Helper()
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", sock, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	if closeWrite {
		_ = c.(*net.UnixConn).CloseWrite()
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

// processFDs counts the open file descriptors of pid.
func processFDs(t testing.TB, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// goroutines reads go_goroutines from the node's Prometheus endpoint.
func goroutines(t testing.TB, metricsURL string) int {
	t.Helper()
	_, body, _ := get(t, metricsURL)
	m := regexp.MustCompile(`(?m)^go_goroutines (\d+)`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no go_goroutines in metrics:\n%s", body)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestBadInput throws malformed and truncated uwsgi packets, oversized
// headers, clients that vanish mid-body and garbage at both frontends.
// Each gets a clear error or is closed, the server keeps serving, and no
// goroutine or file descriptor leaks.
func TestBadInput(t *testing.T) {
	requireE2E(t)
	root := repo(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "app.sock")
	s := start(t, dir, "--chdir", filepath.Join(root, "examples/django"), "--module", "mysite.wsgi:application",
		"--master", "--processes", "2", "--socket", sock, "--http", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
		"--socket-timeout", "2", "--http-timeout", "3")
	base := s.httpAddr()
	metrics := "http://" + s.waitLog(`Prometheus metrics on http://(\S+)/metrics`, 30*time.Second)[1] + "/metrics"
	s.ready(2)
	pid := s.cmd.Process.Pid

	good := uwsgiPacket("REQUEST_METHOD", "GET", "REQUEST_URI", "/", "PATH_INFO", "/", "SERVER_PROTOCOL", "HTTP/1.1", "SERVER_NAME", "x", "SERVER_PORT", "80")
	if out := uwsgiRequest(t, sock, good, false); !strings.HasPrefix(out, "HTTP/1.1 200") || !strings.Contains(out, "Hello World") {
		t.Fatalf("valid uwsgi packet: %q", out)
	}
	// Warm up the HTTP path so its pooled goroutines exist before the baseline.
	get(t, base+"/")
	baseFDs, baseG := processFDs(t, pid), goroutines(t, metrics)

	bad := []struct {
		name string
		raw  []byte
		log  string
	}{
		{"truncated header", []byte{0, 10}, `uwsgi request from .* refused: .*truncated`},
		{"block larger than buffer-size", []byte{0, 0xff, 0xff, 0}, `invalid request block size: 65535 \(max 4096\)`},
		{"truncated vars", append([]byte{0, 20, 0, 0}, 5, 0, 'R', 'E'), `uwsgi request from .* refused: .*truncated`},
		{"empty key", append([]byte{0, 4, 0, 0}, 0, 0, 0, 0), `empty key`},
		{"HTTP on the uwsgi socket", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), `invalid request block size: \d+ \(max 4096\).*http-socket`},
		{"unknown modifier1", []byte{111, 0, 0, 0}, `unsupported modifier1 111`},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			out := uwsgiRequest(t, sock, b.raw, true)
			if out != "" {
				t.Errorf("got a response %q, want the connection closed", out)
			}
			s.waitLog(b.log, 10*time.Second)
		})
	}

	t.Run("body cut mid-way", func(t *testing.T) {
		head := uwsgiPacket("REQUEST_METHOD", "POST", "REQUEST_URI", "/upload", "PATH_INFO", "/upload", "SERVER_PROTOCOL", "HTTP/1.1",
			"SERVER_NAME", "x", "SERVER_PORT", "80", "CONTENT_LENGTH", "1000000", "CONTENT_TYPE", "application/octet-stream")
		uwsgiRequest(t, sock, append(head, make([]byte, 100000)...), true)
		c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n%s", strings.Repeat("y", 50000))
		c.Close()
	})

	t.Run("oversized HTTP head", func(t *testing.T) {
		c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 8000))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if !strings.Contains(line, "431") {
			t.Fatalf("status line %q, want 431", line)
		}
		s.waitLog(`invalid request block size: \d+ \(max 4096\)\.\.\.skip \(GET / from 127\.0\.0\.1; raise buffer-size\)`, 5*time.Second)
	})

	t.Run("garbage on the HTTP port", func(t *testing.T) {
		c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte("\x00\x01\x02 this is not http\r\n\r\n"))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if !strings.Contains(line, "400") {
			t.Fatalf("status line %q, want 400", line)
		}
	})

	t.Run("slow client is cut", func(t *testing.T) {
		c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n")) // never finishes the head
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		start := time.Now()
		_, err = io.ReadAll(c)
		if err != nil {
			t.Fatalf("connection not closed by the server: %v", err)
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("slow client held the connection %s", time.Since(start))
		}
	})

	// Still serving on both frontends.
	if code, body, _ := get(t, base+"/"); code != 200 || body != "Hello World" {
		t.Fatalf("after bad input: %d %q", code, body)
	}
	if out := uwsgiRequest(t, sock, good, false); !strings.HasPrefix(out, "HTTP/1.1 200") {
		t.Fatalf("after bad input, uwsgi: %q", out)
	}
	// Nothing leaked: fds and goroutines come back to the baseline (a few
	// of slack for keep-alive connections the test client holds).
	poll(t, 20*time.Second, "fds and goroutines back to baseline", func() error {
		client.CloseIdleConnections()
		fds, g := processFDs(t, pid), goroutines(t, metrics)
		if fds > baseFDs+2 || g > baseG+4 {
			return fmt.Errorf("fds %d (baseline %d), goroutines %d (baseline %d)", fds, baseFDs, g, baseG)
		}
		return nil
	})
}
