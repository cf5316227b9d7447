// Package stats owns what a node reports about itself: the stats server
// (uWSGI's JSON layout, once per connection on a unix socket or TCP, or over
// HTTP with stats-http) and the Prometheus /metrics endpoint.
package stats

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gouwsgi/gouwsgi/cache"
	"github.com/gouwsgi/gouwsgi/node/frontend"
	"github.com/gouwsgi/gouwsgi/node/worker"
)

// Version is reported as the stats "version".
const Version = "2.0.30-gouwsgi"

// Stats is the stats server's document. The keys and their types are
// uWSGI's, so uwsgitop and uwsgicachetop read it unchanged.
type Stats struct {
	Version           string                 `json:"version"`
	ListenQueue       int                    `json:"listen_queue"`
	ListenQueueErrors int                    `json:"listen_queue_errors"`
	SignalQueue       int                    `json:"signal_queue"`
	Load              int                    `json:"load"`
	PID               int                    `json:"pid"`
	UID               int                    `json:"uid"`
	GID               int                    `json:"gid"`
	CWD               string                 `json:"cwd"`
	Locks             []map[string]int       `json:"locks"`
	Caches            []cache.Stats          `json:"caches,omitempty"`
	Sockets           []frontend.SocketStats `json:"sockets"`
	Workers           []worker.WorkerStats   `json:"workers"`
	Daemons           []any                  `json:"daemons"`
	Spoolers          []any                  `json:"spoolers"`
	Crons             []any                  `json:"crons"`
	Metrics           map[string]any         `json:"metrics"`
	Legions           []any                  `json:"legions,omitempty"`
}

// Sources are the parts of the node the document is built from; nil
// members are left out.
type Sources struct {
	Pool     *worker.Pool
	Frontend *frontend.Server
	Caches   *cache.Registry
	// Legions, when set, fills legions[] (the cluster layer, wired by cmd).
	Legions func() []any
}

// Snapshot builds the document now.
func (s Sources) Snapshot() Stats {
	cwd, _ := os.Getwd()
	st := Stats{
		Version: Version, PID: os.Getpid(), UID: os.Getuid(), GID: os.Getgid(), CWD: cwd,
		Locks:   []map[string]int{{"user 0": 0}, {"signal": 0}, {"filemon": 0}, {"timer": 0}, {"rbtimer": 0}, {"cron": 0}, {"rpc": 0}, {"snmp": 0}},
		Sockets: []frontend.SocketStats{}, Workers: []worker.WorkerStats{},
		Daemons: []any{}, Spoolers: []any{}, Crons: []any{}, Metrics: map[string]any{},
	}
	if s.Pool != nil {
		ps := s.Pool.Stats()
		st.Workers = ps.Workers
		st.ListenQueue = ps.ListenQueue
		st.Load = ps.Busy + ps.ListenQueue
	}
	if s.Frontend != nil {
		st.Sockets = s.Frontend.Sockets()
		for _, so := range st.Sockets {
			st.ListenQueue += so.Queue
		}
	}
	if s.Caches != nil {
		for _, c := range s.Caches.All() {
			cs := c.Stats()
			st.Caches = append(st.Caches, cs)
			// uWSGI lists each cache's lock after its own locks.
			st.Locks = append(st.Locks, map[string]int{"cache_" + cs.Name: 0})
		}
	}
	if s.Legions != nil {
		st.Legions = s.Legions()
	}
	return st
}

// Server is a running stats server.
type Server struct {
	src  Sources
	http bool
	l    net.Listener
	log  *slog.Logger
}

// Listen opens the stats server on addr (unix path, @abstract or
// host:port). With asHTTP the document is wrapped in an HTTP response, as
// stats-http does.
func Listen(addr string, asHTTP bool, src Sources, log *slog.Logger) (*Server, error) {
	l, err := frontend.Listen(addr, frontend.ListenConfig{Backlog: 100}, log)
	if err != nil {
		return nil, fmt.Errorf("stats server %s: %w", addr, err)
	}
	log.Info(fmt.Sprintf("*** Stats server enabled on %s fd: %s ***", addr, l.Addr()))
	return &Server{src: src, http: asHTTP, l: l, log: log}, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.l.Addr() }

// Serve answers every connection with one document, then closes it.
func (s *Server) Serve(ctx context.Context) error {
	go func() { <-ctx.Done(); _ = s.l.Close() }()
	for {
		c, err := s.l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("stats server accept: %w", err)
		}
		go s.answer(c)
	}
}

// headWait bounds how long stats-http waits for a request head: a client
// that sends none (a plain socket reader, as with the raw stats server)
// still gets the document.
const headWait = time.Second

func (s *Server) answer(c net.Conn) {
	defer c.Close()
	if s.http {
		// Read the request head (if the client sends one) before answering,
		// so curl does not see a reset.
		_ = c.SetReadDeadline(time.Now().Add(headWait))
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil || strings.TrimSpace(line) == "" {
				break
			}
		}
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	body, err := json.Marshal(s.src.Snapshot())
	if err != nil {
		s.log.Error("stats server: encode stats", "err", err)
		return
	}
	if s.http {
		fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	}
	_, _ = c.Write(body)
}

// Close stops the listener.
func (s *Server) Close() error { return s.l.Close() }

// Handler serves the stats document over net/http (used by the metrics
// listener at /stats).
func (s Sources) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Snapshot())
	})
}
