package rcache

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gouwsgi/gouwsgi/cache"
	raftv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/raft/v1"
)

// Store is one replicated cache. It implements cache.Store: writes go
// through Raft (and block until committed and applied), reads are served
// by the local replica, linearizably when the cache has linearizable=1.
type Store struct {
	g      *Group
	cfg    cache.Config
	warned atomic.Int64 // unix nanos of the last failed-read warning
}

var _ cache.Store = (*Store)(nil)

// Name implements cache.Store.
func (s *Store) Name() string { return s.cfg.Name }

func now() int64 { return time.Now().UnixNano() }

// consistent runs the barrier of a linearizable cache before a read done
// through the cache.Store interface, which cannot return an error: a
// failure is logged (at most once a second) and the read reports a miss.
func (s *Store) consistent() bool {
	if !s.cfg.Linearizable {
		return true
	}
	err := s.g.barrier(context.Background())
	if err == nil {
		return true
	}
	if t := now(); t-s.warned.Load() > int64(time.Second) {
		s.warned.Store(t)
		s.g.log.Warn(fmt.Sprintf("cache %q: linearizable read failed, answering a miss: %v", s.cfg.Name, err), "cache", s.cfg.Name)
	}
	return false
}

// Get implements cache.Store.
func (s *Store) Get(key string) ([]byte, bool) {
	if !s.consistent() {
		return nil, false
	}
	return s.g.m.Caches().Get(s.cfg.Name, key, now())
}

// Exists implements cache.Store.
func (s *Store) Exists(key string) bool {
	return s.consistent() && s.g.m.Caches().Exists(s.cfg.Name, key, now())
}

// Expires implements cache.Store.
func (s *Store) Expires(key string) (time.Time, bool) {
	at, ok := s.g.m.Caches().Expires(s.cfg.Name, key, now())
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(0, at), true
}

// Keys implements cache.Store.
func (s *Store) Keys() []string {
	if !s.consistent() {
		return nil
	}
	keys, _ := s.g.m.Caches().Keys(s.cfg.Name, now())
	return keys
}

// Stats implements cache.Store. Hits and misses count this node's reads.
func (s *Store) Stats() cache.Stats {
	st, _ := s.g.m.Caches().Stats(s.cfg.Name)
	return st
}

// LinearizableGet reads key after a read marker committed through Raft
// was applied here: it sees every write acknowledged before the call.
func (s *Store) LinearizableGet(ctx context.Context, key string) ([]byte, time.Time, bool, error) {
	if err := s.g.barrier(ctx); err != nil {
		return nil, time.Time{}, false, fmt.Errorf("cache %q: linearizable get %q: %w", s.cfg.Name, key, err)
	}
	t := now()
	v, ok := s.g.m.Caches().Get(s.cfg.Name, key, t)
	if !ok {
		return nil, time.Time{}, false, nil
	}
	var exp time.Time
	if at, ok := s.g.m.Caches().Expires(s.cfg.Name, key, t); ok {
		exp = time.Unix(0, at)
	}
	return v, exp, true, nil
}

// LinearizableKeys lists the keys after a committed read marker.
func (s *Store) LinearizableKeys(ctx context.Context) ([]string, error) {
	if err := s.g.barrier(ctx); err != nil {
		return nil, fmt.Errorf("cache %q: linearizable keys: %w", s.cfg.Name, err)
	}
	return s.g.m.Caches().Keys(s.cfg.Name, now())
}

func (s *Store) put(ctx context.Context, kind cache.OpKind, key string, value []byte, expires time.Duration) error {
	if len(value) > MaxValue {
		return fmt.Errorf("cache %q: %s %q: value of %d bytes, replicated caches take at most %d: %w",
			s.cfg.Name, kind, key, len(value), MaxValue, cache.ErrTooLarge)
	}
	_, err := s.g.write(ctx, &raftv1.CacheOp{Kind: uint32(kind), Cache: s.cfg.Name, Key: key, Value: value, TtlNanos: int64(expires)})
	return err
}

// Set implements cache.Store (add-only).
func (s *Store) Set(key string, value []byte, expires time.Duration) error {
	return s.put(context.Background(), cache.OpSet, key, value, expires)
}

// Update implements cache.Store (upsert).
func (s *Store) Update(key string, value []byte, expires time.Duration) error {
	return s.put(context.Background(), cache.OpUpdate, key, value, expires)
}

// UpdateContext is Update bounded by ctx.
func (s *Store) UpdateContext(ctx context.Context, key string, value []byte, expires time.Duration) error {
	return s.put(ctx, cache.OpUpdate, key, value, expires)
}

// Del implements cache.Store.
func (s *Store) Del(key string) error {
	_, err := s.g.write(context.Background(), &raftv1.CacheOp{Kind: uint32(cache.OpDel), Cache: s.cfg.Name, Key: key})
	return err
}

// Clear implements cache.Store.
func (s *Store) Clear() error {
	_, err := s.g.write(context.Background(), &raftv1.CacheOp{Kind: uint32(cache.OpClear), Cache: s.cfg.Name})
	return err
}

// mathKinds maps math operations to their op kinds.
var mathKinds = map[cache.MathOp]cache.OpKind{
	cache.MathInc: cache.OpInc, cache.MathDec: cache.OpDec, cache.MathMul: cache.OpMul, cache.MathDiv: cache.OpDiv,
}

// Math implements cache.Store.
func (s *Store) Math(op cache.MathOp, key string, operand int64, expires time.Duration) (int64, error) {
	return s.MathContext(context.Background(), op, key, operand, expires)
}

// MathContext is Math bounded by ctx.
func (s *Store) MathContext(ctx context.Context, op cache.MathOp, key string, operand int64, expires time.Duration) (int64, error) {
	kind, ok := mathKinds[op]
	if !ok {
		return 0, fmt.Errorf("cache %q: %s %q: %w", s.cfg.Name, op, key, cache.ErrUnknownOp)
	}
	return s.g.write(ctx, &raftv1.CacheOp{Kind: uint32(kind), Cache: s.cfg.Name, Key: key, Operand: operand, TtlNanos: int64(expires)})
}
