package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"sync"
)

// OpKind is the kind of a replicated cache operation. The values are part
// of the Raft log format: never renumber or reuse them.
type OpKind uint8

// Operation kinds.
const (
	OpSet    OpKind = 1 // add-only set
	OpUpdate OpKind = 2 // upsert
	OpDel    OpKind = 3
	OpClear  OpKind = 4
	OpInc    OpKind = 5
	OpDec    OpKind = 6
	OpMul    OpKind = 7
	OpDiv    OpKind = 8
	OpSweep  OpKind = 9 // remove items expired at Now; Cache "" sweeps every cache
)

func (k OpKind) String() string {
	switch k {
	case OpSet:
		return "set"
	case OpUpdate:
		return "update"
	case OpDel:
		return "del"
	case OpClear:
		return "clear"
	case OpInc, OpDec, OpMul, OpDiv:
		return k.mathOp().String()
	case OpSweep:
		return "sweep"
	}
	return fmt.Sprintf("opkind(%d)", uint8(k))
}

func (k OpKind) mathOp() MathOp {
	switch k {
	case OpInc:
		return MathInc
	case OpDec:
		return MathDec
	case OpMul:
		return MathMul
	case OpDiv:
		return MathDiv
	}
	return 0
}

// Op is one replicated cache command. The leader fixes every time in it,
// so applying it needs no clock.
type Op struct {
	Kind  OpKind
	Cache string // "" = the first configured cache (for OpSweep: all caches)
	Key   string
	Value []byte
	// Operand is the math operand.
	Operand int64
	// ExpireAt is the absolute expiry in unix nanoseconds (0 = never).
	ExpireAt int64
	// Now is the leader's clock (unix nanos) for lazy expiry, sweeps,
	// sweep_on_full and last_modified_at.
	Now int64
}

// Result is the outcome of one Op: the new value of a math op, or the
// number of items a sweep or clear removed; Err is a business failure
// (ErrExists, ErrFull, ...), identical on every replica.
type Result struct {
	Value int64
	Err   error
}

// Machine holds every replicated cache of a cluster as a deterministic state
// machine: the same Ops in the same order give the same state on every
// replica. It reads no clock, uses no randomness and never iterates a map.
// Reads see expired items as absent, and writes delete the expired items
// they meet, so replicas agree on expiry whatever their clocks.
// Apply, Snapshot and reads may run concurrently.
type Machine struct {
	cfgs   []Config
	byName map[string]int // lookup only; order comes from cfgs

	mu     sync.RWMutex
	caches []*engine // parallel to cfgs; replaced whole by Restore
	logger *slog.Logger
}

// NewMachine builds empty caches for cfgs, which must be valid (as
// ParseConfig returns them) and uniquely named: otherwise it panics, since
// replicas built from different configurations would diverge anyway.
func NewMachine(cfgs []Config) *Machine {
	m := &Machine{cfgs: append([]Config(nil), cfgs...), byName: map[string]int{}}
	for i, c := range m.cfgs {
		if err := c.Validate(); err != nil {
			panic(fmt.Sprintf("cache.NewMachine: %v", err))
		}
		if _, dup := m.byName[c.Name]; dup {
			panic(fmt.Sprintf("cache.NewMachine: cache %q configured twice", c.Name))
		}
		m.byName[c.Name] = i
	}
	m.caches = make([]*engine, len(m.cfgs))
	m.fillEmpty(m.caches, nil)
	return m
}

// fillEmpty gives every cache missing from caches a new empty engine.
func (m *Machine) fillEmpty(caches []*engine, logger *slog.Logger) {
	for i, c := range m.cfgs {
		if caches[i] == nil {
			caches[i] = newEngine(c, true, logger)
		}
	}
}

// SetLogger makes full caches log uWSGI's warnings (every replica logs
// them, as every uWSGI node would). Call it before the first Apply.
func (m *Machine) SetLogger(logger *slog.Logger) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logger = logger
	for _, e := range m.caches {
		e.logger = logger
	}
}

// Names returns the configured cache names in configuration order.
func (m *Machine) Names() []string {
	names := make([]string, len(m.cfgs))
	for i, c := range m.cfgs {
		names[i] = c.Name
	}
	return names
}

// Config returns the configuration of the named cache.
func (m *Machine) Config(name string) (Config, bool) {
	i, err := m.index(name)
	if err != nil {
		return Config{}, false
	}
	return m.cfgs[i], true
}

func (m *Machine) index(name string) (int, error) {
	if name == "" && len(m.cfgs) > 0 {
		return 0, nil
	}
	if i, ok := m.byName[name]; ok {
		return i, nil
	}
	return 0, fmt.Errorf("cache %q: %w", name, ErrUnknownCache)
}

// Apply applies one Op.
func (m *Machine) Apply(op Op) Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.apply(op)
}

// ApplyBatch applies ops in order under one lock, one Result per Op.
func (m *Machine) ApplyBatch(ops []Op) []Result {
	res := make([]Result, len(ops))
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, op := range ops {
		res[i] = m.apply(op)
	}
	return res
}

func (m *Machine) apply(op Op) Result {
	if op.Kind == OpSweep && op.Cache == "" {
		n := 0
		for _, e := range m.caches {
			n += e.sweep(op.Now)
		}
		return Result{Value: int64(n)}
	}
	i, err := m.index(op.Cache)
	if err != nil {
		return Result{Err: err}
	}
	e := m.caches[i]
	switch op.Kind {
	case OpSet, OpUpdate:
		return Result{Err: e.write(op.Key, op.Value, op.ExpireAt, op.Now, op.Kind == OpSet)}
	case OpDel:
		return Result{Err: e.del(op.Key, op.Now)}
	case OpClear:
		return Result{Value: int64(e.clear(op.Now))}
	case OpInc, OpDec, OpMul, OpDiv:
		v, err := e.math(op.Kind.mathOp(), op.Key, op.Operand, op.ExpireAt, op.Now)
		return Result{Value: v, Err: err}
	case OpSweep:
		return Result{Value: int64(e.sweep(op.Now))}
	}
	return Result{Err: fmt.Errorf("%w: %s", ErrUnknownOp, op.Kind)}
}

// live returns the item at key if present and unexpired at now.
func (m *Machine) live(cache, key string, now int64) (*engine, uint32, error) {
	i, err := m.index(cache)
	if err != nil {
		return nil, 0, err
	}
	e := m.caches[i]
	idx := e.lookup(key)
	if idx != 0 && e.expired(idx, now) {
		idx = 0
	}
	return e, idx, nil
}

// Get reads key locally, hiding items expired at now (unix nanos); it
// counts hits and misses but changes no replicated state.
func (m *Machine) Get(cache, key string, now int64) ([]byte, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, i, err := m.live(cache, key, now)
	switch {
	case err != nil:
		return nil, false
	case i == 0:
		e.miss.Add(1)
		return nil, false
	}
	e.hits.Add(1)
	return bytes.Clone(e.valueAt(i)), true
}

// Exists reports whether key is present and unexpired at now.
func (m *Machine) Exists(cache, key string, now int64) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, i, err := m.live(cache, key, now)
	return err == nil && i != 0
}

// Expires returns the absolute expiry (unix nanos) of a live item; false
// when it is absent, expired or never expires.
func (m *Machine) Expires(cache, key string, now int64) (int64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, i, err := m.live(cache, key, now)
	if err != nil || i == 0 || e.slots[i].expires == 0 {
		return 0, false
	}
	return e.slots[i].expires, true
}

// Keys returns the sorted keys of a cache that are unexpired at now.
func (m *Machine) Keys(cache string, now int64) ([]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	i, err := m.index(cache)
	if err != nil {
		return nil, err
	}
	return m.caches[i].liveKeys(now, true), nil
}

// Stats returns a cache's stats entry.
func (m *Machine) Stats(cache string) (Stats, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	i, err := m.index(cache)
	if err != nil {
		return Stats{}, err
	}
	return m.caches[i].stats(), nil
}

// SweepDue reports whether an OpSweep at now would remove anything, so a
// leader can skip committing sweeps that have nothing to do. It may report
// true when expired items were since overwritten (a cheap lower bound).
func (m *Machine) SweepDue(now int64) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, e := range m.caches {
		if !e.cfg.NoExpire && e.earliest != 0 && e.earliest <= now {
			return true
		}
	}
	return false
}

// Snapshot writes every cache (items in restore order, LRU order, block
// placement and policy state) under the read lock, so it is one consistent
// point in the log while reads go on. Writing to a slow w delays Apply:
// an FSM should snapshot into memory and persist that.
func (m *Machine) Snapshot(w io.Writer) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	en := newEncoder(w, snapshotMagic, len(m.caches))
	for _, e := range m.caches {
		e.encode(en)
	}
	if err := en.finish(); err != nil {
		return fmt.Errorf("write cache snapshot: %w", err)
	}
	return nil
}

// Restore replaces the whole state with a snapshot. The new state is built
// aside and swapped in, so a failed restore leaves the old one untouched.
// Every cache in the snapshot must be configured here with the same
// geometry; configured caches missing from it start empty.
func (m *Machine) Restore(r io.Reader) error {
	d, n, err := newDecoder(r, snapshotMagic)
	if err != nil {
		return fmt.Errorf("restore cache snapshot: %w", err)
	}
	m.mu.RLock()
	logger := m.logger
	m.mu.RUnlock()
	caches := make([]*engine, len(m.cfgs))
	for range n {
		name, err := d.sectionName()
		if err != nil {
			return fmt.Errorf("restore cache snapshot: %w", err)
		}
		i, ok := m.byName[name]
		if !ok {
			return fmt.Errorf("restore cache snapshot: cache %q is in the snapshot but not configured: %w", name, ErrUnknownCache)
		}
		if caches[i] != nil {
			return fmt.Errorf("restore cache snapshot: %w", corrupt("cache %q appears twice", name))
		}
		if caches[i], err = d.section(m.cfgs[i], true, logger, 0); err != nil {
			return fmt.Errorf("restore cache snapshot: cache %q: %w", name, err)
		}
	}
	if err := d.finish(); err != nil {
		return fmt.Errorf("restore cache snapshot: %w", err)
	}
	m.fillEmpty(caches, logger)
	m.mu.Lock()
	m.caches = caches
	m.mu.Unlock()
	return nil
}

// Digest is a SHA-256 over the canonical contents of every cache (name, and
// per key in sorted order: key, value, expiry), to compare replicas.
func (m *Machine) Digest() [32]byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	h := sha256.New()
	var buf []byte
	put := func(b []byte) {
		buf = binary.AppendUvarint(buf[:0], uint64(len(b)))
		h.Write(buf)
		h.Write(b)
	}
	for _, e := range m.caches {
		put([]byte(e.cfg.Name))
		idx := e.sortedSlots()
		buf = binary.AppendUvarint(buf[:0], uint64(len(idx)))
		h.Write(buf)
		for _, i := range idx {
			put(e.keyAt(i))
			put(e.valueAt(i))
			buf = binary.AppendVarint(buf[:0], e.slots[i].expires)
			h.Write(buf)
		}
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}
