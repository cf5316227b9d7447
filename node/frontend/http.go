package frontend

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gouwsgi/gouwsgi/node/request"
	"github.com/gouwsgi/gouwsgi/node/wire"
)

// httpHandler serves https through net/http (plain HTTP has h1Server).
type httpHandler struct {
	s *Server
}

// ServeHTTP turns an HTTPS request into uwsgi vars, as uWSGI's https router
// does before forwarding to a worker.
func (hh *httpHandler) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	start := time.Now()
	r := &request.Request{Ctx: hr.Context(), Start: start}
	r.Vars = httpsVars(hr)
	rw := &responseWriter{ResponseWriter: w}
	if n := r.Vars.EncodedLen(); n > hh.s.cfg.BufferSize {
		hh.s.log.Warn(fmt.Sprintf("invalid request block size: %d (max %d)...skip (%s %s from %s; raise buffer-size)", n, hh.s.cfg.BufferSize, hr.Method, hr.RequestURI, r.Vars.Value("REMOTE_ADDR")))
		http.Error(rw, "431 Request Header Fields Too Large", http.StatusRequestHeaderFieldsTooLarge)
		hh.s.logRequest(r, rw, start)
		return
	}
	if hr.Body != nil && hr.Body != http.NoBody {
		r.Body = hr.Body
	}
	hh.s.h.ServeRequest(rw, r)
	hh.s.logRequest(r, rw, start)
	if r.Log.Abort {
		panic(http.ErrAbortHandler)
	}
}

// httpsVars builds the CGI environ of an HTTPS request.
func httpsVars(hr *http.Request) wire.Vars {
	vs := make(wire.Vars, 0, 16+len(hr.Header))
	path, query, _ := strings.Cut(hr.RequestURI, "?")
	if hr.URL != nil && hr.URL.Path != "" {
		path = hr.URL.Path
	}
	vs = append(vs,
		wire.Var{Key: "REQUEST_METHOD", Value: hr.Method},
		wire.Var{Key: "REQUEST_URI", Value: hr.RequestURI},
		wire.Var{Key: "PATH_INFO", Value: path},
		wire.Var{Key: "QUERY_STRING", Value: query},
		wire.Var{Key: "SERVER_PROTOCOL", Value: hr.Proto},
		wire.Var{Key: "SCRIPT_NAME", Value: ""},
		wire.Var{Key: "REQUEST_SCHEME", Value: "https"},
		wire.Var{Key: "HTTPS", Value: "on"},
	)
	host, port, err := net.SplitHostPort(hr.RemoteAddr)
	if err != nil {
		host = hr.RemoteAddr
	}
	vs = append(vs, wire.Var{Key: "REMOTE_ADDR", Value: host}, wire.Var{Key: "REMOTE_PORT", Value: port})
	if la, ok := hr.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if h, p, err := net.SplitHostPort(la.String()); err == nil {
			vs = append(vs, wire.Var{Key: "SERVER_NAME", Value: serverName(hr.Host, h)}, wire.Var{Key: "SERVER_PORT", Value: p})
		} else {
			vs = append(vs, wire.Var{Key: "SERVER_NAME", Value: serverName(hr.Host, "localhost")}, wire.Var{Key: "SERVER_PORT", Value: "80"})
		}
	}
	if ct := hr.Header.Get("Content-Type"); ct != "" {
		vs = append(vs, wire.Var{Key: "CONTENT_TYPE", Value: ct})
	}
	if hr.ContentLength >= 0 && (hr.ContentLength > 0 || hr.Header.Get("Content-Length") != "") {
		vs = append(vs, wire.Var{Key: "CONTENT_LENGTH", Value: strconv.FormatInt(hr.ContentLength, 10)})
	}
	if hr.Host != "" && hr.Header.Get("Host") == "" {
		vs = append(vs, wire.Var{Key: "HTTP_HOST", Value: hr.Host})
	}
	for k, vals := range hr.Header {
		if k == "Content-Type" || k == "Content-Length" {
			continue
		}
		vs = append(vs, wire.Var{Key: cgiName(k), Value: strings.Join(vals, ", ")})
	}
	return vs
}

func serverName(host, fallback string) string {
	if host == "" {
		return fallback
	}
	// Without a port (after any IPv6 brackets) there is nothing to split,
	// and SplitHostPort would allocate an error to say so.
	if strings.LastIndexByte(host, ':') < strings.LastIndexByte(host, ']')+1 {
		return host
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// cgiName turns "X-Forwarded-For" into "HTTP_X_FORWARDED_FOR".
func cgiName(k string) string {
	b := make([]byte, 5+len(k))
	copy(b, "HTTP_")
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '-':
			c = '_'
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		b[5+i] = c
	}
	return string(b)
}

// responseWriter records what the request log needs and whether the head
// went out (after which an error can only cut the connection).
type responseWriter struct {
	http.ResponseWriter
	status int
	size   int64
}

func (rw *responseWriter) WriteHeader(code int) {
	if rw.status != 0 {
		return
	}
	rw.status = code
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *responseWriter) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	n, err := rw.ResponseWriter.Write(b)
	rw.size += int64(n)
	return n, err
}

// ReadFrom lets io.Copy from a file (static files) use sendfile.
func (rw *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	n, err := io.Copy(rw.ResponseWriter, r)
	rw.size += n
	return n, err
}

func (rw *responseWriter) Flush() {
	if f, ok := rw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// HeadSent reports whether the status line has been written.
func (rw *responseWriter) HeadSent() bool { return rw.status != 0 }

// Unwrap gives http.ResponseController the real writer.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

func (s *Server) logRequest(r *request.Request, rw *responseWriter, start time.Time) {
	if s.reqLog == nil {
		return
	}
	hdrs, hsize := 0, 0
	for k, vs := range rw.Header() {
		hdrs += len(vs)
		for _, v := range vs {
			hsize += len(k) + len(v) + 4
		}
	}
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	// uWSGI counts the whole head: status line, header lines, blank line.
	proto := r.Vars.Value("SERVER_PROTOCOL")
	if proto == "" {
		proto = "HTTP/1.0"
	}
	hsize += len(proto) + len(" 200 ") + len(http.StatusText(status)) + len("\r\n\r\n")
	s.reqLog.LogRequest(r, request.Result{Status: status, Size: rw.size, Headers: hdrs, HeaderBytes: hsize, Duration: time.Since(start)})
}
