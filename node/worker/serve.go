package worker

import (
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

// slot is one persistent data connection to a worker thread. The worker
// serves its requests in order; the tickets of the requests sent and not yet
// answered form a queue (see dispatcher).
type slot struct {
	w    *worker
	core int
	conn net.Conn
	fr   *wire.FrameReader

	// Guarded by the dispatcher's mutex.
	depth       int     // requests sent and not yet answered
	sending     bool    // a request is being written: nothing may be queued behind it yet
	dead        bool    // the connection broke
	first, tail *ticket // the queue; first is the request the worker runs

	// start is the unix-nano start of the running request, 0 when idle;
	// req is that request, for the harakiri log.
	start    atomic.Int64
	req      atomic.Pointer[request.Request]
	harakiri atomic.Bool
}

// smallBody is the body size below which the body is read whole and
// travels in the same write as the request head: one syscall for the
// common case, and a request that can be pipelined and resent.
const smallBody = 64 << 10

// maxAttempts bounds how often a request that never started is sent to
// another worker after the one it was queued on died.
const maxAttempts = 3

// ServeRequest sends r to a worker and copies the response to w.
func (p *Pool) ServeRequest(w http.ResponseWriter, r *request.Request) {
	bp := msgBufs.Get().(*[]byte)
	msg, body, err := encodeRequest((*bp)[:0], r)
	defer func() {
		// A buffer that grew for a large body is left to the collector.
		if cap(msg) <= 16<<10 {
			*bp = msg[:0]
			msgBufs.Put(bp)
		}
	}()
	if err != nil {
		p.log.Warn("request refused", "err", err)
		http.Error(w, "400 Bad Request: request head too large for the uwsgi protocol", http.StatusBadRequest)
		return
	}
	for attempt := 1; ; attempt++ {
		t, err := p.disp.acquire(r.Context(), body == nil, r)
		if err != nil {
			p.log.Warn("request not served", "head", requestHead(r), "err", err)
			http.Error(w, "503 Service Unavailable: no worker available", http.StatusServiceUnavailable)
			return
		}
		s := t.s // t is recycled once exchange returns
		retry, err := p.exchange(t, w, r, msg, body)
		if err == nil {
			return
		}
		if retry && attempt < maxAttempts {
			continue
		}
		if retry {
			// Every worker it was sent to died before running it.
			http.Error(w, "502 Bad Gateway: the workers died before serving the request", http.StatusBadGateway)
			return
		}
		if hs, ok := w.(headSent); ok && hs.HeadSent() {
			r.Log.Abort = true
			return
		}
		if s.harakiri.Load() {
			http.Error(w, "504 Gateway Timeout: request killed by harakiri", http.StatusGatewayTimeout)
			return
		}
		http.Error(w, "502 Bad Gateway: the worker died while serving the request", http.StatusBadGateway)
		return
	}
}

var msgBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func requestHead(r *request.Request) string {
	return r.Vars.Value("REQUEST_METHOD") + " " + r.Vars.Value("REQUEST_URI")
}

// headSent is implemented by the frontends' response writers so the pool
// knows whether an error page can still be sent.
type headSent interface{ HeadSent() bool }

// encodeRequest appends r's packet to b. A body of known size up to
// smallBody is read and appended too (body is then nil); a larger or
// unknown one is returned to be streamed. Vars the protocol cannot carry
// are the client's fault, reported before any worker is involved.
func encodeRequest(b []byte, r *request.Request) (msg []byte, body io.Reader, err error) {
	b, err = wire.AppendPacket(b, r.Modifier1, r.Modifier2, r.Vars)
	if err != nil {
		return b, nil, err
	}
	if r.Body == nil {
		return wire.AppendBodyEnd(b), nil, nil
	}
	cl, err := strconv.Atoi(r.Vars.Value("CONTENT_LENGTH"))
	if err != nil || cl < 0 || cl > smallBody {
		return b, r.Body, nil
	}
	sp := bodyBufs.Get().(*[]byte)
	defer bodyBufs.Put(sp)
	data := (*sp)[:cl]
	got, err := io.ReadFull(r.Body, data)
	b = wire.AppendBody(b, data[:got])
	if err != nil && !errors.Is(err, io.EOF) {
		return wire.AppendFrame(b, wire.ModBody, wire.BodyAbort, nil), nil, nil
	}
	return wire.AppendBodyEnd(b), nil, nil
}

// exchange runs one request on t's slot. A nil error means the slot is
// clean and its next request may be read. retry means the request never
// started and may go to another worker.
func (p *Pool) exchange(t *ticket, w http.ResponseWriter, r *request.Request, msg []byte, body io.Reader) (retry bool, err error) {
	s := t.s
	_, werr := s.conn.Write(msg)
	var pump chan error
	if body != nil && werr == nil {
		pump = make(chan error, 1)
		go func() {
			err := pumpBody(s.conn, body)
			p.disp.sent(s)
			pump <- err
		}()
	} else {
		p.disp.sent(s)
	}
	if !<-t.turn {
		return true, errNotStarted
	}
	if werr != nil {
		err := fmt.Errorf("send request to worker %d: %w", s.w.id, werr)
		p.disp.fail(t)
		p.broken(s, err)
		// A request that did not reach the worker whole cannot have run.
		return body == nil, err
	}
	begin := time.Now()
	r.Log.WorkerID, r.Log.WorkerPID = s.w.id, s.w.pid
	err = p.copyResponse(s, w, r)
	if pump != nil {
		if perr := <-pump; err == nil && perr != nil {
			err = perr
		}
	}
	p.counters[s.w.id].rtMicros.Add(time.Since(begin).Microseconds())
	if err != nil {
		p.disp.fail(t)
		p.broken(s, err)
		return false, err
	}
	p.finished(t)
	return false, nil
}

// errNotStarted says a request was queued on a worker that died before it
// could run.
var errNotStarted = errors.New("the worker died before the request started")

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

// bodyBufs hold small request bodies and the chunks of streamed ones.
var bodyBufs = sync.Pool{New: func() any { b := make([]byte, smallBody); return &b }}

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
			code, err := copyHead(w.Header(), payload)
			if err != nil {
				return fmt.Errorf("worker %d sent a malformed response head: %w", s.w.id, err)
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
			if len(payload) == 0 {
				return nil
			}
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

// copyHead adds the headers of a ModHeaders payload to hdr and returns the
// status code. The payload becomes one string that names and values are
// slices of, and the values share one backing array: two allocations per
// response instead of two per header.
func copyHead(hdr http.Header, payload []byte) (int, error) {
	block := string(payload)
	k, status, off, err := wire.NextVar(block, 0)
	if err != nil {
		return 0, fmt.Errorf("status: %w", err)
	}
	if k != ":status" {
		return 0, fmt.Errorf("first var is %q, not :status", k)
	}
	code, err := statusCode(status)
	if err != nil {
		return 0, err
	}
	n := 0
	for o := off; o < len(block); n++ {
		if _, _, o, err = wire.NextVar(block, o); err != nil {
			return 0, err
		}
	}
	values := make([]string, n)
	for i := range values {
		k, v, next, _ := wire.NextVar(block, off)
		off = next
		k = http.CanonicalHeaderKey(k)
		if old, ok := hdr[k]; ok {
			hdr[k] = append(old, v)
			continue
		}
		values[i] = v
		// Capacity 1: appending to one header never overwrites the next.
		hdr[k] = values[i : i+1 : i+1]
	}
	return code, nil
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
