package rcache

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/gouwsgi/gouwsgi/cache"
	"github.com/gouwsgi/gouwsgi/legion/fsm"
	raftv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/raft/v1"
)

// BatchType is the log entry type of replicated cache batches (in the
// 0x10-0x2f range legion/fsm reserves for caches).
const BatchType fsm.CommandType = 0x10

// MachineName keys the replicated caches' section in FSM snapshots.
const MachineName = "caches"

// Deduplication of retried batches (legion.Node.ApplyEntry retries a
// forwarded entry when the leader became unreachable after it was sent).
const (
	// sessionWindow is how many recent batches per origin are remembered;
	// it must exceed how many batches one node has in flight.
	sessionWindow = 32
	// sessionTTL forgets an origin idle this long (leader time), so
	// restarts do not grow the state.
	sessionTTL = 10 * time.Minute
)

// Machine is the replicated caches' state machine: a cache.Machine driven
// by CacheBatch entries, plus the sessions that make a retried batch apply
// once and the index of the last batch applied (linearizable reads wait
// for it). Raft calls Apply, Snapshot and Restore from one goroutine;
// reads go to the cache.Machine, which has its own lock.
type Machine struct {
	cfgs   []cache.Config
	caches *cache.Machine

	mu       sync.Mutex
	now      int64 // leader time of the latest entry; never goes back
	sessions map[string]*session
	advanced chan struct{} // closed and replaced when lastIndex moves

	lastIndex atomic.Uint64
}

type session struct {
	lastSeen int64
	seqs     []uint64 // ascending, at most sessionWindow
	results  [][]byte // encoded CacheBatchResult per seq
}

// NewMachine returns an empty machine for cfgs (validated, uniquely named).
func NewMachine(cfgs []cache.Config, logger *slog.Logger) *Machine {
	m := &Machine{
		cfgs:     slices.Clone(cfgs),
		caches:   cache.NewMachine(cfgs),
		sessions: map[string]*session{},
		advanced: make(chan struct{}),
	}
	if logger != nil {
		m.caches.SetLogger(logger)
	}
	return m
}

// Caches is the state, for local reads. Never write to it directly.
func (m *Machine) Caches() *cache.Machine { return m.caches }

// LastIndex is the log index of the last batch this replica applied (or
// that its latest snapshot covered).
func (m *Machine) LastIndex() uint64 { return m.lastIndex.Load() }

// WaitIndex blocks until this replica has applied the batch at index.
func (m *Machine) WaitIndex(done <-chan struct{}, index uint64) bool {
	for {
		m.mu.Lock()
		ch := m.advanced
		m.mu.Unlock()
		if m.lastIndex.Load() >= index {
			return true
		}
		select {
		case <-ch:
		case <-done:
			return false
		}
	}
}

// Apply implements fsm.Machine.
func (m *Machine) Apply(e fsm.Entry) fsm.Result {
	var b raftv1.CacheBatch
	e.Unmarshal(&b)
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := e.Time.UnixNano(); !e.Time.IsZero() && t > m.now {
		m.now = t
	}
	now := m.now
	m.expireSessions(now)
	s := m.sessions[b.GetOrigin()]
	if b.GetOrigin() != "" && s != nil {
		if i, dup := slices.BinarySearch(s.seqs, b.GetSeq()); dup {
			s.lastSeen = now
			m.advance(e.Index)
			return fsm.Result{Data: s.results[i]}
		}
		if len(s.seqs) == sessionWindow && b.GetSeq() < s.seqs[0] {
			m.advance(e.Index)
			return fsm.Result{Err: fmt.Errorf("%w: batch %d from %s is older than the %d its node sent since; refused, so it is never applied twice (an earlier copy may have been applied)",
				ErrStaleBatch, b.GetSeq(), b.GetOrigin(), sessionWindow)}
		}
	}
	ops := make([]cache.Op, len(b.GetOps()))
	for i, o := range b.GetOps() {
		ops[i] = toOp(o, now)
	}
	out := &raftv1.CacheBatchResult{Index: e.Index, Results: make([]*raftv1.CacheResult, len(ops))}
	for i, r := range m.caches.ApplyBatch(ops) {
		cr := &raftv1.CacheResult{Value: r.Value, Code: codeOf(r.Err)}
		if r.Err != nil {
			cr.Error = r.Err.Error()
		}
		out.Results[i] = cr
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(out)
	if err != nil {
		panic(fmt.Sprintf("rcache: encode batch result at index %d: %v", e.Index, err))
	}
	if b.GetOrigin() != "" {
		m.remember(b.GetOrigin(), b.GetSeq(), data, now)
	}
	m.advance(e.Index)
	return fsm.Result{Data: data}
}

// toOp turns a wire op into a cache.Op with the leader's time: the
// relative ttl becomes an absolute expiry every replica agrees on.
func toOp(o *raftv1.CacheOp, now int64) cache.Op {
	kind := cache.OpKind(0) // unknown: the machine refuses it
	if o.GetKind() <= math.MaxUint8 {
		kind = cache.OpKind(o.GetKind())
	}
	var expireAt int64
	switch ttl := o.GetTtlNanos(); {
	case ttl < 0:
		expireAt = -1 // refused as cache.ErrBadExpiry
	case ttl > 0:
		expireAt = now + ttl
		if expireAt < now { // overflow: as good as never
			expireAt = math.MaxInt64
		}
	}
	return cache.Op{Kind: kind, Cache: o.GetCache(), Key: o.GetKey(), Value: o.GetValue(), Operand: o.GetOperand(),
		ExpireAt: expireAt, Now: now}
}

func (m *Machine) remember(origin string, seq uint64, data []byte, now int64) {
	s := m.sessions[origin]
	if s == nil {
		s = &session{}
		m.sessions[origin] = s
	}
	s.lastSeen = now
	i, _ := slices.BinarySearch(s.seqs, seq)
	s.seqs = slices.Insert(s.seqs, i, seq)
	s.results = slices.Insert(s.results, i, data)
	if len(s.seqs) > sessionWindow {
		s.seqs, s.results = s.seqs[1:], s.results[1:]
	}
}

// expireSessions forgets idle origins. It looks at every session on every
// entry, so the result depends only on the log, never on when a replica
// happened to check.
func (m *Machine) expireSessions(now int64) {
	for origin, s := range m.sessions {
		if now-s.lastSeen > int64(sessionTTL) {
			delete(m.sessions, origin)
		}
	}
}

func (m *Machine) advance(index uint64) {
	m.lastIndex.Store(index)
	close(m.advanced)
	m.advanced = make(chan struct{})
}

// Snapshot implements fsm.Machine: the machine state (clock, last index,
// sessions in origin order), then the cache.Machine snapshot.
func (m *Machine) Snapshot(w io.Writer) error {
	m.mu.Lock()
	st := &raftv1.CacheMachineState{NowUnixNano: m.now, LastIndex: m.lastIndex.Load()}
	origins := make([]string, 0, len(m.sessions))
	for o := range m.sessions {
		origins = append(origins, o)
	}
	sort.Strings(origins)
	for _, o := range origins {
		s := m.sessions[o]
		st.Sessions = append(st.Sessions, &raftv1.CacheSession{Origin: o, LastSeenUnixNano: s.lastSeen, Seqs: s.seqs, Results: s.results})
	}
	head, err := proto.MarshalOptions{Deterministic: true}.Marshal(st)
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode cache machine state: %w", err)
	}
	if _, err := w.Write(binary.AppendUvarint(nil, uint64(len(head)))); err != nil {
		return fmt.Errorf("write cache machine state: %w", err)
	}
	if _, err := w.Write(head); err != nil {
		return fmt.Errorf("write cache machine state: %w", err)
	}
	return m.caches.Snapshot(w)
}

// maxStateBytes bounds the machine state header a snapshot may claim.
const maxStateBytes = 1 << 30

// Restore implements fsm.Machine. An empty stream (a snapshot taken before
// replicated caches existed) restores empty caches.
func (m *Machine) Restore(r io.Reader) error {
	br := bufio.NewReader(r)
	var st raftv1.CacheMachineState
	n, err := binary.ReadUvarint(br)
	switch {
	case err == io.EOF:
		var empty bytes.Buffer
		if err := cache.NewMachine(m.cfgs).Snapshot(&empty); err != nil {
			return err
		}
		br = bufio.NewReader(&empty)
	case err != nil:
		return fmt.Errorf("restore replicated caches: read state: %w", err)
	case n > maxStateBytes:
		return fmt.Errorf("restore replicated caches: state of %d bytes: %w", n, cache.ErrCorrupt)
	default:
		head := make([]byte, n)
		if _, err := io.ReadFull(br, head); err != nil {
			return fmt.Errorf("restore replicated caches: read state: %w", err)
		}
		if err := proto.Unmarshal(head, &st); err != nil {
			return fmt.Errorf("restore replicated caches: decode state: %w", err)
		}
	}
	sessions := map[string]*session{}
	for _, s := range st.GetSessions() {
		if len(s.GetSeqs()) != len(s.GetResults()) || !slices.IsSorted(s.GetSeqs()) {
			return fmt.Errorf("restore replicated caches: session %s: %w", s.GetOrigin(), cache.ErrCorrupt)
		}
		sessions[s.GetOrigin()] = &session{lastSeen: s.GetLastSeenUnixNano(), seqs: s.GetSeqs(), results: s.GetResults()}
	}
	if err := m.caches.Restore(br); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now, m.sessions = st.GetNowUnixNano(), sessions
	m.advance(st.GetLastIndex())
	return nil
}
