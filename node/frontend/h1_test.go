package frontend

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/node/request"
)

// echoHandler answers with the request's vars (sorted, one per line) and
// body; paths ask for special responses.
func echoHandler(w http.ResponseWriter, r *request.Request) {
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	switch r.Vars.Value("PATH_INFO") {
	case "/stream":
		w.Header().Set("X-Stream", "1")
		_, _ = w.Write([]byte("part1,"))
		w.(http.Flusher).Flush()
		_, _ = w.Write([]byte("part2"))
		return
	case "/nocontent":
		w.WriteHeader(http.StatusNoContent)
		return
	case "/inject":
		w.Header().Set("X-Evil", "a\r\nSet-Cookie: x=1")
		_, _ = w.Write([]byte("ok"))
		return
	case "/hopbyhop":
		w.Header().Set("Connection", "close")
		w.Header().Set("Transfer-Encoding", "chunked")
		w.Header().Set("Content-Length", "bogus")
		_, _ = w.Write([]byte("hop"))
		return
	case "/ignorebody":
		_, _ = w.Write([]byte("ignored"))
		return
	case "/abort":
		_, _ = w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		r.Log.Abort = true
		return
	}
	if r.Vars.Value("PATH_INFO") == "/ignorebody" {
		return
	}
	lines := make([]string, 0, len(r.Vars))
	for _, v := range r.Vars {
		lines = append(lines, v.Key+"="+v.Value)
	}
	sort.Strings(lines)
	fmt.Fprintf(w, "%s\nbody=%s", strings.Join(lines, "\n"), body)
}

// startHTTP serves echoHandler on a plain HTTP listener.
func startHTTP(t *testing.T, cfg Config) (addr string, stop func()) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return serveHTTP(t, New(cfg, request.HandlerFunc(echoHandler), nil, log))
}

// serveHTTP serves s on a new plain HTTP listener.
func serveHTTP(t *testing.T, s *Server) (addr string, stop func()) {
	t.Helper()
	a, err := s.AddHTTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, 2*time.Second) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	t.Cleanup(stop)
	return a.String(), stop
}

// exchange writes raw to a new connection and returns everything the
// server sends until it closes the connection (or a second passes).
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	out, _ := io.ReadAll(c)
	return string(out)
}

func TestHTTP1(t *testing.T) {
	addr, _ := startHTTP(t, DefaultConfig())
	tests := []struct {
		name string
		raw  string
		want []string // substrings of the output, in order
		not  []string // must not appear
	}{
		{"vars", "GET /a%20b/c?x=1&y=2 HTTP/1.1\r\nHost: example.org:8080\r\nX-Custom-Thing: v1\r\nUser-Agent: t\r\nConnection: close\r\n\r\n",
			[]string{"HTTP/1.1 200 OK\r\n", "Content-Length: ", "Connection: close\r\n", "HTTP_HOST=example.org:8080\nHTTP_USER_AGENT=t\nHTTP_X_CUSTOM_THING=v1\n", "PATH_INFO=/a b/c\n", "QUERY_STRING=x=1&y=2\n", "REMOTE_ADDR=127.0.0.1\n", "REQUEST_METHOD=GET\n", "REQUEST_SCHEME=http\n", "REQUEST_URI=/a%20b/c?x=1&y=2\n", "SERVER_NAME=example.org\n", "SERVER_PROTOCOL=HTTP/1.1"}, nil},
		{"repeated header joined", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nConnection: close\r\n\r\n",
			[]string{"HTTP_X_A=1, 2\n"}, nil},
		{"keep-alive and client pipelining", "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"HTTP/1.1 200 OK", "PATH_INFO=/1\n", "HTTP/1.1 200 OK", "PATH_INFO=/2\n"}, nil},
		{"HTTP/1.0 closes", "GET / HTTP/1.0\r\n\r\nGET /never HTTP/1.0\r\n\r\n",
			[]string{"HTTP/1.0 200 OK\r\n", "SERVER_NAME=127.0.0.1\n"}, []string{"/never", "Connection: keep-alive"}},
		{"HTTP/1.0 keep-alive", "GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
			[]string{"Connection: keep-alive\r\n", "PATH_INFO=/1\n", "HTTP/1.0 200 OK", "PATH_INFO=/2\n"}, nil},
		{"content-length body", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
			[]string{"CONTENT_LENGTH=5\n", "CONTENT_TYPE=text/plain\n", "body=hello"}, []string{"HTTP_CONTENT"}},
		{"chunked body", "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
			[]string{"body=abcdefg"}, []string{"CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING"}},
		{"chunked body, trailer, next request", "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"body=abc", "HTTP/1.1 200 OK", "PATH_INFO=/next\n"}, []string{"400 Bad Request"}},
		{"expect 100-continue", "POST /p HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
			[]string{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK", "body=hi"}, nil},
		{"unread body drained", "POST /ignorebody HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /next HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"ignored", "PATH_INFO=/next\n"}, nil},
		{"flushed response is chunked", "GET /stream HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"Transfer-Encoding: chunked\r\n", "6\r\npart1,\r\n", "5\r\npart2\r\n0\r\n\r\n"}, []string{"Content-Length"}},
		{"HEAD has no body", "HEAD / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"HTTP/1.1 200 OK\r\n"}, []string{"REQUEST_METHOD"}},
		{"204 has no body", "GET /nocontent HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"HTTP/1.1 204 No Content\r\n"}, []string{"Content-Length", "chunked"}},
		{"header values cannot inject headers", "GET /inject HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"X-Evil: a  Set-Cookie: x=1\r\n"}, []string{"\r\nSet-Cookie"}},
		{"app's hop-by-hop headers", "GET /hopbyhop HTTP/1.1\r\nHost: h\r\n\r\nGET /never HTTP/1.1\r\nHost: h\r\n\r\n",
			[]string{"Content-Length: 3\r\n", "Connection: close\r\n\r\nhop"}, []string{"bogus", "chunked", "/never"}},
		{"aborted response cut", "GET /abort HTTP/1.1\r\nHost: h\r\n\r\n",
			[]string{"7\r\npartial\r\n"}, []string{"0\r\n\r\n"}},
		{"garbage", "\x00\x01\x02 this is not http\r\n\r\n", []string{"HTTP/1.1 400 Bad Request\r\n", "Connection: close"}, nil},
		{"unknown protocol", "GET / HTTP/2.0\r\n\r\n", []string{"HTTP/1.1 400 Bad Request\r\n"}, nil},
		{"bad header line", "GET / HTTP/1.1\r\nHost h\r\n\r\n", []string{"HTTP/1.1 400 Bad Request\r\n"}, nil},
		{"folded header", "GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", []string{"HTTP/1.1 400 Bad Request\r\n"}, nil},
		{"length and chunked", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", []string{"HTTP/1.1 400 Bad Request\r\n"}, nil},
		{"conflicting lengths", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", []string{"HTTP/1.1 400 Bad Request\r\n"}, nil},
		{"bad length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", []string{"HTTP/1.1 400 Bad Request\r\n"}, nil},
		{"unknown transfer coding", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", []string{"HTTP/1.1 501 Not Implemented\r\n"}, nil},
		{"bad escape", "GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n", []string{"HTTP/1.1 400 Bad Request\r\n"}, nil},
		{"head over buffer-size", "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("a", 5000) + "\r\n\r\n", []string{"HTTP/1.1 431 Request Header Fields Too Large\r\n"}, nil},
		{"head over the hard limit", "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("a", maxHeadBytes) + "\r\n\r\n", []string{"HTTP/1.1 431 Request Header Fields Too Large\r\n"}, nil},
		{"leading empty line", "\r\nGET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", []string{"PATH_INFO=/x\n"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := exchange(t, addr, tc.raw)
			rest := out
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (in order); got:\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
			for _, n := range tc.not {
				if strings.Contains(out, n) {
					t.Errorf("output has %q; got:\n%s", n, out)
				}
			}
		})
	}
}

func TestHTTP1Timeouts(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HTTPTimeout = 300 * time.Millisecond
	addr, _ := startHTTP(t, cfg)
	for _, tc := range []struct{ name, raw string }{
		{"head never finished", "GET / HTTP/1.1\r\nHost: h\r\n"},
		{"body never sent", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc"},
		{"idle keep-alive", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, _ = io.WriteString(c, tc.raw)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.ReadAll(c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the server kept a stalled client for 10s")
			}
		})
	}
}

// TestHTTP1Shutdown checks idle keep-alive connections are closed on
// shutdown and new ones refused.
func TestHTTP1Shutdown(t *testing.T) {
	addr, stop := startHTTP(t, DefaultConfig())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	stop()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection after shutdown: read %v, want EOF", err)
	}
	if c2, err := net.Dial("tcp", addr); err == nil {
		c2.Close()
		t.Error("a new connection was accepted after shutdown")
	}
}

// TestHTTP1IdleHoldsNoBuffers: keep-alive connections waiting for their
// next request hold neither a read nor a write buffer (with hundreds of
// them, those buffers were most of the master's heap), and a connection
// that gave its buffers back serves its next request.
func TestHTTP1IdleHoldsNoBuffers(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := New(DefaultConfig(), request.HandlerFunc(echoHandler), nil, log)
	addr, stop := serveHTTP(t, s)
	h := s.sockets[0].h1
	const n = 8
	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	get := func(i int, path string) {
		t.Helper()
		if _, err := io.WriteString(conns[i], "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(readers[i], nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if !strings.Contains(string(body), "PATH_INFO="+path+"\n") {
			t.Fatalf("GET %s answered %q", path, body)
		}
	}
	// allIdle waits until every connection waits for a request and, if
	// asked, returns how many of them hold a buffer. idle is stored after
	// the buffers are given back, so reading them after seeing it is
	// race-free, as long as no request follows.
	allIdle := func(look bool) (holding int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			idle, holding := 0, 0
			h.mu.Lock()
			for hc := range h.conns {
				if hc.idle.Load() {
					idle++
					if look && (hc.br != nil || hc.bw != nil) {
						holding++
					}
				}
			}
			h.mu.Unlock()
			if idle == n {
				return holding
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d connections idle after 5s", idle, n)
			}
		}
	}
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i], readers[i] = c, bufio.NewReader(c)
		get(i, fmt.Sprintf("/first/%d", i))
	}
	allIdle(false)
	for i := range n {
		get(i, fmt.Sprintf("/second/%d", i))
	}
	if holding := allIdle(true); holding > 0 {
		t.Fatalf("%d of %d idle keep-alive connections hold a buffer", holding, n)
	}
	// The server closes them: no buffer is taken again.
	stop()
}

// BenchmarkHTTPVars measures turning a typical browser request head into
// uwsgi vars.
func BenchmarkHTTPVars(b *testing.B) {
	head := "GET /polls/3/results/?page=2 HTTP/1.1\r\nHost: www.example.org\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n" +
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
		"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
		"Connection: keep-alive\r\nCookie: csrftoken=abc; sessionid=def\r\nUpgrade-Insecure-Requests: 1\r\n\r\n"
	hc := &h1Conn{h: &h1Server{s: &Server{cfg: DefaultConfig()}}, remoteHost: "127.0.0.1", remotePort: "50000", localHost: "127.0.0.1", localPort: "9090"}
	b.ReportAllocs()
	for b.Loop() {
		req, err := hc.parseHead(string([]byte(head)))
		if err != nil || len(req.vars) < 15 {
			b.Fatalf("parseHead: %v", err)
		}
	}
}

// TestHTTP1RequestAllocations: a keep-alive request costs the master one
// allocation (its head as a string): the vars array and the request are
// the connection's, reused, so the GC of a busy master runs rarely.
func TestHTTP1RequestAllocations(t *testing.T) {
	body := []byte("ok")
	var seen atomic.Int64
	h := request.HandlerFunc(func(w http.ResponseWriter, r *request.Request) {
		if r.Vars.Value("PATH_INFO") == "/alloc" {
			seen.Add(1)
		}
		_, _ = w.Write(body)
	})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := New(DefaultConfig(), h, nil, log)
	addr, _ := serveHTTP(t, s)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /alloc HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\n\r\n")
	buf := make([]byte, 4096)
	roundTrip := func() {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		n := 0
		for !bytes.HasSuffix(buf[:n], []byte("\r\n\r\nok")) {
			m, err := c.Read(buf[n:])
			if err != nil {
				t.Fatalf("read response: %v (got %q)", err, buf[:n])
			}
			if n += m; n == len(buf) {
				t.Fatalf("response too long: %q", buf[:n])
			}
		}
	}
	roundTrip()
	allocs := testing.AllocsPerRun(200, roundTrip)
	if seen.Load() != 202 {
		t.Fatalf("handler saw %d requests for /alloc, want 202", seen.Load())
	}
	// The head string, and slack for a timer or poller wake-up that
	// lands in the measurement now and then.
	if allocs > 2 {
		t.Errorf("%.1f allocations per keep-alive request, want at most 2", allocs)
	}
}
