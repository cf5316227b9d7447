package pki

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCreateAndVerify(t *testing.T) {
	for _, kt := range []KeyType{Ed25519, ECDSA} {
		t.Run(string(kt), func(t *testing.T) {
			ca, err := CreateCA(Options{CommonName: "ca", Validity: time.Hour, KeyType: kt})
			if err != nil {
				t.Fatal(err)
			}
			node, err := CreateNode(ca, Options{CommonName: "n1", Hosts: []string{"10.0.0.1", "n1.example"}, Validity: 2 * time.Hour, KeyType: kt})
			if err != nil {
				t.Fatal(err)
			}
			caCert, nodeCert := mustParse(t, ca.Cert), mustParse(t, node.Cert)
			pool := x509.NewCertPool()
			pool.AddCert(caCert)
			for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
				if _, err := nodeCert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "n1.example", KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
					t.Errorf("verify for %v: %v", usage, err)
				}
			}
			if err := nodeCert.VerifyHostname("10.0.0.1"); err != nil {
				t.Error(err)
			}
			if nodeCert.NotAfter.After(caCert.NotAfter) {
				t.Errorf("node certificate outlives its CA: %v > %v", nodeCert.NotAfter, caCert.NotAfter)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	ca, err := CreateCA(Options{CommonName: "ca", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := CreateNode(ca, Options{CommonName: "n1", Hosts: []string{"n1"}, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	other, err := CreateCA(Options{CommonName: "other", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		fn   func() error
		want string
	}{
		{"CA without name", func() error { _, err := CreateCA(Options{Validity: time.Hour}); return err }, "CA common name is empty"},
		{"zero validity", func() error { _, err := CreateCA(Options{CommonName: "x"}); return err }, "validity must be positive"},
		{"bad key type", func() error {
			_, err := CreateCA(Options{CommonName: "x", Validity: time.Hour, KeyType: "rsa"})
			return err
		}, `unknown key type "rsa"`},
		{"no hosts", func() error { _, err := CreateNode(ca, Options{CommonName: "n", Validity: time.Hour}); return err }, "at least one host"},
		{"empty host", func() error {
			_, err := CreateNode(ca, Options{CommonName: "n", Hosts: []string{" "}, Validity: time.Hour})
			return err
		}, "empty host"},
		{"leaf as CA", func() error {
			_, err := CreateNode(leaf, Options{CommonName: "n", Hosts: []string{"n"}, Validity: time.Hour})
			return err
		}, "is not a CA"},
		{"mismatched CA key", func() error {
			_, err := CreateNode(PEM{Cert: ca.Cert, Key: other.Key}, Options{CommonName: "n", Hosts: []string{"n"}, Validity: time.Hour})
			return err
		}, "create certificate"},
		{"garbage CA", func() error {
			_, err := CreateNode(PEM{Cert: []byte("x")}, Options{CommonName: "n", Hosts: []string{"n"}, Validity: time.Hour})
			return err
		}, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.fn(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := ParseKeyType("ECDSA"); err != nil {
		t.Error(err)
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	p := PEM{Cert: []byte("cert"), Key: []byte("key")}
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := p.WriteFiles(cert, key, false); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{cert, key} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", f, fi.Mode().Perm(), err)
		}
	}
	if err := p.WriteFiles(cert, key, false); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("overwrite without force: %v", err)
	}
	if err := (PEM{Cert: []byte("new"), Key: []byte("k2")}).WriteFiles(cert, key, true); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFiles(cert, key)
	if err != nil || string(got.Cert) != "new" || string(got.Key) != "k2" {
		t.Errorf("ReadFiles = %q, %v", got, err)
	}
}

func mustParse(t *testing.T, p []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(p)
	if b == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
