package secure

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
)

func TestDerivationIsDeterministic(t *testing.T) {
	a, err := DeriveCA("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	b, err := DeriveCA("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Cert.Raw, b.Cert.Raw) {
		t.Fatal("same secret gave different CA certificates")
	}
	c, err := DeriveCA("other")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Cert.Raw, c.Cert.Raw) {
		t.Fatal("different secrets gave the same CA")
	}
	k1, _ := GossipKey("s3cret")
	k2, _ := GossipKey("other")
	if len(k1) != 32 || bytes.Equal(k1, k2) {
		t.Fatalf("gossip keys: len %d, equal %v", len(k1), bytes.Equal(k1, k2))
	}
	if _, err := GossipKey(""); !errors.Is(err, ErrEmptySecret) {
		t.Fatalf("empty secret: %v", err)
	}
}

// handshake runs a TLS handshake over a real loopback connection.
func handshake(t *testing.T, serverSecret, clientSecret string) (serverErr, clientErr error) {
	t.Helper()
	srv, _, err := FromSecret(serverSecret, "server")
	if err != nil {
		t.Fatal(err)
	}
	_, cli, err := FromSecret(clientSecret, "client")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, srv)
		err = tc.Handshake()
		if err == nil {
			// TLS 1.3 clients verify after the server finishes: read to
			// see the client's verdict.
			_, err = tc.Read(make([]byte, 1))
		}
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(c, cli)
	clientErr = tc.Handshake()
	if clientErr == nil {
		_, clientErr = tc.Write([]byte{1})
	}
	c.Close()
	return <-done, clientErr
}

func TestMutualTLS(t *testing.T) {
	tests := []struct {
		name           string
		server, client string
		wantOK         bool
	}{
		{"same secret", "s3cret", "s3cret", true},
		{"wrong secret", "s3cret", "guess", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serr, cerr := handshake(t, tt.server, tt.client)
			if tt.wantOK {
				if serr != nil || cerr != nil {
					t.Fatalf("server %v, client %v", serr, cerr)
				}
				return
			}
			if serr == nil || cerr == nil {
				t.Fatalf("both ends must fail: server %v, client %v", serr, cerr)
			}
			if !strings.Contains(cerr.Error(), "certificate") {
				t.Fatalf("client error does not name the certificate problem: %v", cerr)
			}
		})
	}
}

func TestFromFilesErrors(t *testing.T) {
	_, _, err := FromFiles(Files{Cert: "/nonexistent/c.pem", Key: "/nonexistent/k.pem", CA: "/nonexistent/ca.pem"})
	if err == nil || !strings.Contains(err.Error(), "legion-tls-cert") {
		t.Fatalf("err = %v", err)
	}
}
