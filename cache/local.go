package cache

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"sync"
	"time"
)

// Local is a node-local cache2 store with uWSGI semantics. It is safe for
// concurrent use: lookups share a read lock, writes take the write lock.
// A Get on a purge_lru cache takes the write lock too, because it moves
// the item in the LRU list (uWSGI does the same).
type Local struct {
	mu     sync.RWMutex
	e      *engine
	clock  func() time.Time
	logger *slog.Logger

	syncMu sync.Mutex // serialises store file writes
	synced uint64     // engine version last written to the store file
}

var _ Store = (*Local)(nil)

// NewLocal creates the cache described by cfg. clock supplies "now" for
// expiry (nil = time.Now); logger receives the full warnings (nil = slog.Default()).
// With cfg.Store set, the file's unexpired items are loaded; a file of
// another geometry, or a corrupt one, is an error unless cfg.StoreDelete,
// which deletes it and starts empty. A missing file is created at once so
// that an unwritable path fails at start, not at shutdown.
func NewLocal(cfg Config, clock func() time.Time, logger *slog.Logger) (*Local, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if clock == nil {
		clock = time.Now
	}
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "cache", "cache", cfg.Name)
	l := &Local{clock: clock, logger: logger, synced: math.MaxUint64}
	if cfg.Store != "" {
		e, err := l.load(cfg)
		if err != nil {
			return nil, err
		}
		l.e = e
	}
	if l.e == nil {
		l.e = newEngine(cfg, false, logger)
	}
	size, _ := cfg.arenaBytes()
	logger.Info(fmt.Sprintf("*** Cache %q initialized: %dMB (key: %d bytes, keys: %d bytes, data: %d bytes, bitmap: %d bytes) preallocated ***",
		cfg.Name, size>>20, cfg.KeySize, (cfg.Items-1)*cfg.KeySize, cfg.dataBlocks()*cfg.BlockSize, bitmapBytes(cfg)))
	if err := l.Sync(); err != nil {
		return nil, err
	}
	return l, nil
}

func bitmapBytes(cfg Config) int {
	if !cfg.Bitmap {
		return 0
	}
	return (cfg.Blocks + 7) / 8
}

// load reads cfg.Store; a nil engine and no error means there is no file
// (or it was deleted under store_delete).
func (l *Local) load(cfg Config) (*engine, error) {
	f, err := os.Open(cfg.Store)
	if errors.Is(err, fs.ErrNotExist) {
		l.logger.Info("creating a new cache store file", "path", cfg.Store)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache %q: open store %s: %w", cfg.Name, cfg.Store, err)
	}
	defer f.Close()
	e, err := decodeStore(f, cfg, l.logger, l.clock().UnixNano())
	switch {
	case err == nil:
		l.synced = 0
		l.logger.Info(fmt.Sprintf("recovered cache from backing store file: %s", cfg.Store), "items", e.count)
		return e, nil
	case cfg.StoreDelete && (errors.Is(err, ErrGeometry) || errors.Is(err, ErrCorrupt)):
		l.logger.Warn(fmt.Sprintf("Removing invalid cache store file: %s", cfg.Store), "reason", err.Error())
		if rerr := os.Remove(cfg.Store); rerr != nil {
			return nil, fmt.Errorf("cache %q: remove invalid store %s: %w", cfg.Name, cfg.Store, rerr)
		}
		return nil, nil
	default:
		return nil, fmt.Errorf("cache %q: load store %s (fix the file, remove it, or set store_delete): %w", cfg.Name, cfg.Store, err)
	}
}

func decodeStore(f *os.File, cfg Config, logger *slog.Logger, now int64) (*engine, error) {
	d, n, err := newDecoder(f, storeMagic)
	if err != nil {
		return nil, err
	}
	if n != 1 {
		return nil, corrupt("store file holds %d caches, want 1", n)
	}
	if _, err := d.sectionName(); err != nil {
		return nil, err
	}
	e, err := d.section(cfg, false, logger, now)
	if err != nil {
		return nil, err
	}
	return e, d.finish()
}

// Sync writes the cache to its store= file (atomically, by rename) if it
// changed since the last write. The owner calls it every cfg.StoreSync;
// Close calls it too. Without store= it does nothing.
func (l *Local) Sync() error {
	if l.e.cfg.Store == "" {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	// Encoding into memory keeps writers blocked only for a copy of the
	// used items, not for the disk write.
	var buf bytes.Buffer
	l.mu.RLock()
	version := l.e.version
	if version == l.synced {
		l.mu.RUnlock()
		return nil
	}
	en := newEncoder(&buf, storeMagic, 1)
	l.e.encode(en)
	err := en.finish()
	l.mu.RUnlock()
	if err == nil {
		err = writeFileAtomic(l.e.cfg.Store, buf.Bytes())
	}
	if err != nil {
		return fmt.Errorf("cache %q: sync store: %w", l.e.cfg.Name, err)
	}
	l.synced = version
	return nil
}

// Close flushes the store= file. The cache stays usable in memory.
func (l *Local) Close() error { return l.Sync() }

// Name returns the cache's name.
func (l *Local) Name() string { return l.e.cfg.Name }

// Config returns the cache's configuration.
func (l *Local) Config() Config { return l.e.cfg }

func (l *Local) now() int64 { return l.clock().UnixNano() }

// view runs fn on the item at key under the lock its policy needs and
// reports whether the item was there. bump moves it in the LRU list.
func (l *Local) view(key string, bump bool, fn func(i uint32)) bool {
	e := l.e
	if !(bump && e.cfg.PurgeLRU) {
		l.mu.RLock()
		i := e.lookup(key)
		if i == 0 || !e.lazy || !e.expired(i, l.now()) {
			if i != 0 {
				fn(i)
			}
			l.mu.RUnlock()
			return i != 0
		}
		// An expired item under lazy_expire is deleted: that needs the write lock.
		l.mu.RUnlock()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	i, _ := e.find(key, l.now())
	if i == 0 {
		return false
	}
	if bump {
		e.touch(i)
	}
	fn(i)
	return true
}

// Get returns a copy of the value. Expired items stay readable until a
// sweep removes them, unless lazy_expire is set.
func (l *Local) Get(key string) ([]byte, bool) {
	var v []byte
	ok := l.view(key, true, func(i uint32) { v = bytes.Clone(l.e.valueAt(i)) })
	if ok {
		l.e.hits.Add(1)
	} else {
		l.e.miss.Add(1)
	}
	return v, ok
}

// Exists reports whether key is present; it neither counts nor bumps the LRU.
func (l *Local) Exists(key string) bool {
	return l.view(key, false, func(uint32) {})
}

// Expires returns the item's absolute expiry, for the Expires header.
func (l *Local) Expires(key string) (time.Time, bool) {
	var at int64
	l.view(key, false, func(i uint32) { at = l.e.slots[i].expires })
	if at == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, at), true
}

// absolute turns a relative expiry into the stored absolute one.
func (l *Local) absolute(expires time.Duration, now int64) (int64, error) {
	switch {
	case expires < 0:
		return 0, fmt.Errorf("cache %q: expires %v: %w", l.e.cfg.Name, expires, ErrBadExpiry)
	case expires == 0:
		return 0, nil
	case int64(expires) > math.MaxInt64-now:
		return math.MaxInt64, nil // far enough in the future to mean "never"
	}
	return now + int64(expires), nil
}

func (l *Local) write(key string, value []byte, expires time.Duration, add bool) error {
	now := l.now()
	at, err := l.absolute(expires, now)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.e.write(key, value, at, now, add)
}

// Set adds key (uWSGI's add-only cache_set): ErrExists if it is present.
func (l *Local) Set(key string, value []byte, expires time.Duration) error {
	return l.write(key, value, expires, true)
}

// Update sets key, replacing any value and resetting the expiry.
func (l *Local) Update(key string, value []byte, expires time.Duration) error {
	return l.write(key, value, expires, false)
}

// Del removes key or returns ErrNotFound.
func (l *Local) Del(key string) error {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.e.del(key, now)
}

// Clear removes every item.
func (l *Local) Clear() error {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.e.clear(now)
	return nil
}

// Math applies op to the int64 at key; see Store.
func (l *Local) Math(op MathOp, key string, operand int64, expires time.Duration) (int64, error) {
	now := l.now()
	at, err := l.absolute(expires, now)
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.e.math(op, key, operand, at, now)
}

// Keys returns the keys, sorted; expired items are listed until swept,
// unless lazy_expire.
func (l *Local) Keys() []string {
	now := l.now()
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.e.liveKeys(now, l.e.lazy)
}

// Stats returns the cache's stats entry.
func (l *Local) Stats() Stats {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.e.stats()
}

// Sweep removes the items expired at now and returns how many; the master
// calls it every cache-expire-freq. A no_expire cache is never swept.
func (l *Local) Sweep(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.e.sweep(now.UnixNano())
}
