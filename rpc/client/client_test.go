package client

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDialTarget(t *testing.T) {
	tests := []struct {
		addr, want, err string
	}{
		{addr: "127.0.0.1:7071", want: "passthrough:///127.0.0.1:7071"},
		{addr: "localhost:7071", want: "passthrough:///localhost:7071"},
		{addr: "[::1]:7071", want: "passthrough:///[::1]:7071"},
		{addr: "unix:///run/gouwsgi/admin.sock", want: "unix:///run/gouwsgi/admin.sock"},
		{addr: "/run/gouwsgi/admin.sock", want: "unix:///run/gouwsgi/admin.sock"},
		{addr: "unix:/run/gouwsgi/admin.sock", want: "unix:///run/gouwsgi/admin.sock"},
		{addr: "unix:run/admin.sock", want: "unix:run/admin.sock"},
		{addr: "unix:", err: "no socket path"},
		{addr: "", err: "admin address is empty"},
		{addr: "unix://", err: "no socket path"},
		{addr: "http://10.0.0.1:7071", err: "only unix:// or host:port"},
		{addr: "10.0.0.1", err: "has no port"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got, err := dialTarget(tt.addr)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("dialTarget(%q) = %q, %v; want error %q", tt.addr, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("dialTarget(%q) = %q, %v; want %q", tt.addr, got, err, tt.want)
			}
		})
	}
}

func TestNewRejectsBadTLS(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"missing CA", Config{Addr: "127.0.0.1:1", CACertFile: filepath.Join(dir, "none.pem")}, "read CA certificate"},
		{"CA not PEM", Config{Addr: "127.0.0.1:1", CACertFile: notPEM}, "holds no PEM certificate"},
		{"cert without key", Config{Addr: "127.0.0.1:1", CertFile: notPEM}, "needs both --cert and --key"},
		{"unloadable pair", Config{Addr: "127.0.0.1:1", CertFile: notPEM, KeyFile: notPEM}, "load client certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if err == nil {
				c.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %q does not mention %q", err, tt.err)
			}
		})
	}
}
