package vip

import (
	"bytes"
	"encoding/hex"
	"net"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

var testMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}

// unhex decodes a frame written as spaced hex groups.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

func TestGratuitousARP(t *testing.T) {
	ip := netip.MustParseAddr("10.0.0.100")
	const pad = "000000000000000000000000000000000000" // 18 bytes up to the 60-byte minimum
	tests := []struct {
		name string
		op   uint16
		want string
	}{
		{"request", ARPRequest, `
			ffffffffffff 020000000001 0806
			0001 0800 06 04 0001
			020000000001 0a000064
			000000000000 0a000064` + pad},
		{"reply targets our own mac", ARPReply, `
			ffffffffffff 020000000001 0806
			0001 0800 06 04 0002
			020000000001 0a000064
			020000000001 0a000064` + pad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := GratuitousARP(tc.op, testMAC, ip)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tc.want); !bytes.Equal(got, want) {
				t.Errorf("frame\n got %x\nwant %x", got, want)
			}
		})
	}
}

func TestGratuitousARPErrors(t *testing.T) {
	tests := []struct {
		name    string
		op      uint16
		mac     net.HardwareAddr
		ip      string
		wantErr string
	}{
		{"bad op", 3, testMAC, "10.0.0.1", "op 3"},
		{"short mac", ARPRequest, testMAC[:4], "10.0.0.1", "6-byte"},
		{"ipv6", ARPRequest, testMAC, "fd00::1", "not an IPv4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := GratuitousARP(tc.op, tc.mac, netip.MustParseAddr(tc.ip))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

func TestUnsolicitedNA(t *testing.T) {
	ip := netip.MustParseAddr("fd00::100")
	// Checksum by hand: pseudo-header words fd00+0100 (src) + ff02+0001 (dst)
	// + 0020 (length) + 003a (next header), message words 8800 + 2000 +
	// fd00+0100 (target) + 0201 + 0200 + 0001 = 0x3a75f; folded 0xa762;
	// complemented 0x589d.
	want := unhex(t, `
		333300000001 020000000001 86dd
		60000000 0020 3a ff
		fd000000000000000000000000000100
		ff020000000000000000000000000001
		88 00 589d 20000000
		fd000000000000000000000000000100
		02 01 020000000001`)
	got, err := UnsolicitedNA(testMAC, ip)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("frame\n got %x\nwant %x", got, want)
	}

	// Cross-check the ICMPv6 body against x/net's independent encoder.
	msg := icmp.Message{
		Type: ipv6.ICMPTypeNeighborAdvertisement,
		Body: &icmp.RawBody{Data: got[ethHeaderLen+ipv6HdrLen+4:]},
	}
	ref, err := msg.Marshal(icmp.IPv6PseudoHeader(net.IP(ip.AsSlice()), net.ParseIP("ff02::1")))
	if err != nil {
		t.Fatal(err)
	}
	if body := got[ethHeaderLen+ipv6HdrLen:]; !bytes.Equal(body, ref) {
		t.Errorf("icmpv6 body\n got %x\n x/net %x", body, ref)
	}
}

func TestUnsolicitedNAErrors(t *testing.T) {
	if _, err := UnsolicitedNA(testMAC, netip.MustParseAddr("10.0.0.1")); err == nil || !strings.Contains(err.Error(), "not an IPv6") {
		t.Errorf("ipv4 address: err = %v", err)
	}
	if _, err := UnsolicitedNA(testMAC[:5], netip.MustParseAddr("fd00::1")); err == nil || !strings.Contains(err.Error(), "6-byte") {
		t.Errorf("short mac: err = %v", err)
	}
}

func TestAnnouncementAlternates(t *testing.T) {
	v4 := netip.MustParseAddr("10.0.0.100")
	for i, wantOp := range []byte{1, 2, 1, 2} {
		f, err := announcement(i, testMAC, v4)
		if err != nil {
			t.Fatal(err)
		}
		if got := f[ethHeaderLen+7]; got != wantOp {
			t.Errorf("announcement %d: arp op %d, want %d", i, got, wantOp)
		}
	}
	f, err := announcement(1, testMAC, netip.MustParseAddr("fd00::100"))
	if err != nil {
		t.Fatal(err)
	}
	if f[ethHeaderLen+ipv6HdrLen] != icmpv6NeighborAdvert {
		t.Errorf("ipv6 announcement is not a neighbour advertisement: %x", f)
	}
}
