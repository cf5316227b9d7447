package legion

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gouwsgi/gouwsgi/legion/secure"
)

// LegionSpec is one `legion = <name> <addr:port> <valor> <algo:secret> [iv]`
// line plus the per-legion options that name it.
type LegionSpec struct {
	Name string
	// Addr is the gossip address (memberlist binds it, TCP and UDP).
	Addr  string
	Valor uint32
	// Algo is the uWSGI cipher name. It is accepted for compatibility and
	// not used: traffic is protected with keys derived from Secret.
	Algo   string
	Secret string
	// Quorum (legion-quorum) is the number of alive members, arbiters
	// included, needed before a lord is named. 0 means no extra condition
	// (a Raft quorum is always required).
	Quorum int
	// Scroll (legion-scroll) is announced to every member.
	Scroll string
}

// Config configures a node's cluster layer. Build it with DefaultConfig,
// fill it from options (ApplyOption), then Validate.
type Config struct {
	Legions []LegionSpec
	// Peers (legion-node) are gossip addresses of other members to join.
	Peers []string
	// NodeName is this host's name in status output (default: hostname).
	NodeName string
	// DataDir (legion-data-dir) holds the node id, Raft log, stable store
	// and snapshots. Empty: DefaultDataDir of the first legion's address.
	DataDir string
	// RaftAddr (legion-raft-addr) defaults to the legion address, port+1.
	RaftAddr string
	// RPCAddr (legion-rpc-addr) defaults to the legion address, port+2.
	RPCAddr string
	// TLS (legion-tls-cert/key/ca) replaces the certificates derived from
	// the legion secret. All three or none.
	TLS secure.Files

	// Freq and Tolerance are uWSGI's legion-freq and legion-tolerance.
	// Zero keeps gouwsgi's (much faster) gossip timings; when set they are
	// mapped onto memberlist: probe interval = Freq, and the suspicion
	// multiplier chosen so a silent node is declared dead after about
	// Tolerance. Lord failover does not depend on them: it is governed by
	// the lord lease below.
	Freq, Tolerance time.Duration

	// Raft timings (hashicorp/raft names). Measured on 2 shared cores:
	// 200 ms heartbeat/election with a 100 ms leader lease never saw a
	// spurious election under load, and fails over in about 0.5 s.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	MaxAppendEntries   int
	SnapshotThreshold  uint64
	SnapshotInterval   time.Duration
	TrailingLogs       uint64
	// TransportTimeout bounds one Raft RPC (a heartbeat to a dead host
	// fails after it).
	TransportTimeout time.Duration

	// LordLease is how long a lord may act after it asked the leader for a
	// renewal; LordRenewInterval how often it asks; LordLeaseMargin what
	// the leader adds before naming a successor (timer lateness, drift).
	LordLease         time.Duration
	LordRenewInterval time.Duration
	LordLeaseMargin   time.Duration
	// LapsePenalty keeps a lord whose lease lapsed without a release out of
	// the next elections for this long, so a dead lord that gossip still
	// believes alive is not named again.
	LapsePenalty time.Duration

	// Gossip timings (memberlist names).
	ProbeInterval  time.Duration
	ProbeTimeout   time.Duration
	SuspicionMult  int
	GossipInterval time.Duration

	// ReconcileInterval: full membership reconcile on the leader.
	ReconcileInterval time.Duration
	// DeadNodeGrace: a member dead this long is removed from Raft.
	DeadNodeGrace time.Duration
	// MinVoters: reaping dead members never shrinks Raft below this.
	MinVoters int
	// ApplyTimeout (RPC hold timeout): how long a write waits for a
	// leader, including forwarding.
	ApplyTimeout time.Duration
	// DrainTimeout bounds the drain of a lord's fenced resources (VIP
	// connections in progress) before a graceful handover; 0 skips it.
	DrainTimeout time.Duration
}

// DefaultConfig returns a Config with every field but the legions set.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		NodeName:           host,
		HeartbeatTimeout:   200 * time.Millisecond,
		ElectionTimeout:    200 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond,
		CommitTimeout:      10 * time.Millisecond,
		MaxAppendEntries:   256,
		SnapshotThreshold:  8192,
		SnapshotInterval:   2 * time.Minute,
		TrailingLogs:       10240,
		TransportTimeout:   time.Second,
		LordLease:          300 * time.Millisecond,
		LordRenewInterval:  75 * time.Millisecond,
		LordLeaseMargin:    150 * time.Millisecond,
		LapsePenalty:       10 * time.Second,
		ProbeInterval:      200 * time.Millisecond,
		ProbeTimeout:       100 * time.Millisecond,
		SuspicionMult:      2,
		GossipInterval:     100 * time.Millisecond,
		ReconcileInterval:  60 * time.Second,
		DeadNodeGrace:      10 * time.Minute,
		MinVoters:          3,
		ApplyTimeout:       5 * time.Second,
		DrainTimeout:       time.Second,
	}
}

// ErrUnknownOption is returned by ApplyOption for an option this package
// does not own (the hook options belong to legion/hooks).
var ErrUnknownOption = errors.New("not a legion cluster option")

// ApplyOption sets one uWSGI-style option from its ini/flag value.
func (c *Config) ApplyOption(name, value string) error {
	var err error
	switch name {
	case "legion":
		var spec LegionSpec
		if spec, err = ParseLegion(value); err == nil {
			c.Legions = append(c.Legions, spec)
		}
	case "legion-mcast":
		err = fmt.Errorf("legion-mcast: multicast is not supported; declare the legion with `legion` and name peers with legion-node")
	case "legion-node":
		var addr string
		if _, addr, err = splitNameArg(name, value); err == nil {
			c.Peers = append(c.Peers, addr)
		}
	case "legion-quorum":
		err = c.perLegion(name, value, func(l *LegionSpec, arg string) error {
			n, err := strconv.Atoi(arg)
			if err != nil || n < 0 {
				return fmt.Errorf("%q is not a non-negative number", arg)
			}
			l.Quorum = n
			return nil
		})
	case "legion-scroll":
		err = c.perLegion(name, value, func(l *LegionSpec, arg string) error { l.Scroll = arg; return nil })
	case "legion-freq":
		c.Freq, err = parseSeconds(value)
	case "legion-tolerance":
		c.Tolerance, err = parseSeconds(value)
	case "legion-data-dir":
		c.DataDir = value
	case "legion-raft-addr":
		c.RaftAddr = value
	case "legion-rpc-addr":
		c.RPCAddr = value
	case "legion-tls-cert":
		c.TLS.Cert = value
	case "legion-tls-key":
		c.TLS.Key = value
	case "legion-tls-ca":
		c.TLS.CA = value
	default:
		return fmt.Errorf("%s: %w", name, ErrUnknownOption)
	}
	if err != nil && !strings.HasPrefix(err.Error(), name+":") {
		err = fmt.Errorf("%s: %w", name, err)
	}
	return err
}

// perLegion applies `<legion> <arg>` to a legion declared earlier.
func (c *Config) perLegion(option, value string, set func(*LegionSpec, string) error) error {
	lname, arg, err := splitNameArg(option, value)
	if err != nil {
		return err
	}
	for i := range c.Legions {
		if c.Legions[i].Name == lname {
			return set(&c.Legions[i], arg)
		}
	}
	return fmt.Errorf("unknown legion %q (declare it with `legion` first)", lname)
}

func splitNameArg(option, value string) (string, string, error) {
	name, arg, ok := strings.Cut(strings.TrimSpace(value), " ")
	arg = strings.TrimSpace(arg)
	if !ok || name == "" || arg == "" {
		return "", "", fmt.Errorf("want `%s = <legion> <value>`, got %q", option, value)
	}
	return name, arg, nil
}

func parseSeconds(v string) (time.Duration, error) {
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive number of seconds", v)
	}
	return time.Duration(n) * time.Second, nil
}

// ParseLegion parses `<name> <addr:port> <valor> <algo:secret> [iv]`.
// The optional IV is accepted and ignored, like the cipher name.
func ParseLegion(s string) (LegionSpec, error) {
	f := strings.Fields(s)
	if len(f) < 4 || len(f) > 5 {
		return LegionSpec{}, fmt.Errorf("legion: want `<name> <addr:port> <valor> <algo:secret>`, got %q", s)
	}
	spec := LegionSpec{Name: f[0], Addr: f[1]}
	if err := checkGossipAddr(f[1]); err != nil {
		return LegionSpec{}, fmt.Errorf("legion %s: %w", f[0], err)
	}
	v, err := strconv.ParseUint(f[2], 10, 32)
	if err != nil {
		return LegionSpec{}, fmt.Errorf("legion %s: valor %q is not an unsigned number", f[0], f[2])
	}
	spec.Valor = uint32(v)
	algo, secret, ok := strings.Cut(f[3], ":")
	if !ok || algo == "" || secret == "" {
		return LegionSpec{}, fmt.Errorf("legion %s: want `<algo>:<secret>`, got %q", f[0], f[3])
	}
	spec.Algo, spec.Secret = algo, secret
	return spec, nil
}

func checkGossipAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: want ip:port (%v)", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65533 {
		return fmt.Errorf("address %q: port must be 1-65533 (Raft and RPC use port+1 and port+2)", addr)
	}
	if ip, err := netip.ParseAddr(host); err == nil && (ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
		return fmt.Errorf("address %q: multicast and broadcast are not supported; name peers with legion-node", addr)
	}
	return nil
}

// Validate checks the configuration and names the offending option.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Legions) == 0 {
		bad("legion: at least one legion is required")
	}
	seen := map[string]bool{}
	for _, l := range c.Legions {
		if seen[l.Name] {
			bad("legion: legion %q declared twice", l.Name)
		}
		seen[l.Name] = true
		if err := checkGossipAddr(l.Addr); err != nil {
			bad("legion %s: %v", l.Name, err)
		}
		if l.Secret == "" {
			bad("legion %s: secret is empty", l.Name)
		}
		if l.Secret != c.Legions[0].Secret {
			bad("legion %s: secret differs from legion %s; all legions of a node share one cluster and one secret", l.Name, c.Legions[0].Name)
		}
		if l.Quorum < 0 {
			bad("legion-quorum %s: must not be negative", l.Name)
		}
		if len(l.Scroll) > 4096 {
			bad("legion-scroll %s: %d bytes, the limit is 4096", l.Name, len(l.Scroll))
		}
	}
	for _, p := range c.Peers {
		if err := checkGossipAddr(p); err != nil {
			bad("legion-node: %v", err)
		}
	}
	for opt, addr := range map[string]string{"legion-raft-addr": c.RaftAddr, "legion-rpc-addr": c.RPCAddr} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad("%s: %q: %v", opt, addr, err)
		}
	}
	if n := countSet(c.TLS.Cert, c.TLS.Key, c.TLS.CA); n != 0 && n != 3 {
		bad("legion-tls-cert, legion-tls-key and legion-tls-ca go together: set all three or none")
	}
	if c.Freq < 0 || c.Tolerance < 0 || (c.Tolerance > 0 && c.Freq > c.Tolerance) {
		bad("legion-freq must not exceed legion-tolerance")
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"heartbeat timeout", c.HeartbeatTimeout}, {"election timeout", c.ElectionTimeout},
		{"leader lease timeout", c.LeaderLeaseTimeout}, {"commit timeout", c.CommitTimeout},
		{"transport timeout", c.TransportTimeout}, {"lord lease", c.LordLease},
		{"lord renew interval", c.LordRenewInterval}, {"lord lease margin", c.LordLeaseMargin},
		{"probe interval", c.ProbeInterval}, {"probe timeout", c.ProbeTimeout},
		{"gossip interval", c.GossipInterval}, {"reconcile interval", c.ReconcileInterval},
		{"dead node grace", c.DeadNodeGrace}, {"apply timeout", c.ApplyTimeout},
		{"snapshot interval", c.SnapshotInterval},
	}
	for _, p := range positive {
		if p.d <= 0 {
			bad("legion: %s must be positive", p.name)
		}
	}
	if c.HeartbeatTimeout < 5*time.Millisecond {
		bad("legion: heartbeat timeout %v is below raft's 5ms minimum", c.HeartbeatTimeout)
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		bad("legion: election timeout %v must be at least the heartbeat timeout %v", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		bad("legion: leader lease timeout %v must not exceed the heartbeat timeout %v", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.LordRenewInterval*2 > c.LordLease {
		bad("legion: lord renew interval %v must be at most half the lord lease %v, or one lost renewal drops the lord", c.LordRenewInterval, c.LordLease)
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		bad("legion: probe timeout %v must be below the probe interval %v", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.SuspicionMult < 1 || c.MinVoters < 1 || c.MaxAppendEntries < 1 {
		bad("legion: suspicion multiplier, min voters and max append entries must be at least 1")
	}
	return errors.Join(errs...)
}

func countSet(vals ...string) int {
	n := 0
	for _, v := range vals {
		if v != "" {
			n++
		}
	}
	return n
}

// Secret is the cluster secret (shared by every legion, see Validate).
func (c Config) Secret() string {
	if len(c.Legions) == 0 {
		return ""
	}
	return c.Legions[0].Secret
}

// GossipAddr is the address memberlist binds: the first legion's address.
// Other legions of the node share this one cluster.
func (c Config) GossipAddr() string {
	if len(c.Legions) == 0 {
		return ""
	}
	return c.Legions[0].Addr
}

// RaftBindAddr is legion-raft-addr or the gossip address with port+1.
func (c Config) RaftBindAddr() string { return c.derived(c.RaftAddr, 1) }

// RPCBindAddr is legion-rpc-addr or the gossip address with port+2.
func (c Config) RPCBindAddr() string { return c.derived(c.RPCAddr, 2) }

func (c Config) derived(explicit string, offset int) string {
	if explicit != "" {
		return explicit
	}
	host, port, err := net.SplitHostPort(c.GossipAddr())
	if err != nil {
		return ""
	}
	p, _ := strconv.Atoi(port)
	return net.JoinHostPort(host, strconv.Itoa(p+offset))
}

// DefaultDataDir is /var/lib/gouwsgi/legion-<host>-<port> when that is
// writable (a system service), else the same name under the user's cache
// directory. Keyed by the gossip address so that several nodes on one host
// (tests, labs) never share a directory.
func DefaultDataDir(gossipAddr string) string {
	host, port, _ := net.SplitHostPort(gossipAddr)
	name := "legion-" + strings.NewReplacer(":", "_", "[", "", "]", "").Replace(host) + "-" + port
	if err := os.MkdirAll("/var/lib/gouwsgi", 0o750); err == nil {
		if f, err := os.CreateTemp("/var/lib/gouwsgi", ".probe"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return filepath.Join("/var/lib/gouwsgi", name)
		}
	}
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "gouwsgi", name)
	}
	return filepath.Join(os.TempDir(), "gouwsgi", name)
}

// applyUWSGITimings maps legion-freq/legion-tolerance onto memberlist.
func (c *Config) applyUWSGITimings() {
	if c.Freq == 0 && c.Tolerance == 0 {
		return
	}
	if c.Freq == 0 {
		c.Freq = c.Tolerance / 5
	}
	c.ProbeInterval = c.Freq
	c.ProbeTimeout = c.Freq / 2
	if c.Tolerance > 0 {
		// memberlist declares a node dead roughly SuspicionMult probe
		// intervals after the failed probe (small clusters).
		c.SuspicionMult = max(1, int(c.Tolerance/c.Freq)-1)
	}
}
