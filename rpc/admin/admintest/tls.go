package admintest

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/rpc/client/pki"
)

// TLSFiles are the paths of a test CA, a server certificate for 127.0.0.1
// and localhost, and a client certificate, all signed by that CA.
type TLSFiles struct {
	CA                    string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
}

// WriteTLSFiles creates the test certificates in a temporary directory.
func WriteTLSFiles(t testing.TB) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	f := TLSFiles{
		CA:         filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem"),
	}
	ca, err := pki.CreateCA(pki.Options{CommonName: "test CA", Validity: time.Hour, KeyType: pki.Ed25519})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteFiles(f.CA, filepath.Join(dir, "ca-key.pem"), false); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ cn, cert, key string }{
		{"n1", f.ServerCert, f.ServerKey},
		{"operator", f.ClientCert, f.ClientKey},
	} {
		p, err := pki.CreateNode(ca, pki.Options{CommonName: c.cn, Hosts: []string{"127.0.0.1", "localhost"},
			Validity: time.Hour, KeyType: pki.ECDSA})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WriteFiles(c.cert, c.key, false); err != nil {
			t.Fatal(err)
		}
	}
	return f
}
