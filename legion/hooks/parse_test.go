package hooks

import (
	"strings"
	"testing"
)

func TestParseOption(t *testing.T) {
	tests := []struct {
		option, value string
		want          Hook
	}{
		{"legion-lord", "web cmd:touch /tmp/x", Hook{Legion: "web", Phase: PhaseLord, Action: Action{Kind: KindCmd, Arg: "touch /tmp/x"}}},
		{"legion-unlord", "  web   exec:echo a:b ", Hook{Legion: "web", Phase: PhaseUnlord, Action: Action{Kind: KindExec, Arg: "echo a:b"}}},
		{"legion-join", "web log:joined the legion", Hook{Legion: "web", Phase: PhaseJoin, Action: Action{Kind: KindLog, Arg: "joined the legion"}}},
		{"legion-node-left", "web alarm:pager node gone", Hook{Legion: "web", Phase: PhaseNodeLeft, Action: Action{Kind: KindAlarm, Arg: "pager node gone", AlarmName: "pager", AlarmMsg: "node gone"}}},
		{"legion-node-joined", "web alarm:pager", Hook{Legion: "web", Phase: PhaseNodeJoined, Action: Action{Kind: KindAlarm, Arg: "pager", AlarmName: "pager"}}},
	}
	for _, tc := range tests {
		t.Run(tc.option+" "+tc.value, func(t *testing.T) {
			got, err := ParseOption(tc.option, tc.value)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestParseVIPHook(t *testing.T) {
	h, err := ParseOption("legion-lord", "web vip:10.0.0.100/24,dev=eth0")
	if err != nil {
		t.Fatal(err)
	}
	if h.Action.Kind != KindVIP || h.Action.VIP.String() != "10.0.0.100/24,dev=eth0" {
		t.Fatalf("got %#v", h)
	}
	if got := h.String(); got != "legion-lord = web vip:10.0.0.100/24,dev=eth0" {
		t.Errorf("String() = %q", got)
	}
	for _, p := range []Phase{PhaseSetup, PhaseUnlord, PhaseDeath} {
		if _, err := ParseHook(p, "web vip:10.0.0.100/24"); err != nil {
			t.Errorf("vip in %s: %v", p, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		option, value, wantErr string
	}{
		{"legion-lorde", "web cmd:x", `option "legion-lorde" is not a legion hook`},
		{"legion-lord", "", "empty value"},
		{"legion-lord", "web", "missing action"},
		{"legion-lord", "web touch /tmp/x", "want <kind>:<argument>"},
		{"legion-lord", "web cmd:", "empty command"},
		{"legion-lord", "web cmd:   ", "empty command"},
		{"legion-lord", "web alarm:", "want alarm:<name> <message>"},
		{"legion-lord", "web signal:17", "signals are not supported"},
		{"legion-lord", "web curl:http://x", `unknown kind "curl"`},
		{"legion-lord", "web vip:10.0.0.300/24", "bad address"},
		{"legion-lord", "web vip:10.0.0.100/24,iface=eth0", `unknown option "iface"`},
		{"legion-node-joined", "web vip:10.0.0.100/24", "vip actions belong in legion-lord"},
		{"legion-join", "web vip:10.0.0.100/24", "vip actions belong in legion-lord"},
	}
	for _, tc := range tests {
		t.Run(tc.option+" "+tc.value, func(t *testing.T) {
			_, err := ParseOption(tc.option, tc.value)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
	if _, err := ParseHook("reload", "web cmd:x"); err == nil || !strings.Contains(err.Error(), `phase "reload" unknown`) {
		t.Errorf("unknown phase: %v", err)
	}
}

func TestPhaseOptionsRoundTrip(t *testing.T) {
	for _, p := range Phases {
		got, ok := PhaseForOption(p.Option())
		if !ok || got != p {
			t.Errorf("%s: PhaseForOption(%q) = %q, %v", p, p.Option(), got, ok)
		}
	}
}
