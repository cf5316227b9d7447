package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/gouwsgi/gouwsgi/e2e/lab"
	adminv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/admin/v1"
	adminclient "github.com/gouwsgi/gouwsgi/rpc/client"
)

// adminToken is the bearer token of the nodes started with a token file.
const adminToken = "e2e-s3cret-token"

// ctl runs the gouwsgictl binary against one node.
type ctl struct {
	bin   string
	flags []string // global flags: --addr, TLS files
	env   []string // GOUWSGI_* variables; the test's own are never inherited
	stdin string
}

// ctlResult is one gouwsgictl run.
type ctlResult struct {
	out, err string
	code     int
}

func newCtl(t *testing.T, addr string, env ...string) ctl {
	t.Helper()
	return ctl{bin: buildBinary(t, "gouwsgictl"), flags: []string{"--addr", addr}, env: env}
}

// with returns a copy with more global flags.
func (c ctl) with(flags ...string) ctl {
	c.flags = append(append([]string(nil), c.flags...), flags...)
	return c
}

// withEnv returns a copy whose environment is exactly env.
func (c ctl) withEnv(env ...string) ctl {
	c.env = env
	return c
}

func (c ctl) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.bin, append(append([]string(nil), c.flags...), args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOUWSGI_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, c.env...)
	return cmd
}

// run runs gouwsgictl to completion.
func (c ctl) run(t *testing.T, args ...string) ctlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, strings.NewReader(c.stdin)
	err := cmd.Run()
	r := ctlResult{out: out.String(), err: errb.String(), code: cmd.ProcessState.ExitCode()}
	if err != nil && r.code <= 0 {
		t.Fatalf("gouwsgictl %q: %v", args, err)
	}
	return r
}

// ok runs gouwsgictl and fails the test unless it exits 0.
func (c ctl) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := c.run(t, args...)
	if r.code != 0 {
		t.Fatalf("gouwsgictl %q: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.out, r.err)
	}
	return r.out
}

// fails runs gouwsgictl, expects exit code code and every fragment in
// its stderr.
func (c ctl) fails(t *testing.T, code int, args []string, frags ...string) {
	t.Helper()
	r := c.run(t, args...)
	if r.code != code {
		t.Fatalf("gouwsgictl %q: exit %d, want %d\nstdout: %s\nstderr: %s", args, r.code, code, r.out, r.err)
	}
	for _, f := range frags {
		if !strings.Contains(r.err, f) {
			t.Fatalf("gouwsgictl %q: stderr %q does not mention %q", args, r.err, f)
		}
	}
}

// json runs gouwsgictl -o json and decodes its output into m, which checks
// that it is the canonical JSON of the response message.
func (c ctl) json(t *testing.T, m proto.Message, args ...string) {
	t.Helper()
	out := c.ok(t, append([]string{"-o", "json"}, args...)...)
	if err := protojson.Unmarshal([]byte(out), m); err != nil {
		t.Fatalf("gouwsgictl -o json %q: %v\n%s", args, err, out)
	}
}

// adminAddr waits for the node's admin listener and returns its address.
func (s *server) adminAddr() string {
	s.t.Helper()
	return s.waitLog(`admin API \(gRPC\) on (\S+)`, 60*time.Second)[1]
}

// dial connects rpc/client to a node.
func dial(t *testing.T, cfg adminclient.Config) *adminclient.Client {
	t.Helper()
	c, err := adminclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func wantCode(t *testing.T, err error, code codes.Code, frag string) {
	t.Helper()
	if st := status.Convert(err); st.Code() != code || !strings.Contains(st.Message(), frag) {
		t.Fatalf("error %v, want %s mentioning %q", err, code, frag)
	}
}

// writeSecret writes a file only its owner can read and returns its path.
func writeSecret(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// workerPIDs are the pids of the workers that are up and accepting.
func workerPIDs(t *testing.T, c ctl) []int32 {
	t.Helper()
	var resp adminv1.ListWorkersResponse
	c.json(t, &resp, "node", "workers")
	var pids []int32
	for _, w := range resp.GetWorkers() {
		if w.GetPid() > 0 && w.GetAccepting() {
			pids = append(pids, w.GetPid())
		}
	}
	return pids
}

// TestAdminNode drives every NodeService, CacheService and AlarmService
// RPC and the health service of one real node (the Django example, a
// cache2, an alarm) through the gouwsgictl binary, in tables and JSON, and
// through rpc/client; then the bad paths: missing and wrong tokens, usage
// errors, a node without a legion, and finally a dead node.
func TestAdminNode(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	tokenFile := writeSecret(t, filepath.Join(dir, "token"), adminToken+"\n")
	pager := newAlarmFile(t, dir, "pager")
	s := start(t, dir, djangoArgs(repo(t), "--processes", "2", "--cache2", "name=sessions,items=100,blocksize=4096",
		"--alarm", pager.option(), "--admin", "127.0.0.1:0", "--admin-token-file", tokenFile)...)
	addr := s.adminAddr()
	s.ready(2)
	c := newCtl(t, addr, "GOUWSGI_TOKEN="+adminToken)
	rc := dial(t, adminclient.Config{Addr: addr, Token: adminToken})
	ctx := ctxTimeout(t, 90*time.Second)
	host, _ := os.Hostname()

	t.Run("authentication", func(t *testing.T) {
		stats := []string{"node", "stats"}
		c.withEnv().fails(t, 1, stats, "missing bearer token", "(Unauthenticated)")
		c.withEnv("GOUWSGI_TOKEN=wrong").fails(t, 1, stats, "invalid bearer token", "(Unauthenticated)")
		wrongFile := writeSecret(t, filepath.Join(t.TempDir(), "wrong"), "wrong\n")
		c.withEnv().with("--token-file", wrongFile).fails(t, 1, stats, "invalid bearer token")
		c.withEnv().with("--token-file", tokenFile).ok(t, stats...)
		c.withEnv("GOUWSGI_TOKEN_FILE="+tokenFile).ok(t, stats...)
		if n := s.countLog(`admin call .*code=Unauthenticated`); n < 3 {
			t.Errorf("the node logged %d rejected calls, want at least 3", n)
		}

		// The interceptors guard unary and streaming calls alike; health
		// probes need no credential.
		anon := dial(t, adminclient.Config{Addr: addr})
		_, err := anon.Node.GetStats(ctx, &adminv1.GetStatsRequest{})
		wantCode(t, err, codes.Unauthenticated, "missing bearer token")
		wrong := dial(t, adminclient.Config{Addr: addr, Token: "wrong"})
		_, err = wrong.Cache.Keys(ctx, &adminv1.CacheServiceKeysRequest{})
		wantCode(t, err, codes.Unauthenticated, "invalid bearer token")
		stream, err := wrong.Alarm.Watch(ctx, &adminv1.AlarmServiceWatchRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		wantCode(t, err, codes.Unauthenticated, "invalid bearer token")
		hr, err := anon.Health.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("anonymous health check = %v, %v", hr, err)
		}
	})

	t.Run("health", func(t *testing.T) {
		for svc, want := range map[string]healthpb.HealthCheckResponse_ServingStatus{
			"": healthpb.HealthCheckResponse_SERVING, "gouwsgi.admin.v1.NodeService": healthpb.HealthCheckResponse_SERVING,
			"gouwsgi.admin.v1.CacheService": healthpb.HealthCheckResponse_SERVING, "gouwsgi.admin.v1.AlarmService": healthpb.HealthCheckResponse_SERVING,
			// A node without a legion says so to probes.
			"gouwsgi.admin.v1.LegionService": healthpb.HealthCheckResponse_NOT_SERVING,
		} {
			hr, err := rc.Health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err != nil || hr.GetStatus() != want {
				t.Errorf("health %q = %v, %v; want %s", svc, hr, err, want)
			}
		}
		_, err := rc.Health.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope.Service"})
		wantCode(t, err, codes.NotFound, "unknown service")
	})

	t.Run("node stats and workers", func(t *testing.T) {
		pid := int32(s.cmd.Process.Pid)
		table := c.ok(t, "node", "stats")
		for _, want := range []string{fmt.Sprintf("node %s ", host), fmt.Sprintf("pid %d ", pid), "WID", "sessions", "djb33x", "127.0.0.1:0"} {
			if !strings.Contains(table, want) {
				t.Errorf("node stats table lacks %q:\n%s", want, table)
			}
		}
		var st adminv1.GetStatsResponse
		c.json(t, &st, "node", "stats")
		if st.GetPid() != pid || st.GetNodeId() != host || len(st.GetWorkers()) != 2 || len(st.GetCaches()) != 1 ||
			st.GetCaches()[0].GetName() != "sessions" || st.GetCaches()[0].GetMaxItems() != 100 || st.GetCaches()[0].GetBlocksize() != 4096 {
			t.Errorf("node stats -o json = %v", &st)
		}
		direct, err := rc.Node.GetStats(ctx, &adminv1.GetStatsRequest{})
		if err != nil || direct.GetPid() != pid || len(direct.GetWorkers()) != 2 {
			t.Fatalf("GetStats = %v, %v", direct, err)
		}

		workers := c.ok(t, "node", "workers")
		if lines := strings.Split(strings.TrimSpace(workers), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "WID") {
			t.Errorf("node workers table:\n%s", workers)
		}
		lw, err := rc.Node.ListWorkers(ctx, &adminv1.ListWorkersRequest{})
		if err != nil || len(lw.GetWorkers()) != 2 {
			t.Fatalf("ListWorkers = %v, %v", lw, err)
		}
		for _, w := range lw.GetWorkers() {
			if w.GetPid() <= 0 || !strings.Contains(workers, strconv.Itoa(int(w.GetPid()))) {
				t.Errorf("worker %d (pid %d) not in the table:\n%s", w.GetId(), w.GetPid(), workers)
			}
		}
	})

	t.Run("cache", func(t *testing.T) {
		if out := c.ok(t, "cache", "set", "greeting", "hello"); !strings.Contains(out, "stored greeting (5 bytes)") {
			t.Errorf("cache set: %q", out)
		}
		if out := c.ok(t, "cache", "get", "greeting"); out != "hello" {
			t.Errorf("cache get = %q, want the raw value", out)
		}
		var item adminv1.CacheServiceGetResponse
		c.json(t, &item, "cache", "get", "--cache", "sessions", "greeting")
		if string(item.GetValue()) != "hello" || item.GetExpiresAt() != nil {
			t.Errorf("cache get -o json = %v", &item)
		}
		stdin := c
		stdin.stdin = "from stdin"
		stdin.ok(t, "cache", "set", "--ttl", "1h", "piped", "-")
		c.json(t, &item, "cache", "get", "piped")
		if string(item.GetValue()) != "from stdin" || item.GetExpiresAt() == nil {
			t.Errorf("value piped with a ttl = %v", &item)
		}
		c.fails(t, 1, []string{"cache", "set", "--mode", "set", "greeting", "again"}, "(AlreadyExists)")
		if keys := c.ok(t, "cache", "keys"); keys != "greeting\npiped\n" && keys != "piped\ngreeting\n" {
			t.Errorf("cache keys = %q", keys)
		}
		if table := c.ok(t, "cache", "stats"); !regexp.MustCompile(`(?m)^sessions\s+2\s+100\s`).MatchString(table) {
			t.Errorf("cache stats table:\n%s", table)
		}
		var cs adminv1.CacheServiceStatsResponse
		c.json(t, &cs, "cache", "stats", "sessions")
		if len(cs.GetCaches()) != 1 || cs.GetCaches()[0].GetItems() != 2 || cs.GetCaches()[0].GetHits() < 3 || cs.GetCaches()[0].GetReplicated() {
			t.Errorf("cache stats -o json = %v", &cs)
		}
		c.ok(t, "cache", "del", "greeting")
		c.fails(t, 1, []string{"cache", "get", "greeting"}, `key "greeting" not in cache "sessions"`, "(NotFound)")
		c.fails(t, 1, []string{"cache", "del", "greeting"}, "(NotFound)")
		c.fails(t, 1, []string{"cache", "keys", "--cache", "nope"}, `no cache named "nope"`, "(NotFound)")
		c.fails(t, 1, []string{"cache", "get", "--linearizable", "piped"}, "linearizable reads need a replicated cache", "(FailedPrecondition)")
		c.ok(t, "cache", "clear")
		var keys adminv1.CacheServiceKeysResponse
		c.json(t, &keys, "cache", "keys")
		if len(keys.GetKeys()) != 0 {
			t.Errorf("keys after clear: %q", keys.GetKeys())
		}

		// The same calls through rpc/client.
		if _, err := rc.Cache.Set(ctx, &adminv1.CacheServiceSetRequest{Key: "k", Value: []byte("v1"), Mode: adminv1.SetMode_SET_MODE_UPDATE}); err != nil {
			t.Fatal(err)
		}
		g, err := rc.Cache.Get(ctx, &adminv1.CacheServiceGetRequest{Cache: "sessions", Key: "k"})
		if err != nil || string(g.GetValue()) != "v1" {
			t.Fatalf("Get = %v, %v", g, err)
		}
		k, err := rc.Cache.Keys(ctx, &adminv1.CacheServiceKeysRequest{})
		if err != nil || len(k.GetKeys()) != 1 || k.GetKeys()[0] != "k" {
			t.Fatalf("Keys = %v, %v", k, err)
		}
		_, err = rc.Cache.Set(ctx, &adminv1.CacheServiceSetRequest{Key: "", Value: []byte("x"), Mode: adminv1.SetMode_SET_MODE_UPDATE})
		wantCode(t, err, codes.InvalidArgument, "key")
		if _, err := rc.Cache.Delete(ctx, &adminv1.CacheServiceDeleteRequest{Key: "k"}); err != nil {
			t.Fatal(err)
		}
		_, err = rc.Cache.Get(ctx, &adminv1.CacheServiceGetRequest{Key: "k"})
		wantCode(t, err, codes.NotFound, `key "k"`)
		if _, err := rc.Cache.Clear(ctx, &adminv1.CacheServiceClearRequest{Cache: "sessions"}); err != nil {
			t.Fatal(err)
		}
		st, err := rc.Cache.Stats(ctx, &adminv1.CacheServiceStatsRequest{})
		if err != nil || len(st.GetCaches()) != 1 || st.GetCaches()[0].GetItems() != 0 {
			t.Fatalf("Stats = %v, %v", st, err)
		}
	})

	t.Run("alarms", func(t *testing.T) {
		// gouwsgictl alarms watch in the background; it says on stderr when
		// it is subscribed.
		wctx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		watch := c.command(wctx, "-o", "json", "alarms", "watch")
		var wout, werr lab.SyncBuffer
		watch.Stdout, watch.Stderr = &wout, &werr
		if err := watch.Start(); err != nil {
			t.Fatal(err)
		}
		poll(t, 10*time.Second, "alarms watch to subscribe", func() error {
			if !strings.Contains(werr.String(), "watching alarms on "+addr) {
				return fmt.Errorf("stderr %q", werr.String())
			}
			return nil
		})

		out := c.ok(t, "alarms", "raise", "pager", "disk full on /srv")
		m := regexp.MustCompile(`^raised alarm (\d+) \(pager\)\n$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("alarms raise: %q", out)
		}
		id := m[1]
		pager.waitFor(t, `^disk full on /srv$`)
		poll(t, 10*time.Second, "the watch to show the raise", func() error {
			if !strings.Contains(wout.String(), `"type":"ALARM_EVENT_TYPE_RAISED","alarm":{"id":"`+id+`","name":"pager","source":"api","message":"disk full on /srv"`) {
				return fmt.Errorf("watch output %q", wout.String())
			}
			return nil
		})

		table := c.ok(t, "alarms", "list")
		if !regexp.MustCompile(`(?m)^` + id + `\s+pager\s+api\s+` + regexp.QuoteMeta(host) + `\s+\S+\s+1\s+no\s+disk full on /srv$`).MatchString(table) {
			t.Errorf("alarms list:\n%s", table)
		}
		var list adminv1.AlarmServiceListResponse
		c.json(t, &list, "alarms", "list")
		if len(list.GetAlarms()) != 1 || strconv.FormatUint(list.GetAlarms()[0].GetId(), 10) != id || list.GetAlarms()[0].GetAcknowledged() {
			t.Errorf("alarms list -o json = %v", &list)
		}
		if out := c.ok(t, "alarms", "ack", id); out != "acknowledged alarm "+id+" (pager)\n" {
			t.Errorf("alarms ack: %q", out)
		}
		poll(t, 10*time.Second, "the watch to show the acknowledgement", func() error {
			if !strings.Contains(wout.String(), `"type":"ALARM_EVENT_TYPE_ACKNOWLEDGED","alarm":{"id":"`+id+`"`) {
				return fmt.Errorf("watch output %q", wout.String())
			}
			return nil
		})
		c.json(t, &list, "alarms", "list")
		if len(list.GetAlarms()) != 0 {
			t.Errorf("open alarms after ack: %v", &list)
		}
		c.json(t, &list, "alarms", "list", "--all")
		if len(list.GetAlarms()) != 1 || !list.GetAlarms()[0].GetAcknowledged() || list.GetAlarms()[0].GetAcknowledgedAt() == nil {
			t.Errorf("alarms list --all -o json = %v", &list)
		}
		c.fails(t, 1, []string{"alarms", "ack", "9999"}, "no such incident", "(NotFound)")
		c.fails(t, 1, []string{"alarms", "raise", "nosuch", "x"}, `alarm "nosuch" is not defined`, "(InvalidArgument)")
		stopWatch()
		if err := watch.Wait(); err != nil && wctx.Err() == nil {
			t.Errorf("alarms watch: %v\n%s", err, werr.String())
		}

		// rpc/client: a watch stream sees a raise made after its headers.
		stream, err := rc.Alarm.Watch(ctx, &adminv1.AlarmServiceWatchRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Header(); err != nil {
			t.Fatal(err)
		}
		raised, err := rc.Alarm.Raise(ctx, &adminv1.AlarmServiceRaiseRequest{Name: "pager", Message: "queue backlog"})
		if err != nil || raised.GetAlarm().GetName() != "pager" {
			t.Fatalf("Raise = %v, %v", raised, err)
		}
		ev, err := stream.Recv()
		if err != nil || ev.GetType() != adminv1.AlarmEventType_ALARM_EVENT_TYPE_RAISED || ev.GetAlarm().GetId() != raised.GetAlarm().GetId() {
			t.Fatalf("watch event = %v, %v; want the raise of %d", ev, err, raised.GetAlarm().GetId())
		}
		if _, err := rc.Alarm.Acknowledge(ctx, &adminv1.AlarmServiceAcknowledgeRequest{Id: raised.GetAlarm().GetId()}); err != nil {
			t.Fatal(err)
		}
		ls, err := rc.Alarm.List(ctx, &adminv1.AlarmServiceListRequest{IncludeAcknowledged: true})
		if err != nil || len(ls.GetAlarms()) != 2 {
			t.Fatalf("List = %v, %v", ls, err)
		}
		_, err = rc.Alarm.Raise(ctx, &adminv1.AlarmServiceRaiseRequest{Message: "no name"})
		wantCode(t, err, codes.InvalidArgument, "name")
	})

	t.Run("reload", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			args []string
			log  string
		}{
			// A reload answers once the app is loaded again: seconds on a
			// busy machine.
			{"all at once", []string{"--timeout", "60s", "node", "reload"}, `Gracefully killing worker`},
			{"chain", []string{"--timeout", "60s", "node", "reload", "--chain"}, `chain next victim is worker 2`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				before := workerPIDs(t, c)
				if len(before) != 2 {
					t.Fatalf("workers before reload: %v", before)
				}
				if out := c.ok(t, tt.args...); !strings.Contains(out, "reload requested") {
					t.Errorf("%q: %q", tt.args, out)
				}
				poll(t, 60*time.Second, "every worker respawned", func() error {
					after := workerPIDs(t, c)
					if len(after) != 2 {
						return fmt.Errorf("accepting workers %v", after)
					}
					for _, p := range after {
						for _, old := range before {
							if p == old {
								return fmt.Errorf("worker pid %d still running (before %v, now %v)", p, before, after)
							}
						}
					}
					return nil
				})
				s.waitLog(tt.log, 10*time.Second)
			})
		}
		// rpc/client asks for a chain reload too.
		before := workerPIDs(t, c)
		if _, err := rc.Node.Reload(ctx, &adminv1.ReloadRequest{Chain: true}); err != nil {
			t.Fatal(err)
		}
		poll(t, 60*time.Second, "chain reload through rpc/client", func() error {
			if after := workerPIDs(t, c); len(after) != 2 || after[0] == before[0] || after[1] == before[1] {
				return fmt.Errorf("pids %v, before %v", after, before)
			}
			return nil
		})
	})

	t.Run("scale", func(t *testing.T) {
		if out := c.ok(t, "node", "scale", "--", "-1"); out != "workers: 1\n" {
			t.Errorf("scale -1: %q", out)
		}
		poll(t, 30*time.Second, "one worker left", func() error {
			if p := workerPIDs(t, c); len(p) != 1 {
				return fmt.Errorf("accepting workers %v", p)
			}
			return nil
		})
		c.fails(t, 1, []string{"node", "scale", "--", "-1"}, "(FailedPrecondition)")
		resp, err := rc.Node.ScaleWorkers(ctx, &adminv1.ScaleWorkersRequest{Delta: 1})
		if err != nil || resp.GetWorkers() != 2 {
			t.Fatalf("ScaleWorkers(+1) = %v, %v", resp, err)
		}
		poll(t, 60*time.Second, "two workers again", func() error {
			if p := workerPIDs(t, c); len(p) != 2 {
				return fmt.Errorf("accepting workers %v", p)
			}
			return nil
		})
		c.fails(t, 1, []string{"node", "scale", "1"}, "already at the bound", "(FailedPrecondition)")
		_, err = rc.Node.ScaleWorkers(ctx, &adminv1.ScaleWorkersRequest{})
		wantCode(t, err, codes.InvalidArgument, "")
	})

	t.Run("no legion", func(t *testing.T) {
		c.fails(t, 1, []string{"legion", "status"}, "this node runs no legion", "(FailedPrecondition)")
		_, err := rc.Legion.ListMembers(ctx, &adminv1.ListMembersRequest{})
		wantCode(t, err, codes.FailedPrecondition, "this node runs no legion")
	})

	t.Run("usage errors exit 2", func(t *testing.T) {
		for _, args := range [][]string{
			{"bogus"}, {"node", "stats", "extra"}, {"node", "bogus"}, {"-o", "yaml", "node", "stats"},
			{"--timeout", "0s", "node", "stats"}, {"node", "scale", "0"}, {"node", "scale", "many"},
			{"alarms", "ack", "first"}, {"cache", "get"}, {"legion", "transfer", "web"}, {"--no-such-flag"},
			{"top", "--interval", "1ms"}, {"cert", "create-node", "n1"},
		} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				c.fails(t, 2, args, "Run '")
			})
		}
		if out := c.ok(t, "node", "reload", "--help"); !strings.Contains(out, "Examples:") {
			t.Errorf("--help without examples:\n%s", out)
		}
	})

	t.Run("top under a terminal", func(t *testing.T) {
		testTopPTY(t, c, "sessions")
	})

	t.Run("dead node", func(t *testing.T) {
		s.stop(syscall.SIGTERM, 30*time.Second)
		c.fails(t, 1, []string{"node", "stats"}, "cannot reach the admin API at "+addr, "connection refused", "is gouwsgi running")
		c.fails(t, 1, []string{"--timeout", "1s", "alarms", "watch"}, "cannot reach the admin API at "+addr)
	})
}

// testTopPTY runs gouwsgictl top on a pseudo-terminal: it must draw the
// node's workers (by pid) and caches, redraw, and quit on q restoring the
// screen.
func testTopPTY(t *testing.T, c ctl, cache string) {
	t.Helper()
	pids := workerPIDs(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.command(ctx, "top", "--interval", "200ms")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 180})
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	var screen lab.SyncBuffer
	go func() { _, _ = io.Copy(&screen, ptmx) }()
	poll(t, 20*time.Second, "top to draw two frames with the workers", func() error {
		s := screen.String()
		ok := strings.Contains(s, "\x1b[?1049h") && strings.Contains(s, "WID") && strings.Contains(s, cache) &&
			strings.Count(s, "\x1b[H\x1b[2J") >= 2
		for _, p := range pids {
			ok = ok && strings.Contains(s, strconv.Itoa(int(p)))
		}
		if !ok {
			return fmt.Errorf("screen so far: %q", s)
		}
		return nil
	})
	if _, err := ptmx.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("top exited with %v; screen: %q", err, screen.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("top did not quit on q")
	}
	poll(t, 5*time.Second, "top to leave the alternate screen", func() error {
		if !strings.Contains(screen.String(), "\x1b[?1049l") {
			return fmt.Errorf("screen %q", screen.String())
		}
		return nil
	})
}

// TestAdminSecurity: a node refuses at start to serve the admin API off
// loopback without TLS (before any worker starts) or with TLS but no
// credential; mutual TLS with certificates made by gouwsgictl cert works
// and rejects clients without a certificate or with one from another CA;
// a unix socket admin address is created with mode 0600.
func TestAdminSecurity(t *testing.T) {
	requireE2E(t)
	root := repo(t)

	t.Run("refused at start", func(t *testing.T) {
		dir := t.TempDir()
		ctl := newCtl(t, "127.0.0.1:1")
		ctl.ok(t, "cert", "create-ca", "--out-dir", dir)
		ctl.ok(t, "cert", "create-node", "n1", "--host", "127.0.0.1", "--ca", filepath.Join(dir, "ca.pem"),
			"--ca-key", filepath.Join(dir, "ca-key.pem"), "--out-dir", dir)
		for _, tt := range []struct {
			name    string
			args    []string
			want    string
			workers bool // whether the app started before the refusal
		}{
			{"wildcard without TLS", []string{"--admin", "0.0.0.0:0"},
				`refusing to serve the admin API on non-loopback address "0.0.0.0:0" without TLS`, false},
			{"all interfaces without TLS", []string{"--admin", ":0"}, `non-loopback address ":0" without TLS`, false},
			{"TLS without a credential", []string{"--admin", "0.0.0.0:0", "--admin-tls-cert", filepath.Join(dir, "n1.pem"),
				"--admin-tls-key", filepath.Join(dir, "n1-key.pem")}, "without a credential", true},
		} {
			t.Run(tt.name, func(t *testing.T) {
				s := start(t, dir, djangoArgs(root, append([]string{"--processes", "1"}, tt.args...)...)...)
				err := s.wait(60 * time.Second)
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
					t.Fatalf("exit %v, want 1; log:\n%s", err, s.logs())
				}
				if !strings.Contains(s.logs(), tt.want) {
					t.Fatalf("log does not say %q:\n%s", tt.want, s.logs())
				}
				if spawned := s.countLog(`spawned uWSGI worker`) > 0; spawned && !tt.workers {
					t.Errorf("workers started before the refusal:\n%s", s.logs())
				}
			})
		}
	})

	t.Run("mutual TLS", func(t *testing.T) {
		dir := t.TempDir()
		ctl := newCtl(t, "127.0.0.1:1")
		for _, args := range [][]string{
			{"cert", "create-ca", "--out-dir", dir},
			{"cert", "create-node", "n1", "--host", "127.0.0.1", "--host", "localhost", "--ca", filepath.Join(dir, "ca.pem"), "--ca-key", filepath.Join(dir, "ca-key.pem"), "--out-dir", dir},
			{"cert", "create-node", "operator", "--host", "localhost", "--key-type", "ecdsa", "--ca", filepath.Join(dir, "ca.pem"), "--ca-key", filepath.Join(dir, "ca-key.pem"), "--out-dir", dir},
		} {
			ctl.ok(t, args...)
		}
		other := filepath.Join(dir, "other")
		ctl.ok(t, "cert", "create-ca", "--out-dir", other)
		ctl.ok(t, "cert", "create-node", "intruder", "--host", "localhost", "--ca", filepath.Join(other, "ca.pem"), "--ca-key", filepath.Join(other, "ca-key.pem"), "--out-dir", other)
		for _, f := range []string{"ca-key.pem", "n1-key.pem", "operator-key.pem"} {
			if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %v, mode %v; want 0600", f, err, fi.Mode().Perm())
			}
		}
		ca, cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "operator.pem"), filepath.Join(dir, "operator-key.pem")

		s := start(t, dir, djangoArgs(root, "--processes", "1", "--admin", "127.0.0.1:0",
			"--admin-tls-cert", filepath.Join(dir, "n1.pem"), "--admin-tls-key", filepath.Join(dir, "n1-key.pem"), "--admin-tls-ca", ca)...)
		addr := s.adminAddr()
		s.ready(1)
		c := newCtl(t, addr)
		stats := []string{"node", "workers"}
		c.fails(t, 1, stats, "cannot reach the admin API", "pass --cacert")
		c.with("--cacert", ca).fails(t, 1, stats, "cannot reach the admin API", "pass --cert and --key")
		c.with("--cacert", ca, "--cert", filepath.Join(other, "intruder.pem"), "--key", filepath.Join(other, "intruder-key.pem")).
			fails(t, 1, stats, "cannot reach the admin API")
		c.with("--cacert", filepath.Join(other, "ca.pem"), "--cert", cert, "--key", key).fails(t, 1, stats, "certificate")
		mtls := c.with("--cacert", ca, "--cert", cert, "--key", key)
		if out := mtls.ok(t, stats...); !strings.HasPrefix(out, "WID") {
			t.Errorf("node workers over mutual TLS:\n%s", out)
		}
		env := c.withEnv("GOUWSGI_CACERT="+ca, "GOUWSGI_CERT="+cert, "GOUWSGI_KEY="+key)
		var lw adminv1.ListWorkersResponse
		env.json(t, &lw, stats...)
		if len(lw.GetWorkers()) != 1 {
			t.Errorf("workers over mutual TLS (env) = %v", &lw)
		}
		rc := dial(t, adminclient.Config{Addr: addr, CACertFile: ca, CertFile: cert, KeyFile: key})
		ctx := ctxTimeout(t, 30*time.Second)
		if _, err := rc.Node.GetStats(ctx, &adminv1.GetStatsRequest{}); err != nil {
			t.Fatalf("GetStats over mutual TLS: %v", err)
		}
		_, err := dial(t, adminclient.Config{Addr: addr, CACertFile: ca}).Node.GetStats(ctx, &adminv1.GetStatsRequest{})
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("GetStats without a client certificate: %v", err)
		}
	})

	t.Run("unix socket", func(t *testing.T) {
		dir := t.TempDir()
		sock := filepath.Join(dir, "admin.sock")
		// uWSGI's unix:/path form, as the option's documentation writes it.
		s := start(t, dir, djangoArgs(root, "--processes", "1", "--admin", "unix:"+sock)...)
		s.adminAddr()
		s.ready(1)
		fi, err := os.Stat(sock)
		if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("admin socket %s: %v, mode %v; want a socket with mode 0600", sock, err, fi.Mode())
		}
		for _, addr := range []string{"unix://" + sock, "unix:" + sock, sock} {
			var st adminv1.GetStatsResponse
			newCtl(t, addr).json(t, &st, "node", "stats")
			if st.GetPid() != int32(s.cmd.Process.Pid) {
				t.Errorf("stats over %s: pid %d, want %d", addr, st.GetPid(), s.cmd.Process.Pid)
			}
		}
		s.stop(syscall.SIGTERM, 30*time.Second)
		newCtl(t, "unix://"+sock).fails(t, 1, []string{"node", "stats"}, "cannot reach the admin API")
	})
}

// legionPorts returns a gossip port whose Raft (+1) and RPC (+2) ports
// are free as well.
func legionPorts(t *testing.T, taken map[int]bool) int {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if p+2 > 65535 || taken[p] || taken[p+1] || taken[p+2] {
			continue
		}
		free := true
		for _, q := range []int{p, p + 1, p + 2} {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", q))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			u.Close()
		} else {
			free = false
		}
		if free {
			taken[p], taken[p+1], taken[p+2] = true, true, true
			return p
		}
	}
	t.Fatal("no free port triple for a legion node")
	return 0
}

// clusterNode is one member of the test cluster.
type clusterNode struct {
	s      *server
	gossip string
	ctl    ctl
	rc     *adminclient.Client
	id     string
}

// status is the node's view of the cluster, as JSON from gouwsgictl.
func (n *clusterNode) status(t *testing.T) *adminv1.StatusResponse {
	t.Helper()
	var st adminv1.StatusResponse
	n.ctl.json(t, &st, "legion", "status")
	return &st
}

// TestAdminLegion runs a 3-node cluster on loopback and operates it with
// gouwsgictl: every node shows the same lord and epoch, members with
// valor, Raft roles and last contact; lordship moves by resign and
// transfer (asked of followers, so the writes are forwarded); a killed
// node is removed; with the quorum gone, writes answer UNAVAILABLE.
func TestAdminLegion(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	app := filepath.Join(repo(t), "examples/hello/app.py")
	taken := map[int]bool{}
	ports := []int{legionPorts(t, taken), legionPorts(t, taken), legionPorts(t, taken)}
	nodes := make([]*clusterNode, 3)
	for i := range nodes {
		gossip := fmt.Sprintf("127.0.0.1:%d", ports[i])
		ini := []string{
			"[uwsgi]", "wsgi-file = " + app, "home = /usr", "master = true", "processes = 1",
			"http = 127.0.0.1:0", "admin = 127.0.0.1:0", "disable-logging = true",
			fmt.Sprintf("legion = web %s %d aes256:e2e-secret", gossip, 100-10*i),
			"legion-data-dir = " + filepath.Join(dir, fmt.Sprintf("n%d", i)),
		}
		for j := range nodes {
			if j != i {
				ini = append(ini, fmt.Sprintf("legion-node = web 127.0.0.1:%d", ports[j]))
			}
		}
		path := writeSecret(t, filepath.Join(dir, fmt.Sprintf("n%d.ini", i)), strings.Join(ini, "\n")+"\n")
		nodes[i] = &clusterNode{s: start(t, dir, "--ini", path), gossip: gossip}
	}
	for _, n := range nodes {
		addr := n.s.adminAddr()
		// Writes wait for Raft (up to its 5 s apply timeout) and for the
		// new lord: more than gouwsgictl's default 5 s on a busy machine.
		n.ctl = newCtl(t, addr).with("--timeout", "20s")
		n.rc = dial(t, adminclient.Config{Addr: addr})
	}
	ctx := ctxTimeout(t, 100*time.Second)

	// agreed waits until every node in ns sees the same leader and lord at
	// the same epoch, and the lord satisfies ok; it returns the leader
	// node's status.
	agreed := func(t *testing.T, ns []*clusterNode, what string, ok func(*adminv1.Legion) bool) *adminv1.StatusResponse {
		t.Helper()
		var leader *adminv1.StatusResponse
		poll(t, 30*time.Second, what, func() error {
			var first *adminv1.Legion
			var leaderID string
			for i, n := range ns {
				st, err := n.rc.Legion.Status(ctx, &adminv1.StatusRequest{})
				if err != nil {
					return err
				}
				n.id = st.GetNodeId()
				if len(st.GetLegions()) != 1 || st.GetLeaderId() == "" {
					return fmt.Errorf("node %d: %v", i, st)
				}
				lg := st.GetLegions()[0]
				if i == 0 {
					first, leaderID = lg, st.GetLeaderId()
				}
				if lg.GetLord() == "" || lg.GetLord() != first.GetLord() || lg.GetEpoch() != first.GetEpoch() || st.GetLeaderId() != leaderID {
					return fmt.Errorf("node %d sees lord %q epoch %d leader %s; node 0: %q epoch %d leader %s",
						i, lg.GetLord(), lg.GetEpoch(), st.GetLeaderId(), first.GetLord(), first.GetEpoch(), leaderID)
				}
				if !ok(lg) {
					return fmt.Errorf("lord %q at epoch %d", lg.GetLord(), lg.GetEpoch())
				}
				if st.GetRaftRole() == adminv1.RaftRole_RAFT_ROLE_LEADER {
					leader = st
				}
			}
			if leader == nil {
				return fmt.Errorf("no node of %d reports itself leader", len(ns))
			}
			return nil
		})
		return leader
	}
	// follower returns a node of ns that is not the Raft leader.
	follower := func(ns []*clusterNode, leaderID string) *clusterNode {
		for _, n := range ns {
			if n.id != leaderID {
				return n
			}
		}
		t.Fatal("no follower")
		return nil
	}

	// The first lord may be named before the highest valor joins the
	// legion, which then takes over: wait for that to settle.
	formed := agreed(t, nodes, "the cluster to form with the highest valor as lord", func(lg *adminv1.Legion) bool {
		for _, m := range lg.GetMembers() {
			if m.GetNodeId() == lg.GetLord() {
				return len(lg.GetMembers()) == 3 && m.GetValor() == 100
			}
		}
		return false
	})
	epoch := formed.GetLegions()[0].GetEpoch()
	idx := map[string]int{}
	for i, n := range nodes {
		idx[n.id] = i
	}

	t.Run("status", func(t *testing.T) {
		for i, n := range nodes {
			st := n.status(t)
			lg := st.GetLegions()[0]
			if lg.GetName() != "web" || lg.GetLord() != formed.GetLegions()[0].GetLord() || lg.GetEpoch() != epoch {
				t.Errorf("node %d: legion %v, want lord %s epoch %d", i, lg, formed.GetLegions()[0].GetLord(), epoch)
			}
			valors := map[string]int64{}
			for _, m := range lg.GetMembers() {
				valors[m.GetNodeId()] = m.GetValor()
			}
			for j, o := range nodes {
				if valors[o.id] != int64(100-10*j) {
					t.Errorf("node %d: valor of node %d = %d, want %d", i, j, valors[o.id], 100-10*j)
				}
			}
			if len(st.GetMembers()) != 3 {
				t.Fatalf("node %d: members %v", i, st.GetMembers())
			}
			for _, m := range st.GetMembers() {
				wantRole := adminv1.RaftRole_RAFT_ROLE_FOLLOWER
				if m.GetNodeId() == formed.GetNodeId() {
					wantRole = adminv1.RaftRole_RAFT_ROLE_LEADER
				}
				if m.GetHealth() != adminv1.Health_HEALTH_ALIVE || m.GetRaftRole() != wantRole || m.GetAddr() != nodes[idx[m.GetNodeId()]].gossip {
					t.Errorf("node %d: member %v, want alive %s at %s", i, m, wantRole, nodes[idx[m.GetNodeId()]].gossip)
				}
				// A follower knows how long ago it heard from the leader;
				// the leader is in contact with itself.
				if m.GetNodeId() == n.id && (m.GetLastContact() == nil || m.GetLastContact().AsDuration() > 10*time.Second ||
					(wantRole == adminv1.RaftRole_RAFT_ROLE_LEADER && m.GetLastContact().AsDuration() != 0)) {
					t.Errorf("node %d (%s): own last contact %v", i, wantRole, m.GetLastContact())
				}
			}
			table := n.ctl.ok(t, "legion", "status")
			for _, want := range []string{
				fmt.Sprintf("node %s (%s)  leader %s", n.id, map[bool]string{true: "leader", false: "follower"}[n.id == formed.GetNodeId()], formed.GetNodeId()),
				fmt.Sprintf("web     %s  %d", lg.GetLord(), epoch),
				"web=100", "web=90", "web=80", "LAST CONTACT",
			} {
				if !strings.Contains(table, want) {
					t.Errorf("node %d: legion status lacks %q:\n%s", i, want, table)
				}
			}
		}
	})

	t.Run("members", func(t *testing.T) {
		table := nodes[1].ctl.ok(t, "legion", "members")
		for _, n := range nodes {
			if !regexp.MustCompile(`(?m)^` + n.id + `\s+` + regexp.QuoteMeta(n.gossip) + `\s+127\.0\.0\.1:\d+\s+\S+\s+alive\s+(leader|follower)\s`).MatchString(table) {
				t.Errorf("legion members lacks %s at %s:\n%s", n.id, n.gossip, table)
			}
		}
		resp, err := nodes[2].rc.Legion.ListMembers(ctx, &adminv1.ListMembersRequest{})
		if err != nil || len(resp.GetMembers()) != 3 {
			t.Fatalf("ListMembers = %v, %v", resp, err)
		}
	})

	t.Run("resign and transfer", func(t *testing.T) {
		before := formed.GetLegions()[0]
		f := follower(nodes, formed.GetNodeId())
		out := f.ctl.ok(t, "legion", "resign", "web")
		m := regexp.MustCompile(`^legion web: lord (\S+) \(epoch (\d+)\)\n$`).FindStringSubmatch(out)
		if m == nil || m[1] == before.GetLord() {
			t.Fatalf("legion resign: %q (lord was %s)", out, before.GetLord())
		}
		st := agreed(t, nodes, "every node to see the resigned lordship", func(lg *adminv1.Legion) bool {
			return lg.GetLord() == m[1] && lg.GetEpoch() > before.GetEpoch()
		})

		// Hand it to the lowest valor through another follower.
		target := nodes[2].id
		var resp adminv1.TransferLordResponse
		follower(nodes[1:], st.GetNodeId()).ctl.json(t, &resp, "legion", "transfer", "web", target)
		if resp.GetLegion().GetLord() != target || resp.GetLegion().GetEpoch() <= st.GetLegions()[0].GetEpoch() {
			t.Fatalf("legion transfer -o json = %v", &resp)
		}
		agreed(t, nodes, "every node to see the transferred lordship", func(lg *adminv1.Legion) bool { return lg.GetLord() == target })

		f.ctl.fails(t, 1, []string{"legion", "transfer", "web", "no-such-node"}, "not a member of legion web", "(NotFound)")
		f.ctl.fails(t, 1, []string{"legion", "resign", "nolegion"}, "unknown legion", "(NotFound)")
		_, err := f.rc.Legion.TransferLord(ctx, &adminv1.TransferLordRequest{Legion: "web"})
		wantCode(t, err, codes.InvalidArgument, "target node id")
		r, err := f.rc.Legion.ResignLord(ctx, &adminv1.ResignLordRequest{Legion: "web"})
		if err != nil || r.GetLegion().GetLord() == target {
			t.Fatalf("ResignLord = %v, %v", r, err)
		}
		// Back to valor order, pinned on node 2 again for the next step.
		if _, err := f.rc.Legion.TransferLord(ctx, &adminv1.TransferLordRequest{Legion: "web", NodeId: target}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("join", func(t *testing.T) {
		if out := nodes[1].ctl.ok(t, "legion", "join", nodes[0].gossip); out != "joined through 1 of 1 address(es)\n" {
			t.Errorf("legion join: %q", out)
		}
		nodes[1].ctl.fails(t, 1, []string{"legion", "join", "127.0.0.1:1"}, "connection refused", "(Unavailable)")
		nodes[1].ctl.fails(t, 1, []string{"legion", "remove", nodes[2].id}, "is alive", "(FailedPrecondition)")
	})

	t.Run("remove a dead node", func(t *testing.T) {
		dead := nodes[2]
		if err := dead.s.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = dead.s.wait(30 * time.Second)
		live := nodes[:2]
		// Every live node must see it dead: the remove is forwarded to the
		// Raft leader, which refuses a node its own gossip still sees alive.
		poll(t, 30*time.Second, "the killed node to be dead in every live node's gossip", func() error {
			for _, n := range live {
				for _, m := range n.status(t).GetMembers() {
					if m.GetNodeId() == dead.id && m.GetHealth() != adminv1.Health_HEALTH_DEAD {
						return fmt.Errorf("node %s sees member %v", n.id, m)
					}
				}
			}
			return nil
		})
		// The pinned lord died: the lordship moves to a live member.
		st := agreed(t, live, "a live lord after the pinned lord died", func(lg *adminv1.Legion) bool { return lg.GetLord() != dead.id })
		out := follower(live, st.GetNodeId()).ctl.ok(t, "legion", "remove", dead.id)
		if out != "removed "+dead.id+"\n" {
			t.Errorf("legion remove: %q", out)
		}
		poll(t, 30*time.Second, "the removed node out of Raft and the legion", func() error {
			for _, n := range live {
				st := n.status(t)
				for _, m := range st.GetMembers() {
					if m.GetNodeId() == dead.id && m.GetRaftRole() != adminv1.RaftRole_RAFT_ROLE_NONE {
						return fmt.Errorf("node %s: member %v", n.id, m)
					}
				}
				if k := len(st.GetLegions()[0].GetMembers()); k != 2 {
					return fmt.Errorf("node %s: legion has %d members", n.id, k)
				}
			}
			return nil
		})
		live[0].ctl.fails(t, 1, []string{"legion", "remove", "no-such-node"}, "unknown node", "(NotFound)")
	})

	t.Run("no quorum", func(t *testing.T) {
		// Two voters remain; with one of them killed, writes cannot
		// commit: the survivor answers UNAVAILABLE and says why.
		st := nodes[0].status(t)
		victim, survivor := nodes[0], nodes[1]
		if st.GetLeaderId() == nodes[1].id {
			victim, survivor = nodes[1], nodes[0]
		}
		if err := victim.s.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = victim.s.wait(30 * time.Second)
		survivor.ctl.fails(t, 1, []string{"--timeout", "20s", "legion", "transfer", "web", survivor.id},
			"no raft quorum", "1 of 2 voters reachable", "(Unavailable)")
		_, err := survivor.rc.Legion.RemoveNode(ctx, &adminv1.RemoveNodeRequest{NodeId: victim.id})
		wantCode(t, err, codes.Unavailable, "")
		// Reads still answer, from the survivor's own view.
		if table := survivor.ctl.ok(t, "legion", "status"); !strings.Contains(table, "leader -") {
			t.Errorf("status without a leader:\n%s", table)
		}
		// A graceful stop without quorum cannot hand over: it says so and
		// exits, well before its 20 s shutdown timeout (wait fails the
		// test after 15 s).
		if err := survivor.s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		_ = survivor.s.wait(15 * time.Second)
		if !strings.Contains(survivor.s.logs(), "leaving without handing over") {
			t.Errorf("stop without quorum did not say why it did not hand over:\n%s", survivor.s.logs())
		}
	})
}
