package admin

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
)

// DefaultAddr is where the admin API listens unless configured otherwise.
// gouwsgictl's default --addr must stay equal to it.
const DefaultAddr = "127.0.0.1:7071"

// TokenEnv is the environment variable holding the bearer token when no
// token file is configured. Tokens are never taken from the command line,
// where ps(1) would show them.
const TokenEnv = "GOUWSGI_TOKEN"

// Config configures the admin API server.
type Config struct {
	// Addr is "unix:///path/to.sock" or "unix:/path/to.sock" (created
	// with mode 0600), or "host:port". A TCP address that is not loopback needs TLS and a
	// credential (token or client certificates).
	Addr string
	// CertFile and KeyFile enable TLS with this server certificate.
	CertFile string
	KeyFile  string
	// ClientCAFile enables mutual TLS: clients must present a certificate
	// signed by one of these CAs.
	ClientCAFile string
	// TokenFile holds the bearer token clients must send. When empty, the
	// token comes from $GOUWSGI_TOKEN; when both are empty no token is
	// required.
	TokenFile string
	// Logger receives one debug line per call and warnings; nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns a loopback-only configuration without TLS.
func DefaultConfig() Config {
	return Config{Addr: DefaultAddr}
}

// tlsEnabled reports whether a server certificate is configured.
func (c Config) tlsEnabled() bool { return c.CertFile != "" }

// Validate checks the fields against each other without touching files.
func (c Config) Validate() error {
	if c.Addr == "" {
		return errors.New("admin addr is empty: use unix:///path or host:port")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("admin TLS needs both a certificate file and a key file")
	}
	if c.ClientCAFile != "" && !c.tlsEnabled() {
		return errors.New("admin client CA (mutual TLS) needs a server certificate and key")
	}
	network, address, err := splitAddr(c.Addr)
	if err != nil {
		return err
	}
	if network == "tcp" && !isLoopback(address) && !c.tlsEnabled() {
		return fmt.Errorf("refusing to serve the admin API on non-loopback address %q without TLS: "+
			"configure a certificate and key, or listen on 127.0.0.1 or a unix socket", c.Addr)
	}
	return nil
}

// splitAddr turns an admin address into a network and an address.
func splitAddr(addr string) (network, address string, err error) {
	// unix:///abs/path (URL form) and unix:/abs/path or unix:rel/path
	// (uWSGI's form) all name a socket path.
	if rest, ok := strings.CutPrefix(addr, "unix:"); ok {
		path := strings.TrimPrefix(rest, "//")
		if path == "" {
			return "", "", fmt.Errorf("admin addr %q has no socket path", addr)
		}
		return "unix", path, nil
	}
	if strings.HasPrefix(addr, "/") {
		return "unix", addr, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", "", fmt.Errorf("admin addr %q is neither unix:///path nor host:port: %w", addr, err)
	}
	return "tcp", addr, nil
}

// isLoopback reports whether a host:port binds only to loopback. An empty
// host binds every interface, so it is not loopback.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Listen validates cfg and opens its listener. A unix socket is created
// with mode 0600 after removing a stale socket left by a previous run (a
// regular file at that path is an error, never removed).
func Listen(cfg Config) (net.Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	network, address, err := splitAddr(cfg.Addr)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		return listenUnix(address)
	}
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("listen admin %s: %w", address, err)
	}
	return ln, nil
}

func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("admin socket path %s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale admin socket %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen admin unix socket %s: %w", path, err)
	}
	// Between bind and chmod the socket has the umask's mode; the token and
	// the directory's permissions cover that window.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod admin socket %s: %w", path, err)
	}
	return ln, nil
}

// serverTLS loads the TLS configuration, or returns nil without TLS.
func (c Config) serverTLS() (*tls.Config, error) {
	if !c.tlsEnabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load admin TLS certificate %s / key %s: %w", c.CertFile, c.KeyFile, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile != "" {
		pool, err := loadCertPool(c.ClientCAFile)
		if err != nil {
			return nil, err
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

func loadCertPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// token returns the configured bearer token ("" when none is required).
func (c Config) token() (string, error) {
	if c.TokenFile == "" {
		return strings.TrimSpace(os.Getenv(TokenEnv)), nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("read admin token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("admin token file %s is empty", c.TokenFile)
	}
	return tok, nil
}
