package legion

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// errCut is what dials return while a test has cut this node off.
var errCut = errors.New("network cut")

// netGate tracks this node's cluster connections (Raft and RPC, both
// directions) so that a test can partition the node: cut closes them all
// and refuses new ones until heal. It is never cut in production.
type netGate struct {
	cut   atomic.Bool
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newNetGate() *netGate { return &netGate{conns: make(map[net.Conn]struct{})} }

func (g *netGate) track(c net.Conn) net.Conn {
	g.mu.Lock()
	g.conns[c] = struct{}{}
	g.mu.Unlock()
	return &gatedConn{Conn: c, g: g}
}

func (g *netGate) closeAll() {
	g.cut.Store(true)
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		c.Close()
	}
}

func (g *netGate) heal() { g.cut.Store(false) }

type gatedConn struct {
	net.Conn
	g    *netGate
	once sync.Once
}

func (c *gatedConn) Close() error {
	c.once.Do(func() {
		c.g.mu.Lock()
		delete(c.g.conns, c.Conn)
		c.g.mu.Unlock()
	})
	return c.Conn.Close()
}

// secureNet dials and accepts mutually authenticated TLS connections for
// one purpose (raft or rpc), logging handshake failures in words an
// operator can act on.
type secureNet struct {
	purpose        string
	server, client *tls.Config
	gate           *netGate
	log            *slog.Logger

	mu        sync.Mutex
	lastNoted map[string]time.Time // rate-limits handshake error logs per peer
}

// noteHandshake logs a failed handshake at most every 10 s per peer.
func (s *secureNet) noteHandshake(dir, peer string, err error) {
	s.mu.Lock()
	if time.Since(s.lastNoted[peer]) < 10*time.Second {
		s.mu.Unlock()
		return
	}
	s.lastNoted[peer] = time.Now()
	s.mu.Unlock()
	s.log.Error(s.purpose+" TLS handshake failed: the peer does not hold this cluster's legion secret (or certificates)",
		"direction", dir, "peer", peer, "err", err)
}

func (s *secureNet) dial(ctx context.Context, addr string) (net.Conn, error) {
	if s.gate.cut.Load() {
		return nil, fmt.Errorf("dial %s %s: %w", s.purpose, addr, errCut)
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s %s: %w", s.purpose, addr, err)
	}
	tc := tls.Client(raw, s.client)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		s.noteHandshake("outbound", addr, err)
		return nil, fmt.Errorf("%s TLS handshake with %s (same legion secret on both nodes?): %w", s.purpose, addr, err)
	}
	return s.gate.track(tc), nil
}

// tlsListener accepts TCP connections and hands out only those whose TLS
// handshake succeeded; handshakes run off the accept loop.
type tlsListener struct {
	net.Listener
	sn        *secureNet
	advertise net.Addr
	ready     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func (s *secureNet) listen(bind string, advertise net.Addr) (*tlsListener, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("listen %s on %s: %w", s.purpose, bind, err)
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	l := &tlsListener{Listener: ln, sn: s, advertise: advertise, ready: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	return l, nil
}

func (l *tlsListener) acceptLoop() {
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.sn.log.Error("accept failed", "purpose", l.sn.purpose, "err", err)
			return
		}
		go l.handshake(raw)
	}
}

func (l *tlsListener) handshake(raw net.Conn) {
	if l.sn.gate.cut.Load() {
		raw.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tc := tls.Server(raw, l.sn.server)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		l.sn.noteHandshake("inbound", raw.RemoteAddr().String(), err)
		return
	}
	select {
	case l.ready <- l.sn.gate.track(tc):
	case <-l.done:
		tc.Close()
	}
}

func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *tlsListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

// Addr is the advertised address (what Raft tells its peers).
func (l *tlsListener) Addr() net.Addr { return l.advertise }

// raftStream adapts a tlsListener to raft.StreamLayer.
type raftStream struct{ *tlsListener }

func (r raftStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return r.sn.dial(ctx, string(addr))
}
