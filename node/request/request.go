// Package request owns the one request type every part of a node shares:
// frontends build it, the router inspects and rewrites it, the worker pool
// sends it to Python. Responses go through the standard
// http.ResponseWriter, which every frontend provides.
package request

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/gouwsgi/gouwsgi/node/wire"
)

// Request is one request: the uwsgi vars (the WSGI/CGI environ, as nginx's
// uwsgi_pass or our HTTP frontend builds them) and a streamed body.
type Request struct {
	// Ctx ends when the client goes away; nil means context.Background().
	Ctx context.Context
	// Vars is the environ in arrival order; route actions may rewrite it.
	Vars wire.Vars
	// Body streams the request body; nil means no body.
	Body io.Reader
	// Modifier1 and Modifier2 come from the uwsgi packet (0/0 over HTTP).
	Modifier1, Modifier2 uint8
	// Start is when the frontend finished reading the request head.
	Start time.Time
	// Log collects what the request log line needs beyond the vars.
	Log LogInfo
}

// LogInfo is filled while the request runs and read by the request logger.
type LogInfo struct {
	WorkerID  int        // 0 when no worker was involved (cache hit, static file)
	WorkerPID int        // pid of the worker that served it
	Exception bool       // the app raised
	NoLog     bool       // set by the donotlog route action
	LogVars   []wire.Var // set by logvar route actions and uwsgi.set_logvar
	// Abort means the response was cut after its head was sent (the worker
	// died mid-body): the frontend must drop the connection, not end it
	// cleanly, so the client cannot take a partial body for a whole one.
	Abort bool
}

// Context returns r.Ctx or context.Background().
func (r *Request) Context() context.Context {
	if r.Ctx == nil {
		return context.Background()
	}
	return r.Ctx
}

// Handler serves a request. It writes the whole response to w before it
// returns.
type Handler interface {
	ServeRequest(w http.ResponseWriter, r *Request)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(w http.ResponseWriter, r *Request)

// ServeRequest calls f(w, r).
func (f HandlerFunc) ServeRequest(w http.ResponseWriter, r *Request) { f(w, r) }

// Result is what the frontend observed of the response, for the request log.
type Result struct {
	Status      int
	Size        int64 // body bytes sent
	Headers     int   // number of response headers
	HeaderBytes int   // size of the response head
	Duration    time.Duration
}

// Logger receives every finished request (the request log, metrics).
type Logger interface {
	LogRequest(r *Request, res Result)
}
