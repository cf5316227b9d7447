// Package bind connects the admin API's consumer interfaces (rpc/admin) to
// the parts of a running node: its master and workers, its caches (local
// and replicated), its alarms and its legion. It only translates types and
// errors; the behaviour lives in those parts.
package bind

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gouwsgi/gouwsgi/cache"
	"github.com/gouwsgi/gouwsgi/legion"
	"github.com/gouwsgi/gouwsgi/node"
	"github.com/gouwsgi/gouwsgi/rpc/admin"
)

// Node adapts a node to admin.Node.
type Node struct {
	N      *node.Node
	NodeID string
}

// Stats implements admin.Node.
func (b Node) Stats(context.Context) (admin.Stats, error) {
	st := b.N.Stats()
	out := admin.Stats{
		Version: st.Version, NodeID: b.NodeID, ListenQueue: uint64(st.ListenQueue),
		ListenQueueErrors: uint64(st.ListenQueueErrors), SignalQueue: uint64(st.SignalQueue), Load: uint64(st.Load),
		PID: st.PID, UID: st.UID, GID: st.GID, Cwd: st.CWD,
	}
	for _, w := range st.Workers {
		out.Workers = append(out.Workers, admin.Worker{
			ID: w.ID, PID: w.PID, Accepting: w.Accepting == 1, Requests: uint64(w.Requests),
			DeltaRequests: uint64(w.DeltaRequests), Exceptions: uint64(w.Exceptions), HarakiriCount: uint64(w.HarakiriCount),
			Signals: uint64(w.Signals), SignalQueue: uint64(w.SignalQueue), Status: w.Status, RSS: w.RSS, VSZ: w.VSZ,
			RunningTime: time.Duration(w.RunningTime) * time.Microsecond, LastSpawn: unixOrZero(w.LastSpawn),
			RespawnCount: uint64(w.RespawnCount), TX: uint64(w.TX), AvgRT: time.Duration(w.AvgRT) * time.Microsecond,
		})
	}
	for _, s := range st.Sockets {
		out.Sockets = append(out.Sockets, admin.Socket{Name: s.Name, Proto: s.Proto, Queue: uint64(s.Queue), MaxQueue: uint64(s.MaxQueue), Shared: s.Shared != 0, CanOffload: s.CanOffload != 0})
	}
	for _, c := range b.N.Caches().All() {
		out.Caches = append(out.Caches, cacheStats(c))
	}
	return out, nil
}

func unixOrZero(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}

// Reload implements admin.Node.
func (b Node) Reload(ctx context.Context, chain bool) error {
	return b.N.Pool().Reload(ctx, chain)
}

// Scale implements admin.Node: it asks the master for delta more (or
// fewer) workers, within cheaper..processes, and reports how many the
// master now wants running.
func (b Node) Scale(ctx context.Context, delta int) (int, error) {
	if delta == 0 {
		return 0, fmt.Errorf("scale by 0 workers: %w", admin.ErrInvalidArgument)
	}
	n, err := b.N.Pool().ScaleWait(ctx, delta)
	if err != nil {
		return n, fmt.Errorf("%w: %w", err, admin.ErrFailedPrecondition)
	}
	return n, nil
}

// Replicated is implemented by caches whose reads can be linearizable
// (the legion's replicated caches).
type Replicated interface {
	cache.Store
	LinearizableGet(ctx context.Context, key string) ([]byte, time.Time, bool, error)
	LinearizableKeys(ctx context.Context) ([]string, error)
}

// Caches adapts a cache registry to admin.Caches.
type Caches struct{ Reg *cache.Registry }

func (b Caches) store(name string) (cache.Store, error) {
	s, ok := b.Reg.Get(name)
	if !ok {
		if name == "" {
			return nil, fmt.Errorf("this node has no cache (add a cache2 option): %w", admin.ErrNotFound)
		}
		return nil, fmt.Errorf("no cache named %q: %w", name, admin.ErrNotFound)
	}
	return s, nil
}

// Get implements admin.Caches.
func (b Caches) Get(ctx context.Context, name, key string, linearizable bool) (admin.Item, error) {
	s, err := b.store(name)
	if err != nil {
		return admin.Item{}, err
	}
	if linearizable {
		r, ok := s.(Replicated)
		if !ok {
			return admin.Item{}, fmt.Errorf("cache %q is local: linearizable reads need a replicated cache: %w", s.Name(), admin.ErrFailedPrecondition)
		}
		v, exp, found, err := r.LinearizableGet(ctx, key)
		if err != nil {
			return admin.Item{}, cacheErr(err)
		}
		if !found {
			return admin.Item{}, fmt.Errorf("key %q not in cache %q: %w", key, s.Name(), admin.ErrNotFound)
		}
		return admin.Item{Value: v, ExpiresAt: exp}, nil
	}
	v, ok := s.Get(key)
	if !ok {
		return admin.Item{}, fmt.Errorf("key %q not in cache %q: %w", key, s.Name(), admin.ErrNotFound)
	}
	exp, _ := s.Expires(key)
	return admin.Item{Value: v, ExpiresAt: exp}, nil
}

// Set implements admin.Caches.
func (b Caches) Set(_ context.Context, name, key string, value []byte, ttl time.Duration, mode admin.SetMode) error {
	s, err := b.store(name)
	if err != nil {
		return err
	}
	if mode == admin.SetModeSet {
		err = s.Set(key, value, ttl)
	} else {
		err = s.Update(key, value, ttl)
	}
	return cacheErr(err)
}

// Delete implements admin.Caches.
func (b Caches) Delete(_ context.Context, name, key string) error {
	s, err := b.store(name)
	if err != nil {
		return err
	}
	return cacheErr(s.Del(key))
}

// Keys implements admin.Caches.
func (b Caches) Keys(ctx context.Context, name string, linearizable bool) ([]string, error) {
	s, err := b.store(name)
	if err != nil {
		return nil, err
	}
	if linearizable {
		r, ok := s.(Replicated)
		if !ok {
			return nil, fmt.Errorf("cache %q is local: linearizable reads need a replicated cache: %w", s.Name(), admin.ErrFailedPrecondition)
		}
		keys, err := r.LinearizableKeys(ctx)
		return keys, cacheErr(err)
	}
	return s.Keys(), nil
}

// Stats implements admin.Caches.
func (b Caches) Stats(_ context.Context, name string) ([]admin.CacheStats, error) {
	if name == "" {
		var out []admin.CacheStats
		for _, s := range b.Reg.All() {
			out = append(out, cacheStats(s))
		}
		return out, nil
	}
	s, err := b.store(name)
	if err != nil {
		return nil, err
	}
	return []admin.CacheStats{cacheStats(s)}, nil
}

// Clear implements admin.Caches.
func (b Caches) Clear(_ context.Context, name string) error {
	s, err := b.store(name)
	if err != nil {
		return err
	}
	return cacheErr(s.Clear())
}

func cacheStats(s cache.Store) admin.CacheStats {
	st := s.Stats()
	_, replicated := s.(Replicated)
	return admin.CacheStats{
		Name: st.Name, Hash: st.Hash, HashSize: st.HashSize, KeySize: st.KeySize, MaxItems: st.MaxItems,
		Blocks: st.Blocks, BlockSize: st.BlockSize, Items: st.Items, Hits: st.Hits, Miss: st.Miss, Full: st.Full,
		LastModifiedAt: unixOrZero(st.LastModifiedAt), Replicated: replicated,
	}
}

// cacheErr maps cache errors onto the admin API's classes.
func cacheErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cache.ErrNotFound):
		return fmt.Errorf("%w: %w", err, admin.ErrNotFound)
	case errors.Is(err, cache.ErrExists):
		return fmt.Errorf("%w: %w", err, admin.ErrExists)
	case errors.Is(err, cache.ErrTooLarge), errors.Is(err, cache.ErrKeyTooLong), errors.Is(err, cache.ErrEmptyKey),
		errors.Is(err, cache.ErrEmptyValue), errors.Is(err, cache.ErrNotNumber), errors.Is(err, cache.ErrBadExpiry):
		return fmt.Errorf("%w: %w", err, admin.ErrInvalidArgument)
	case errors.Is(err, cache.ErrFull):
		return fmt.Errorf("%w: %w", err, admin.ErrFailedPrecondition)
	case errors.Is(err, legion.ErrNoQuorum), errors.Is(err, legion.ErrNotRunning):
		// A replicated cache cannot commit the write now: retry later.
		return fmt.Errorf("%w: %w", err, admin.ErrUnavailable)
	}
	return err
}
