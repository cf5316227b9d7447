package frontend

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/gouwsgi/gouwsgi/node/request"
	"github.com/gouwsgi/gouwsgi/node/wire"
	"golang.org/x/sys/unix"
)

// h1Server serves plain HTTP/1.0 and 1.1 (http, http-socket) without
// net/http. A proxied hello-world request is cheap enough for net/http's
// per-request costs to dominate: its header map, its request and response
// objects, the background read it starts on every keep-alive connection to
// notice a client leaving. Here a connection reuses its buffers, the whole
// request head becomes one string that every var is a slice of, and the
// response head and a short body leave in one write.
type h1Server struct {
	s     *Server
	l     net.Listener
	mu    sync.Mutex
	conns map[*h1Conn]struct{}
	// closing is set by shutdown: idle connections are closed, busy ones
	// end after their current response.
	closing atomic.Bool
	wg      sync.WaitGroup
}

// Limits of the HTTP/1 frontend.
const (
	// maxHeadBytes bounds the request head read into memory; buffer-size,
	// checked on the vars, is the limit operators set.
	maxHeadBytes = 64 << 10
	// bufferedBody is how much of a response body is held back to send it
	// with a Content-Length, in the head's write; beyond it the response is
	// chunked.
	bufferedBody = 8 << 10
	// maxDrain is how much of a request body the app left unread is read
	// and dropped to keep the connection; beyond it the connection closes.
	maxDrain = 256 << 10
)

func newH1Server(s *Server, l net.Listener) *h1Server {
	return &h1Server{s: s, l: l, conns: map[*h1Conn]struct{}{}}
}

// serve accepts connections until the listener is closed.
func (h *h1Server) serve() error {
	var delay time.Duration
	for {
		c, err := h.l.Accept()
		if err != nil {
			if h.closing.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of fds and the like: back off instead of spinning.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			h.s.log.Error(fmt.Sprintf("accept on %s: %v (retrying in %s)", h.l.Addr(), err, delay))
			time.Sleep(delay)
			continue
		}
		delay = 0
		hc := newH1Conn(h, c)
		h.mu.Lock()
		if h.closing.Load() {
			h.mu.Unlock()
			_ = c.Close()
			continue
		}
		h.conns[hc] = struct{}{}
		h.wg.Add(1)
		h.mu.Unlock()
		go hc.serve()
	}
}

// shutdown stops accepting, closes idle connections and waits for the
// others to finish their request, until ctx ends.
func (h *h1Server) shutdown(ctx context.Context) {
	h.closing.Store(true)
	_ = h.l.Close()
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		h.closeConns(true)
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// closeConns closes the idle connections, or all of them.
func (h *h1Server) closeConns(idleOnly bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for hc := range h.conns {
		if !idleOnly || hc.idle.Load() {
			_ = hc.c.Close()
		}
	}
}

// h1Conn is one client connection; it serves its requests in order.
type h1Conn struct {
	h *h1Server
	c net.Conn
	// br and bw come from a pool and go back to it whenever they hold
	// nothing: a keep-alive connection that waits for its next request, or
	// for a worker, keeps no buffer. With hundreds of connections that is
	// most of the master's heap.
	br *bufio.Reader
	bw *bufio.Writer
	// raw waits for the next request without a buffer; nil when the
	// connection has no file descriptor to poll (then br is kept).
	raw    syscall.RawConn
	ready  func(fd uintptr) bool // hc.readable, bound once
	polled bool                  // readable: the poller said so
	idle   atomic.Bool
	head   []byte // the request head being read

	ctx    context.Context
	cancel context.CancelFunc
	// Per connection, computed once: the vars every request shares.
	remoteHost, remotePort, localHost, localPort string

	// Reused for every request of the connection: a request allocates
	// only its head string, so the master's GC runs a few times less often
	// under load.
	req  h1Request
	r    request.Request
	vars wire.Vars // backing array of req.vars
	w    h1Writer
	rw   responseWriter
	peek [1]byte // readable's buffer
}

func newH1Conn(h *h1Server, c net.Conn) *h1Conn {
	hc := &h1Conn{h: h, c: c}
	hc.ctx, hc.cancel = context.WithCancel(context.Background())
	hc.remoteHost, hc.remotePort = splitAddr(c.RemoteAddr())
	hc.localHost, hc.localPort = splitAddr(c.LocalAddr())
	if hc.localHost == "" {
		hc.localHost, hc.localPort = "localhost", "80"
	}
	hc.w.c = hc
	hc.w.header = http.Header{}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			hc.raw, hc.ready = raw, hc.readable
		}
	}
	return hc
}

// readable is a syscall.RawConn.Read callback: false (wait for the poller)
// while the socket has nothing to read. Once the poller woke it up it
// trusts it rather than asking again, which would cost a syscall per
// request; after a rare spurious wake-up the buffered read simply waits
// itself. Data, end of stream and errors are all left to that read.
func (hc *h1Conn) readable(fd uintptr) bool {
	if hc.polled {
		return true
	}
	hc.polled = true
	for {
		// unix.Recvfrom would allocate a sockaddr per call for nothing.
		_, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&hc.peek[0])), 1, unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		if errno != unix.EINTR {
			return errno != unix.EAGAIN
		}
	}
}

// reader returns the connection's read buffer, taken from the pool if it
// had none.
func (hc *h1Conn) reader() *bufio.Reader {
	if hc.br == nil {
		hc.br = readers.Get().(*bufio.Reader)
		hc.br.Reset(hc.c)
	}
	return hc.br
}

// releaseReader gives the read buffer back unless it holds bytes of a
// pipelined request.
func (hc *h1Conn) releaseReader() {
	if hc.br == nil || hc.br.Buffered() > 0 || hc.raw == nil {
		return
	}
	hc.br.Reset(nil)
	readers.Put(hc.br)
	hc.br = nil
}

// writer returns the connection's write buffer, taken from the pool if it
// had none.
func (hc *h1Conn) writer() *bufio.Writer {
	if hc.bw == nil {
		hc.bw = writers.Get().(*bufio.Writer)
		hc.bw.Reset(hc.c)
	}
	return hc.bw
}

// releaseWriter gives the write buffer back once everything in it is sent.
func (hc *h1Conn) releaseWriter() {
	if hc.bw == nil || hc.bw.Buffered() > 0 {
		return
	}
	hc.bw.Reset(nil)
	writers.Put(hc.bw)
	hc.bw = nil
}

// waitRequest blocks until the client sends something (or the read
// deadline passes), holding a read buffer only if it must.
func (hc *h1Conn) waitRequest() error {
	if hc.br == nil && hc.raw != nil {
		hc.polled = false
		if err := hc.raw.Read(hc.ready); err != nil {
			return fmt.Errorf("wait for a request: %w", err)
		}
	}
	_, err := hc.reader().Peek(1)
	return err
}

// splitAddr returns host and port of a TCP address; a unix socket's peer
// has neither.
func splitAddr(a net.Addr) (host, port string) {
	if a == nil {
		return "", ""
	}
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "", ""
	}
	return host, port
}

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
)

func (hc *h1Conn) serve() {
	h := hc.h
	defer func() {
		hc.cancel()
		_ = hc.c.Close()
		if hc.br != nil {
			hc.br.Reset(nil)
			readers.Put(hc.br)
		}
		if hc.bw != nil {
			hc.bw.Reset(nil)
			writers.Put(hc.bw)
		}
		h.mu.Lock()
		delete(h.conns, hc)
		h.mu.Unlock()
		h.wg.Done()
	}()
	for {
		hc.idle.Store(true)
		if h.closing.Load() {
			return
		}
		if t := h.s.cfg.HTTPTimeout; t > 0 {
			_ = hc.c.SetReadDeadline(time.Now().Add(t))
		}
		if err := hc.waitRequest(); err != nil {
			return
		}
		hc.idle.Store(false)
		if !hc.serveRequest() {
			return
		}
	}
}

// httpError is a request the frontend refuses before any handler sees it.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

// serveRequest reads and answers one request; false means the connection
// must close.
func (hc *h1Conn) serveRequest() bool {
	req, err := hc.readHead()
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			hc.refuse(he)
		}
		return false
	}
	defer hc.recycleVars()
	start := time.Now()
	s := hc.h.s
	r := &hc.r
	*r = request.Request{Ctx: hc.ctx, Start: start, Vars: req.vars}
	w := &hc.w
	w.reset(req)
	rw := &hc.rw
	*rw = responseWriter{ResponseWriter: w}
	if n := r.Vars.EncodedLen(); n > s.cfg.BufferSize {
		s.log.Warn(fmt.Sprintf("invalid request block size: %d (max %d)...skip (%s %s from %s; raise buffer-size)", n, s.cfg.BufferSize, req.method, req.uri, hc.remoteHost))
		w.closeAfter = true
		http.Error(rw, "431 Request Header Fields Too Large", http.StatusRequestHeaderFieldsTooLarge)
		_ = w.finish()
		s.logRequest(r, rw, start)
		return false
	}
	if req.body != nil {
		r.Body = req.body
	} else {
		// Nothing more to read until the response is out.
		hc.releaseReader()
	}
	s.h.ServeRequest(rw, r)
	if r.Log.Abort {
		// The response was cut: only closing tells the client.
		s.logRequest(r, rw, start)
		return false
	}
	if req.body != nil && !req.body.drain() {
		w.closeAfter = true
	}
	if hc.h.closing.Load() {
		w.closeAfter = true
	}
	err = w.finish()
	hc.releaseWriter()
	hc.releaseReader()
	s.logRequest(r, rw, start)
	return err == nil && !w.closeAfter
}

// refuse answers a malformed request and closes.
func (hc *h1Conn) refuse(he *httpError) {
	hc.h.s.log.Warn(fmt.Sprintf("HTTP request from %s refused: %s", hc.c.RemoteAddr(), he.msg))
	text := strconv.Itoa(he.code) + " " + http.StatusText(he.code)
	fmt.Fprintf(hc.writer(), "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", text, len(text)+2+len(he.msg), text+": "+he.msg)
	_ = hc.bw.Flush()
}

// h1Request is what readHead parsed.
type h1Request struct {
	method, uri, proto string
	vars               wire.Vars
	body               *h1Body
	head               bool // HEAD: the response has no body
	http11             bool
	keepAlive          bool
}

// readHead reads a request head and builds its vars.
func (hc *h1Conn) readHead() (*h1Request, error) {
	buf := hc.head[:0]
	lineStart := 0
	for {
		frag, err := hc.reader().ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > maxHeadBytes {
			return nil, &httpError{http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("request head over %d bytes", maxHeadBytes)}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			switch {
			case len(buf) == 0:
				return nil, err
			case errors.Is(err, io.EOF):
				return nil, &httpError{http.StatusBadRequest, "request head cut short"}
			}
			return nil, fmt.Errorf("read request head: %w", err)
		}
		if line := buf[lineStart:]; len(line) == 1 || (len(line) == 2 && line[0] == '\r') {
			if lineStart > 0 {
				break
			}
			// Empty lines before a request line are allowed (RFC 9112 2.2).
			buf = buf[:0]
			continue
		}
		lineStart = len(buf)
	}
	if cap(buf) <= 8<<10 {
		hc.head = buf
	}
	return hc.parseHead(string(buf))
}

// parseHead parses a whole request head (request line, header lines, the
// empty line) into vars. Every var is a slice of head: one allocation for
// the lot, plus the HTTP_ names not in commonHeaders.
func (hc *h1Conn) parseHead(head string) (*h1Request, error) {
	line, rest := nextLine(head)
	method, line, ok1 := strings.Cut(line, " ")
	uri, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || !validToken(method) || uri == "" {
		return nil, &httpError{http.StatusBadRequest, fmt.Sprintf("malformed request line %.64q", head[:min(len(head), 64)])}
	}
	req := &hc.req
	*req = h1Request{method: method, uri: uri, proto: proto, head: method == "HEAD"}
	switch proto {
	case "HTTP/1.1":
		req.http11, req.keepAlive = true, true
	case "HTTP/1.0":
	default:
		return nil, &httpError{http.StatusBadRequest, fmt.Sprintf("unsupported protocol %.32q", proto)}
	}
	path, query, _ := strings.Cut(uri, "?")
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		// Absolute form (a proxy request): PATH_INFO is its path.
		u, err := url.Parse(path)
		if err != nil {
			return nil, &httpError{http.StatusBadRequest, fmt.Sprintf("malformed request target %.64q", uri)}
		}
		path = u.EscapedPath()
	}
	if strings.IndexByte(path, '%') >= 0 {
		p, err := url.PathUnescape(path)
		if err != nil {
			return nil, &httpError{http.StatusBadRequest, fmt.Sprintf("malformed escape in path %.64q", path)}
		}
		path = p
	}
	vs := hc.vars[:0]
	if vs == nil {
		vs = make(wire.Vars, 0, 24)
	}
	vs = append(vs,
		wire.Var{Key: "REQUEST_METHOD", Value: method},
		wire.Var{Key: "REQUEST_URI", Value: uri},
		wire.Var{Key: "PATH_INFO", Value: path},
		wire.Var{Key: "QUERY_STRING", Value: query},
		wire.Var{Key: "SERVER_PROTOCOL", Value: proto},
		wire.Var{Key: "SCRIPT_NAME", Value: ""},
		wire.Var{Key: "REQUEST_SCHEME", Value: "http"},
		wire.Var{Key: "REMOTE_ADDR", Value: hc.remoteHost},
		wire.Var{Key: "REMOTE_PORT", Value: hc.remotePort},
	)
	fixed := len(vs)
	var host, contentLength, transferEncoding string
	var chunked, expectContinue bool
	for {
		line, rest = nextLine(rest)
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !validToken(name) {
			return nil, &httpError{http.StatusBadRequest, fmt.Sprintf("malformed header line %.64q", line)}
		}
		value = trimOWS(value)
		key := ""
		// Only these names need more than their CGI name; the length test
		// keeps the common headers from going through every comparison.
		switch len(name) {
		case 4:
			if strings.EqualFold(name, "Host") {
				host = value
			}
		case 6:
			if strings.EqualFold(name, "Expect") {
				expectContinue = req.http11 && strings.EqualFold(value, "100-continue")
			}
		case 10:
			if strings.EqualFold(name, "Connection") {
				if req.http11 {
					req.keepAlive = !hasToken(value, "close")
				} else {
					req.keepAlive = hasToken(value, "keep-alive")
				}
			}
		case 12:
			if strings.EqualFold(name, "Content-Type") {
				key = "CONTENT_TYPE"
			}
		case 14:
			if strings.EqualFold(name, "Content-Length") {
				if contentLength != "" && contentLength != value {
					return nil, &httpError{http.StatusBadRequest, "conflicting Content-Length headers"}
				}
				contentLength = value
				continue
			}
		case 17:
			if strings.EqualFold(name, "Transfer-Encoding") {
				transferEncoding = value
				chunked = strings.EqualFold(value, "chunked")
				continue
			}
		}
		if key == "" {
			key = cgiHeaderName(name)
		}
		if i := indexVar(vs[fixed:], key); i >= 0 {
			// A repeated header is one var, as net/http and CGI have it.
			vs[fixed+i].Value += ", " + value
			continue
		}
		vs = append(vs, wire.Var{Key: key, Value: value})
	}
	if transferEncoding != "" && !chunked {
		return nil, &httpError{http.StatusNotImplemented, fmt.Sprintf("unsupported Transfer-Encoding %.32q", transferEncoding)}
	}
	if chunked && contentLength != "" {
		return nil, &httpError{http.StatusBadRequest, "both Content-Length and Transfer-Encoding sent"}
	}
	if contentLength != "" {
		n, err := strconv.ParseInt(contentLength, 10, 64)
		if err != nil || n < 0 {
			return nil, &httpError{http.StatusBadRequest, fmt.Sprintf("malformed Content-Length %.32q", contentLength)}
		}
		vs = append(vs, wire.Var{Key: "CONTENT_LENGTH", Value: contentLength})
		if n > 0 {
			req.body = &h1Body{c: hc, r: &io.LimitedReader{R: hc.br, N: n}, left: n, expectContinue: expectContinue}
		}
	} else if chunked {
		req.body = &h1Body{c: hc, r: httputil.NewChunkedReader(hc.br), left: -1, expectContinue: expectContinue}
	}
	vs = append(vs,
		wire.Var{Key: "SERVER_NAME", Value: serverName(host, hc.localHost)},
		wire.Var{Key: "SERVER_PORT", Value: hc.localPort},
	)
	req.vars = vs
	hc.vars = vs
	return req, nil
}

// maxKeptVars bounds the vars array a connection keeps between requests:
// one request with a hundred headers should not pin its array for the
// connection's life.
const maxKeptVars = 64

// recycleVars readies the vars array for the next request once nothing
// refers to this one's: it drops the strings (an idle connection must not
// keep its last request head alive) and the array itself if it grew big.
func (hc *h1Conn) recycleVars() {
	hc.r = request.Request{}
	clear(hc.vars[:cap(hc.vars)])
	if cap(hc.vars) > maxKeptVars {
		hc.vars = nil
	}
}

// trimOWS trims the optional white space around a header value.
func trimOWS(v string) string {
	for v != "" && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for v != "" && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// nextLine splits off the first line of s without its CRLF or LF.
func nextLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

func indexVar(vs wire.Vars, key string) int {
	for i := range vs {
		if vs[i].Key == key {
			return i
		}
	}
	return -1
}

// tokenChars marks the bytes an RFC 9110 token may hold.
var tokenChars = func() (t [256]bool) {
	for c := '!'; c <= '~'; c++ {
		t[c] = !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c)
	}
	return t
}()

// validToken reports whether s is an RFC 9110 token (method, header name).
func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !tokenChars[s[i]] {
			return false
		}
	}
	return s != ""
}

// hasToken reports whether the comma-separated list v holds token.
func hasToken(v, token string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// commonHeaders maps the header names browsers and load balancers send, as
// they send them, to their CGI names, so those cost no allocation.
var commonHeaders = func() map[string]string {
	m := map[string]string{}
	for _, h := range []string{
		"Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Accept-Charset",
		"Connection", "Cookie", "Referer", "Origin", "Cache-Control", "Pragma", "Authorization",
		"Upgrade-Insecure-Requests", "If-Modified-Since", "If-None-Match", "If-Match", "Range",
		"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip", "X-Real-IP",
		"X-Requested-With", "X-Csrftoken", "X-CSRFToken", "Dnt", "DNT", "Te", "TE", "Via", "Expect",
		"Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Priority",
	} {
		m[h] = cgiName(h)
		m[strings.ToLower(h)] = cgiName(h)
	}
	return m
}()

func cgiHeaderName(name string) string {
	if k, ok := commonHeaders[name]; ok {
		return k
	}
	return cgiName(name)
}

// h1Body is a request body: Content-Length bytes or a chunked stream.
type h1Body struct {
	c              *h1Conn
	r              io.Reader
	left           int64 // bytes still due; -1 for chunked
	expectContinue bool  // answer "100 Continue" on the first read
	err            error
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.expectContinue {
		b.expectContinue = false
		if !b.c.w.headWritten {
			_, _ = b.c.writer().WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if err := b.c.bw.Flush(); err != nil {
				b.err = err
				return 0, err
			}
		}
	}
	if t := b.c.h.s.cfg.HTTPTimeout; t > 0 {
		// Pushed forward on every read: only a client that stalls is cut,
		// not a slow large upload.
		_ = b.c.c.SetReadDeadline(time.Now().Add(t))
	}
	n, err := b.r.Read(p)
	if b.left < 0 && errors.Is(err, io.EOF) {
		// httputil's chunked reader stops after the last chunk; the
		// trailer section (usually just the final CRLF) is ours to read,
		// or it would be taken for the start of the next request.
		if terr := b.c.skipTrailer(); terr != nil {
			err = terr
		}
	}
	if b.left > 0 {
		b.left -= int64(n)
		if errors.Is(err, io.EOF) && b.left > 0 {
			err = fmt.Errorf("request body %d bytes short: %w", b.left, io.ErrUnexpectedEOF)
		}
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// skipTrailer reads the trailer section of a chunked body, up to and
// including its empty line. Trailer fields are dropped: the app has long
// been called with the request's vars.
func (hc *h1Conn) skipTrailer() error {
	read := 0
	for {
		line, err := hc.reader().ReadSlice('\n')
		read += len(line)
		if read > maxHeadBytes {
			return fmt.Errorf("chunked body trailer over %d bytes", maxHeadBytes)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read chunked body trailer: %w", err)
		}
		if len(line) == 1 || (len(line) == 2 && line[0] == '\r') {
			return nil
		}
	}
}

// drain reads what the app left of the body so the next request can be
// read; false means the connection cannot be reused.
func (b *h1Body) drain() bool {
	if b.err != nil {
		return errors.Is(b.err, io.EOF)
	}
	if b.expectContinue {
		// The client waits for a go-ahead that will never come: it may
		// send the body or not, so the connection cannot be reused.
		return false
	}
	n, err := io.Copy(io.Discard, io.LimitReader(b, maxDrain))
	return err == nil && n < maxDrain && errors.Is(b.err, io.EOF)
}

// h1Writer is the response writer of an h1Conn, reused for every request.
type h1Writer struct {
	c           *h1Conn
	header      http.Header
	status      int
	req         *h1Request
	headWritten bool
	chunked     bool
	closeAfter  bool
	length      int64 // Content-Length the app set, -1 for none
	written     int64
	pending     []byte // body held back until the framing is decided
	// contentLength backs the Content-Length header writeHead adds, so
	// adding it allocates nothing.
	contentLength [1]string
}

func (w *h1Writer) reset(req *h1Request) {
	clear(w.header)
	w.status = 0
	w.req = req
	w.headWritten, w.chunked = false, false
	w.closeAfter = !req.keepAlive
	w.length, w.written = -1, 0
	if cap(w.pending) > 1<<10 {
		// Do not keep up to bufferedBody per idle connection.
		w.pending = nil
	}
	w.pending = w.pending[:0]
}

func (w *h1Writer) Header() http.Header { return w.header }

func (w *h1Writer) WriteHeader(code int) {
	if w.status != 0 || w.headWritten {
		return
	}
	if code < 100 || code > 999 {
		code = http.StatusInternalServerError
	}
	w.status = code
	if v, ok := w.header["Content-Length"]; ok {
		n, err := strconv.ParseInt(v[0], 10, 64)
		if len(v) != 1 || err != nil || n < 0 {
			// Framing is ours to decide when the app's is unusable.
			delete(w.header, "Content-Length")
		} else {
			w.length = n
		}
	}
	// Hop-by-hop headers belong to this connection, not to the app
	// (PEP 3333); a "close" is honoured.
	if v, ok := w.header["Connection"]; ok {
		for _, c := range v {
			if hasToken(c, "close") {
				w.closeAfter = true
			}
		}
		delete(w.header, "Connection")
	}
	delete(w.header, "Transfer-Encoding")
	delete(w.header, "Keep-Alive")
}

// bodyAllowed reports whether the response may carry a body (RFC 9110 6.4.1).
func (w *h1Writer) bodyAllowed() bool {
	return !w.req.head && w.status >= 200 && w.status != http.StatusNoContent && w.status != http.StatusNotModified
}

func (w *h1Writer) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed() {
		return len(b), nil
	}
	if !w.headWritten {
		if w.length < 0 && len(w.pending)+len(b) <= bufferedBody {
			w.pending = append(w.pending, b...)
			return len(b), nil
		}
		if err := w.writeHead(false); err != nil {
			return 0, err
		}
	}
	return w.writeBody(b)
}

// Flush sends what is buffered: a response flushed before it ends has no
// length, so it is chunked.
func (w *h1Writer) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headWritten && w.writeHead(false) != nil {
		return
	}
	_ = w.c.writer().Flush()
}

// ReadFrom copies a body (a static file) through the buffered writer.
func (w *h1Writer) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(writerOnly{w}, r)
}

// writerOnly hides ReadFrom so io.Copy does not recurse.
type writerOnly struct{ io.Writer }

// writeHead writes the status line and headers, followed by the held-back
// body. final means the handler is done, so the held-back body is all of it.
func (w *h1Writer) writeHead(final bool) error {
	w.headWritten = true
	bw := w.c.writer()
	body := w.bodyAllowed()
	switch {
	case !body:
	case w.length >= 0:
	case final:
		w.length = int64(len(w.pending))
		w.contentLength[0] = strconv.Itoa(len(w.pending))
		w.header["Content-Length"] = w.contentLength[:]
	case w.req.http11:
		w.chunked = true
	default:
		// An HTTP/1.0 client reads to the end of the connection.
		w.closeAfter = true
	}
	if w.c.h.closing.Load() {
		w.closeAfter = true
	}
	proto := "HTTP/1.1 "
	if !w.req.http11 {
		proto = "HTTP/1.0 "
	}
	_, _ = bw.WriteString(proto)
	// WriteHeader keeps status within 100-999.
	_ = bw.WriteByte(byte('0' + w.status/100))
	_ = bw.WriteByte(byte('0' + w.status/10%10))
	_ = bw.WriteByte(byte('0' + w.status%10))
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(http.StatusText(w.status))
	_, _ = bw.WriteString("\r\n")
	for k, vs := range w.header {
		if !validToken(k) {
			continue
		}
		for _, v := range vs {
			_, _ = bw.WriteString(k)
			_, _ = bw.WriteString(": ")
			writeHeaderValue(bw, v)
			_, _ = bw.WriteString("\r\n")
		}
	}
	if _, ok := w.header["Date"]; !ok {
		_, _ = bw.WriteString("Date: ")
		_, _ = bw.Write(httpDate())
		_, _ = bw.WriteString("\r\n")
	}
	if w.chunked {
		_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	switch {
	case w.closeAfter && w.req.http11:
		_, _ = bw.WriteString("Connection: close\r\n")
	case !w.closeAfter && !w.req.http11:
		_, _ = bw.WriteString("Connection: keep-alive\r\n")
	}
	_, err := bw.WriteString("\r\n")
	if len(w.pending) > 0 {
		_, err = w.writeBody(w.pending)
		w.pending = w.pending[:0]
	}
	return err
}

// writeHeaderValue writes v with CR and LF replaced: a value must not be
// able to start a header of its own.
func writeHeaderValue(bw *bufio.Writer, v string) {
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	_, _ = bw.WriteString(v)
}

func (w *h1Writer) writeBody(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if w.length >= 0 && w.written+int64(len(b)) > w.length {
		return 0, fmt.Errorf("response body longer than its Content-Length %d: %w", w.length, http.ErrContentLength)
	}
	w.written += int64(len(b))
	bw := w.c.writer()
	if w.chunked {
		var hex [16]byte
		_, _ = bw.Write(strconv.AppendInt(hex[:0], int64(len(b)), 16))
		_, _ = bw.WriteString("\r\n")
		n, err := bw.Write(b)
		if err == nil {
			_, err = bw.WriteString("\r\n")
		}
		return n, err
	}
	return bw.Write(b)
}

// finish completes the response and sends it.
func (w *h1Writer) finish() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headWritten {
		if err := w.writeHead(true); err != nil {
			return err
		}
	}
	if w.chunked {
		_, _ = w.c.writer().WriteString("0\r\n\r\n")
	}
	if w.length >= 0 && w.written != w.length && w.bodyAllowed() {
		// The client would wait for the missing bytes.
		w.closeAfter = true
	}
	return w.c.writer().Flush()
}

// HeadSent reports whether the head went to the client; until then an
// error page can replace the response.
func (w *h1Writer) HeadSent() bool { return w.headWritten }

// dateCache holds the Date header value of the current second.
var dateCache atomic.Pointer[dateValue]

type dateValue struct {
	sec int64
	b   []byte
}

func httpDate() []byte {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.b
	}
	d := &dateValue{sec: now.Unix(), b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dateCache.Store(d)
	return d.b
}
