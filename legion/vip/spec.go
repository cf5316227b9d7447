package vip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// maxIfNameLen is IFNAMSIZ minus the terminating NUL.
const maxIfNameLen = 15

// Spec is the argument of a `vip:` hook action:
//
//	10.0.0.100/24,dev=eth0
//	fd00::100/64
//	10.0.0.100            (a host address: /32, or /128 for IPv6)
//
// The prefix length is the one the address is added with, so it should be the
// subnet's (as `ip addr add 10.0.0.100/24` would). Dev is optional: when empty
// the interface whose subnet contains the address is used.
type Spec struct {
	// Prefix is the address and the prefix length it is added with.
	Prefix netip.Prefix
	// Dev is the interface name, or "" to pick the one whose subnet holds the address.
	Dev string
}

// ParseSpec parses the text after `vip:` in a hook action. It validates the
// spec on its own (not against the machine's interfaces; New does that).
func ParseSpec(s string) (Spec, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Spec{}, errors.New("vip: empty spec, want ADDR[/LEN][,dev=IFACE]")
	}
	fields := strings.Split(s, ",")
	var spec Spec
	addrText := strings.TrimSpace(fields[0])
	if strings.Contains(addrText, "/") {
		p, err := netip.ParsePrefix(addrText)
		if err != nil {
			return Spec{}, fmt.Errorf("vip %q: bad address/prefix: %w", s, err)
		}
		spec.Prefix = p
	} else {
		a, err := netip.ParseAddr(addrText)
		if err != nil {
			return Spec{}, fmt.Errorf("vip %q: bad address: %w", s, err)
		}
		if a.Zone() != "" {
			return Spec{}, fmt.Errorf("vip %q: zoned addresses are not supported", s)
		}
		spec.Prefix = netip.PrefixFrom(a, a.BitLen())
	}
	for _, f := range fields[1:] {
		key, val, ok := strings.Cut(strings.TrimSpace(f), "=")
		switch {
		case !ok:
			return Spec{}, fmt.Errorf("vip %q: option %q is not key=value", s, f)
		case key != "dev":
			return Spec{}, fmt.Errorf("vip %q: unknown option %q (known: dev)", s, key)
		case spec.Dev != "":
			return Spec{}, fmt.Errorf("vip %q: dev given twice", s)
		}
		spec.Dev = val
		if spec.Dev == "" {
			return Spec{}, fmt.Errorf("vip %q: empty dev", s)
		}
	}
	if err := spec.Validate(); err != nil {
		return Spec{}, err
	}
	return spec, nil
}

// Addr is the virtual address itself.
func (s Spec) Addr() netip.Addr { return s.Prefix.Addr() }

// Is6 reports whether the VIP is an IPv6 address.
func (s Spec) Is6() bool { return s.Prefix.Addr().Is6() }

// String is the canonical spelling, which ParseSpec reads back.
func (s Spec) String() string {
	if s.Dev == "" {
		return s.Prefix.String()
	}
	return s.Prefix.String() + ",dev=" + s.Dev
}

// Validate checks the spec without looking at the machine: an address usable
// as a VIP and a plausible interface name.
func (s Spec) Validate() error {
	if !s.Prefix.IsValid() {
		return errors.New("vip: no address")
	}
	a := s.Prefix.Addr()
	switch {
	case a.Is4In6():
		return fmt.Errorf("vip %s: write IPv4 addresses in dotted form", s.Prefix)
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast(), a.IsLinkLocalUnicast():
		return fmt.Errorf("vip %s: an unspecified, loopback, multicast or link-local address cannot be a VIP", s.Prefix)
	}
	if a.Is4() && s.Prefix.Bits() <= 30 {
		network := s.Prefix.Masked().Addr()
		if a == network {
			return fmt.Errorf("vip %s: is the network address of its subnet", s.Prefix)
		}
		if a == lastAddr(s.Prefix) {
			return fmt.Errorf("vip %s: is the broadcast address of its subnet", s.Prefix)
		}
	}
	if len(s.Dev) > maxIfNameLen || strings.ContainsAny(s.Dev, "/ \t:") {
		return fmt.Errorf("vip %s: invalid interface name %q", s.Prefix, s.Dev)
	}
	return nil
}

// lastAddr is the highest address of p (the IPv4 broadcast address).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
