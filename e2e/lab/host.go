package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
)

// Host is one network namespace of a lab with an eth0 into the bridge.
type Host struct {
	// Name is the short name within the lab: h0, h1, ... or client.
	Name string
	// NS is the network namespace name (usable with `ip netns exec`).
	NS string
	// IP and IP6 are the host's own addresses on eth0.
	IP, IP6 netip.Addr

	lab  *Lab
	port string // host-side veth in the switch namespace

	mu          sync.Mutex
	nl          *netlink.Handle
	partitioned bool
}

// NSPath is the namespace's bind-mount path, as setns(2) and
// vip.Config.NetNS want it.
func (h *Host) NSPath() string { return "/run/netns/" + h.NS }

// Command prepares args to run inside the host's namespace (through `ip
// netns exec`, which execs the command, so the PID is the command's). The
// caller may set Env, Dir, Stdout and Stderr before starting it with StartCmd.
func (h *Host) Command(args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS}, args...)...)
}

// Exec runs args inside the namespace and returns the combined output; the
// error names the command and carries its output.
func (h *Host) Exec(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %s: %w: %s", h.Name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Start runs args inside the namespace in the background; see StartCmd.
func (h *Host) Start(args ...string) *Proc {
	h.lab.t.Helper()
	return h.StartCmd(h.Command(args...))
}

// StartCmd starts cmd (normally from Command) in its own process group and
// tracks it, so the lab's teardown kills it. Output not redirected by the
// caller is kept and returned by Proc.Output. A failure to start fails the
// test, so call it from the test goroutine.
func (h *Host) StartCmd(cmd *exec.Cmd) *Proc {
	h.lab.t.Helper()
	p, err := startProc(h.Name, cmd)
	if err != nil {
		h.lab.t.Fatalf("lab: %v", err)
	}
	h.lab.track(p)
	return p
}

// LinkDown takes the host-side end of the host's veth down: the host loses
// carrier, as if its cable were pulled.
func (h *Host) LinkDown() error { return h.setPort("down") }

// LinkUp brings the host-side veth back up.
func (h *Host) LinkUp() error { return h.setPort("up") }

func (h *Host) setPort(state string) error {
	if _, err := ip("-n", h.lab.Switch, "link", "set", h.port, state); err != nil {
		return fmt.Errorf("%s: link %s: %w", h.Name, state, err)
	}
	return nil
}

// Partition drops every packet in or out of the host except on loopback
// (iptables and, when present, ip6tables DROP rules inside its namespace).
// Processes on the host keep running and keep talking to themselves.
func (h *Host) Partition() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.partitioned {
		return nil
	}
	if err := h.dropRules("-I"); err != nil {
		return err
	}
	h.partitioned = true
	return nil
}

// Heal removes the rules Partition added.
func (h *Host) Heal() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.partitioned {
		return nil
	}
	if err := h.dropRules("-D"); err != nil {
		return err
	}
	h.partitioned = false
	return nil
}

func (h *Host) dropRules(op string) error {
	tools := []string{"iptables"}
	if _, err := exec.LookPath("ip6tables"); err == nil {
		tools = append(tools, "ip6tables")
	}
	ctx := context.Background()
	for _, tool := range tools {
		for _, rule := range [][]string{{"INPUT", "!", "-i", "lo"}, {"OUTPUT", "!", "-o", "lo"}} {
			args := append([]string{tool, "-w", op}, rule...)
			args = append(args, "-j", "DROP")
			if _, err := h.Exec(ctx, args...); err != nil {
				return fmt.Errorf("partition rules: %w", err)
			}
		}
	}
	return nil
}

// HasAddr reports whether addr is on the host's eth0.
func (h *Host) HasAddr(addr netip.Addr) (bool, error) {
	nl, link, err := h.eth0()
	if err != nil {
		return false, err
	}
	family := netlink.FAMILY_V4
	if addr.Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := nl.AddrList(link, family)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return false, fmt.Errorf("%s: list addresses: %w", h.Name, err)
	}
	for _, a := range addrs {
		if got, ok := netip.AddrFromSlice(a.IP); ok && got.Unmap() == addr {
			return true, nil
		}
	}
	return false, nil
}

// MAC is the hardware address of the host's eth0.
func (h *Host) MAC() (net.HardwareAddr, error) {
	_, link, err := h.eth0()
	if err != nil {
		return nil, err
	}
	return link.Attrs().HardwareAddr, nil
}

// Neighbor returns the link-layer address the host's neighbour table (ARP or
// NDP) holds for addr, or nil when it has no usable entry.
func (h *Host) Neighbor(addr netip.Addr) (net.HardwareAddr, error) {
	nl, link, err := h.eth0()
	if err != nil {
		return nil, err
	}
	family := netlink.FAMILY_V4
	if addr.Is6() {
		family = netlink.FAMILY_V6
	}
	neighs, err := nl.NeighList(link.Attrs().Index, family)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("%s: list neighbours: %w", h.Name, err)
	}
	for _, n := range neighs {
		got, ok := netip.AddrFromSlice(n.IP)
		if ok && got.Unmap() == addr && n.State&(netlink.NUD_FAILED|netlink.NUD_INCOMPLETE) == 0 {
			return n.HardwareAddr, nil
		}
	}
	return nil, nil
}

// eth0 returns the host's netlink handle (opened on first use) and its eth0.
func (h *Host) eth0() (*netlink.Handle, netlink.Link, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.nl == nil {
		nl, err := openHandle(h.NS)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", h.Name, err)
		}
		h.nl = nl
	}
	link, err := h.nl.LinkByName(Dev)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %s: %w", h.Name, Dev, err)
	}
	return h.nl, link, nil
}

func (h *Host) closeHandle() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.nl != nil {
		h.nl.Close()
		h.nl = nil
	}
}
