package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/legion"
	"github.com/gouwsgi/gouwsgi/legion/hooks"
	"github.com/gouwsgi/gouwsgi/node/alarm"
	"github.com/gouwsgi/gouwsgi/node/config"
)

func loadConfig(t *testing.T, args ...string) *config.Config {
	t.Helper()
	cfg, err := config.Load(args, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestClusterEventsOption(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
		err  string
	}{
		{"none", nil, nil, ""},
		{"two alarms", []string{"--alarm-cluster", "pager, mail"}, []string{"pager", "mail"}, ""},
		{"repeated option", []string{"--alarm-cluster", "pager", "--alarm-cluster", "mail"}, []string{"pager", "mail"}, ""},
		{"undefined alarm", []string{"--alarm-cluster", "pager,sms"}, nil, `alarm "sms" is not defined`},
		{"empty name", []string{"--alarm-cluster", "pager,,mail"}, nil, "empty alarm name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--alarm", "pager log:", "--alarm", "mail log:"}, tt.args...)
			ev, err := newClusterEvents(loadConfig(t, args...), nil, "n1")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "alarm-cluster") {
					t.Fatalf("err = %v, want one naming alarm-cluster and %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(ev.names, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("names %q, want %q", ev.names, tt.want)
			}
		})
	}
}

func TestClusterAlarmNeedsLegion(t *testing.T) {
	cfg := loadConfig(t, "--alarm", "pager log:", "--alarm-cluster", "pager")
	_, err := newCluster(cfg, alarm.FromConfig(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "alarm-cluster given without a legion") {
		t.Fatalf("err = %v", err)
	}
}

// Cluster events reach the alarm manager as KindCluster raises, after the
// hooks ran.
func TestClusterReactorRaises(t *testing.T) {
	cfg := loadConfig(t, "--alarm", "pager log:", "--alarm-cluster", "pager")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	am, err := alarm.New(alarm.FromConfig(cfg), log, alarm.WithNode("n1"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = am.Run(ctx) }()
	runner, err := hooks.NewRunner(hooks.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer runner.Close(context.Background())
	ev, err := newClusterEvents(cfg, am, "n1")
	if err != nil {
		t.Fatal(err)
	}
	r := clusterReactor{Reactor: &hooks.Reactor{R: runner, Node: "n1"}, events: ev}
	r.OnLord("web", 7)
	r.OnNodeLeft("web", legion.MemberInfo{NodeID: "id-2", Name: "n2"})
	r.OnQuorumLost("no raft quorum: 1 of 3 voters reachable")
	want := []string{
		"legion web: n1 is the new lord (epoch 7)",
		"legion web: member n2 (id-2) is gone (dead or left)",
		"n1: no raft quorum: 1 of 3 voters reachable",
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got []string
		for _, inc := range am.History() {
			if inc.Kind == alarm.KindCluster && inc.Alarm == "pager" {
				got = append(got, inc.Message)
			}
		}
		if strings.Join(got, "|") == strings.Join(want, "|") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster incidents %q, want %q", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
