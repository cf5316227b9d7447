package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gouwsgi/gouwsgi/node/request"
	"github.com/gouwsgi/gouwsgi/node/wire"
)

// slot is one persistent data connection to a worker thread. At most one
// request uses it at a time.
type slot struct {
	w    *worker
	core int
	conn net.Conn
	fr   *wire.FrameReader
	buf  []byte

	// start is the unix-nano start of the running request, 0 when idle;
	// head is "METHOD URI" and addr the client, for the harakiri log.
	start    atomic.Int64
	head     atomic.Pointer[string]
	addr     atomic.Pointer[string]
	harakiri atomic.Bool
}

// smallBody is the body size below which the body travels in the same write
// as the request head: one syscall for the common case.
const smallBody = 64 << 10

// ServeRequest sends r to a free worker and copies the response to w.
func (p *Pool) ServeRequest(w http.ResponseWriter, r *request.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), p.cfg.QueueTimeout)
	s, err := p.disp.acquire(ctx)
	cancel()
	if err != nil {
		p.log.Warn("request not served", "head", r.Vars.Value("REQUEST_METHOD")+" "+r.Vars.Value("REQUEST_URI"), "err", err)
		http.Error(w, "503 Service Unavailable: no worker available", http.StatusServiceUnavailable)
		return
	}
	err = p.exchange(s, w, r)
	if err == nil {
		p.finished(s)
		return
	}
	if bad := (errBadVars{}); errors.As(err, &bad) {
		p.disp.release(s)
		p.log.Warn("request refused", "err", err)
		http.Error(w, "400 Bad Request: request head too large for the uwsgi protocol", http.StatusBadRequest)
		return
	}
	// The slot's connection is in an unknown state: the worker is dead or
	// must die. Either way it does not come back to the dispatcher.
	p.broken(s, err)
	hk := s.harakiri.Load()
	if hs, ok := w.(headSent); ok && hs.HeadSent() {
		r.Log.Abort = true
		return
	}
	if hk {
		http.Error(w, "504 Gateway Timeout: request killed by harakiri", http.StatusGatewayTimeout)
		return
	}
	http.Error(w, "502 Bad Gateway: the worker died while serving the request", http.StatusBadGateway)
}

// headSent is implemented by the frontends' response writers so the pool
// knows whether an error page can still be sent.
type headSent interface{ HeadSent() bool }

// exchange runs one request on s. A nil error means the slot is clean and
// reusable.
func (p *Pool) exchange(s *slot, w http.ResponseWriter, r *request.Request) error {
	head := r.Vars.Value("REQUEST_METHOD") + " " + r.Vars.Value("REQUEST_URI")
	addr := r.Vars.Value("REMOTE_ADDR")
	s.head.Store(&head)
	s.addr.Store(&addr)
	begin := time.Now()
	s.start.Store(begin.UnixNano())
	defer func() {
		s.start.Store(0)
		p.counters[s.w.id].rtMicros.Add(time.Since(begin).Microseconds())
	}()
	r.Log.WorkerID, r.Log.WorkerPID = s.w.id, s.w.pid

	buf, err := wire.AppendPacket(s.buf[:0], r.Modifier1, r.Modifier2, r.Vars)
	if err != nil {
		// Not the worker's fault: refuse before touching the connection.
		s.buf = buf[:0]
		return errBadVars{err}
	}
	var pump chan error
	body := r.Body
	if body != nil {
		if cl, err := strconv.Atoi(r.Vars.Value("CONTENT_LENGTH")); err == nil && cl >= 0 && cl <= smallBody {
			// Read a small body whole so head and body leave in one write.
			data := make([]byte, cl)
			n, err := io.ReadFull(body, data)
			buf = wire.AppendBody(buf, data[:n])
			if err != nil && !errors.Is(err, io.EOF) {
				buf = wire.AppendFrame(buf, wire.ModBody, wire.BodyAbort, nil)
			} else {
				buf = wire.AppendBodyEnd(buf)
			}
			body = nil
		}
	} else {
		buf = wire.AppendBodyEnd(buf)
	}
	s.buf = buf[:0]
	if _, err := s.conn.Write(buf); err != nil {
		return fmt.Errorf("send request to worker %d: %w", s.w.id, err)
	}
	if body != nil {
		pump = make(chan error, 1)
		go func() { pump <- pumpBody(s.conn, body) }()
	}
	err = p.copyResponse(s, w, r)
	if pump != nil {
		if perr := <-pump; err == nil && perr != nil {
			err = perr
		}
	}
	return err
}

// errBadVars marks a request the worker never saw.
type errBadVars struct{ error }

// pumpBody streams a request body of unknown or large size to the worker in
// frames; a body cut short by the client ends with BodyAbort so the app
// sees an error rather than a silently truncated upload.
func pumpBody(conn net.Conn, body io.Reader) error {
	bp := bodyBufs.Get().(*[]byte)
	defer bodyBufs.Put(bp)
	chunk := *bp
	out := make([]byte, 0, wire.HeaderSize+len(chunk))
	for {
		n, rerr := body.Read(chunk)
		if n > 0 {
			out = wire.AppendBody(out[:0], chunk[:n])
			if _, err := conn.Write(out); err != nil {
				return fmt.Errorf("stream request body to worker: %w", err)
			}
		}
		if rerr == nil {
			continue
		}
		mod2 := wire.BodyEnd
		if !errors.Is(rerr, io.EOF) {
			mod2 = wire.BodyAbort
		}
		if _, err := conn.Write(wire.AppendFrame(out[:0], wire.ModBody, mod2, nil)); err != nil {
			return fmt.Errorf("end request body to worker: %w", err)
		}
		return nil
	}
}

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, wire.MaxPayload); return &b }}

// copyResponse reads the worker's response frames into w.
func (p *Pool) copyResponse(s *slot, w http.ResponseWriter, r *request.Request) error {
	flusher, _ := w.(http.Flusher)
	for {
		h, payload, err := s.fr.Next()
		if err != nil {
			return fmt.Errorf("read response from worker %d (pid %d): %w", s.w.id, s.w.pid, err)
		}
		switch h.Modifier1 {
		case wire.ModHeaders:
			vars, err := wire.ParseVars(payload, 0)
			if err != nil || len(vars) == 0 || vars[0].Key != ":status" {
				return fmt.Errorf("worker %d sent a malformed response head: %v", s.w.id, err)
			}
			code, err := statusCode(vars[0].Value)
			if err != nil {
				return fmt.Errorf("worker %d: %w", s.w.id, err)
			}
			hdr := w.Header()
			for _, v := range vars[1:] {
				hdr[http.CanonicalHeaderKey(v.Key)] = append(hdr[http.CanonicalHeaderKey(v.Key)], v.Value)
			}
			w.WriteHeader(code)
		case wire.ModBody:
			p.counters[s.w.id].tx.Add(int64(len(payload)))
			if _, err := w.Write(payload); err != nil {
				// The client left; the worker still has to finish, so keep
				// reading and discard.
				w = discard{w}
			}
			if flusher != nil && s.fr.Buffered() == 0 {
				flusher.Flush()
			}
		case wire.ModEnd:
			vars, err := wire.ParseVars(payload, 0)
			if err != nil {
				return fmt.Errorf("worker %d sent a malformed response end: %w", s.w.id, err)
			}
			for _, v := range vars {
				switch {
				case v.Key == "exception":
					r.Log.Exception = true
					p.counters[s.w.id].exceptions.Add(1)
				case v.Key == "aborted":
					r.Log.Abort = true
				case strings.HasPrefix(v.Key, "logvar."):
					r.Log.LogVars = append(r.Log.LogVars, wire.Var{Key: v.Key[len("logvar."):], Value: v.Value})
				}
			}
			return nil
		default:
			return fmt.Errorf("worker %d sent unexpected modifier1 %d", s.w.id, h.Modifier1)
		}
	}
}

// discard keeps the header map of the original writer but drops the body:
// used once the client went away mid-response.
type discard struct{ http.ResponseWriter }

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// statusCode parses the numeric part of a WSGI status line ("404 Not Found").
func statusCode(status string) (int, error) {
	num, _, _ := strings.Cut(status, " ")
	code, err := strconv.Atoi(num)
	if err != nil || code < 100 || code > 999 {
		return 0, fmt.Errorf("invalid status line %q from the app", status)
	}
	return code, nil
}
