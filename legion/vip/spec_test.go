package vip

import (
	"strings"
	"testing"
	"time"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in        string
		wantCanon string
		wantDev   string
		want6     bool
	}{
		{"10.0.0.100/24,dev=eth0", "10.0.0.100/24,dev=eth0", "eth0", false},
		{" 10.0.0.100/24 , dev=eth0 ", "10.0.0.100/24,dev=eth0", "eth0", false},
		{"10.0.0.100/24", "10.0.0.100/24", "", false},
		{"10.0.0.100", "10.0.0.100/32", "", false},
		{"192.168.1.1/31", "192.168.1.1/31", "", false},
		{"fd00::100/64,dev=br-lan", "fd00::100/64,dev=br-lan", "br-lan", true},
		{"2001:db8::5", "2001:db8::5/128", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			s, err := ParseSpec(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if s.String() != tc.wantCanon || s.Dev != tc.wantDev || s.Is6() != tc.want6 {
				t.Errorf("got %q dev %q is6 %v", s, s.Dev, s.Is6())
			}
			back, err := ParseSpec(s.String())
			if err != nil || back != s {
				t.Errorf("round trip: %v, %v", back, err)
			}
		})
	}
}

func TestParseSpecErrors(t *testing.T) {
	tests := []struct {
		in, wantErr string
	}{
		{"", "empty spec"},
		{"10.0.0.300/24", "bad address"},
		{"10.0.0.1/33", "bad address/prefix"},
		{"eth0", "bad address"},
		{"10.0.0.100/24,eth0", "not key=value"},
		{"10.0.0.100/24,iface=eth0", `unknown option "iface"`},
		{"10.0.0.100/24,dev=", "empty dev"},
		{"10.0.0.100/24,dev=a,dev=b", "dev given twice"},
		{"10.0.0.100/24,dev=averyveryverylongname", "invalid interface name"},
		{"10.0.0.0/24", "network address"},
		{"10.0.0.255/24", "broadcast address"},
		{"0.0.0.0/0", "cannot be a VIP"},
		{"127.0.0.5/8", "cannot be a VIP"},
		{"224.0.0.5", "cannot be a VIP"},
		{"fe80::1/64", "cannot be a VIP"},
		{"fe80::1%eth0", "zoned"},
		{"::ffff:10.0.0.1", "dotted form"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseSpec(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	spec, err := ParseSpec("10.0.0.100/24")
	if err != nil {
		t.Fatal(err)
	}
	if err := DefaultConfig(spec).Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"no spec", func(c *Config) { c.Spec = Spec{} }, "no address"},
		{"zero burst", func(c *Config) { c.BurstCount = 0 }, "burst count"},
		{"zero burst interval", func(c *Config) { c.BurstInterval = 0 }, "burst interval"},
		{"zero reannounce", func(c *Config) { c.ReannounceInterval = -time.Second }, "re-announce interval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig(spec)
			tc.mutate(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}
