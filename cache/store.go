package cache

import (
	"fmt"
	"sync"
	"time"
)

// Store is one named cache as routes, the Python API, stats and the admin
// API see it. A Local implements it; so does legion's replicated store,
// which sends writes through Raft and reads a Machine.
type Store interface {
	// Name is the cache's name.
	Name() string
	// Get returns a copy of the value, counting a hit or a miss.
	Get(key string) ([]byte, bool)
	// Exists reports whether key is present, without counting or LRU effects.
	Exists(key string) bool
	// Set adds key; it fails with ErrExists when key is present (uWSGI's
	// add-only cache_set). expires 0 means never.
	Set(key string, value []byte, expires time.Duration) error
	// Update sets key whether or not it exists and resets its expiry.
	Update(key string, value []byte, expires time.Duration) error
	// Del removes key or fails with ErrNotFound.
	Del(key string) error
	// Clear removes every item.
	Clear() error
	// Math applies op with operand to the int64 at key and returns the new
	// value; a missing key starts at math_initial and gets expires.
	Math(op MathOp, key string, operand int64, expires time.Duration) (int64, error)
	// Keys lists the keys, sorted.
	Keys() []string
	// Stats returns the cache's stats entry.
	Stats() Stats
	// Expires returns the item's absolute expiry; false when the key is
	// absent or never expires.
	Expires(key string) (time.Time, bool)
}

// Registry holds the named caches of a node. The first cache added is the
// default one, which the empty name resolves to. It is safe for concurrent use.
type Registry struct {
	mu     sync.RWMutex
	order  []Store
	byName map[string]Store
}

// Add registers s; its name must be non-empty and unique.
func (r *Registry) Add(s Store) error {
	name := s.Name()
	if name == "" {
		return fmt.Errorf("register cache: empty name")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.byName[name]; dup {
		return fmt.Errorf("register cache %q: a cache with that name already exists", name)
	}
	if r.byName == nil {
		r.byName = map[string]Store{}
	}
	r.byName[name] = s
	r.order = append(r.order, s)
	return nil
}

// Get returns the cache called name, or the default cache for "".
func (r *Registry) Get(name string) (Store, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if name == "" {
		if len(r.order) == 0 {
			return nil, false
		}
		return r.order[0], true
	}
	s, ok := r.byName[name]
	return s, ok
}

// All returns the caches in the order they were added.
func (r *Registry) All() []Store {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]Store(nil), r.order...)
}
