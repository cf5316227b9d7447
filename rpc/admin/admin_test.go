package admin_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	adminv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/admin/v1"
	"github.com/gouwsgi/gouwsgi/rpc/admin"
	"github.com/gouwsgi/gouwsgi/rpc/admin/admintest"
	"github.com/gouwsgi/gouwsgi/rpc/client"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial connects the real client to srv.
func dial(t *testing.T, srv *admin.Server, cfg client.Config) *client.Client {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = srv.Addr().String()
		if srv.Addr().Network() == "unix" {
			cfg.Addr = "unix://" + cfg.Addr
		}
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantCode fails unless err is a status with code and a message containing
// every fragment.
func wantCode(t *testing.T, err error, code codes.Code, fragments ...string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("got %v (%v), want code %v", st.Code(), err, code)
	}
	for _, f := range fragments {
		if !strings.Contains(st.Message(), f) {
			t.Errorf("message %q does not mention %q", st.Message(), f)
		}
	}
}

func TestNodeService(t *testing.T) {
	deps := admintest.Deps()
	c := dial(t, admintest.Start(t, admin.Config{}, deps), client.Config{})
	ctx := ctxT(t)

	st, err := c.Node.GetStats(ctx, &adminv1.GetStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetNodeId() != "n1" || len(st.GetWorkers()) != 3 || len(st.GetSockets()) != 2 || len(st.GetCaches()) != 2 {
		t.Fatalf("stats: %v", st)
	}
	w := st.GetWorkers()[0]
	if w.GetPid() != 4201 || w.GetAvgRt() != 3000 || w.GetRunningTime() != 1200*3000 || w.GetLastSpawn() != admintest.Now.Add(-time.Hour).Unix() {
		t.Errorf("worker 1 = %v", w)
	}
	if so := st.GetSockets()[1]; so.GetCanOffload() != 1 || so.GetQueue() != 2 {
		t.Errorf("socket = %v", so)
	}

	lw, err := c.Node.ListWorkers(ctx, &adminv1.ListWorkersRequest{})
	if err != nil || len(lw.GetWorkers()) != 3 || lw.GetWorkers()[1].GetStatus() != "busy" {
		t.Fatalf("ListWorkers = %v, %v", lw, err)
	}

	for _, chain := range []bool{false, true} {
		if _, err := c.Node.Reload(ctx, &adminv1.ReloadRequest{Chain: chain}); err != nil {
			t.Fatal(err)
		}
	}
	if got := deps.Node.(*admintest.Node).Reloads; len(got) != 2 || got[0] || !got[1] {
		t.Errorf("reloads = %v, want [false true]", got)
	}

	tests := []struct {
		name  string
		delta int32
		want  int32
		code  codes.Code
		frag  string
	}{
		{"add", 2, 5, codes.OK, ""},
		{"remove", -1, 4, codes.OK, ""},
		{"zero", 0, 0, codes.InvalidArgument, "delta must not be 0"},
		{"too many removed", -10, 0, codes.InvalidArgument, "at least one must remain"},
	}
	for _, tt := range tests {
		t.Run("scale "+tt.name, func(t *testing.T) {
			resp, err := c.Node.ScaleWorkers(ctx, &adminv1.ScaleWorkersRequest{Delta: tt.delta})
			if tt.code != codes.OK {
				wantCode(t, err, tt.code, tt.frag)
				return
			}
			if err != nil || resp.GetWorkers() != tt.want {
				t.Fatalf("ScaleWorkers(%d) = %v, %v; want %d", tt.delta, resp, err, tt.want)
			}
		})
	}
}

func TestLegionService(t *testing.T) {
	deps := admintest.Deps()
	c := dial(t, admintest.Start(t, admin.Config{}, deps), client.Config{})
	ctx := ctxT(t)

	st, err := c.Legion.Status(ctx, &adminv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetLeaderId() != "n1" || st.GetRaftRole() != adminv1.RaftRole_RAFT_ROLE_LEADER || st.GetRaftTerm() != 3 {
		t.Errorf("status = %v", st)
	}
	if l := st.GetLegions()[0]; l.GetLord() != "n1" || l.GetEpoch() != 7 || l.GetVips()[0] != "10.0.0.100/24" || l.GetMembers()[1].GetValor() != 90 {
		t.Errorf("legion = %v", l)
	}
	if m := st.GetMembers()[2]; m.GetHealth() != adminv1.Health_HEALTH_DEAD || m.GetLastContact().AsDuration() != 41*time.Second {
		t.Errorf("member n3 = %v", m)
	}

	lm, err := c.Legion.ListMembers(ctx, &adminv1.ListMembersRequest{})
	if err != nil || len(lm.GetMembers()) != 3 {
		t.Fatalf("ListMembers = %v, %v", lm, err)
	}

	t.Run("resign", func(t *testing.T) {
		r, err := c.Legion.ResignLord(ctx, &adminv1.ResignLordRequest{Legion: "web"})
		if err != nil || r.GetLegion().GetLord() != "n2" || r.GetLegion().GetEpoch() != 8 {
			t.Fatalf("ResignLord = %v, %v; want lord n2 epoch 8", r, err)
		}
		_, err = c.Legion.ResignLord(ctx, &adminv1.ResignLordRequest{})
		wantCode(t, err, codes.InvalidArgument, "legion name is required")
		_, err = c.Legion.ResignLord(ctx, &adminv1.ResignLordRequest{Legion: "api"})
		wantCode(t, err, codes.NotFound, `no legion "api"`)
	})
	t.Run("transfer", func(t *testing.T) {
		r, err := c.Legion.TransferLord(ctx, &adminv1.TransferLordRequest{Legion: "web", NodeId: "n3"})
		if err != nil || r.GetLegion().GetLord() != "n3" {
			t.Fatalf("TransferLord = %v, %v", r, err)
		}
		_, err = c.Legion.TransferLord(ctx, &adminv1.TransferLordRequest{Legion: "web", NodeId: "n9"})
		wantCode(t, err, codes.NotFound, `node "n9"`)
		_, err = c.Legion.TransferLord(ctx, &adminv1.TransferLordRequest{Legion: "web"})
		wantCode(t, err, codes.InvalidArgument, "target node id")
	})
	t.Run("join", func(t *testing.T) {
		r, err := c.Legion.Join(ctx, &adminv1.JoinRequest{Addrs: []string{"10.0.0.4:7946"}})
		if err != nil || r.GetJoined() != 1 {
			t.Fatalf("Join = %v, %v", r, err)
		}
		_, err = c.Legion.Join(ctx, &adminv1.JoinRequest{})
		wantCode(t, err, codes.InvalidArgument, "at least one address")
		_, err = c.Legion.Join(ctx, &adminv1.JoinRequest{Addrs: []string{" "}})
		wantCode(t, err, codes.InvalidArgument, "must not be empty")
	})
	t.Run("remove", func(t *testing.T) {
		_, err := c.Legion.RemoveNode(ctx, &adminv1.RemoveNodeRequest{NodeId: "n2"})
		wantCode(t, err, codes.FailedPrecondition, "is alive")
		if _, err := c.Legion.RemoveNode(ctx, &adminv1.RemoveNodeRequest{NodeId: "n3"}); err != nil {
			t.Fatal(err)
		}
		_, err = c.Legion.RemoveNode(ctx, &adminv1.RemoveNodeRequest{NodeId: "n3"})
		wantCode(t, err, codes.NotFound, "n3")
		_, err = c.Legion.RemoveNode(ctx, &adminv1.RemoveNodeRequest{})
		wantCode(t, err, codes.InvalidArgument, "node id is required")
	})
	t.Run("not leader", func(t *testing.T) {
		deps.Legion.(*admintest.Legion).NotLeader = &admin.NotLeaderError{LeaderID: "n2", LeaderAddr: "10.0.0.2:7071"}
		_, err := c.Legion.ResignLord(ctx, &adminv1.ResignLordRequest{Legion: "web"})
		wantCode(t, err, codes.Unavailable, "the leader is n2 at 10.0.0.2:7071")
		var info *errdetails.ErrorInfo
		for _, d := range status.Convert(err).Details() {
			if ei, ok := d.(*errdetails.ErrorInfo); ok {
				info = ei
			}
		}
		if info == nil || info.GetReason() != admin.ErrorReasonNotLeader || info.GetMetadata()["leader_id"] != "n2" {
			t.Errorf("details = %v, want ErrorInfo NOT_LEADER naming n2", status.Convert(err).Details())
		}
	})
}

func TestLegionServiceWithoutLegion(t *testing.T) {
	deps := admintest.Deps()
	deps.Legion = nil
	c := dial(t, admintest.Start(t, admin.Config{}, deps), client.Config{})
	ctx := ctxT(t)
	calls := map[string]func() error{
		"Status":      func() error { _, err := c.Legion.Status(ctx, &adminv1.StatusRequest{}); return err },
		"ListMembers": func() error { _, err := c.Legion.ListMembers(ctx, &adminv1.ListMembersRequest{}); return err },
		"ResignLord": func() error {
			_, err := c.Legion.ResignLord(ctx, &adminv1.ResignLordRequest{Legion: "web"})
			return err
		},
		"TransferLord": func() error { _, err := c.Legion.TransferLord(ctx, &adminv1.TransferLordRequest{}); return err },
		"Join":         func() error { _, err := c.Legion.Join(ctx, &adminv1.JoinRequest{}); return err },
		"RemoveNode":   func() error { _, err := c.Legion.RemoveNode(ctx, &adminv1.RemoveNodeRequest{}); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			wantCode(t, call(), codes.FailedPrecondition, "this node runs no legion")
		})
	}
}

func TestCacheService(t *testing.T) {
	c := dial(t, admintest.Start(t, admin.Config{}, admintest.Deps()), client.Config{})
	ctx := ctxT(t)

	got, err := c.Cache.Get(ctx, &adminv1.CacheServiceGetRequest{Key: "/about"})
	if err != nil || string(got.GetValue()) != "about us" || !got.GetExpiresAt().AsTime().Equal(admintest.Now.Add(time.Minute)) {
		t.Fatalf("Get /about = %v, %v", got, err)
	}

	sets := []struct {
		name string
		req  *adminv1.CacheServiceSetRequest
		code codes.Code
		frag string
	}{
		{"set new", &adminv1.CacheServiceSetRequest{Key: "k", Value: []byte("v1"), Mode: adminv1.SetMode_SET_MODE_SET}, codes.OK, ""},
		{"set existing", &adminv1.CacheServiceSetRequest{Key: "k", Value: []byte("v2"), Mode: adminv1.SetMode_SET_MODE_SET}, codes.AlreadyExists, "use update"},
		{"update existing", &adminv1.CacheServiceSetRequest{Key: "k", Value: []byte("v3"), Mode: adminv1.SetMode_SET_MODE_UPDATE, Ttl: durationpb.New(time.Minute)}, codes.OK, ""},
		{"no mode", &adminv1.CacheServiceSetRequest{Key: "k", Value: []byte("v")}, codes.InvalidArgument, "set mode is required"},
		{"no key", &adminv1.CacheServiceSetRequest{Mode: adminv1.SetMode_SET_MODE_UPDATE}, codes.InvalidArgument, "cache key is required"},
		{"negative ttl", &adminv1.CacheServiceSetRequest{Key: "k", Mode: adminv1.SetMode_SET_MODE_UPDATE, Ttl: durationpb.New(-time.Second)}, codes.InvalidArgument, "ttl must not be negative"},
		{"unknown cache", &adminv1.CacheServiceSetRequest{Cache: "nope", Key: "k", Mode: adminv1.SetMode_SET_MODE_UPDATE}, codes.NotFound, `no cache "nope"`},
	}
	for _, tt := range sets {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Cache.Set(ctx, tt.req)
			wantCode(t, err, tt.code, tt.frag)
		})
	}
	got, err = c.Cache.Get(ctx, &adminv1.CacheServiceGetRequest{Cache: "default", Key: "k"})
	if err != nil || string(got.GetValue()) != "v3" {
		t.Fatalf("Get k after update = %v, %v; want v3", got, err)
	}

	keys, err := c.Cache.Keys(ctx, &adminv1.CacheServiceKeysRequest{})
	if err != nil || strings.Join(keys.GetKeys(), ",") != "/about,/index.html,k" {
		t.Fatalf("Keys = %v, %v", keys, err)
	}
	lin, err := c.Cache.Keys(ctx, &adminv1.CacheServiceKeysRequest{Cache: "sessions", Linearizable: true})
	if err != nil || len(lin.GetKeys()) != 1 {
		t.Fatalf("linearizable Keys(sessions) = %v, %v", lin, err)
	}
	_, err = c.Cache.Get(ctx, &adminv1.CacheServiceGetRequest{Key: "k", Linearizable: true})
	wantCode(t, err, codes.FailedPrecondition, "linearizable reads need a replicated cache")

	if _, err := c.Cache.Delete(ctx, &adminv1.CacheServiceDeleteRequest{Key: "k"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Cache.Delete(ctx, &adminv1.CacheServiceDeleteRequest{Key: "k"})
	wantCode(t, err, codes.NotFound, `key "k"`)
	_, err = c.Cache.Get(ctx, &adminv1.CacheServiceGetRequest{Key: "k"})
	wantCode(t, err, codes.NotFound, `key "k"`)
	_, err = c.Cache.Get(ctx, &adminv1.CacheServiceGetRequest{})
	wantCode(t, err, codes.InvalidArgument, "cache key is required")

	stats, err := c.Cache.Stats(ctx, &adminv1.CacheServiceStatsRequest{Cache: "sessions"})
	if err != nil || len(stats.GetCaches()) != 1 || !stats.GetCaches()[0].GetReplicated() || stats.GetCaches()[0].GetItems() != 1 {
		t.Fatalf("Stats(sessions) = %v, %v", stats, err)
	}
	_, err = c.Cache.Stats(ctx, &adminv1.CacheServiceStatsRequest{Cache: "nope"})
	wantCode(t, err, codes.NotFound, "nope")

	if _, err := c.Cache.Clear(ctx, &adminv1.CacheServiceClearRequest{Cache: "sessions"}); err != nil {
		t.Fatal(err)
	}
	stats, err = c.Cache.Stats(ctx, &adminv1.CacheServiceStatsRequest{})
	if err != nil || len(stats.GetCaches()) != 2 || stats.GetCaches()[1].GetItems() != 0 {
		t.Fatalf("Stats after Clear = %v, %v", stats, err)
	}
}

func TestAlarmService(t *testing.T) {
	deps := admintest.Deps()
	c := dial(t, admintest.Start(t, admin.Config{}, deps), client.Config{})
	ctx := ctxT(t)

	open, err := c.Alarm.List(ctx, &adminv1.AlarmServiceListRequest{})
	if err != nil || len(open.GetAlarms()) != 1 || open.GetAlarms()[0].GetId() != 2 {
		t.Fatalf("List = %v, %v; want only alarm 2", open, err)
	}
	all, err := c.Alarm.List(ctx, &adminv1.AlarmServiceListRequest{IncludeAcknowledged: true})
	if err != nil || len(all.GetAlarms()) != 2 {
		t.Fatalf("List(all) = %v, %v", all, err)
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Alarm.Watch(wctx, &adminv1.AlarmServiceWatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	alarms := deps.Alarms.(*admintest.Alarms)
	waitFor(t, func() bool { return alarms.Watchers() == 1 })

	raised, err := c.Alarm.Raise(ctx, &adminv1.AlarmServiceRaiseRequest{Name: "ops", Message: "disk full"})
	if err != nil || raised.GetAlarm().GetId() != 3 || raised.GetAlarm().GetSource() != "api" {
		t.Fatalf("Raise = %v, %v", raised, err)
	}
	if _, err := c.Alarm.Acknowledge(ctx, &adminv1.AlarmServiceAcknowledgeRequest{Id: 3}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []adminv1.AlarmEventType{adminv1.AlarmEventType_ALARM_EVENT_TYPE_RAISED, adminv1.AlarmEventType_ALARM_EVENT_TYPE_ACKNOWLEDGED} {
		ev, err := stream.Recv()
		if err != nil || ev.GetType() != want || ev.GetAlarm().GetMessage() != "disk full" {
			t.Fatalf("Recv = %v, %v; want %v of alarm 3", ev, err, want)
		}
	}
	cancel()
	waitFor(t, func() bool { return alarms.Watchers() == 0 })

	_, err = c.Alarm.Acknowledge(ctx, &adminv1.AlarmServiceAcknowledgeRequest{Id: 99})
	wantCode(t, err, codes.NotFound, "no alarm with id 99")
	_, err = c.Alarm.Acknowledge(ctx, &adminv1.AlarmServiceAcknowledgeRequest{})
	wantCode(t, err, codes.InvalidArgument, "alarm id is required")
	_, err = c.Alarm.Raise(ctx, &adminv1.AlarmServiceRaiseRequest{Name: "ops"})
	wantCode(t, err, codes.InvalidArgument, "name and message")
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHealth(t *testing.T) {
	withLegion := dial(t, admintest.Start(t, admin.Config{}, admintest.Deps()), client.Config{})
	standalone := admintest.Deps()
	standalone.Legion = nil
	without := dial(t, admintest.Start(t, admin.Config{}, standalone), client.Config{})
	serving, notServing := healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING
	tests := []struct {
		name    string
		c       *client.Client
		service string
		want    healthpb.HealthCheckResponse_ServingStatus
	}{
		{"server", withLegion, "", serving},
		{"node", withLegion, "gouwsgi.admin.v1.NodeService", serving},
		{"legion", withLegion, "gouwsgi.admin.v1.LegionService", serving},
		{"no legion", without, "gouwsgi.admin.v1.LegionService", notServing},
		{"cache without legion", without, "gouwsgi.admin.v1.CacheService", serving},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.c.Health.Check(ctxT(t), &healthpb.HealthCheckRequest{Service: tt.service})
			if err != nil || resp.GetStatus() != tt.want {
				t.Fatalf("health(%q) = %v, %v; want %v", tt.service, resp, err, tt.want)
			}
		})
	}
}

func TestServeStopsWithOpenWatch(t *testing.T) {
	srv, err := admin.New(admin.Config{Addr: "127.0.0.1:0"}, admintest.Deps())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	c := dial(t, srv, client.Config{})
	stream, err := c.Alarm.Watch(ctxT(t), &adminv1.AlarmServiceWatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// A health check proves the server is up before stopping it.
	if _, err := c.Health.Check(ctxT(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stopping took %s: the open watch held GracefulStop", d)
	}
	if _, err := stream.Recv(); err == nil {
		t.Error("watch stream still open after stop")
	}
}

func TestTokenAuth(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := admintest.Start(t, admin.Config{TokenFile: tokenFile}, admintest.Deps())
	tests := []struct {
		name  string
		token string
		code  codes.Code
		frag  string
	}{
		{"no token", "", codes.Unauthenticated, "missing bearer token"},
		{"wrong token", "guess", codes.Unauthenticated, "invalid bearer token"},
		{"prefix of token", "s3cre", codes.Unauthenticated, "invalid bearer token"},
		{"right token", "s3cret", codes.OK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, srv, client.Config{Token: tt.token})
			ctx := ctxT(t)
			_, err := c.Node.GetStats(ctx, &adminv1.GetStatsRequest{})
			wantCode(t, err, tt.code, tt.frag)

			// Streaming calls pass the stream interceptor: the error
			// arrives with the first Recv.
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			stream, err := c.Alarm.Watch(wctx, &adminv1.AlarmServiceWatchRequest{})
			if err == nil {
				if tt.code == codes.OK {
					// An authorised watch stays open: nothing arrives
					// before the cancel.
					cancel()
				}
				_, err = stream.Recv()
			}
			if tt.code == codes.OK {
				wantCode(t, err, codes.Canceled)
			} else {
				wantCode(t, err, tt.code, tt.frag)
			}

			// Health checks need no credential.
			if _, err := c.Health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				t.Errorf("health: %v", err)
			}
		})
	}
}

func TestTokenFromEnv(t *testing.T) {
	t.Setenv(admin.TokenEnv, "from-env")
	srv := admintest.Start(t, admin.Config{}, admintest.Deps())
	_, err := dial(t, srv, client.Config{Token: "other"}).Node.GetStats(ctxT(t), &adminv1.GetStatsRequest{})
	wantCode(t, err, codes.Unauthenticated, "invalid bearer token")
	if _, err := dial(t, srv, client.Config{Token: "from-env"}).Node.GetStats(ctxT(t), &adminv1.GetStatsRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestConfigRejected(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tlsFiles := admintest.WriteTLSFiles(t)
	tests := []struct {
		name string
		cfg  admin.Config
		frag string
	}{
		{"empty addr", admin.Config{}, "admin addr is empty"},
		{"all interfaces without TLS", admin.Config{Addr: ":0"}, `non-loopback address ":0" without TLS`},
		{"wildcard without TLS", admin.Config{Addr: "0.0.0.0:0"}, "without TLS"},
		{"public ip without TLS", admin.Config{Addr: "192.0.2.1:7071"}, "without TLS"},
		{"bad addr", admin.Config{Addr: "nonsense"}, "neither unix:///path nor host:port"},
		{"unix without path", admin.Config{Addr: "unix://"}, "no socket path"},
		{"uwsgi-style unix without path", admin.Config{Addr: "unix:"}, "no socket path"},
		{"cert without key", admin.Config{Addr: "127.0.0.1:0", CertFile: tlsFiles.ServerCert}, "both a certificate file and a key file"},
		{"client CA without TLS", admin.Config{Addr: "127.0.0.1:0", ClientCAFile: tlsFiles.CA}, "needs a server certificate"},
		{"missing cert file", admin.Config{Addr: "127.0.0.1:0", CertFile: filepath.Join(dir, "x.pem"), KeyFile: filepath.Join(dir, "x-key.pem")}, "load admin TLS certificate"},
		{"empty token file", admin.Config{Addr: "127.0.0.1:0", TokenFile: empty}, "is empty"},
		{"missing token file", admin.Config{Addr: "127.0.0.1:0", TokenFile: filepath.Join(dir, "nope")}, "read admin token file"},
		{"TLS off loopback without credential", admin.Config{Addr: "0.0.0.0:0", CertFile: tlsFiles.ServerCert, KeyFile: tlsFiles.ServerKey}, "without a credential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := admin.New(tt.cfg, admintest.Deps())
			if err == nil {
				srv.Serve(canceled())
				t.Fatalf("New(%+v) succeeded", tt.cfg)
			}
			if !strings.Contains(err.Error(), tt.frag) {
				t.Errorf("error %q does not mention %q", err, tt.frag)
			}
		})
	}
	if _, err := admin.New(admin.Config{Addr: "127.0.0.1:0"}, admin.Deps{}); err == nil {
		t.Error("New without deps succeeded")
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestListenLoopbackAndUnix(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			ln, err := admin.Listen(admin.Config{Addr: addr})
			if err != nil {
				if addr == "[::1]:0" && strings.Contains(err.Error(), "cannot assign") {
					t.Skip("no IPv6 loopback here")
				}
				t.Fatal(err)
			}
			ln.Close()
		})
	}

	t.Run("unix socket 0600 replacing a stale one", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "admin.sock")
		// The second Listen finds the first's socket file; uWSGI's
		// unix:/path form names the same socket.
		for _, addr := range []string{"unix://" + path, "unix:" + path} {
			ln, err := admin.Listen(admin.Config{Addr: addr})
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
			}
			// Closing would unlink the socket; keep the file to simulate a
			// crash by only closing the fd.
			ln.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
			ln.Close()
		}
	})
	t.Run("regular file in the way", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "admin.sock")
		if err := os.WriteFile(path, []byte("data"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := admin.Listen(admin.Config{Addr: path})
		if err == nil || !strings.Contains(err.Error(), "is not a socket") {
			t.Fatalf("Listen over a regular file = %v", err)
		}
	})
	t.Run("calls over the unix socket", func(t *testing.T) {
		srv := admintest.Start(t, admin.Config{Addr: "unix://" + filepath.Join(t.TempDir(), "a.sock")}, admintest.Deps())
		if _, err := dial(t, srv, client.Config{}).Node.GetStats(ctxT(t), &adminv1.GetStatsRequest{}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTLS(t *testing.T) {
	f := admintest.WriteTLSFiles(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("tok"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("off loopback with TLS and token", func(t *testing.T) {
		srv := admintest.Start(t, admin.Config{Addr: "0.0.0.0:0", CertFile: f.ServerCert, KeyFile: f.ServerKey, TokenFile: tokenFile}, admintest.Deps())
		_, port, err := net.SplitHostPort(srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		addr := "127.0.0.1:" + port
		if _, err := dial(t, srv, client.Config{Addr: addr, CACertFile: f.CA, Token: "tok"}).Node.GetStats(ctxT(t), &adminv1.GetStatsRequest{}); err != nil {
			t.Fatal(err)
		}
		_, err = dial(t, srv, client.Config{Addr: addr, CACertFile: f.CA}).Node.GetStats(ctxT(t), &adminv1.GetStatsRequest{})
		wantCode(t, err, codes.Unauthenticated)
		// A plaintext client cannot talk to a TLS server.
		_, err = dial(t, srv, client.Config{Addr: addr, Token: "tok"}).Node.GetStats(ctxT(t), &adminv1.GetStatsRequest{})
		wantCode(t, err, codes.Unavailable)
	})

	mdeps := admintest.Deps()
	mtls := admintest.Start(t, admin.Config{CertFile: f.ServerCert, KeyFile: f.ServerKey, ClientCAFile: f.CA}, mdeps)
	t.Run("mutual TLS accepted", func(t *testing.T) {
		c := dial(t, mtls, client.Config{CACertFile: f.CA, CertFile: f.ClientCert, KeyFile: f.ClientKey})
		if _, err := c.Node.GetStats(ctxT(t), &adminv1.GetStatsRequest{}); err != nil {
			t.Fatal(err)
		}
		stream, err := c.Alarm.Watch(ctxT(t), &adminv1.AlarmServiceWatchRequest{})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return mdeps.Alarms.(*admintest.Alarms).Watchers() == 1 })
		if _, err := c.Alarm.Raise(ctxT(t), &adminv1.AlarmServiceRaiseRequest{Name: "a", Message: "b"}); err != nil {
			t.Fatal(err)
		}
		if ev, err := stream.Recv(); err != nil || ev.GetAlarm().GetName() != "a" {
			t.Fatalf("watch under mTLS = %v, %v", ev, err)
		}
	})
	t.Run("mutual TLS without client certificate", func(t *testing.T) {
		c := dial(t, mtls, client.Config{CACertFile: f.CA})
		_, err := c.Node.GetStats(ctxT(t), &adminv1.GetStatsRequest{})
		if err == nil {
			t.Fatal("call without a client certificate succeeded")
		}
		if code := status.Code(err); code != codes.Unavailable && code != codes.Unauthenticated {
			t.Fatalf("code %v (%v), want a refused handshake", code, err)
		}
	})
	t.Run("server not trusted", func(t *testing.T) {
		other := admintest.WriteTLSFiles(t)
		_, err := dial(t, mtls, client.Config{CACertFile: other.CA, CertFile: f.ClientCert, KeyFile: f.ClientKey}).Node.GetStats(ctxT(t), &adminv1.GetStatsRequest{})
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("untrusted server: %v", err)
		}
	})
}
