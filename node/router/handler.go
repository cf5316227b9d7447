package router

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/gouwsgi/gouwsgi/node/request"
	"github.com/gouwsgi/gouwsgi/node/wire"
)

// maxStoreBody bounds how much of a response cachestore buffers; a larger
// body is streamed but not stored (no cache2 item can hold it anyway).
const maxStoreBody = 32 << 20

// pooledBufMax is the largest buffer a pooled request state keeps.
const pooledBufMax = 1 << 20

// handler runs the three chains around the next handler.
type handler struct {
	cfg    *Config
	next   request.Handler
	log    *slog.Logger
	stores []CacheStore // by Config.caches index; nil when the cache is missing
	pool   sync.Pool
}

// Handler puts the router in front of next: static files and the request
// chain first, then next (unless a rule answered), with response-route and
// header actions applied when next sends its headers, and final-route after
// the response. Cache names are resolved once here; a missing cache is
// logged and its rules behave as misses (see Validate). A nil logger means
// slog.Default().
func (r *Router) Handler(next request.Handler, caches Caches, logger *slog.Logger) request.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	h := &handler{cfg: &r.cfg, next: next, log: logger, stores: make([]CacheStore, len(r.cfg.caches))}
	for i, name := range r.cfg.caches {
		if caches != nil {
			if s, ok := caches.Get(name); ok {
				h.stores[i] = s
				continue
			}
		}
		logger.Error("route rules refer to a cache that does not exist; they act as misses", "cache", cacheLabel(name))
	}
	h.pool.New = func() any {
		st := &state{h: h}
		st.rw.st = st
		return st
	}
	return h
}

// Validate reports the caches the rules use that caches does not have, so
// start-up can fail instead of every lookup missing.
func (r *Router) Validate(caches Caches) error {
	var errs []error
	for _, name := range r.cfg.caches {
		if caches == nil {
			errs = append(errs, fmt.Errorf("route rules use cache %s but no cache is configured", cacheLabel(name)))
			continue
		}
		if _, ok := caches.Get(name); !ok {
			errs = append(errs, fmt.Errorf("route rules use cache %s, which is not configured", cacheLabel(name)))
		}
	}
	return errors.Join(errs...)
}

func cacheLabel(name string) string {
	if name == "" {
		return "(default)"
	}
	return fmt.Sprintf("%q", name)
}

// state is one request's routing state; pooled, so the cache-hit path
// allocates almost nothing.
type state struct {
	h  *handler
	r  *request.Request
	rw respWriter

	caps    []int  // submatch indexes of the current rule's regex
	capSubj string // the string caps index into
	scratch []byte // template expansion buffer

	// Header changes from addheader/delheader/clearheaders, applied when
	// the headers are sent.
	hdrAdd    []wire.Var
	hdrDel    []string
	hdrClear  bool
	hdrStatus int

	stores []pendingStore // cachestore actions of this request
	body   []byte         // the response body, buffered for cachestore
}

// capture returns $n of the current rule ("" when absent).
func (st *state) capture(n int) string {
	if 2*n+1 >= len(st.caps) || st.caps[2*n] < 0 {
		return ""
	}
	return st.capSubj[st.caps[2*n]:st.caps[2*n+1]]
}

func (st *state) reset() {
	st.r = nil
	st.caps, st.capSubj = nil, ""
	st.hdrAdd, st.hdrDel = st.hdrAdd[:0], st.hdrDel[:0]
	st.hdrClear, st.hdrStatus = false, 0
	clear(st.stores)
	st.stores = st.stores[:0]
	if cap(st.body) > pooledBufMax {
		st.body = nil
	}
	st.body = st.body[:0]
	if cap(st.scratch) > pooledBufMax {
		st.scratch = nil
	}
	st.rw = respWriter{st: st}
}

// ServeRequest implements request.Handler.
func (h *handler) ServeRequest(w http.ResponseWriter, r *request.Request) {
	st := h.pool.Get().(*state)
	st.r, st.rw.w = r, w
	h.serve(st)
	if len(st.stores) > 0 {
		st.commitStores()
	}
	if len(h.cfg.FinalRoutes) > 0 {
		h.runChain(h.cfg.FinalRoutes, st)
	}
	st.reset()
	h.pool.Put(st)
}

func (h *handler) serve(st *state) {
	if h.cfg.hasStatic() {
		switch name, fi, res := h.staticLookup(st); res {
		case lookupForbidden:
			http.Error(&st.rw, "Forbidden", http.StatusForbidden)
			return
		case lookupFound:
			// As in uWSGI, the rules still run before a static file is sent
			// (they may deny it), but the app is never called for it.
			if h.runChain(h.cfg.Routes, st) != vBreak {
				serveFile(st, name, fi)
			}
			return
		}
	}
	if h.runChain(h.cfg.Routes, st) == vBreak {
		return
	}
	h.next.ServeRequest(&st.rw, st.r)
	if !st.rw.wroteHeader {
		// An app that wrote nothing still gets its headers through the
		// response rules.
		st.rw.WriteHeader(http.StatusOK)
	}
}

// runChain runs rules until one stops the chain; NEXT at the end means the
// request goes on (to the app, for the request chain).
func (h *handler) runChain(rules []Rule, st *state) verdict {
	for i := 0; i < len(rules); i++ {
		ru := &rules[i]
		if ru.label != "" || !ru.matches(st) {
			continue
		}
		switch v := ru.act(st); v {
		case vNext:
		case vGoto:
			i = ru.gotoTarget - 1 // the loop's i++ lands on the target
		default:
			return v
		}
	}
	return vNext
}

// matches tests the rule's subject and leaves its captures in st.
func (ru *Rule) matches(st *state) bool {
	st.caps, st.capSubj = nil, ""
	switch {
	case ru.run:
		return true
	case ru.cond != nil:
		return ru.cond.test(ru.cond, st) != ru.negate
	}
	var subj string
	if ru.subjStatus {
		subj = statusText(st.rw.status)
	} else {
		subj = st.r.Vars.Value(ru.subjVar)
	}
	if ru.needCaps {
		st.caps = ru.re.FindStringSubmatchIndex(subj)
		st.capSubj = subj
		return st.caps != nil
	}
	if ru.prefix != "" {
		return strings.HasPrefix(subj, ru.prefix)
	}
	return ru.re.MatchString(subj)
}

// statusText formats a status code for *-status rules without allocating
// for the three-digit codes HTTP uses.
func statusText(code int) string {
	if code < 100 || code > 999 {
		return ""
	}
	const digits = "0123456789"
	b := [3]byte{digits[code/100], digits[code/10%10], digits[code%10]}
	return string(b[:])
}

// respWriter is what the app and the actions write to. It applies the
// header actions and response-route when the headers go out, keeps a copy
// of the body for cachestore, and counts bytes and write errors.
type respWriter struct {
	st          *state
	w           http.ResponseWriter
	status      int
	wroteHeader bool
	pendingMods bool // header actions are waiting to be applied
	tee         bool // cachestore wants the body
	teeOverflow bool // the body outgrew maxStoreBody
	written     int64
	werr        error
}

// Header implements http.ResponseWriter.
func (rw *respWriter) Header() http.Header { return rw.w.Header() }

// WriteHeader implements http.ResponseWriter.
func (rw *respWriter) WriteHeader(code int) {
	if rw.wroteHeader {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		rw.w.WriteHeader(code) // informational: the real headers follow
		return
	}
	rw.wroteHeader = true
	rw.status = code
	st := rw.st
	if len(st.h.cfg.ResponseRoutes) > 0 {
		st.h.runChain(st.h.cfg.ResponseRoutes, st)
	}
	if rw.pendingMods {
		st.applyHeaderMods()
	}
	rw.w.WriteHeader(rw.status)
}

// applyHeaderMods applies the header actions in uWSGI's order: a reset
// drops the produced headers, removals apply to those, additions come last.
func (st *state) applyHeaderMods() {
	h := st.rw.w.Header()
	if st.hdrClear {
		clear(h)
	}
	if st.hdrStatus != 0 {
		st.rw.status = st.hdrStatus
	}
	for _, k := range st.hdrDel {
		h.Del(k)
	}
	for _, kv := range st.hdrAdd {
		h.Add(kv.Key, kv.Value)
	}
}

// Write implements http.ResponseWriter.
func (rw *respWriter) Write(b []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.tee {
		rw.keep(b)
	}
	n, err := rw.w.Write(b)
	rw.written += int64(n)
	if err != nil && rw.werr == nil {
		rw.werr = err
	}
	return n, err
}

func (rw *respWriter) keep(b []byte) {
	st := rw.st
	if rw.teeOverflow {
		return
	}
	if len(st.body)+len(b) > maxStoreBody {
		rw.teeOverflow = true
		st.body = st.body[:0]
		return
	}
	st.body = append(st.body, b...)
}

// writerOnly hides ReadFrom so io.Copy does not recurse.
type writerOnly struct{ io.Writer }

// ReadFrom lets http.ServeContent and io.Copy reach the frontend's
// ReadFrom, which is where net/http uses sendfile.
func (rw *respWriter) ReadFrom(src io.Reader) (int64, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.tee {
		return io.Copy(writerOnly{rw}, src)
	}
	var n int64
	var err error
	if rf, ok := rw.w.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{rw.w}, src)
	}
	rw.written += n
	if err != nil && rw.werr == nil {
		rw.werr = err
	}
	return n, err
}

// Flush implements http.Flusher when the frontend's writer does.
func (rw *respWriter) Flush() {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if f, ok := rw.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the frontend's writer.
func (rw *respWriter) Unwrap() http.ResponseWriter { return rw.w }
