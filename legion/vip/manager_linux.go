//go:build linux

package vip

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Manager owns one virtual address on one interface. It treats the address
// as reconciled state: Claim and Release set the desired state and apply it,
// Reconcile re-applies it, and while the address is held a background
// announcer re-asserts it (if something removed it) and re-announces it every
// ReannounceInterval. All methods are safe for concurrent use.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	ns   netns.NsHandle // target namespace, or closed (-1) for our own
	h    *netlink.Handle
	link netlink.Link

	mu     sync.Mutex
	closed bool
	held   bool
	epoch  uint64
	sock   int // AF_PACKET socket, -1 until the first announcement
	// draining: Drain attached the SYN-dropping filter; Release detaches it.
	draining bool
	// stopAnnouncer cancels the running announcer; nil when none runs.
	stopAnnouncer context.CancelFunc
	announcerDone chan struct{}
}

// New checks cfg against the system and returns a Manager for it. The
// interface must exist and already carry an address whose subnet contains
// the VIP (the VIP itself does not count); with no dev in the spec, exactly
// one interface must have such a subnet. New changes nothing on the system.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Manager{cfg: cfg, ns: netns.None(), sock: -1}
	var err error
	if cfg.NetNS != "" {
		if m.ns, err = netns.GetFromPath(cfg.NetNS); err != nil {
			return nil, fmt.Errorf("vip %s: open network namespace %s: %w", cfg.Spec, cfg.NetNS, err)
		}
		m.h, err = netlink.NewHandleAt(m.ns)
	} else {
		m.h, err = netlink.NewHandle()
	}
	if err != nil {
		m.closeNS()
		return nil, fmt.Errorf("vip %s: open netlink: %w", cfg.Spec, err)
	}
	if m.link, err = resolveLink(m.h, cfg.Spec); err != nil {
		m.h.Close()
		m.closeNS()
		return nil, err
	}
	m.log = cfg.Logger.With("component", "vip", "vip", cfg.Spec.Prefix.String(), "dev", m.link.Attrs().Name)
	return m, nil
}

// Spec is the address this manager owns, with the interface it resolved to.
func (m *Manager) Spec() Spec {
	return Spec{Prefix: m.cfg.Spec.Prefix, Dev: m.link.Attrs().Name}
}

// State reports the desired state: whether the address is claimed and the
// epoch (fencing token) of the claim or release that set it.
func (m *Manager) State() (held bool, epoch uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held, m.epoch
}

// Present reports whether the address is on the interface right now.
func (m *Manager) Present(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return present(m.h, m.link, m.cfg.Spec.Addr())
}

// Claim adds the address (idempotent), announces it with a burst of
// gratuitous ARPs (or unsolicited neighbour advertisements) and starts the
// periodic re-announcement. epoch is the fencing token of the lordship that
// claims it; it appears in every log line. If the address was added but the
// burst failed, Claim returns an error and the address stays held: the
// announcer keeps retrying.
func (m *Manager) Claim(ctx context.Context, epoch uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return m.claimLocked(ctx, epoch, "vip claimed")
}

// Release stops the announcer and removes the address if present.
func (m *Manager) Release(ctx context.Context, epoch uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return m.releaseLocked(epoch, "vip released")
}

// CleanStale removes the address if it is present while this manager does
// not hold it: a copy left by an earlier run that died without releasing.
// Call it at start, before joining the cluster.
func (m *Manager) CleanStale(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.held {
		return nil
	}
	removed, err := m.remove()
	if err != nil {
		return err
	}
	if removed {
		m.log.Warn("removed a stale vip left by an earlier run")
	}
	// A run that died while draining left its SYN filter too.
	return m.removeDrainFilter()
}

// Reconcile makes the system match lordship: when lord, the address must be
// present and announced under epoch (claimed again if it is missing or the
// epoch changed); when not lord, it must be absent.
func (m *Manager) Reconcile(ctx context.Context, lord bool, epoch uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	isThere, err := present(m.h, m.link, m.cfg.Spec.Addr())
	if err != nil {
		return err
	}
	switch {
	case lord && (!isThere || !m.held || m.epoch != epoch):
		return m.claimLocked(ctx, epoch, "vip re-asserted by reconcile")
	case !lord && (isThere || m.held):
		return m.releaseLocked(epoch, "vip removed by reconcile: not lord")
	}
	return nil
}

// Close stops the announcer and frees the manager's sockets. It does not
// remove the address: call Release first when that is wanted.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.stopAnnouncerLocked()
	done := m.announcerDone
	var err error
	if m.sock >= 0 {
		err = unix.Close(m.sock)
		m.sock = -1
	}
	m.h.Close()
	m.closeNS()
	m.mu.Unlock()
	if done != nil {
		<-done
	}
	if err != nil {
		return fmt.Errorf("vip %s: close packet socket: %w", m.cfg.Spec, err)
	}
	return nil
}

func (m *Manager) closeNS() {
	if m.ns.IsOpen() {
		m.ns.Close()
	}
}

func (m *Manager) claimLocked(ctx context.Context, epoch uint64, msg string) error {
	if m.cfg.Fence != nil && !m.cfg.Fence(epoch) {
		m.log.Warn("vip claim skipped: epoch is no longer lord", "epoch", epoch)
		return nil
	}
	start := time.Now()
	if err := m.h.AddrReplace(m.link, m.netlinkAddr()); err != nil {
		return fmt.Errorf("vip %s: add to %s (epoch %d): %w", m.cfg.Spec.Prefix, m.link.Attrs().Name, epoch, err)
	}
	m.held, m.epoch = true, epoch
	m.startAnnouncerLocked()
	err := m.burst(ctx, epoch)
	if err != nil {
		m.log.Warn(msg+" but not announced", "epoch", epoch, "took", time.Since(start), "error", err)
		return fmt.Errorf("vip %s: added to %s but the announcement failed (epoch %d): %w", m.cfg.Spec.Prefix, m.link.Attrs().Name, epoch, err)
	}
	m.log.Info(msg, "epoch", epoch, "announcements", m.cfg.BurstCount, "took", time.Since(start))
	return nil
}

func (m *Manager) releaseLocked(epoch uint64, msg string) error {
	m.stopAnnouncerLocked()
	m.held, m.epoch = false, epoch
	removed, err := m.remove()
	if err != nil {
		return fmt.Errorf("%w (epoch %d)", err, epoch)
	}
	// Only now: until the address is gone the filter keeps new connections
	// away from it.
	if m.draining {
		if err := m.removeDrainFilter(); err != nil {
			m.log.Warn("vip released but its drain filter stays", "epoch", epoch, "error", err)
		} else {
			m.draining = false
		}
	}
	m.log.Info(msg, "epoch", epoch, "was_present", removed)
	return nil
}

// remove deletes the address, reporting whether it was there.
func (m *Manager) remove() (bool, error) {
	err := m.h.AddrDel(m.link, m.netlinkAddr())
	if errors.Is(err, unix.EADDRNOTAVAIL) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("vip %s: remove from %s: %w", m.cfg.Spec.Prefix, m.link.Attrs().Name, err)
	}
	return true, nil
}

func (m *Manager) netlinkAddr() *netlink.Addr {
	p := m.cfg.Spec.Prefix
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		// Skip duplicate address detection: a tentative address cannot be used
		// for a second or more, which would add to every failover.
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// burst sends BurstCount announcements, BurstInterval apart.
func (m *Manager) burst(ctx context.Context, epoch uint64) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for i := range m.cfg.BurstCount {
		if i > 0 {
			// The lock is dropped between announcements so that a Release
			// (the lord losing its lease) never waits for the burst: it must
			// remove the address within the lease margin. Called with m.mu
			// held; returns with it held.
			t.Reset(m.cfg.BurstInterval)
			m.mu.Unlock()
			select {
			case <-ctx.Done():
				m.mu.Lock()
				return ctx.Err()
			case <-t.C:
			}
			m.mu.Lock()
			if !m.held || m.epoch != epoch || m.closed {
				return nil // released (or re-claimed) meanwhile: stop announcing
			}
		}
		if err := m.announce(i); err != nil {
			return err
		}
	}
	return nil
}

// announce sends the i-th frame of a burst out of the interface.
func (m *Manager) announce(i int) error {
	if m.sock < 0 {
		fd, err := m.openPacketSocket()
		if err != nil {
			return err
		}
		m.sock = fd
	}
	frame, err := announcement(i, m.link.Attrs().HardwareAddr, m.cfg.Spec.Addr())
	if err != nil {
		return err
	}
	etherType := uint16(etherTypeARP)
	if m.cfg.Spec.Is6() {
		etherType = etherTypeIPv6
	}
	to := &unix.SockaddrLinklayer{
		Protocol: htons(etherType),
		Ifindex:  m.link.Attrs().Index,
		Halen:    6,
	}
	copy(to.Addr[:], frame[0:6])
	if err := unix.Sendto(m.sock, frame, 0, to); err != nil {
		return fmt.Errorf("vip %s: send announcement on %s: %w", m.cfg.Spec.Prefix, m.link.Attrs().Name, err)
	}
	return nil
}

// openPacketSocket opens a send-only AF_PACKET socket (protocol 0 receives
// nothing) in the target namespace.
func (m *Manager) openPacketSocket() (int, error) {
	fd := -1
	err := m.inNS(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return -1, fmt.Errorf("vip %s: open packet socket: %w", m.cfg.Spec.Prefix, err)
	}
	return fd, nil
}

func (m *Manager) startAnnouncerLocked() {
	if m.stopAnnouncer != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	m.stopAnnouncer, m.announcerDone = cancel, done
	go m.announcer(ctx, done)
}

func (m *Manager) stopAnnouncerLocked() {
	if m.stopAnnouncer != nil {
		m.stopAnnouncer()
		m.stopAnnouncer = nil
	}
}

// announcer re-asserts and re-announces the address every
// ReannounceInterval until ctx ends. It does its work under m.mu and checks
// ctx after taking the lock, so a Release that cancelled it under the same
// lock is never undone.
func (m *Manager) announcer(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(m.cfg.ReannounceInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.mu.Lock()
		if ctx.Err() == nil {
			m.reassertLocked()
		}
		m.mu.Unlock()
	}
}

func (m *Manager) reassertLocked() {
	if m.cfg.Fence != nil && !m.cfg.Fence(m.epoch) {
		if err := m.releaseLocked(m.epoch, "vip released: epoch fenced off"); err != nil {
			m.log.Error("fenced-off vip could not be removed", "epoch", m.epoch, "error", err)
		}
		return
	}
	isThere, err := present(m.h, m.link, m.cfg.Spec.Addr())
	if err != nil {
		m.log.Warn("vip presence check failed", "epoch", m.epoch, "error", err)
	} else if !isThere {
		if err := m.h.AddrReplace(m.link, m.netlinkAddr()); err != nil {
			m.log.Error("vip vanished and could not be re-added", "epoch", m.epoch, "error", err)
			return
		}
		m.log.Warn("vip vanished from the interface; re-added", "epoch", m.epoch)
	}
	if err := m.announce(0); err != nil {
		m.log.Warn("vip re-announcement failed", "epoch", m.epoch, "error", err)
		return
	}
	m.log.Debug("vip re-announced", "epoch", m.epoch)
}

// resolveLink finds the interface for spec and checks that the VIP lies in a
// subnet already configured on it.
func resolveLink(h *netlink.Handle, spec Spec) (netlink.Link, error) {
	vip := spec.Addr()
	if spec.Dev != "" {
		link, err := h.LinkByName(spec.Dev)
		if err != nil {
			return nil, fmt.Errorf("vip %s: interface %s: %w", spec, spec.Dev, err)
		}
		subnets, err := subnetsOf(h, link, vip)
		if err != nil {
			return nil, fmt.Errorf("vip %s: %w", spec, err)
		}
		for _, s := range subnets {
			if s.Contains(vip) {
				return link, nil
			}
		}
		return nil, fmt.Errorf("vip %s: %s is not inside any subnet of %s (its addresses: %s)", spec, vip, spec.Dev, joinPrefixes(subnets))
	}
	links, err := h.LinkList()
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("vip %s: list interfaces: %w", spec, err)
	}
	var found []netlink.Link
	for _, link := range links {
		subnets, err := subnetsOf(h, link, vip)
		if err != nil {
			return nil, fmt.Errorf("vip %s: %w", spec, err)
		}
		for _, s := range subnets {
			if s.Contains(vip) {
				found = append(found, link)
				break
			}
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("vip %s: no interface has a subnet containing %s; add an address in that subnet or name the interface with dev=", spec, vip)
	case 1:
		return found[0], nil
	default:
		names := make([]string, len(found))
		for i, l := range found {
			names[i] = l.Attrs().Name
		}
		return nil, fmt.Errorf("vip %s: several interfaces have a subnet containing %s (%s); choose one with dev=", spec, vip, strings.Join(names, ", "))
	}
}

// subnetsOf lists the subnets of link's addresses of vip's family, leaving
// out the VIP itself (a stale copy must not vouch for its own subnet).
func subnetsOf(h *netlink.Handle, link netlink.Link, vip netip.Addr) ([]netip.Prefix, error) {
	addrs, err := addrList(h, link, vip)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range addrs {
		p, ok := toPrefix(a.IPNet)
		if ok && p.Addr() != vip {
			out = append(out, p)
		}
	}
	return out, nil
}

func present(h *netlink.Handle, link netlink.Link, vip netip.Addr) (bool, error) {
	addrs, err := addrList(h, link, vip)
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if p, ok := toPrefix(a.IPNet); ok && p.Addr() == vip {
			return true, nil
		}
	}
	return false, nil
}

// addrList lists link's addresses of vip's family, retrying a dump that the
// kernel interrupted because the list changed under it.
func addrList(h *netlink.Handle, link netlink.Link, vip netip.Addr) ([]netlink.Addr, error) {
	family := netlink.FAMILY_V4
	if vip.Is6() {
		family = netlink.FAMILY_V6
	}
	var err error
	for range 3 {
		var addrs []netlink.Addr
		addrs, err = h.AddrList(link, family)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			if err != nil {
				return nil, fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
			}
			return addrs, nil
		}
	}
	return nil, fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
}

func toPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func joinPrefixes(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// htons converts to network byte order, as sockaddr_ll's protocol field wants.
func htons(v uint16) uint16 {
	return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v))
}
