package vip

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

// Ethernet types and protocol constants used by the announcements.
const (
	etherTypeARP  = 0x0806
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd

	ethHeaderLen = 14
	arpLen       = 28
	ipv6HdrLen   = 40
	naLen        = 24 + 8 // ICMPv6 neighbour advertisement + target link-layer option
	minFrameLen  = 60     // Ethernet minimum without FCS; short ARP frames are zero-padded

	protoICMPv6          = 58
	icmpv6NeighborAdvert = 136
	naFlagOverride       = 0x20000000
	optTargetLinkAddr    = 2
)

// ARP operations accepted by GratuitousARP.
const (
	ARPRequest uint16 = 1
	ARPReply   uint16 = 2
)

var (
	broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// allNodes is ff02::1, where unsolicited neighbour advertisements go (RFC 4861 7.2.6).
	allNodes    = netip.MustParseAddr("ff02::1")
	allNodesMAC = net.HardwareAddr{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}
)

// GratuitousARP builds a broadcast Ethernet frame announcing that ip is at mac.
//
// op is 1 (request) or 2 (reply). A request carries a zero target MAC; a reply
// carries our own MAC as target, because Linux ignores a gratuitous reply
// whose target is the broadcast address while the neighbour entry is younger
// than its locktime (measured on this project's lab). Both use ip as sender
// and target address, which is what makes them gratuitous.
func GratuitousARP(op uint16, mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	if op != ARPRequest && op != ARPReply {
		return nil, fmt.Errorf("gratuitous arp: op %d is neither request (1) nor reply (2)", op)
	}
	if len(mac) != 6 {
		return nil, fmt.Errorf("gratuitous arp: mac %s is not a 6-byte Ethernet address", mac)
	}
	if !ip.Is4() {
		return nil, fmt.Errorf("gratuitous arp: %s is not an IPv4 address", ip)
	}
	f := make([]byte, minFrameLen)
	copy(f[0:6], broadcastMAC)
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:14], etherTypeARP)

	a := f[ethHeaderLen : ethHeaderLen+arpLen]
	binary.BigEndian.PutUint16(a[0:2], 1) // hardware type: Ethernet
	binary.BigEndian.PutUint16(a[2:4], etherTypeIPv4)
	a[4] = 6 // hardware address length
	a[5] = 4 // protocol address length
	binary.BigEndian.PutUint16(a[6:8], op)
	ip4 := ip.As4()
	copy(a[8:14], mac)
	copy(a[14:18], ip4[:])
	if op == ARPReply {
		copy(a[18:24], mac)
	}
	copy(a[24:28], ip4[:])
	return f, nil
}

// UnsolicitedNA builds an Ethernet frame carrying an unsolicited IPv6
// neighbour advertisement (override flag set, solicited flag clear) from ip to
// all nodes, with a target link-layer address option naming mac.
func UnsolicitedNA(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("neighbour advertisement: mac %s is not a 6-byte Ethernet address", mac)
	}
	if !ip.Is6() || ip.Is4In6() {
		return nil, fmt.Errorf("neighbour advertisement: %s is not an IPv6 address", ip)
	}
	f := make([]byte, ethHeaderLen+ipv6HdrLen+naLen)
	copy(f[0:6], allNodesMAC)
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:14], etherTypeIPv6)

	src, dst := ip.As16(), allNodes.As16()
	h := f[ethHeaderLen : ethHeaderLen+ipv6HdrLen]
	h[0] = 0x60 // version 6, traffic class 0, flow label 0
	binary.BigEndian.PutUint16(h[4:6], naLen)
	h[6] = protoICMPv6
	h[7] = 255 // hop limit: receivers drop neighbour discovery with any other value
	copy(h[8:24], src[:])
	copy(h[24:40], dst[:])

	m := f[ethHeaderLen+ipv6HdrLen:]
	m[0] = icmpv6NeighborAdvert
	binary.BigEndian.PutUint32(m[4:8], naFlagOverride)
	copy(m[8:24], src[:])
	m[24] = optTargetLinkAddr
	m[25] = 1 // option length in units of 8 bytes
	copy(m[26:32], mac)
	binary.BigEndian.PutUint16(m[2:4], icmpv6Checksum(src, dst, m))
	return f, nil
}

// icmpv6Checksum is the Internet checksum over the IPv6 pseudo-header and the
// ICMPv6 message (whose checksum field must be zero).
func icmpv6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	var tail [8]byte
	binary.BigEndian.PutUint32(tail[0:4], uint32(len(msg)))
	tail[7] = protoICMPv6
	add(tail[:])
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// announcement returns the i-th frame of a burst: for IPv4, requests on even
// and replies on odd positions; for IPv6 always a neighbour advertisement.
func announcement(i int, mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	if ip.Is6() {
		return UnsolicitedNA(mac, ip)
	}
	if i%2 == 0 {
		return GratuitousARP(ARPRequest, mac, ip)
	}
	return GratuitousARP(ARPReply, mac, ip)
}
