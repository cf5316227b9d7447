package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitFile waits until the file at path matches re and returns the
// submatches of the first match (logto and daemonize write there, not to
// the server's stderr).
func waitFile(t testing.TB, path, re string, timeout time.Duration) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var m []string
	poll(t, timeout, fmt.Sprintf("%s matching %q", path, re), func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if m = rx.FindStringSubmatch(string(b)); m == nil {
			return fmt.Errorf("no match yet; file:\n%s", b)
		}
		return nil
	})
	return m
}

// feedback fetches /feedback and returns the serving worker's pid.
func feedback(t testing.TB, base, query string) (pid, calls int, contentType string) {
	t.Helper()
	code, body, h := get(t, base+"/feedback"+query)
	if code != 200 {
		t.Fatalf("GET /feedback%s: %d %s", query, code, body)
	}
	var fb struct{ PID, Calls int }
	if err := json.Unmarshal([]byte(body), &fb); err != nil {
		t.Fatalf("GET /feedback%s: body %q: %v", query, body, err)
	}
	return fb.PID, fb.Calls, h.Get("Content-Type")
}

// TestRequestLogLines: the request line in its forms (default, logformat
// with uWSGI's variables, log-micros, memory-report) and disable-logging,
// which drops request lines but keeps the server's own.
func TestRequestLogLines(t *testing.T) {
	requireE2E(t)
	defaultLine := `\[pid: (\d+)\|app: 0\|req: \d+/\d+\] 127\.0\.0\.1 \(\) \{\d+ vars in \d+ bytes\} \[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] GET /feedback\?x=1 => generated (\d+) bytes in \d+ %s \(HTTP/1\.1 200\) \d+ headers in \d+ bytes \(1 switches on core 0\)`
	tests := []struct {
		name  string
		extra []string
		check func(t *testing.T, s *server, pid int)
	}{
		{"default line", nil, func(t *testing.T, s *server, pid int) {
			m := s.waitLog(fmt.Sprintf(defaultLine, "msecs"), 10*time.Second)
			if m[1] != strconv.Itoa(pid) {
				t.Errorf("request line pid %s, want the worker's %d", m[1], pid)
			}
		}},
		{"log-micros", []string{"--log-micros"}, func(t *testing.T, s *server, pid int) {
			s.waitLog(fmt.Sprintf(defaultLine, "micros"), 10*time.Second)
		}},
		{"memory-report", []string{"--memory-report"}, func(t *testing.T, s *server, pid int) {
			m := s.waitLog(`\{address space usage: (\d+) bytes/(\d+)MB\} \{rss usage: (\d+) bytes/(\d+)MB\} `+fmt.Sprintf(defaultLine, "msecs"), 10*time.Second)
			vsz, _ := strconv.ParseUint(m[1], 10, 64)
			vszM, _ := strconv.ParseUint(m[2], 10, 64)
			rss, _ := strconv.ParseUint(m[3], 10, 64)
			rssM, _ := strconv.ParseUint(m[4], 10, 64)
			// A Django worker is well above 10 MB resident.
			if rss < 10<<20 || vsz < rss || vszM != vsz>>20 || rssM != rss>>20 {
				t.Errorf("memory-report figures: vsz %d (%d MB) rss %d (%d MB)", vsz, vszM, rss, rssM)
			}
			if m[5] != strconv.Itoa(pid) {
				t.Errorf("request line pid %s, want the worker's %d", m[5], pid)
			}
		}},
		{"logformat", []string{"--logformat", "LF %(method) %(uri) %(proto) %(status) %(msecs) %(size) %(addr) %(pid) %(wid)"}, func(t *testing.T, s *server, pid int) {
			m := s.waitLog(`(?m)^LF GET /feedback\?x=1 HTTP/1\.1 200 (\d+) (\d+) 127\.0\.0\.1 (\d+) (\d+)$`, 10*time.Second)
			size, _ := strconv.Atoi(m[2])
			// As in uWSGI, %(size) is the whole response: the status line,
			// the app's headers (Content-Type and X-Calls at least), the
			// blank line and the body.
			body := len(fmt.Sprintf(`{"calls": 1, "pid": %d}`, pid))
			minHead := len("HTTP/1.1 200 OK\r\n") + len("Content-Type: application/json\r\n") + len("X-Calls: 1\r\n") + len("\r\n")
			if size < body+minHead {
				t.Errorf("%%(size) = %d, want at least %d (head %d + body %d): the response head is undercounted", size, body+minHead, minHead, body)
			}
			if m[3] != strconv.Itoa(pid) || m[4] != "1" {
				t.Errorf("%%(pid) %%(wid) = %s %s, want %d 1", m[3], m[4], pid)
			}
		}},
		{"disable-logging", []string{"--disable-logging"}, func(t *testing.T, s *server, pid int) {
			// Every request line would be written before the frontend
			// finishes its shutdown, that is before "goodbye".
			s.stop(syscall.SIGTERM, 30*time.Second)
			s.waitLog(`goodbye to uWSGI\.`, 5*time.Second)
			if n := s.countLog(`GET /feedback`); n != 0 {
				t.Errorf("%d request lines with disable-logging", n)
			}
			for _, server := range []string{`spawned uWSGI worker 1 \(pid: \d+`, `HTTP server bound on`, `graceful shutdown triggered|SIGINT/SIGTERM received`} {
				if s.countLog(server) == 0 {
					t.Errorf("server line %q missing with disable-logging", server)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, t.TempDir(), djangoArgs(repo(t), append([]string{"--processes", "1"}, tt.extra...)...)...)
			base := s.httpAddr()
			s.ready(1)
			pid, _, _ := feedback(t, base, "?x=1")
			tt.check(t, s, pid)
		})
	}
}

// TestLogto: logto sends every line (server and request lines) to the
// file; without log-truncate the file is appended to, with it the old
// content is gone.
func TestLogto(t *testing.T) {
	requireE2E(t)
	tests := []struct {
		name     string
		truncate bool
	}{
		{"append", false},
		{"log-truncate", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			logfile := filepath.Join(dir, "app.log")
			writeFile(t, logfile, "OLD LINE FROM A PREVIOUS RUN\n")
			args := djangoArgs(repo(t), "--processes", "1", "--logto", logfile)
			if tt.truncate {
				args = append(args, "--log-truncate")
			}
			s := start(t, dir, args...)
			m := waitFile(t, logfile, `HTTP server bound on (\S+)`, 30*time.Second)
			base := "http://" + m[1]
			waitFile(t, logfile, `spawned uWSGI worker 1 \(pid: \d+`, 60*time.Second)
			pid, _, _ := feedback(t, base, "?logto=1")
			waitFile(t, logfile, `\[pid: `+strconv.Itoa(pid)+`\|app: 0\|req: 1/1\] 127\.0\.0\.1 .* GET /feedback\?logto=1 => generated`, 10*time.Second)

			b, err := os.ReadFile(logfile)
			if err != nil {
				t.Fatal(err)
			}
			old := strings.Contains(string(b), "OLD LINE FROM A PREVIOUS RUN")
			if old == tt.truncate {
				t.Errorf("old content kept = %v with log-truncate = %v:\n%s", old, tt.truncate, b)
			}
			if strings.Contains(s.logs(), "GET /feedback") {
				t.Errorf("request line went to stderr too with logto:\n%s", s.logs())
			}
		})
	}
}

// processGone reports whether pid has exited (a zombie counts as gone:
// its parent, init, may not have reaped it yet).
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

// TestDaemonize: the command returns at once; the detached server writes
// its log file, its pidfile holds its pid, it serves, and it stops on
// SIGTERM sent to that pid.
func TestDaemonize(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	logfile := filepath.Join(dir, "daemon.log")
	pidfile := filepath.Join(dir, "daemon.pid")
	began := time.Now()
	s := start(t, dir, djangoArgs(repo(t), "--processes", "1", "--daemonize", logfile, "--pidfile", pidfile)...)
	if err := s.wait(10 * time.Second); err != nil {
		t.Fatalf("gouwsgi --daemonize exited with %v, want 0", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("gouwsgi --daemonize took %s to return, want at once", took)
	}
	var pid int
	poll(t, 30*time.Second, "pidfile written", func() error {
		b, err := os.ReadFile(pidfile)
		if err != nil {
			return err
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	})
	t.Cleanup(func() {
		if !processGone(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if pid == s.cmd.Process.Pid {
		t.Fatalf("pidfile holds the pid of the command that returned (%d), not the daemon's", pid)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatalf("daemon pid %d from the pidfile is not running: %v", pid, err)
	}
	// Detached: the daemon leads its own session (field 6 is the session).
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(fields) < 4 || fields[3] != strconv.Itoa(pid) {
		t.Errorf("daemon %d is not a session leader: stat %q", pid, b)
	}
	m := waitFile(t, logfile, `HTTP server bound on (\S+)`, 30*time.Second)
	waitFile(t, logfile, `spawned uWSGI worker 1 \(pid: \d+`, 60*time.Second)
	base := "http://" + m[1]
	wpid, _, _ := feedback(t, base, "?daemon=1")
	waitFile(t, logfile, `\[pid: `+strconv.Itoa(wpid)+`\|.* GET /feedback\?daemon=1 => generated`, 10*time.Second)
	waitFile(t, logfile, `gouwsgi master ready \(pid: `+strconv.Itoa(pid)+`\)`, time.Second)

	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to daemon %d: %v", pid, err)
	}
	poll(t, 30*time.Second, "daemon exits on SIGTERM", func() error {
		if !processGone(pid) {
			return errors.New("still running")
		}
		return nil
	})
	waitFile(t, logfile, `goodbye to uWSGI\.`, 5*time.Second)
}
