package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// selfSigned writes a certificate and key for 127.0.0.1 into dir.
func selfSigned(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	return certFile, keyFile
}

// freePort asks the kernel for a free loopback port (nginx must be told
// its port before it starts).
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestNginxUWSGIPass puts real nginx (TLS) in front of gouwsgi's uwsgi
// unix socket with chmod-socket = 664: nginx's uwsgi_params, HTTPS and a
// custom uwsgi_param reach Django's request.META.
func TestNginxUWSGIPass(t *testing.T) {
	requireE2E(t)
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Fatal("nginx is not installed: run scripts/deps.sh (make test does)")
	}
	root := repo(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "app.sock")
	ini := filepath.Join(dir, "app.ini")
	writeFile(t, ini, fmt.Sprintf(`[uwsgi]
chdir = %s
module = mysite.wsgi:application
master = true
processes = 2
uwsgi-socket = %s
chmod-socket = 664
vacuum = true
`, filepath.Join(root, "examples/django"), sock))
	s := start(t, dir, "--ini", ini)
	s.waitLog(`uwsgi socket bound to`, 30*time.Second)
	st, err := os.Stat(sock)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	if st.Mode().Perm() != 0o664 || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket mode %v, want 0664 socket", st.Mode())
	}

	cert, key := selfSigned(t, dir)
	port := freePort(t)
	for _, d := range []string{"body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		_ = os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	conf := filepath.Join(dir, "nginx.conf")
	writeFile(t, conf, fmt.Sprintf(`
user root root;
worker_processes 1;
error_log %[1]s/error.log;
pid %[1]s/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen 127.0.0.1:%[2]d ssl;
    ssl_certificate %[3]s;
    ssl_certificate_key %[4]s;
    location / {
      include /etc/nginx/uwsgi_params;
      uwsgi_param X_CUSTOM_PARAM hello-from-nginx;
      uwsgi_pass unix:%[5]s;
    }
  }
}
`, dir, port, cert, key, sock))
	ng := exec.Command("nginx", "-c", conf, "-p", dir, "-g", "daemon off;")
	ng.Stderr = os.Stderr
	if err := ng.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	t.Cleanup(func() {
		_ = ng.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { _ = ng.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = ng.Process.Kill()
		}
	})
	tlsClient := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	url := fmt.Sprintf("https://127.0.0.1:%d", port)
	var meta map[string]any
	poll(t, 20*time.Second, "nginx -> gouwsgi /meta", func() error {
		resp, err := tlsClient.Get(url + "/meta?x=1")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return json.NewDecoder(resp.Body).Decode(&meta)
	})
	want := map[string]string{
		"REMOTE_ADDR": "127.0.0.1", "HTTPS": "on", "X_CUSTOM_PARAM": "hello-from-nginx",
		"REQUEST_METHOD": "GET", "QUERY_STRING": "x=1", "REQUEST_URI": "/meta?x=1", "PATH_INFO": "/meta",
		"SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "https", "SERVER_PORT": fmt.Sprint(port),
	}
	for k, v := range want {
		if got := fmt.Sprint(meta[k]); got != v {
			t.Errorf("request.META[%q] = %q, want %q", k, got, v)
		}
	}
	if _, ok := meta["REMOTE_PORT"]; !ok {
		t.Errorf("request.META lacks REMOTE_PORT")
	}
	// A POST through nginx arrives whole.
	body := strings.Repeat("x", 300000)
	resp, err := tlsClient.Post(url+"/upload", "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST via nginx: %v", err)
	}
	var up struct{ Length int }
	_ = json.NewDecoder(resp.Body).Decode(&up)
	resp.Body.Close()
	if up.Length != len(body) {
		t.Fatalf("POST via nginx: app read %d bytes, sent %d", up.Length, len(body))
	}
	// vacuum removes the socket on exit.
	s.stop(syscall.SIGTERM, 30*time.Second)
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("vacuum: socket still there after exit (%v)", err)
	}
}
