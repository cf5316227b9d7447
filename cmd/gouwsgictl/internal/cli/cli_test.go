package cli

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	adminv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/admin/v1"
	"github.com/gouwsgi/gouwsgi/rpc/admin"
	"github.com/gouwsgi/gouwsgi/rpc/admin/admintest"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// node is a real admin server on fake dependencies.
type node struct {
	addr string
	deps admin.Deps
}

func startNode(t *testing.T, cfg admin.Config) node {
	t.Helper()
	deps := admintest.Deps()
	srv := admintest.Start(t, cfg, deps)
	addr := srv.Addr().String()
	if srv.Addr().Network() == "unix" {
		addr = "unix://" + addr
	}
	return node{addr: addr, deps: deps}
}

type result struct {
	out, err string
	code     int
}

// run runs gouwsgictl against n with env as the environment.
func run(t *testing.T, n node, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if k == EnvAddr {
			return n.addr
		}
		return ""
	}
	code := Main(ctx, args, IO{In: strings.NewReader(stdin), Out: &out, Err: &errb}, getenv)
	return result{out.String(), errb.String(), code}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestGolden(t *testing.T) {
	n := startNode(t, admin.Config{})
	tests := []struct {
		name string
		args []string
	}{
		{"legion_status", []string{"legion", "status"}},
		{"legion_status_json", []string{"legion", "status", "-o", "json"}},
		{"legion_members", []string{"legion", "members"}},
		{"node_stats", []string{"node", "stats"}},
		{"node_stats_json", []string{"-o", "json", "node", "stats"}},
		{"node_workers", []string{"node", "workers"}},
		{"cache_stats", []string{"cache", "stats"}},
		{"cache_stats_json", []string{"cache", "stats", "sessions", "-o", "json"}},
		{"cache_keys", []string{"cache", "keys"}},
		{"cache_get_json", []string{"cache", "get", "/about", "-o", "json"}},
		{"alarms_list", []string{"alarms", "list", "--all"}},
		{"alarms_list_json", []string{"alarms", "list", "-o", "json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, n, nil, "", tt.args...)
			if r.code != ExitOK {
				t.Fatalf("exit %d, stderr %q", r.code, r.err)
			}
			golden(t, tt.name, r.out)
		})
	}
}

func decodeStats(t *testing.T, s string) *adminv1.GetStatsResponse {
	t.Helper()
	var st adminv1.GetStatsResponse
	if err := protojson.Unmarshal([]byte(s), &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func TestTopFrameGolden(t *testing.T) {
	n := startNode(t, admin.Config{})
	r := run(t, n, nil, "", "node", "stats", "-o", "json")
	if r.code != ExitOK {
		t.Fatal(r.err)
	}
	st, prev := decodeStats(t, r.out), decodeStats(t, r.out)
	prev.Workers[0].Requests -= 30
	prev.Workers[1].Requests -= 10
	var frame bytes.Buffer
	renderTop(&frame, st, prev, 2*time.Second, admintest.Now)
	golden(t, "top_frame", frame.String())
}

func TestCommands(t *testing.T) {
	n := startNode(t, admin.Config{})
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		out   string // substring of stdout
		err   string // substring of stderr
	}{
		{name: "cache get raw", args: []string{"cache", "get", "/index.html"}, out: "<h1>hi</h1>"},
		{name: "cache set", args: []string{"cache", "set", "--ttl", "1m", "k", "v1"}, out: "stored k (2 bytes)"},
		{name: "cache get after set", args: []string{"cache", "get", "k"}, out: "v1"},
		{name: "cache set add-only on existing", args: []string{"cache", "set", "--mode", "set", "k", "v2"}, code: ExitError, err: "already exists"},
		{name: "cache set from stdin", stdin: "from stdin", args: []string{"cache", "set", "s", "-"}, out: "stored s (10 bytes)"},
		{name: "cache get stdin value", args: []string{"cache", "get", "s"}, out: "from stdin"},
		{name: "cache del", args: []string{"cache", "delete", "k"}, out: "deleted k"},
		{name: "cache get deleted", args: []string{"cache", "get", "k"}, code: ExitError, err: `key "k" in cache "default" (NotFound)`},
		{name: "cache keys of unknown cache", args: []string{"cache", "keys", "-c", "nope"}, code: ExitError, err: `no cache "nope"`},
		{name: "cache linearizable local", args: []string{"cache", "get", "--linearizable", "/about"}, code: ExitError, err: "FailedPrecondition"},
		{name: "cache clear", args: []string{"cache", "clear", "--cache", "sessions"}, out: "cleared cache sessions"},
		{name: "node reload chain", args: []string{"node", "reload", "--chain"}, out: "chain reload requested"},
		{name: "node scale", args: []string{"node", "scale", "2"}, out: "workers: 5"},
		{name: "node scale json", args: []string{"node", "scale", "-o", "json", "--", "-1"}, out: `"workers": 4`},
		{name: "legion resign", args: []string{"legion", "resign", "web"}, out: "legion web: lord n2 (epoch 8)"},
		{name: "legion transfer", args: []string{"legion", "transfer", "web", "n3"}, out: "legion web: lord n3 (epoch 9)"},
		{name: "legion transfer unknown node", args: []string{"legion", "transfer", "web", "n9"}, code: ExitError, err: `node "n9" is not a member`},
		{name: "legion join", args: []string{"legion", "join", "10.0.0.4:7946"}, out: "joined through 1 of 1"},
		{name: "legion remove alive", args: []string{"legion", "remove", "n2"}, code: ExitError, err: "is alive"},
		{name: "alarms ack", args: []string{"alarms", "ack", "2"}, out: "acknowledged alarm 2 (pager)"},
		{name: "alarms raise", args: []string{"alarms", "raise", "ops", "disk full"}, out: "raised alarm 3 (ops)"},
		{name: "alarms ack unknown", args: []string{"alarms", "ack", "99"}, code: ExitError, err: "no alarm with id 99"},
		{name: "completion", args: []string{"completion", "bash"}, out: "__start_gouwsgictl"},
		{name: "group help", args: []string{"legion"}, out: "Available Commands"},

		{name: "unknown command", args: []string{"frobnicate"}, code: ExitUsage, err: "unknown command"},
		{name: "unknown subcommand", args: []string{"legion", "frobnicate"}, code: ExitUsage, err: `unknown command "frobnicate" for "gouwsgictl legion"`},
		{name: "unknown flag", args: []string{"node", "stats", "--bogus"}, code: ExitUsage, err: "unknown flag: --bogus"},
		{name: "missing argument", args: []string{"cache", "get"}, code: ExitUsage, err: "needs at least 1 argument"},
		{name: "extra argument", args: []string{"node", "stats", "x"}, code: ExitUsage, err: "at most 0 argument"},
		{name: "bad output", args: []string{"-o", "yaml", "node", "stats"}, code: ExitUsage, err: `invalid output format "yaml"`},
		{name: "bad mode", args: []string{"cache", "set", "--mode", "upsert", "k", "v"}, code: ExitUsage, err: `invalid --mode "upsert"`},
		{name: "bad timeout", args: []string{"--timeout", "0s", "node", "stats"}, code: ExitUsage, err: "--timeout must be positive"},
		{name: "scale zero", args: []string{"node", "scale", "0"}, code: ExitUsage, err: "non-zero integer"},
		{name: "bad alarm id", args: []string{"alarms", "ack", "two"}, code: ExitUsage, err: "positive integer"},
		{name: "bad shell", args: []string{"completion", "tcsh"}, code: ExitUsage, err: `unknown shell "tcsh"`},
		{name: "bad interval", args: []string{"top", "--interval", "1ms"}, code: ExitUsage, err: "--interval must be at least 100ms"},
		{name: "bad addr", args: []string{"--addr", "http://x", "node", "stats"}, code: ExitError, err: "only unix:// or host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, n, nil, tt.stdin, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", r.code, tt.code, r.out, r.err)
			}
			if !strings.Contains(r.out, tt.out) || !strings.Contains(r.err, tt.err) {
				t.Errorf("stdout %q (want %q), stderr %q (want %q)", r.out, tt.out, r.err, tt.err)
			}
		})
	}
	if got := n.deps.Node.(*admintest.Node).Reloads; len(got) != 1 || !got[0] {
		t.Errorf("reloads = %v, want one chain reload", got)
	}
}

func TestUnreachableAndNoLegion(t *testing.T) {
	deps := admintest.Deps()
	deps.Legion = nil
	srv := admintest.Start(t, admin.Config{}, deps)
	n := node{addr: srv.Addr().String()}
	r := run(t, n, nil, "", "legion", "status")
	if r.code != ExitError || !strings.Contains(r.err, "this node runs no legion (FailedPrecondition)") {
		t.Errorf("no legion: %+v", r)
	}
	dead := node{addr: "unix://" + filepath.Join(t.TempDir(), "none.sock")}
	r = run(t, dead, nil, "", "--timeout", "500ms", "node", "stats")
	if r.code != ExitError || !strings.Contains(r.err, "cannot reach the admin API at "+dead.addr) ||
		!strings.Contains(r.err, "no such file or directory") || !strings.Contains(r.err, "is gouwsgi running") {
		t.Errorf("unreachable: %+v", r)
	}
}

func TestToken(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, admin.Config{TokenFile: tokenFile})
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		err  string
	}{
		{"none", nil, nil, ExitError, "missing bearer token"},
		{"wrong env", map[string]string{EnvToken: "nope"}, nil, ExitError, "invalid bearer token (Unauthenticated)"},
		{"env", map[string]string{EnvToken: "s3cret"}, nil, ExitOK, ""},
		{"file flag", nil, []string{"--token-file", tokenFile}, ExitOK, ""},
		{"file env", map[string]string{EnvTokenFile: tokenFile}, nil, ExitOK, ""},
		{"missing file", nil, []string{"--token-file", tokenFile + ".x"}, ExitError, "read token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, n, tt.env, "", append(tt.args, "node", "workers")...)
			if r.code != tt.code || !strings.Contains(r.err, tt.err) {
				t.Fatalf("exit %d stderr %q; want %d %q", r.code, r.err, tt.code, tt.err)
			}
		})
	}
}

func TestCertAndMutualTLS(t *testing.T) {
	// --out-dir need not exist yet; it is made private to its owner.
	dir := filepath.Join(t.TempDir(), "etc", "tls")
	none := node{}
	steps := [][]string{
		{"cert", "create-ca", "--out-dir", dir},
		{"cert", "create-node", "n1", "--host", "127.0.0.1", "--host", "localhost", "--ca", dir + "/ca.pem", "--ca-key", dir + "/ca-key.pem", "--out-dir", dir, "--key-type", "ecdsa"},
		{"cert", "create-node", "operator", "--host", "localhost", "--ca", dir + "/ca.pem", "--ca-key", dir + "/ca-key.pem", "--out-dir", dir},
	}
	for _, args := range steps {
		if r := run(t, none, nil, "", args...); r.code != ExitOK || !strings.Contains(r.out, "(mode 0600)") {
			t.Fatalf("%v: %+v", args, r)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("--out-dir %s: %v, want a directory with mode 0700", dir, err)
	}
	for _, f := range []string{"ca.pem", "ca-key.pem", "n1.pem", "n1-key.pem", "operator.pem", "operator-key.pem"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "n1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatal("n1.pem holds no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "n1" || len(cert.IPAddresses) != 1 || len(cert.DNSNames) != 1 || cert.DNSNames[0] != "localhost" {
		t.Errorf("n1 certificate: CN %q IPs %v DNS %v", cert.Subject.CommonName, cert.IPAddresses, cert.DNSNames)
	}

	refused := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"cert", "create-ca", "--out-dir", dir}, ExitError, "already exists (use --force"},
		{[]string{"cert", "create-ca", "--out-dir", dir, "--key-type", "rsa"}, ExitUsage, `unknown key type "rsa"`},
		{[]string{"cert", "create-node", "n2", "--out-dir", dir}, ExitUsage, "at least one --host"},
		{[]string{"cert", "create-node", "n2", "--host", "x", "--ca", dir + "/none.pem"}, ExitError, "CA (--ca, --ca-key)"},
		{[]string{"cert", "create-node", "n2", "--host", "x", "--ca", dir + "/n1.pem", "--ca-key", dir + "/n1-key.pem", "--out-dir", dir}, ExitError, "is not a CA"},
	}
	for _, tt := range refused {
		if r := run(t, none, nil, "", tt.args...); r.code != tt.code || !strings.Contains(r.err, tt.err) {
			t.Errorf("%v: exit %d stderr %q; want %d %q", tt.args, r.code, r.err, tt.code, tt.err)
		}
	}

	n := startNode(t, admin.Config{Addr: "127.0.0.1:0", CertFile: dir + "/n1.pem", KeyFile: dir + "/n1-key.pem", ClientCAFile: dir + "/ca.pem"})
	env := map[string]string{EnvCACert: dir + "/ca.pem", EnvCert: dir + "/operator.pem", EnvKey: dir + "/operator-key.pem"}
	if r := run(t, n, env, "", "node", "workers"); r.code != ExitOK {
		t.Fatalf("mutual TLS with the created certificates: %+v", r)
	}
	if r := run(t, n, map[string]string{EnvCACert: dir + "/ca.pem"}, "", "--timeout", "2s", "node", "workers"); r.code != ExitError {
		t.Fatalf("without a client certificate: %+v", r)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a poller.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAlarmsWatch(t *testing.T) {
	for _, output := range []string{"table", "json"} {
		t.Run(output, func(t *testing.T) {
			n := startNode(t, admin.Config{})
			alarms := n.deps.Alarms.(*admintest.Alarms)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out syncBuffer
			done := make(chan int, 1)
			go func() {
				done <- Main(ctx, []string{"--addr", n.addr, "-o", output, "alarms", "watch"},
					IO{In: strings.NewReader(""), Out: &out, Err: &out}, func(string) string { return "" })
			}()
			waitFor(t, func() bool { return alarms.Watchers() == 1 })
			if _, err := alarms.Raise(ctx, "ops", "disk full"); err != nil {
				t.Fatal(err)
			}
			want := "raised id=3 name=ops node=n1 source=api: disk full"
			if output == "json" {
				want = `{"type":"ALARM_EVENT_TYPE_RAISED","alarm":{"id":"3","name":"ops"`
			}
			waitFor(t, func() bool { return strings.Contains(out.String(), want) })
			cancel()
			if code := <-done; code != ExitOK {
				t.Fatalf("watch exit %d: %s", code, out.String())
			}
		})
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEveryCommandHasExamples(t *testing.T) {
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() != "help" && c.Example == "" {
			t.Errorf("%q has no examples in --help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot(&globals{getenv: func(string) string { return "" }}))
}
