package rcache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/gouwsgi/gouwsgi/cache"
	"github.com/gouwsgi/gouwsgi/legion"
	"github.com/gouwsgi/gouwsgi/legion/fsm"
	raftv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/raft/v1"
)

// Raft is what a Group needs from the legion node (*legion.Node).
type Raft interface {
	// ApplyEntry commits an encoded entry (forwarding it to the leader)
	// and returns the state machine's answer.
	ApplyEntry(ctx context.Context, entry []byte) ([]byte, error)
	// IsLeader reports whether this node leads now (it sweeps).
	IsLeader() bool
}

// Limits of one batch: big enough to carry every waiting write of a busy
// node, small enough that a log entry stays well under the 4 MiB a
// forwarded gRPC message may carry.
const (
	maxBatchOps   = 4096
	maxBatchBytes = 1 << 20
	// MaxValue is the largest value a replicated cache accepts, whatever
	// its blocksize: the value must fit in one forwarded log entry.
	MaxValue = 3 << 20
)

// Options tune a Group; zero values take the defaults.
type Options struct {
	Logger *slog.Logger
	// SweepInterval is how often the leader checks for expired items and
	// commits a sweep (uWSGI's cache-expire-freq; default 3 s).
	SweepInterval time.Duration
	// Timeout bounds one write or linearizable read, queueing included
	// (default 10 s; the legion's ApplyTimeout bounds the wait for a
	// leader inside it).
	Timeout time.Duration
	// MaxInFlight is how many batches a node may have in flight at once
	// (default 4).
	MaxInFlight int
}

// Group is a node's set of replicated caches: the state machine to
// register with the legion, the Stores to register with the node's cache
// registry, and the proposer that batches their writes.
type Group struct {
	opts    Options
	log     *slog.Logger
	m       *Machine
	stores  []*Store
	byName  map[string]*Store
	origin  string
	seq     atomic.Uint64
	raft    Raft
	ctx     context.Context
	cancel  context.CancelFunc
	started atomic.Bool
	wg      sync.WaitGroup

	mu    sync.Mutex
	queue []*request
	kick  chan struct{}
	slots chan struct{} // one token per batch in flight
}

// request is one queued write, or (op nil) a linearizable read waiting
// for a read marker.
type request struct {
	op   *raftv1.CacheOp
	done chan reply // buffered: the proposer never blocks on it
}

type reply struct {
	res   *raftv1.CacheResult
	index uint64
	err   error
}

// New builds the group for cfgs, which must be replicated (Replicate set),
// valid (cache.ParseConfig output) and uniquely named. Every node of the
// cluster must configure the same caches: the log carries cache names and
// geometry is checked when snapshots are restored.
func New(cfgs []cache.Config, opts Options) (*Group, error) {
	if len(cfgs) == 0 {
		return nil, errors.New("replicated caches: no cache configured")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = 3 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 4
	}
	seen := map[string]bool{}
	for _, c := range cfgs {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("replicated caches: %w", err)
		}
		if !c.Replicate {
			return nil, fmt.Errorf("replicated caches: cache %q is not replicate=1", c.Name)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("replicated caches: cache %q configured twice", c.Name)
		}
		seen[c.Name] = true
	}
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	g := &Group{
		opts:   opts,
		log:    opts.Logger.With("component", "rcache"),
		origin: hex.EncodeToString(nonce[:]),
		byName: map[string]*Store{},
		kick:   make(chan struct{}, 1),
		slots:  make(chan struct{}, opts.MaxInFlight),
	}
	g.m = NewMachine(cfgs, g.log)
	g.ctx, g.cancel = context.WithCancel(context.Background())
	for _, c := range cfgs {
		s := &Store{g: g, cfg: c}
		g.stores = append(g.stores, s)
		g.byName[c.Name] = s
	}
	return g, nil
}

// Machine is the registration to pass in legion.Options.Machines.
func (g *Group) Machine() legion.Machine {
	return legion.Machine{Name: MachineName, Machine: g.m, Types: []fsm.CommandType{BatchType}}
}

// State is the replicated state machine, for digests and tests.
func (g *Group) State() *Machine { return g.m }

// Store returns the named cache.
func (g *Group) Store(name string) (*Store, bool) {
	s, ok := g.byName[name]
	return s, ok
}

// Register adds every store to reg (the node's cache registry).
func (g *Group) Register(reg *cache.Registry) error {
	for _, s := range g.stores {
		if err := reg.Add(s); err != nil {
			return err
		}
	}
	return nil
}

// Start begins proposing through r and, while r leads, sweeping. Writes
// made before Start wait for it (within Options.Timeout).
func (g *Group) Start(r Raft) {
	if !g.started.CompareAndSwap(false, true) {
		return
	}
	g.raft = r
	g.wg.Add(2)
	go func() { defer g.wg.Done(); g.propose() }()
	go func() { defer g.wg.Done(); g.sweep() }()
}

// Stop fails queued and later requests with ErrStopped and waits for the
// batches in flight.
func (g *Group) Stop() {
	g.cancel()
	g.wg.Wait()
	g.mu.Lock()
	q := g.queue
	g.queue = nil
	g.mu.Unlock()
	for _, r := range q {
		r.done <- reply{err: ErrStopped}
	}
}

// submit queues op (nil: a read marker) and waits for its outcome.
func (g *Group) submit(ctx context.Context, op *raftv1.CacheOp) reply {
	if g.ctx.Err() != nil {
		return reply{err: ErrStopped}
	}
	ctx, cancel := context.WithTimeout(ctx, g.opts.Timeout)
	defer cancel()
	r := &request{op: op, done: make(chan reply, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, r)
	g.mu.Unlock()
	select {
	case g.kick <- struct{}{}:
	default:
	}
	select {
	case rep := <-r.done:
		return rep
	case <-ctx.Done():
		// The write may still commit: its outcome is unknown, say so.
		return reply{err: fmt.Errorf("no answer from the cluster within %s, the outcome is unknown: %w", g.opts.Timeout, ctx.Err())}
	case <-g.ctx.Done():
		return reply{err: ErrStopped}
	}
}

// propose sends batches while requests wait, at most MaxInFlight at once:
// what queues while batches are in flight leaves together in the next.
func (g *Group) propose() {
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-g.kick:
		}
		for {
			select {
			case <-g.ctx.Done():
				return
			case g.slots <- struct{}{}:
			}
			batch := g.take()
			if len(batch) == 0 {
				<-g.slots
				break
			}
			g.wg.Add(1)
			go func() {
				defer g.wg.Done()
				g.send(batch)
				<-g.slots
				select { // requests may have queued while every slot was busy
				case g.kick <- struct{}{}:
				default:
				}
			}()
		}
	}
}

// take removes the next batch from the queue: every read marker waiting,
// and writes up to the batch limits (at least one).
func (g *Group) take() []*request {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, size := 0, 0
	for n < len(g.queue) && n < maxBatchOps {
		if op := g.queue[n].op; op != nil {
			sz := len(op.GetKey()) + len(op.GetValue()) + 32
			if n > 0 && size+sz > maxBatchBytes {
				break
			}
			size += sz
		}
		n++
	}
	batch := g.queue[:n:n]
	g.queue = g.queue[n:]
	if len(g.queue) == 0 {
		g.queue = nil
	}
	return batch
}

// send commits one batch and answers its requests.
func (g *Group) send(batch []*request) {
	b := &raftv1.CacheBatch{Origin: g.origin, Seq: g.seq.Add(1)}
	for _, r := range batch {
		if r.op != nil {
			b.Ops = append(b.Ops, r.op)
		}
	}
	fail := func(err error) {
		for _, r := range batch {
			r.done <- reply{err: err}
		}
	}
	entry, err := fsm.Encode(BatchType, b)
	if err != nil {
		fail(err)
		return
	}
	data, err := g.apply(entry)
	if err != nil {
		fail(err)
		return
	}
	var out raftv1.CacheBatchResult
	if err := proto.Unmarshal(data, &out); err != nil || len(out.GetResults()) != len(b.GetOps()) {
		fail(fmt.Errorf("replicated cache: malformed answer to a batch of %d writes (%d results, %v)", len(b.GetOps()), len(out.GetResults()), err))
		return
	}
	i := 0
	for _, r := range batch {
		rep := reply{index: out.GetIndex()}
		if r.op != nil {
			rep.res = out.GetResults()[i]
			i++
		}
		r.done <- rep
	}
}

// apply commits entry. An outcome left unknown (leadership lost while
// committing, leader unreachable after the send) is retried with the same
// entry until Options.Timeout: the machine remembers (origin, seq), so a
// batch that did commit is answered again, not applied twice. No quorum
// (after the legion's ApplyTimeout) and refusals are final.
func (g *Group) apply(entry []byte) ([]byte, error) {
	deadline := time.Now().Add(g.opts.Timeout)
	for {
		data, err := g.raft.ApplyEntry(g.ctx, entry)
		switch {
		case err == nil:
			return data, nil
		case g.ctx.Err() != nil:
			return nil, ErrStopped
		case errors.Is(err, legion.ErrNoQuorum), errors.Is(err, legion.ErrRefused), errors.Is(err, legion.ErrNotRunning),
			time.Now().After(deadline):
			return nil, err
		}
		g.log.Debug("retrying a cache batch whose outcome is unknown", "err", err)
		select {
		case <-g.ctx.Done():
			return nil, ErrStopped
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// write commits one op and returns its result, errors naming the cache,
// the operation and the key.
func (g *Group) write(ctx context.Context, op *raftv1.CacheOp) (int64, error) {
	kind := cache.OpKind(op.GetKind())
	rep := g.submit(ctx, op)
	if rep.err != nil {
		return 0, fmt.Errorf("cache %q: %s %q: %w", op.GetCache(), kind, op.GetKey(), rep.err)
	}
	// Read your writes: a cache_set followed by a cache_get on the same
	// node (the Python API does that within one request) must see the
	// value, so wait until this replica applied the committed batch.
	if rep.index > 0 {
		wctx, cancel := context.WithTimeout(ctx, g.opts.Timeout)
		g.m.WaitIndex(wctx.Done(), rep.index)
		cancel()
	}
	return rep.res.GetValue(), errorOf(rep.res.GetCode(), rep.res.GetError())
}

// barrier returns once this replica has applied a read marker committed
// after the call began: every write acknowledged before then is visible.
func (g *Group) barrier(ctx context.Context) error {
	rep := g.submit(ctx, nil)
	if rep.err != nil {
		return rep.err
	}
	ctx, cancel := context.WithTimeout(ctx, g.opts.Timeout)
	defer cancel()
	if !g.m.WaitIndex(ctx.Done(), rep.index) {
		return fmt.Errorf("waiting for this replica to apply index %d: %w", rep.index, ctx.Err())
	}
	return nil
}

// sweep commits a sweep whenever the leader sees expired items, so every
// replica removes the same items at the same point of the log.
func (g *Group) sweep() {
	t := time.NewTicker(g.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case now := <-t.C:
			if !g.raft.IsLeader() || !g.m.Caches().SweepDue(now.UnixNano()) {
				continue
			}
			if _, err := g.write(g.ctx, &raftv1.CacheOp{Kind: uint32(cache.OpSweep)}); err != nil && !errors.Is(err, ErrStopped) {
				g.log.Warn("sweeping expired items of replicated caches failed", "err", err)
			}
		}
	}
}
