package frontend

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gouwsgi/gouwsgi/node/request"
	"github.com/gouwsgi/gouwsgi/node/wire"
)

// Modifiers accepted on a uwsgi socket: 0 is WSGI, 30 is WSGI with
// SCRIPT_NAME stripped from PATH_INFO (nginx's uwsgi_modifier1 30).
const (
	modWSGI            = 0
	modWSGIStripScript = 30
)

func (s *Server) serveUWSGI(ctx context.Context, l net.Listener) error {
	go func() { <-ctx.Done(); _ = l.Close() }()
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of fds and the like: back off instead of spinning.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Error(fmt.Sprintf("accept on %s: %v (retrying in %s)", l.Addr(), err, delay))
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			s.serveUWSGIConn(ctx, c)
		}()
	}
}

// serveUWSGIConn serves the one request of a uwsgi connection; nginx opens
// a connection per request and reads the response until we close.
func (s *Server) serveUWSGIConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	dc := &deadlineConn{Conn: c, timeout: s.cfg.SocketTimeout}
	br := uwsgiReaders.Get().(*bufio.Reader)
	br.Reset(dc)
	defer func() {
		br.Reset(nil)
		uwsgiReaders.Put(br)
	}()
	pkt, err := wire.ReadPacket(br, s.cfg.BufferSize, s.cfg.MaxVars)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return
		}
		hint := ""
		if errors.Is(err, wire.ErrTooLarge) {
			hint = " (raise buffer-size; if this is HTTP sent to a uwsgi socket, use http-socket)"
		}
		s.log.Warn(fmt.Sprintf("uwsgi request from %s refused: %v%s", c.RemoteAddr(), err, hint))
		return
	}
	if m := pkt.Header.Modifier1; m != modWSGI && m != modWSGIStripScript {
		s.log.Warn(fmt.Sprintf("uwsgi request from %s refused: unsupported modifier1 %d", c.RemoteAddr(), m))
		return
	}
	start := time.Now()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &request.Request{Ctx: rctx, Vars: pkt.Vars, Start: start, Modifier2: pkt.Header.Modifier2}
	if pkt.Header.Modifier1 == modWSGIStripScript {
		stripScriptName(&r.Vars)
	}
	if cl, err := strconv.ParseInt(r.Vars.Value("CONTENT_LENGTH"), 10, 64); err == nil && cl > 0 {
		r.Body = &exactReader{r: io.LimitReader(br, cl), left: cl}
	}
	uw := newUWSGIWriter(c, r.Vars.Value("SERVER_PROTOCOL"))
	defer uw.release()
	rw := &responseWriter{ResponseWriter: uw}
	s.h.ServeRequest(rw, r)
	if !r.Log.Abort {
		if err := uw.finish(); err != nil {
			s.log.Debug("uwsgi response not delivered", "remote", c.RemoteAddr().String(), "err", err)
		}
	}
	s.logRequest(r, rw, start)
}

// Buffers of uwsgi connections: nginx opens one per request, so they are
// recycled rather than allocated each time.
var (
	uwsgiReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 8192) }}
	uwsgiWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}
)

// stripScriptName removes SCRIPT_NAME from the front of PATH_INFO.
func stripScriptName(vs *wire.Vars) {
	sn, pi := vs.Value("SCRIPT_NAME"), vs.Value("PATH_INFO")
	if sn != "" && strings.HasPrefix(pi, sn) {
		vs.Set("PATH_INFO", pi[len(sn):])
	}
}

// deadlineConn pushes the read deadline forward on every read, so only a
// client that stalls for socket-timeout is cut, not a slow large upload.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (d *deadlineConn) Read(b []byte) (int, error) {
	if d.timeout > 0 {
		_ = d.Conn.SetReadDeadline(time.Now().Add(d.timeout))
	}
	return d.Conn.Read(b)
}

// exactReader turns an early EOF into ErrUnexpectedEOF so a body cut short
// is not mistaken for a complete one.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	e.left -= int64(n)
	if errors.Is(err, io.EOF) && e.left > 0 {
		return n, fmt.Errorf("request body %d bytes short: %w", e.left, io.ErrUnexpectedEOF)
	}
	return n, err
}

// uwsgiWriter writes a raw HTTP/1.x response, as uWSGI does on a uwsgi
// socket: status line with the request's protocol, headers, body, then
// the connection closes.
type uwsgiWriter struct {
	c      net.Conn
	bw     *bufio.Writer
	proto  string
	header http.Header
	wrote  bool
}

func newUWSGIWriter(c net.Conn, proto string) *uwsgiWriter {
	if proto == "" {
		proto = "HTTP/1.0"
	}
	bw := uwsgiWriters.Get().(*bufio.Writer)
	bw.Reset(c)
	return &uwsgiWriter{c: c, bw: bw, proto: proto, header: http.Header{}}
}

// release recycles the buffer once the response is done with.
func (u *uwsgiWriter) release() {
	u.bw.Reset(nil)
	uwsgiWriters.Put(u.bw)
	u.bw = nil
}

func (u *uwsgiWriter) Header() http.Header { return u.header }

func (u *uwsgiWriter) WriteHeader(code int) {
	if u.wrote {
		return
	}
	u.wrote = true
	_, _ = u.bw.WriteString(u.proto)
	_ = u.bw.WriteByte(' ')
	_, _ = u.bw.WriteString(strconv.Itoa(code))
	_ = u.bw.WriteByte(' ')
	_, _ = u.bw.WriteString(http.StatusText(code))
	_, _ = u.bw.WriteString("\r\n")
	_ = u.header.Write(u.bw)
	_, _ = u.bw.WriteString("\r\n")
}

func (u *uwsgiWriter) Write(b []byte) (int, error) {
	if !u.wrote {
		u.WriteHeader(http.StatusOK)
	}
	return u.bw.Write(b)
}

func (u *uwsgiWriter) Flush() { _ = u.bw.Flush() }

func (u *uwsgiWriter) finish() error {
	if !u.wrote {
		u.WriteHeader(http.StatusOK)
	}
	_ = u.c.SetWriteDeadline(time.Now().Add(time.Minute))
	return u.bw.Flush()
}
