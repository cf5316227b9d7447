// Package frontend owns a node's listeners: http and http-socket (HTTP/1.1
// with keep-alive and chunked bodies), https (TLS, HTTP/2 when the client
// offers it) and socket/uwsgi-socket (the uwsgi binary protocol nginx's
// uwsgi_pass speaks). Each turns a request into uwsgi vars plus a streamed
// body, passes it to the node's handler and logs it.
package frontend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gouwsgi/gouwsgi/node/request"
)

// Config holds the request-limit options.
type Config struct {
	BufferSize    int           // buffer-size: the largest vars block (request head) accepted
	MaxVars       int           // the most vars a uwsgi packet may carry
	HTTPTimeout   time.Duration // http-timeout: a client that sends nothing for this long is cut
	SocketTimeout time.Duration // socket-timeout: the same for uwsgi sockets
	Listen        ListenConfig
}

// DefaultConfig returns uWSGI's defaults.
func DefaultConfig() Config {
	return Config{BufferSize: 4096, MaxVars: 128, HTTPTimeout: 60 * time.Second, SocketTimeout: 4 * time.Second, Listen: ListenConfig{Backlog: 100}}
}

// SocketStats is one entry of the stats server's sockets[].
type SocketStats struct {
	Name       string `json:"name"`
	Proto      string `json:"proto"`
	Queue      int    `json:"queue"`
	MaxQueue   int    `json:"max_queue"`
	Shared     int    `json:"shared"`
	CanOffload int    `json:"can_offload"`
}

// Server runs every listener of a node.
type Server struct {
	cfg     Config
	h       request.Handler
	reqLog  request.Logger
	log     *slog.Logger
	mu      sync.Mutex
	sockets []*socket
	wg      sync.WaitGroup
	conns   sync.WaitGroup // uwsgi connections in flight
}

type socket struct {
	name, proto string
	l           net.Listener
	unixPath    string
	srv         *http.Server // https
	h1          *h1Server    // http, http-socket
}

// New builds a server; add listeners, then Serve.
func New(cfg Config, h request.Handler, reqLog request.Logger, log *slog.Logger) *Server {
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = DefaultConfig().BufferSize
	}
	if cfg.MaxVars <= 0 {
		cfg.MaxVars = DefaultConfig().MaxVars
	}
	return &Server{cfg: cfg, h: h, reqLog: reqLog, log: log}
}

func (s *Server) add(name, proto string, l net.Listener) *socket {
	so := &socket{name: name, proto: proto, l: l}
	if ul, ok := l.(*net.UnixListener); ok && !strings.HasPrefix(ul.Addr().String(), "@") {
		so.unixPath = ul.Addr().String()
	}
	s.mu.Lock()
	s.sockets = append(s.sockets, so)
	s.mu.Unlock()
	return so
}

// AddHTTP listens for plain HTTP on addr (http, http-socket).
func (s *Server) AddHTTP(addr string) (net.Addr, error) {
	l, err := Listen(addr, s.cfg.Listen, s.log)
	if err != nil {
		return nil, fmt.Errorf("http %s: %w", addr, err)
	}
	so := s.add(addr, "http", l)
	so.h1 = newH1Server(s, l)
	s.log.Info(fmt.Sprintf("HTTP server bound on %s (fd %s)", l.Addr(), addr))
	return l.Addr(), nil
}

// AddHTTPS listens for HTTPS: spec is uWSGI's "addr,cert,key[,ciphers,ca]".
// A ca makes client certificates mandatory and verified against it.
func (s *Server) AddHTTPS(spec string) (net.Addr, error) {
	parts := strings.Split(spec, ",")
	if len(parts) < 3 {
		return nil, fmt.Errorf("https %q: want addr,cert,key[,ciphers,ca]", spec)
	}
	cert, err := tls.LoadX509KeyPair(parts[1], parts[2])
	if err != nil {
		return nil, fmt.Errorf("https %s: load certificate %s and key %s: %w", parts[0], parts[1], parts[2], err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if len(parts) >= 4 && parts[3] != "" {
		s.log.Warn(fmt.Sprintf("https %s: OpenSSL cipher list %q ignored: gouwsgi uses Go's TLS cipher suites", parts[0], parts[3]))
	}
	if len(parts) >= 5 && parts[4] != "" {
		pem, err := os.ReadFile(strings.TrimPrefix(parts[4], "!"))
		if err != nil {
			return nil, fmt.Errorf("https %s: read ca %s: %w", parts[0], parts[4], err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("https %s: ca %s holds no PEM certificate", parts[0], parts[4])
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	l, err := Listen(parts[0], s.cfg.Listen, s.log)
	if err != nil {
		return nil, fmt.Errorf("https %s: %w", parts[0], err)
	}
	so := s.add(parts[0], "https", l)
	so.srv = s.httpsServer()
	so.srv.TLSConfig = tc
	s.log.Info(fmt.Sprintf("HTTPS server bound on %s", l.Addr()))
	return l.Addr(), nil
}

// AddUWSGI listens for the uwsgi protocol (socket, uwsgi-socket).
func (s *Server) AddUWSGI(addr string) (net.Addr, error) {
	l, err := Listen(addr, s.cfg.Listen, s.log)
	if err != nil {
		return nil, fmt.Errorf("uwsgi socket %s: %w", addr, err)
	}
	s.add(addr, "uwsgi", l)
	s.log.Info(fmt.Sprintf("uwsgi socket bound to %s", addr))
	return l.Addr(), nil
}

// httpsServer serves https with net/http, which brings TLS and HTTP/2;
// plain HTTP goes through h1Server.
func (s *Server) httpsServer() *http.Server {
	srv := &http.Server{
		Handler:           &httpHandler{s: s},
		ReadHeaderTimeout: s.cfg.HTTPTimeout,
		IdleTimeout:       s.cfg.HTTPTimeout,
		// The vars-block check in the handler enforces buffer-size with a
		// logged 431; this cap only bounds memory for absurd heads.
		MaxHeaderBytes: 1 << 16,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return srv
}

// Serve serves every listener until ctx ends, then stops accepting and
// waits up to grace for requests in flight.
func (s *Server) Serve(ctx context.Context, grace time.Duration) error {
	s.mu.Lock()
	sockets := append([]*socket(nil), s.sockets...)
	s.mu.Unlock()
	errc := make(chan error, len(sockets))
	for _, so := range sockets {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			var err error
			switch {
			case so.proto == "uwsgi":
				err = s.serveUWSGI(ctx, so.l)
			case so.h1 != nil:
				err = so.h1.serve()
			default:
				err = so.srv.ServeTLS(so.l, "", "")
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				errc <- fmt.Errorf("serve %s %s: %w", so.proto, so.name, err)
			}
		}()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		s.shutdown(grace)
		return err
	}
	s.shutdown(grace)
	return nil
}

func (s *Server) shutdown(grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for _, so := range s.sockets {
		switch {
		case so.srv != nil:
			_ = so.srv.Shutdown(ctx)
		case so.h1 != nil:
			so.h1.shutdown(ctx)
		default:
			_ = so.l.Close()
		}
	}
	done := make(chan struct{})
	go func() { s.conns.Wait(); s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("grace period over: closing requests still in flight")
		for _, so := range s.sockets {
			if so.srv != nil {
				_ = so.srv.Close()
			}
			if so.h1 != nil {
				so.h1.closeConns(false)
			}
		}
	}
}

// Vacuum removes the unix socket files (vacuum).
func (s *Server) Vacuum() {
	for _, so := range s.sockets {
		if so.unixPath != "" {
			if err := os.Remove(so.unixPath); err == nil {
				s.log.Info(fmt.Sprintf("VACUUM: unix socket %s removed.", so.unixPath))
			}
		}
	}
}

// Sockets reports the listeners for the stats server.
func (s *Server) Sockets() []SocketStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SocketStats, 0, len(s.sockets))
	for _, so := range s.sockets {
		st := SocketStats{Name: so.name, Proto: so.proto, MaxQueue: s.cfg.Listen.Backlog}
		if q, m, ok := queueLen(so.l); ok {
			st.Queue, st.MaxQueue = q, m
		}
		out = append(out, st)
	}
	return out
}
