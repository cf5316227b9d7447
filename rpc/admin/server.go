package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	adminv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/admin/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Deps are the parts of the process the admin API operates. Node, Caches
// and Alarms are required; Legion is nil on a node that runs no legion.
type Deps struct {
	Node   Node
	Legion Legion
	Caches Caches
	Alarms Alarms
}

// stopGrace bounds how long Serve waits for in-flight calls (and open
// watch streams) after its context ends.
const stopGrace = 5 * time.Second

// Server is the admin gRPC server bound to its listener.
type Server struct {
	grpc   *grpc.Server
	ln     net.Listener
	health *health.Server
	log    *slog.Logger
	// stopping is closed when Serve begins to stop, ending watch streams
	// that GracefulStop would otherwise wait for.
	stopping chan struct{}
}

// New validates cfg, loads TLS material and the token, opens the listener
// and registers every service. Serve starts answering.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Node == nil || deps.Caches == nil || deps.Alarms == nil {
		return nil, errors.New("admin server needs Node, Caches and Alarms (Legion may be nil)")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "admin")
	tlsCfg, err := cfg.serverTLS()
	if err != nil {
		return nil, err
	}
	token, err := cfg.token()
	if err != nil {
		return nil, err
	}
	network, address, _ := splitAddr(cfg.Addr)
	if network == "tcp" && !isLoopback(address) && token == "" && cfg.ClientCAFile == "" {
		return nil, fmt.Errorf("refusing to serve the admin API on non-loopback address %q without a credential: "+
			"configure a token file (or %s) or a client CA for mutual TLS", cfg.Addr, TokenEnv)
	}
	if token == "" && cfg.ClientCAFile == "" {
		log.Warn("admin API requires no credential; anyone who can reach it can operate the node", "addr", cfg.Addr)
	}

	auth := newAuthenticator(token, cfg.ClientCAFile != "")
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(auth.unary(log)),
		grpc.ChainStreamInterceptor(auth.stream(log)),
	}
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	stopping := make(chan struct{})
	gs := grpc.NewServer(opts...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	adminv1.RegisterNodeServiceServer(gs, &nodeServer{node: deps.Node})
	adminv1.RegisterLegionServiceServer(gs, &legionServer{legion: deps.Legion})
	adminv1.RegisterCacheServiceServer(gs, &cacheServer{caches: deps.Caches})
	adminv1.RegisterAlarmServiceServer(gs, &alarmServer{alarms: deps.Alarms, stopping: stopping})
	for _, name := range []string{adminv1.NodeService_ServiceDesc.ServiceName, adminv1.CacheService_ServiceDesc.ServiceName,
		adminv1.AlarmService_ServiceDesc.ServiceName} {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	// Probes can tell a legion node from a standalone one.
	legionStatus := healthpb.HealthCheckResponse_SERVING
	if deps.Legion == nil {
		legionStatus = healthpb.HealthCheckResponse_NOT_SERVING
	}
	hs.SetServingStatus(adminv1.LegionService_ServiceDesc.ServiceName, legionStatus)

	ln, err := Listen(cfg)
	if err != nil {
		return nil, err
	}
	return &Server{grpc: gs, ln: ln, health: hs, log: log, stopping: stopping}, nil
}

// Addr is the address the server listens on (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve answers calls until ctx ends, then drains in-flight calls for up to
// a few seconds and closes the listener. It returns nil after a clean stop.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(s.ln) }()
	s.log.Info("admin API listening", "addr", s.ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("admin API: %w", err)
	case <-ctx.Done():
	}
	s.health.Shutdown()
	close(s.stopping)
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(stopGrace):
		s.grpc.Stop()
		<-stopped
	}
	return nil
}
