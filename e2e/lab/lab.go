package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Addressing inside every lab. The namespaces are private to the lab, so
// every lab may use the same subnets without colliding.
var (
	// Subnet is the IPv4 subnet of the lab's segment.
	Subnet = netip.MustParsePrefix("10.213.0.0/24")
	// Subnet6 is the IPv6 (ULA) subnet of the lab's segment.
	Subnet6 = netip.MustParsePrefix("fd00:213::/64")
)

const (
	hostOctetBase = 1   // host i gets .(1+i)
	vipOctetBase  = 100 // VIP k is .(100+k)
	clientOctet   = 250
	// Dev is the name of every host's interface into the bridge.
	Dev = "eth0"
	// MaxHosts bounds n in New so host and VIP addresses never overlap.
	MaxHosts = vipOctetBase - hostOctetBase
)

// Lab is a set of network namespaces joined by one bridge: n hosts and a
// client, each with an eth0 in Subnet and Subnet6, the bridge living in its
// own "switch" namespace. Nothing is created in the root namespace.
type Lab struct {
	// ID is the short random id that prefixes every namespace name.
	ID string
	// Switch is the name of the namespace holding the bridge br0.
	Switch string
	// Hosts are the lab's hosts, named h0, h1, ...
	Hosts []*Host
	// Client is an extra host (named client) for traffic from outside the cluster.
	Client *Host

	t          testing.TB
	mu         sync.Mutex
	namespaces []string // created, in creation order
	procs      []*Proc
	samplers   []*Sampler
}

// Available reports why labs cannot be built here, or nil if they can.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespace labs need root")
	}
	for _, bin := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("network namespace labs need %s: %w", bin, err)
		}
	}
	return nil
}

// New builds a lab of n hosts plus a client and registers its teardown with
// t.Cleanup: processes started in it are killed, every namespace it made is
// deleted (which deletes its links). It skips the test when labs are not
// available (not root, no ip/iptables, namespaces not permitted) and fails it
// if building the lab fails for another reason.
func New(t testing.TB, n int) *Lab {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	if n < 1 || n > MaxHosts {
		t.Fatalf("lab: %d hosts, want 1..%d", n, MaxHosts)
	}
	id := make([]byte, 3)
	if _, err := rand.Read(id); err != nil {
		t.Fatalf("lab: random id: %v", err)
	}
	l := &Lab{ID: "gl" + hex.EncodeToString(id), t: t}
	l.Switch = l.ID + "-sw"
	t.Cleanup(l.teardown)

	for i := range n {
		l.Hosts = append(l.Hosts, l.newHost(fmt.Sprintf("h%d", i), i, byte(hostOctetBase+i)))
	}
	l.Client = l.newHost("client", n, clientOctet)
	all := append([]*Host{}, l.Hosts...)
	all = append(all, l.Client)

	// Namespaces first, recorded before anything else can fail so teardown
	// removes whatever exists.
	var batch []string
	for _, ns := range append([]string{l.Switch}, namespaceNames(all)...) {
		batch = append(batch, "netns add "+ns)
	}
	out, err := ipBatch("", batch)
	for _, ns := range append([]string{l.Switch}, namespaceNames(all)...) {
		if _, statErr := os.Stat("/run/netns/" + ns); statErr == nil {
			l.namespaces = append(l.namespaces, ns)
		}
	}
	if err != nil {
		if strings.Contains(out, "Operation not permitted") {
			t.Skipf("lab: creating network namespaces is not permitted here: %s", out)
		}
		t.Fatalf("lab: create namespaces: %v", err)
	}

	sw := []string{"link set lo up", "link add br0 type bridge", "link set br0 up"}
	for _, h := range all {
		sw = append(sw,
			fmt.Sprintf("link add %s type veth peer name %s netns %s", h.port, Dev, h.NS),
			fmt.Sprintf("link set %s master br0 up", h.port))
	}
	if _, err := ipBatch(l.Switch, sw); err != nil {
		t.Fatalf("lab: build switch: %v", err)
	}
	for _, h := range all {
		cmds := []string{
			"link set lo up",
			fmt.Sprintf("addr add %s dev %s", netip.PrefixFrom(h.IP, Subnet.Bits()), Dev),
			// nodad: a tentative address is unusable for a second or more.
			fmt.Sprintf("addr add %s dev %s nodad", netip.PrefixFrom(h.IP6, Subnet6.Bits()), Dev),
			fmt.Sprintf("link set %s up", Dev),
		}
		if _, err := ipBatch(h.NS, cmds); err != nil {
			t.Fatalf("lab: configure %s: %v", h.Name, err)
		}
	}
	return l
}

func (l *Lab) newHost(name string, index int, octet byte) *Host {
	ip4 := Subnet.Addr().As4()
	ip4[3] = octet
	ip6 := Subnet6.Addr().As16()
	ip6[15] = octet
	return &Host{
		Name: name,
		NS:   l.ID + "-" + name,
		IP:   netip.AddrFrom4(ip4),
		IP6:  netip.AddrFrom16(ip6),
		lab:  l,
		// The host-side veth lives in the switch namespace, so its name only
		// has to be unique there.
		port: fmt.Sprintf("p%d", index),
	}
}

// MaxVIPs is the number of addresses reserved for VIP and VIP6.
const MaxVIPs = clientOctet - vipOctetBase

// VIP returns the k-th IPv4 address reserved for virtual IPs (never given to
// a host), with the subnet's prefix length. k is in [0, MaxVIPs).
func (l *Lab) VIP(k int) netip.Prefix {
	l.checkVIPIndex(k)
	a := Subnet.Addr().As4()
	a[3] = byte(vipOctetBase + k)
	return netip.PrefixFrom(netip.AddrFrom4(a), Subnet.Bits())
}

// VIP6 returns the k-th IPv6 address reserved for virtual IPs.
func (l *Lab) VIP6(k int) netip.Prefix {
	l.checkVIPIndex(k)
	a := Subnet6.Addr().As16()
	a[15] = byte(vipOctetBase + k)
	return netip.PrefixFrom(netip.AddrFrom16(a), Subnet6.Bits())
}

func (l *Lab) checkVIPIndex(k int) {
	if k < 0 || k >= MaxVIPs {
		l.t.Fatalf("lab: vip index %d outside [0, %d)", k, MaxVIPs)
	}
}

// All returns the hosts followed by the client.
func (l *Lab) All() []*Host {
	return append(append([]*Host{}, l.Hosts...), l.Client)
}

// Holders lists the names of the lab's hosts (client included) whose eth0
// carries addr. It reads addresses over netlink rather than by running
// `ip -o addr`, so that sampling every 10 ms stays cheap.
//
// The hosts are read one after another, so an address moving from one host
// to another during the sweep could look held twice. When the sweep finds
// several holders, every holder but the last is read again: only those that
// still hold the address held it at the same moment as the last one, and
// only they are reported. A real overlap is therefore reported, and a move
// is not mistaken for one.
func (l *Lab) Holders(addr netip.Addr) ([]string, error) {
	var found []*Host
	for _, h := range l.All() {
		has, err := h.HasAddr(addr)
		if err != nil {
			return hostNames(found), err
		}
		if has {
			found = append(found, h)
		}
	}
	if len(found) < 2 {
		return hostNames(found), nil
	}
	confirmed := make([]*Host, 0, len(found))
	for _, h := range found[:len(found)-1] {
		has, err := h.HasAddr(addr)
		if err != nil {
			return hostNames(found), err
		}
		if has {
			confirmed = append(confirmed, h)
		}
	}
	return hostNames(append(confirmed, found[len(found)-1])), nil
}

func hostNames(hosts []*Host) []string {
	if len(hosts) == 0 {
		return nil
	}
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	return names
}

// Namespaces lists the namespaces this lab created and has not yet deleted.
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.namespaces...)
}

func (l *Lab) track(p *Proc) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.procs = append(l.procs, p)
}

// teardown stops samplers, kills started processes (a process keeps its
// namespace alive), closes netlink handles and deletes the namespaces.
func (l *Lab) teardown() {
	l.mu.Lock()
	samplers, procs := l.samplers, l.procs
	l.samplers, l.procs = nil, nil
	l.mu.Unlock()
	for _, s := range samplers {
		s.Stop()
	}
	for _, p := range procs {
		if err := p.Kill(); err != nil {
			l.t.Errorf("lab teardown: %v", err)
		}
	}
	for _, h := range l.All() {
		h.closeHandle()
	}
	l.mu.Lock()
	namespaces := l.namespaces
	l.namespaces = nil
	l.mu.Unlock()
	for i := len(namespaces) - 1; i >= 0; i-- {
		if out, err := ip("netns", "del", namespaces[i]); err != nil {
			l.t.Errorf("lab teardown: delete namespace %s: %v: %s", namespaces[i], err, out)
		}
	}
}

func namespaceNames(hosts []*Host) []string {
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.NS
	}
	return names
}

// ip runs the ip binary with a deadline, returning its combined output.
func ip(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// ipBatch runs commands through one `ip -batch` process, inside namespace ns
// unless it is empty.
func ipBatch(ns string, commands []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []string{"-batch", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdin = strings.NewReader(strings.Join(commands, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// openHandle returns a netlink handle inside namespace ns.
func openHandle(ns string) (*netlink.Handle, error) {
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("open namespace %s: %w", ns, err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return nil, fmt.Errorf("netlink in namespace %s: %w", ns, err)
	}
	return h, nil
}
