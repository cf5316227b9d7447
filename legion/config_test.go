package legion

import (
	"strings"
	"testing"
	"time"
)

func TestParseLegion(t *testing.T) {
	tests := []struct {
		in      string
		want    LegionSpec
		wantErr string
	}{
		{in: "web 192.168.1.10:4242 98 aes-256-cbc:secret", want: LegionSpec{Name: "web", Addr: "192.168.1.10:4242", Valor: 98, Algo: "aes-256-cbc", Secret: "secret"}},
		{in: "web 10.0.0.1:4242 0 bf-cbc:s3 someiv", want: LegionSpec{Name: "web", Addr: "10.0.0.1:4242", Valor: 0, Algo: "bf-cbc", Secret: "s3"}},
		{in: "web 10.0.0.1:4242 1", wantErr: "want `<name> <addr:port> <valor> <algo:secret>`"},
		{in: "web 10.0.0.1 1 aes:x", wantErr: "want ip:port"},
		{in: "web 10.0.0.1:65535 1 aes:x", wantErr: "port+1 and port+2"},
		{in: "web 239.0.0.1:4242 1 aes:x", wantErr: "multicast"},
		{in: "web 10.0.0.1:4242 -1 aes:x", wantErr: "valor"},
		{in: "web 10.0.0.1:4242 1 aes", wantErr: "<algo>:<secret>"},
		{in: "web 10.0.0.1:4242 1 aes:", wantErr: "<algo>:<secret>"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLegion(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestApplyOptionAndDerivedAddrs(t *testing.T) {
	c := DefaultConfig()
	opts := [][2]string{
		{"legion", "web 127.0.0.1:4000 10 aes-256-cbc:s"},
		{"legion", "db 127.0.0.1:4000 0 aes-256-cbc:s"},
		{"legion-node", "web 127.0.0.1:5000"},
		{"legion-quorum", "web 2"},
		{"legion-scroll", "web dump-socket=/tmp/x"},
		{"legion-freq", "1"},
		{"legion-tolerance", "5"},
	}
	for _, o := range opts {
		if err := c.ApplyOption(o[0], o[1]); err != nil {
			t.Fatalf("%s = %s: %v", o[0], o[1], err)
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Legions[0].Quorum != 2 || c.Legions[0].Scroll != "dump-socket=/tmp/x" || len(c.Peers) != 1 {
		t.Fatalf("config %+v", c)
	}
	if c.RaftBindAddr() != "127.0.0.1:4001" || c.RPCBindAddr() != "127.0.0.1:4002" {
		t.Fatalf("derived %s %s", c.RaftBindAddr(), c.RPCBindAddr())
	}
	c.RaftAddr = "127.0.0.1:9999"
	if c.RaftBindAddr() != "127.0.0.1:9999" {
		t.Fatal("legion-raft-addr not honoured")
	}
	c.applyUWSGITimings()
	if c.ProbeInterval != time.Second || c.SuspicionMult != 4 {
		t.Fatalf("freq/tolerance mapped to probe %v mult %d", c.ProbeInterval, c.SuspicionMult)
	}
	for _, bad := range [][2]string{
		{"legion-quorum", "nope 2"},
		{"legion-quorum", "web x"},
		{"legion-freq", "0"},
		{"legion-mcast", "web 239.0.0.1:4000 1 aes:x"},
		{"legion-lord", "web cmd:true"},
	} {
		if err := c.ApplyOption(bad[0], bad[1]); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%s = %s: err = %v, want one naming the option", bad[0], bad[1], err)
		}
	}
}

func TestValidate(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.Legions = []LegionSpec{{Name: "web", Addr: "127.0.0.1:4000", Valor: 1, Algo: "aes", Secret: "s"}}
		return c
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no legion", func(c *Config) { c.Legions = nil }, "at least one legion"},
		{"two secrets", func(c *Config) {
			c.Legions = append(c.Legions, LegionSpec{Name: "db", Addr: "127.0.0.1:4000", Algo: "aes", Secret: "other"})
		}, "one secret"},
		{"duplicate", func(c *Config) { c.Legions = append(c.Legions, c.Legions[0]) }, "declared twice"},
		{"partial tls", func(c *Config) { c.TLS.Cert = "x.pem" }, "legion-tls-cert"},
		{"lease vs heartbeat", func(c *Config) { c.LeaderLeaseTimeout = time.Second }, "leader lease timeout"},
		{"renew too slow", func(c *Config) { c.LordRenewInterval = c.LordLease }, "lord renew interval"},
		{"bad peer", func(c *Config) { c.Peers = []string{"nohost"} }, "legion-node"},
		{"freq above tolerance", func(c *Config) { c.Freq, c.Tolerance = 5*time.Second, time.Second }, "legion-freq"},
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.change(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestNodeIDPersists(t *testing.T) {
	dir := t.TempDir()
	a, err := loadNodeID(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadNodeID(dir)
	if err != nil || a != b || len(a) != 36 {
		t.Fatalf("ids %q %q err %v", a, b, err)
	}
}
