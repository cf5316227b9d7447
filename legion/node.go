package legion

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/gouwsgi/gouwsgi/legion/fsm"
	"github.com/gouwsgi/gouwsgi/legion/lord"
	"github.com/gouwsgi/gouwsgi/legion/secure"
)

// Machine registers a sub-state machine (replicated caches, alarms) with
// the node's FSM under a name and the command types it owns.
type Machine struct {
	Name    string
	Machine fsm.Machine
	Types   []fsm.CommandType
}

// Options are the node's collaborators.
type Options struct {
	// Logger receives every log line, with component and node_id added.
	Logger *slog.Logger
	// Reactor receives legion events (nil: none).
	Reactor Reactor
	// RegisterRPC adds the forwarding service to the node's cluster gRPC
	// server; cmd passes func(s *grpc.Server, n *legion.Node) {
	// cluster.Register(s, n) } (rpc/cluster). Without it followers cannot
	// forward writes or renew lord leases, so New requires it.
	RegisterRPC func(s *grpc.Server, n *Node)
	// Machines are registered with the FSM before Raft starts.
	Machines []Machine
}

// Node is one member of a gouwsgi cluster: memberlist agent, Raft peer,
// lord elector and lord. Create it with New, then Run it.
type Node struct {
	cfg     Config
	opts    Options
	id      string
	dataDir string
	log     *slog.Logger
	reactor Reactor
	fsm     *fsm.FSM

	serverTLS, clientTLS *tls.Config
	gossipKey            []byte
	gate                 *netGate
	raftNet, rpcNet      *secureNet

	// Set by start.
	raft       *raft.Raft
	store      *raftboltdb.BoltStore
	transport  *raft.NetworkTransport
	ml         *memberlist.Memberlist
	raftLn     *tlsListener
	rpcLn      *tlsListener
	rpcServer  *grpc.Server
	raftAddr   string // advertised
	rpcAddr    string // advertised
	leaderNote chan bool

	members *memberTable
	clients sync.Map // rpc addr -> *grpc.ClientConn

	fence      atomic.Pointer[lord.Fence] // non-nil while leadership is established
	leaderKick chan struct{}              // wakes the leader loop (FSM changed, events)
	keepers    map[string]*keeper

	penaltyMu sync.Mutex
	penalty   map[string]time.Time // node id -> excluded from lordship until

	joinMu sync.Mutex
	joined map[string]bool // legions whose OnJoin fired

	started   chan struct{}
	stopping  chan struct{} // closed when the node stops (after a graceful leave)
	stopOnce  sync.Once     // one Shutdown
	closeOnce sync.Once     // closes stopping
	wg        sync.WaitGroup
	fatal     chan error
	haltOnce  sync.Once
	isRunning atomic.Bool
	leaving   atomic.Bool // graceful shutdown began: stop re-registering
}

// New validates cfg, resolves the data directory and the node id, and
// derives the cluster credentials. It binds nothing; Run does.
func New(cfg Config, opts Options) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.RegisterRPC == nil {
		return nil, errors.New("legion: Options.RegisterRPC is required (wire rpc/cluster.Register)")
	}
	cfg.applyUWSGITimings()
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir(cfg.GossipAddr())
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("legion-data-dir %s: %w", cfg.DataDir, err)
	}
	id, err := loadNodeID(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	base := opts.Logger
	if base == nil {
		base = slog.Default()
	}
	logger := base.With("component", "legion", "node_id", id)
	reactor := opts.Reactor
	if reactor == nil {
		reactor = NopReactor{}
	}
	n := &Node{
		cfg: cfg, opts: opts, id: id, dataDir: cfg.DataDir, log: logger, reactor: reactor,
		fsm:        fsm.New(logger.With("component", "fsm")),
		gate:       newNetGate(),
		members:    newMemberTable(),
		leaderKick: make(chan struct{}, 1),
		keepers:    make(map[string]*keeper),
		penalty:    make(map[string]time.Time),
		joined:     make(map[string]bool),
		started:    make(chan struct{}),
		stopping:   make(chan struct{}),
		fatal:      make(chan error, 1),
	}
	for _, m := range opts.Machines {
		if err := n.fsm.Register(m.Name, m.Machine, m.Types...); err != nil {
			return nil, fmt.Errorf("legion: %w", err)
		}
	}
	if cfg.TLS.Cert != "" {
		n.serverTLS, n.clientTLS, err = secure.FromFiles(cfg.TLS)
	} else {
		n.serverTLS, n.clientTLS, err = secure.FromSecret(cfg.Secret(), id)
	}
	if err != nil {
		return nil, fmt.Errorf("legion: cluster TLS: %w", err)
	}
	if n.gossipKey, err = secure.GossipKey(cfg.Secret()); err != nil {
		return nil, fmt.Errorf("legion: gossip key: %w", err)
	}
	mk := func(purpose string) *secureNet {
		return &secureNet{purpose: purpose, server: n.serverTLS, client: n.clientTLS, gate: n.gate,
			log: logger.With("component", "transport"), lastNoted: make(map[string]time.Time)}
	}
	n.raftNet, n.rpcNet = mk("raft"), mk("rpc")
	for _, l := range cfg.Legions[1:] {
		if l.Addr != cfg.GossipAddr() {
			logger.Warn("legion address not used: all legions of a node share one cluster on the first legion's address",
				"legion", l.Name, "addr", l.Addr, "cluster_addr", cfg.GossipAddr())
		}
	}
	return n, nil
}

// loadNodeID reads the node id from the data directory, creating it on
// first start: the same directory is always the same member.
func loadNodeID(dir string) (string, error) {
	path := filepath.Join(dir, "node-id")
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if id == "" {
			return "", fmt.Errorf("node id file %s is empty; delete it to get a new identity", path)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read node id: %w", err)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generate node id: %w", err)
	}
	h := hex.EncodeToString(raw[:])
	id := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o640); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	return id, nil
}

// ID is this node's stable id.
func (n *Node) ID() string { return n.id }

// DataDir is the directory holding the node id and Raft state.
func (n *Node) DataDir() string { return n.dataDir }

// FSM exposes the state machine for reads (caches, alarms, status).
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// IsLeader reports whether this node is the Raft leader now. It is a
// hint (leadership can be lost the next instant): use it to decide who
// proposes housekeeping such as cache sweeps, never for correctness.
func (n *Node) IsLeader() bool { return n.raft != nil && n.raft.State() == raft.Leader }

// Started is closed once every listener is bound and Raft runs.
func (n *Node) Started() <-chan struct{} { return n.started }

// Run starts the node and blocks until ctx is cancelled (then it shuts
// down gracefully), Shutdown is called, or a fatal error occurs.
func (n *Node) Run(ctx context.Context) error {
	if err := n.start(); err != nil {
		n.halt()
		return err
	}
	n.isRunning.Store(true)
	close(n.started)
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return n.Shutdown(sctx)
	case <-n.stopping:
		n.wg.Wait()
		return nil
	case err := <-n.fatal:
		n.halt()
		return err
	}
}

func (n *Node) start() error {
	for _, l := range n.cfg.Legions {
		n.reactor.OnSetup(l.Name)
		if l.Valor != 0 { // arbiters vote but are never lord
			// Built before gossip starts: its events kick the keepers.
			n.keepers[l.Name] = newKeeper(n, l.Name)
		}
	}
	if err := n.startRPC(); err != nil {
		return err
	}
	if err := n.startRaft(); err != nil {
		return err
	}
	if err := n.startGossip(); err != nil {
		return err
	}
	n.fsm.Legions().OnChange(func(string) { n.kick() })
	n.spawn(n.monitorLeadership)
	n.spawn(n.registerLoop)
	n.spawn(n.joinLoop)
	n.spawn(n.watchQuorum)
	for _, k := range n.keepers {
		n.spawn(k.run)
	}
	n.log.Info("legion node started", "gossip_addr", n.cfg.GossipAddr(), "raft_addr", n.raftAddr,
		"rpc_addr", n.rpcAddr, "data_dir", n.dataDir)
	return nil
}

func (n *Node) spawn(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// kick wakes the leader loop and the lord keepers without blocking.
func (n *Node) kick() {
	select {
	case n.leaderKick <- struct{}{}:
	default:
	}
	for _, k := range n.keepers {
		k.kick()
	}
}

// advertised maps a bind address with an unspecified host onto the
// gossip advertise host, so peers get an address they can dial.
func (n *Node) advertised(bound net.Addr, gossipHost string) string {
	host, port, err := net.SplitHostPort(bound.String())
	if err != nil {
		return bound.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = gossipHost
	}
	return net.JoinHostPort(host, port)
}

func (n *Node) gossipHost() string {
	host, _, _ := net.SplitHostPort(n.cfg.GossipAddr())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if addr, err := privateIP(); err == nil {
			return addr
		}
	}
	return host
}

// privateIP is the address memberlist would advertise for 0.0.0.0.
func privateIP() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			return ipn.IP.String(), nil
		}
	}
	return "", errors.New("no private IPv4 address")
}

func (n *Node) startRPC() error {
	ln, err := n.rpcNet.listen(n.cfg.RPCBindAddr(), nil)
	if err != nil {
		return fmt.Errorf("legion-rpc-addr: %w", err)
	}
	n.rpcLn = ln
	n.rpcAddr = n.advertised(ln.Listener.Addr(), n.gossipHost())
	ln.advertise = tcpAddr(n.rpcAddr)
	// The connection is already mutual TLS (tlsListener); gRPC runs
	// plain HTTP/2 inside it.
	n.rpcServer = grpc.NewServer(grpc.Creds(insecure.NewCredentials()))
	n.opts.RegisterRPC(n.rpcServer, n)
	go func() {
		if err := n.rpcServer.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			n.log.Error("cluster rpc server stopped", "err", err)
		}
	}()
	return nil
}

type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }

func (n *Node) startRaft() error {
	ln, err := n.raftNet.listen(n.cfg.RaftBindAddr(), nil)
	if err != nil {
		return fmt.Errorf("legion-raft-addr: %w", err)
	}
	n.raftLn = ln
	n.raftAddr = n.advertised(ln.Listener.Addr(), n.gossipHost())
	ln.advertise = tcpAddr(n.raftAddr)

	hl := newHclog(n.log.With("component", "raft"), "raft")
	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: raftStream{ln}, MaxPool: 3, Timeout: n.cfg.TransportTimeout, Logger: hl,
		ServerAddressProvider: nil,
	})
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(n.dataDir, "raft.db")})
	if err != nil {
		return fmt.Errorf("open raft store %s: %w", filepath.Join(n.dataDir, "raft.db"), err)
	}
	n.store = store
	snaps, err := raft.NewFileSnapshotStoreWithLogger(n.dataDir, 2, hl)
	if err != nil {
		return fmt.Errorf("open snapshot store in %s: %w", n.dataDir, err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.id)
	rc.Logger = hl
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = n.cfg.CommitTimeout
	rc.MaxAppendEntries = n.cfg.MaxAppendEntries
	rc.BatchApplyCh = true
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	rc.SnapshotInterval = n.cfg.SnapshotInterval
	rc.TrailingLogs = n.cfg.TrailingLogs
	n.leaderNote = make(chan bool, 16)
	rc.NotifyCh = n.leaderNote
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("legion: raft config: %w", err)
	}
	r, err := raft.NewRaft(rc, n.fsm, store, store, snaps, n.transport)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	n.raft = r
	return nil
}

// Shutdown leaves the cluster gracefully: lordships are released first
// (so a successor is named at once), leadership is handed over, gossip
// announces the departure, and the leader removes this node from Raft.
func (n *Node) Shutdown(ctx context.Context) error {
	if !n.isRunning.Load() {
		return ErrNotRunning
	}
	var err error
	n.stopOnce.Do(func() { err = n.shutdown(ctx) })
	return err
}

func (n *Node) shutdown(ctx context.Context) error {
	n.leaving.Store(true)
	n.log.Info("leaving the cluster")
	ctx, cancel := n.whileLeaderKnown(ctx)
	defer cancel()
	n.drain(ctx)
	// Stop the keepers first so no new lordship starts; each releases the
	// lordship it holds and marks this node draining.
	for _, k := range n.keepers {
		k.stop()
	}
	for _, l := range n.cfg.Legions {
		if k := n.keepers[l.Name]; k != nil {
			k.wait()
		}
		n.releaseOnLeave(ctx, l.Name)
		n.reactor.OnDeath(l.Name)
	}
	if n.raft.State() == raft.Leader {
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			n.log.Warn("leadership transfer before leaving failed", "err", err)
		}
	}
	if err := n.ml.Leave(time.Second); err != nil {
		n.log.Warn("gossip leave failed", "err", err)
	}
	n.waitRemoved(ctx)
	n.halt()
	return nil
}

// whileLeaderKnown returns ctx, cancelled early once no Raft leader has
// been known for leaderlessGrace: a node cut off from the quorum cannot
// commit its release nor be removed, and waiting for either would only make
// its stop take the whole shutdown timeout. It leaves as a dead node would;
// the others reap it once they have a quorum again.
func (n *Node) whileLeaderKnown(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	grace := leaderlessGrace(n.cfg)
	go func() {
		t := time.NewTicker(grace / 10)
		defer t.Stop()
		seen := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if addr, _ := n.raft.LeaderWithID(); addr != "" {
					seen = now
				} else if now.Sub(seen) >= grace {
					n.log.Warn(fmt.Sprintf("no raft leader for %s: leaving without handing over (the others will reap this node)", grace.Round(time.Millisecond)))
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}

// leaderlessGrace is how long a leaving node waits for a leader to appear:
// long enough for an election (a leader that leaves transfers leadership
// first), short against a shutdown timeout.
func leaderlessGrace(c Config) time.Duration {
	return max(time.Second, 5*c.ElectionTimeout)
}

// drain lets the reactor drain the fenced resources of every lordship this
// node holds, before the keepers stop: they keep renewing meanwhile, so the
// lease holds however long the drain takes (at most DrainTimeout).
func (n *Node) drain(ctx context.Context) {
	d, ok := n.reactor.(Drainer)
	if !ok || n.cfg.DrainTimeout <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.DrainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range n.cfg.Legions {
		if !n.IsLord(l.Name) {
			continue
		}
		lg, _ := n.fsm.Legions().Get(l.Name)
		wg.Go(func() { d.OnDrain(ctx, l.Name, lg.Epoch) })
	}
	wg.Wait()
}

// waitRemoved waits (bounded by ctx) until the leader has dropped this
// node from the Raft configuration.
func (n *Node) waitRemoved(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		f := n.raft.GetConfiguration()
		if f.Error() != nil || !inConfig(f.Configuration(), n.id) || n.singleVoter(f.Configuration()) {
			return
		}
		select {
		case <-ctx.Done():
			n.log.Warn("left before the leader removed this node from raft; it will be reaped as dead")
			return
		case <-t.C:
		}
	}
}

func (n *Node) singleVoter(c raft.Configuration) bool {
	return len(c.Servers) == 1 && string(c.Servers[0].ID) == n.id
}

func inConfig(c raft.Configuration, id string) bool {
	for _, s := range c.Servers {
		if string(s.ID) == id {
			return true
		}
	}
	return false
}

// halt stops everything at once, as a crash would (no leave, no
// release). Shutdown uses it last; tests use it to kill a node.
func (n *Node) halt() {
	n.haltOnce.Do(func() {
		n.closeOnce.Do(func() { close(n.stopping) })
		for _, k := range n.keepers {
			k.stop()
		}
		if n.raft != nil {
			if err := n.raft.Shutdown().Error(); err != nil {
				n.log.Warn("raft shutdown", "err", err)
			}
		}
		if n.ml != nil {
			_ = n.ml.Shutdown()
		}
		if n.rpcServer != nil {
			n.rpcServer.Stop()
		}
		for _, ln := range []*tlsListener{n.raftLn, n.rpcLn} {
			if ln != nil {
				ln.Close()
			}
		}
		if n.transport != nil {
			n.transport.Close()
		}
		n.gate.closeAll()
		n.clients.Range(func(k, v any) bool {
			v.(*grpc.ClientConn).Close()
			return true
		})
		n.wg.Wait()
		if n.store != nil {
			n.store.Close()
		}
		n.isRunning.Store(false)
	})
}
