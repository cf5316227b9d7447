//go:build linux

package vip

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"runtime"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// drainPoll is how often Drain counts the connections still in progress.
const drainPoll = 10 * time.Millisecond

// Drain prepares a graceful handover of a held address. A client's
// neighbour entry names one host for the address, so when the successor
// announces it every connection still open on this host breaks (its next
// segment reaches the successor, which resets it). Drain therefore drops
// new connections (their SYNs: the clients retry after their retransmission
// timeout and reach the successor) and waits until the connections in
// progress on the address are done, or ctx ends. The address stays until
// Release, which also removes the filter.
//
// The SYNs are dropped by a classic BPF program attached to the interface's
// ingress with tc's bpf classifier in direct-action mode (no tc action
// module is needed); the ingress qdisc is added if missing.
func (m *Manager) Drain(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if !m.held {
		m.mu.Unlock()
		return nil
	}
	if !m.draining {
		if err := m.addDrainFilter(); err != nil {
			m.mu.Unlock()
			return err
		}
		m.draining = true
	}
	epoch := m.epoch
	m.mu.Unlock()

	start := time.Now()
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for {
		states, err := m.inFlight()
		if err != nil {
			return err
		}
		n := len(states)
		if n == 0 {
			m.log.Info("vip drained: new connections dropped, none in progress", "epoch", epoch, "took", time.Since(start))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("vip %s: %d connection(s) still in progress after draining for %s (%s): %w",
				m.cfg.Spec.Prefix, n, time.Since(start).Round(time.Millisecond), strings.Join(states, ", "), ctx.Err())
		case <-t.C:
		}
	}
}

// inFlightStates are the TCP states in which a connection still needs the
// address, by name: data may be unsent or unacknowledged. (FIN_WAIT2 and
// TIME_WAIT are not: the response went out and was acknowledged.)
var inFlightStates = map[uint8]string{
	unix.BPF_TCP_ESTABLISHED: "established", unix.BPF_TCP_SYN_RECV: "syn-recv", unix.BPF_TCP_FIN_WAIT1: "fin-wait-1",
	unix.BPF_TCP_CLOSE_WAIT: "close-wait", unix.BPF_TCP_LAST_ACK: "last-ack", unix.BPF_TCP_CLOSING: "closing",
}

// inFlight lists the TCP connections in progress on the VIP as "state
// peer" strings.
func (m *Manager) inFlight() ([]string, error) {
	family := uint8(unix.AF_INET)
	if m.cfg.Spec.Is6() {
		family = unix.AF_INET6
	}
	var socks []*netlink.Socket
	err := m.inNS(func() error {
		var err error
		socks, err = netlink.SocketDiagTCP(family)
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			err = nil // a partial list is enough: the next poll looks again
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("vip %s: list tcp connections: %w", m.cfg.Spec.Prefix, err)
	}
	vip := m.cfg.Spec.Addr()
	var out []string
	for _, s := range socks {
		state, busy := inFlightStates[s.State]
		if a, ok := netip.AddrFromSlice(s.ID.Source); ok && a.Unmap() == vip && busy {
			out = append(out, fmt.Sprintf("%s from %s:%d", state, s.ID.Destination, s.ID.DestinationPort))
		}
	}
	return out, nil
}

// drainFilter identifies the SYN-dropping filter: its tc priority is fixed
// per address, so a filter left by a run that died while draining is found
// again (CleanStale).
func (m *Manager) drainFilter() *netlink.BpfFilter {
	h := fnv.New32a()
	h.Write(m.cfg.Spec.Addr().AsSlice())
	return &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{
		LinkIndex: m.link.Attrs().Index,
		Parent:    netlink.MakeHandle(0xffff, 0),
		Priority:  0xc000 | uint16(h.Sum32()&0x0fff),
		Protocol:  unix.ETH_P_ALL,
	}}
}

// addDrainFilter attaches the SYN-dropping program. netlink.BpfFilter only
// takes eBPF file descriptors, so the request with classic BPF ops is built
// here.
func (m *Manager) addDrainFilter() error {
	prog, err := synDropProgram(m.cfg.Spec.Addr())
	if err != nil {
		return fmt.Errorf("vip %s: drain filter: %w", m.cfg.Spec.Prefix, err)
	}
	ingress := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{
		LinkIndex: m.link.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_INGRESS,
	}}
	if err := m.h.QdiscAdd(ingress); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("vip %s: add ingress qdisc to %s: %w", m.cfg.Spec.Prefix, m.link.Attrs().Name, err)
	}
	ops := make([]byte, 0, 8*len(prog))
	for _, ins := range prog {
		// struct sock_filter, in host byte order.
		ops = binary.NativeEndian.AppendUint16(ops, ins.Op)
		ops = append(ops, ins.Jt, ins.Jf)
		ops = binary.NativeEndian.AppendUint32(ops, ins.K)
	}
	f := m.drainFilter().FilterAttrs
	req := nl.NewNetlinkRequest(unix.RTM_NEWTFILTER, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(&nl.TcMsg{
		Family: nl.FAMILY_ALL, Ifindex: int32(f.LinkIndex), Parent: f.Parent,
		Info: netlink.MakeHandle(f.Priority, nl.Swap16(f.Protocol)),
	})
	req.AddData(nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated("bpf")))
	opts := nl.NewRtAttr(nl.TCA_OPTIONS, nil)
	opts.AddRtAttr(nl.TCA_BPF_OPS_LEN, nl.Uint16Attr(uint16(len(prog))))
	opts.AddRtAttr(nl.TCA_BPF_OPS, ops)
	opts.AddRtAttr(nl.TCA_BPF_FLAGS, nl.Uint32Attr(nl.TCA_BPF_FLAG_ACT_DIRECT))
	req.AddData(opts)
	err = m.inNS(func() error {
		_, err := req.Execute(unix.NETLINK_ROUTE, 0)
		return err
	})
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("vip %s: attach drain filter to %s: %w", m.cfg.Spec.Prefix, m.link.Attrs().Name, err)
	}
	return nil
}

// removeDrainFilter detaches the SYN-dropping program; a filter that is not
// there is not an error.
func (m *Manager) removeDrainFilter() error {
	err := m.h.FilterDel(m.drainFilter())
	if err == nil || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) {
		return nil
	}
	return fmt.Errorf("vip %s: detach drain filter from %s: %w", m.cfg.Spec.Prefix, m.link.Attrs().Name, err)
}

// tc direct-action verdicts.
const (
	tcActShot   = 2          // TC_ACT_SHOT: drop
	tcActUnspec = 0xffffffff // TC_ACT_UNSPEC: not ours, carry on
)

// synDropProgram returns a classic BPF program, for tc ingress (offsets
// from the Ethernet header), that drops TCP segments carrying SYN without
// ACK to vip and lets everything else through. IPv6 extension headers are
// not followed: such SYNs pass (and are dropped later anyway once the
// address is gone).
func synDropProgram(vip netip.Addr) ([]bpf.RawInstruction, error) {
	const eth = 14
	var body []bpf.Instruction
	// Each check jumps to the final "pass" when it fails; skips are filled
	// in below, once the program's length is known.
	var checks []int
	check := func(ins ...bpf.Instruction) {
		body = append(body, ins...)
		checks = append(checks, len(body))
		body = append(body, bpf.JumpIf{Cond: bpf.JumpNotEqual})
	}
	setVal := func(v uint32) { j := body[len(body)-1].(bpf.JumpIf); j.Val = v; body[len(body)-1] = j }
	if vip.Is4() {
		check(bpf.LoadAbsolute{Off: 12, Size: 2})
		setVal(unix.ETH_P_IP)
		check(bpf.LoadAbsolute{Off: eth + 9, Size: 1})
		setVal(unix.IPPROTO_TCP)
		a := vip.As4()
		check(bpf.LoadAbsolute{Off: eth + 16, Size: 4})
		setVal(binary.BigEndian.Uint32(a[:]))
		// X = IPv4 header length; the TCP flags are 13 bytes into TCP.
		body = append(body, bpf.LoadMemShift{Off: eth})
		check(bpf.LoadIndirect{Off: eth + 13, Size: 1}, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x12})
		setVal(0x02)
	} else {
		check(bpf.LoadAbsolute{Off: 12, Size: 2})
		setVal(unix.ETH_P_IPV6)
		check(bpf.LoadAbsolute{Off: eth + 6, Size: 1})
		setVal(unix.IPPROTO_TCP)
		a := vip.As16()
		for w := range 4 {
			check(bpf.LoadAbsolute{Off: eth + 24 + uint32(4*w), Size: 4})
			setVal(binary.BigEndian.Uint32(a[4*w:]))
		}
		check(bpf.LoadAbsolute{Off: eth + 40 + 13, Size: 1}, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x12})
		setVal(0x02)
	}
	body = append(body, bpf.RetConstant{Val: tcActShot})
	pass := len(body)
	body = append(body, bpf.RetConstant{Val: tcActUnspec})
	for _, i := range checks {
		j := body[i].(bpf.JumpIf)
		skip := pass - i - 1
		if skip > 255 {
			return nil, errors.New("program too long")
		}
		j.SkipTrue = uint8(skip)
		body[i] = j
	}
	return bpf.Assemble(body)
}

// inNS runs fn in the manager's namespace, so that sockets fn opens
// (packet sockets, netlink requests without a handle) belong to it. In
// another namespace fn runs on a thread of its own that is never unlocked:
// the runtime discards it afterwards instead of reusing a thread whose
// namespace changed.
func (m *Manager) inNS(fn func() error) error {
	if !m.ns.IsOpen() {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(m.ns); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", m.cfg.NetNS, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
