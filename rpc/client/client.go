package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	adminv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/admin/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// DefaultAddr is the admin API's default address (rpc/admin.DefaultAddr).
const DefaultAddr = "127.0.0.1:7071"

// Config says how to reach a node's admin API.
type Config struct {
	// Addr is "unix:///path/to.sock", "unix:/path/to.sock",
	// "/path/to.sock" or "host:port".
	Addr string
	// CACertFile enables TLS, verifying the server against these CAs.
	CACertFile string
	// CertFile and KeyFile are the client certificate for mutual TLS.
	CertFile, KeyFile string
	// ServerName overrides the name checked in the server certificate
	// (default: the host part of Addr).
	ServerName string
	// Token is the bearer token sent with every call ("" sends none).
	Token string
}

// Client holds one connection and the admin service clients on it.
type Client struct {
	conn   *grpc.ClientConn
	Node   adminv1.NodeServiceClient
	Legion adminv1.LegionServiceClient
	Cache  adminv1.CacheServiceClient
	Alarm  adminv1.AlarmServiceClient
	Health healthpb.HealthClient
}

// New creates a client; the connection is made lazily by the first call.
func New(cfg Config) (*Client, error) {
	target, err := dialTarget(cfg.Addr)
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if cfg.CACertFile != "" || cfg.CertFile != "" {
		tc, err := cfg.tlsConfig()
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tc)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if cfg.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(cfg.Token)))
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("admin client for %s: %w", cfg.Addr, err)
	}
	return &Client{
		conn:   conn,
		Node:   adminv1.NewNodeServiceClient(conn),
		Legion: adminv1.NewLegionServiceClient(conn),
		Cache:  adminv1.NewCacheServiceClient(conn),
		Alarm:  adminv1.NewAlarmServiceClient(conn),
		Health: healthpb.NewHealthClient(conn),
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Unreachable reports whether err is a call that failed because the
// connection to the node could not be made or kept (node down, wrong
// address, TLS refused), as opposed to an UNAVAILABLE answer from the
// node itself (no Raft leader, not the leader), after which the
// connection is still up.
func (c *Client) Unreachable(err error) bool {
	return status.Code(err) == codes.Unavailable && c.conn.GetState() != connectivity.Ready
}

// dialTarget turns an admin address into a gRPC target.
func dialTarget(addr string) (string, error) {
	switch {
	case addr == "":
		return "", errors.New("admin address is empty: use unix:///path or host:port")
	case strings.HasPrefix(addr, "unix:"):
		// unix:///abs/path, and uWSGI's unix:/abs/path or unix:rel/path.
		path := strings.TrimPrefix(strings.TrimPrefix(addr, "unix:"), "//")
		switch {
		case path == "":
			return "", fmt.Errorf("admin address %q has no socket path", addr)
		case strings.HasPrefix(path, "/"):
			return "unix://" + path, nil
		}
		return "unix:" + path, nil
	case strings.HasPrefix(addr, "/"):
		return "unix://" + addr, nil
	case strings.Contains(addr, "://"):
		return "", fmt.Errorf("admin address %q: only unix:// or host:port are supported", addr)
	}
	if !strings.Contains(addr, ":") {
		return "", fmt.Errorf("admin address %q has no port: use host:port", addr)
	}
	// passthrough keeps the address as given instead of resolving it
	// through the DNS resolver (which would reject a bare "host:port").
	return "passthrough:///" + addr, nil
}

func (c Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CACertFile != "" {
		pem, err := os.ReadFile(c.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("read CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", c.CACertFile)
		}
		tc.RootCAs = pool
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("a client certificate needs both --cert and --key")
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate %s / key %s: %w", c.CertFile, c.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// bearer sends the token as "authorization: Bearer <token>". It does not
// demand transport security because the admin API may be a unix socket or
// loopback without TLS; the server refuses any other address without TLS.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }
