package cache

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Defaults of a cache2 line, as in uWSGI's uwsgi_cache_create.
const (
	DefaultBlockSize = 65536
	DefaultHashSize  = 65536
	DefaultKeySize   = 2048
	// DefaultName is the name the legacy `cache` option gives its cache.
	DefaultName = "default"
)

// Limits that keep indexes in 32 bits and the preallocation sane.
const (
	maxSlots      = 1 << 31
	maxKeySize    = 65535
	maxArenaBytes = 1 << 40
)

// Config is one parsed cache2 line. Zero values of the optional fields mean
// the uWSGI default; ParseConfig and LegacyConfig fill the defaults in.
type Config struct {
	// Name is unique; the first cache created is the default one.
	Name string
	// Items is the number of slots; slot 0 is reserved, so Items-1 are usable.
	Items int
	// BlockSize is the size of one block: the max value size unless Bitmap.
	BlockSize int
	// Blocks is the number of blocks (>= Items).
	Blocks int
	// Hash is HashDJB33X or HashMurmur2.
	Hash string
	// HashSize is the number of hash buckets.
	HashSize int
	// KeySize is the max key length in bytes (< 65536).
	KeySize int
	// Store is the persistence file ("" = none).
	Store string
	// StoreSync is how often the owner calls Local.Sync (0 = only on Close).
	StoreSync time.Duration
	// StoreDelete deletes an unusable store file instead of failing to start.
	StoreDelete bool
	// Bitmap spreads a value over contiguous blocks (max item = BlockSize*Blocks).
	Bitmap bool
	// LastMod maintains last_modified_at in stats.
	LastMod bool
	// MathInitial is the starting value of math ops on a missing key.
	MathInitial int64
	// IgnoreFull silences the "cache is FULL" warning.
	IgnoreFull bool
	// PurgeLRU evicts the least recently used item when the cache is full.
	PurgeLRU bool
	// LazyExpire deletes expired items when a lookup meets them.
	LazyExpire bool
	// SweepOnFull, when > 0, sweeps expired items on full, at most once per interval.
	SweepOnFull time.Duration
	// ClearOnFull wipes the cache on full when the sweep freed nothing.
	ClearOnFull bool
	// NoExpire disables sweeping for this cache.
	NoExpire bool
	// Replicate makes the cache a replicated (Raft) cache (gouwsgi key).
	Replicate bool
	// Linearizable makes reads of a replicated cache linearizable (gouwsgi key).
	Linearizable bool
	// Ignored lists the uWSGI keys that were accepted without effect (UDP
	// replication and startup sync); the caller warns about them, or fails
	// under `strict`.
	Ignored []string
}

// configKey describes one cache2 key: its canonical name and how to set it.
type configKey struct {
	name string
	set  func(c *Config, key, val string) error
}

// cacheKeys maps every accepted spelling (aliases included) to its setter.
var cacheKeys = func() map[string]configKey {
	keys := map[string]configKey{}
	add := func(set func(c *Config, key, val string) error, names ...string) {
		for _, n := range names {
			keys[n] = configKey{name: names[0], set: set}
		}
	}
	intKey := func(field func(c *Config) *int) func(*Config, string, string) error {
		return func(c *Config, key, val string) error {
			n, err := strconv.Atoi(val)
			if err != nil || n <= 0 {
				return fmt.Errorf("cache2 key %s=%q: want a positive integer", key, val)
			}
			*field(c) = n
			return nil
		}
	}
	boolKey := func(field func(c *Config) *bool) func(*Config, string, string) error {
		return func(c *Config, key, val string) error {
			b, err := parseFlag(val)
			if err != nil {
				return fmt.Errorf("cache2 key %s=%q: %w", key, val, err)
			}
			*field(c) = b
			return nil
		}
	}
	secondsKey := func(field func(c *Config) *time.Duration) func(*Config, string, string) error {
		return func(c *Config, key, val string) error {
			n, err := strconv.ParseInt(val, 10, 32)
			if err != nil || n < 0 {
				return fmt.Errorf("cache2 key %s=%q: want a number of seconds >= 0", key, val)
			}
			*field(c) = time.Duration(n) * time.Second
			return nil
		}
	}
	add(func(c *Config, key, val string) error {
		if val == "" {
			return fmt.Errorf("cache2 key %s: empty name", key)
		}
		c.Name = val
		return nil
	}, "name")
	add(intKey(func(c *Config) *int { return &c.Items }), "items", "max_items", "maxitems")
	add(intKey(func(c *Config) *int { return &c.BlockSize }), "blocksize")
	add(intKey(func(c *Config) *int { return &c.Blocks }), "blocks")
	add(intKey(func(c *Config) *int { return &c.HashSize }), "hashsize", "hash_size")
	add(intKey(func(c *Config) *int { return &c.KeySize }), "keysize", "key_size")
	add(func(c *Config, key, val string) error {
		if _, ok := hashByName(val); !ok {
			return fmt.Errorf("cache2 key %s=%q: want %s or %s", key, val, HashDJB33X, HashMurmur2)
		}
		c.Hash = val
		return nil
	}, "hash")
	add(func(c *Config, key, val string) error {
		if val == "" {
			return fmt.Errorf("cache2 key %s: empty path", key)
		}
		c.Store = val
		return nil
	}, "store")
	add(secondsKey(func(c *Config) *time.Duration { return &c.StoreSync }), "store_sync", "storesync")
	add(secondsKey(func(c *Config) *time.Duration { return &c.SweepOnFull }), "sweep_on_full")
	add(boolKey(func(c *Config) *bool { return &c.StoreDelete }), "store_delete", "storedelete")
	add(boolKey(func(c *Config) *bool { return &c.Bitmap }), "bitmap")
	add(boolKey(func(c *Config) *bool { return &c.LastMod }), "lastmod")
	add(boolKey(func(c *Config) *bool { return &c.IgnoreFull }), "ignore_full")
	add(boolKey(func(c *Config) *bool { return &c.PurgeLRU }), "purge_lru", "lru")
	add(boolKey(func(c *Config) *bool { return &c.LazyExpire }), "lazy_expire", "lazy")
	add(boolKey(func(c *Config) *bool { return &c.ClearOnFull }), "clear_on_full")
	add(boolKey(func(c *Config) *bool { return &c.NoExpire }), "no_expire")
	add(boolKey(func(c *Config) *bool { return &c.Replicate }), "replicate")
	add(boolKey(func(c *Config) *bool { return &c.Linearizable }), "linearizable")
	add(func(c *Config, key, val string) error {
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return fmt.Errorf("cache2 key %s=%q: want a 64-bit integer", key, val)
		}
		c.MathInitial = n
		return nil
	}, "math_initial")
	// uWSGI's UDP replication and startup sync are replaced by replicate=1;
	// the keys are accepted so existing ini files still start.
	add(func(c *Config, key, _ string) error {
		c.Ignored = append(c.Ignored, key)
		return nil
	}, "node", "nodes", "sync", "udp", "udp_servers", "udp_server", "udpservers", "udpserver")
	return keys
}()

// parseFlag reads a boolean key; a bare key (empty value) means on.
// Unlike uWSGI, where any value (even "0") turns a flag on, "0" means off.
func parseFlag(val string) (bool, error) {
	switch strings.ToLower(val) {
	case "", "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("want 1/0, true/false, yes/no or on/off")
}

// ParseConfig parses a cache2 option value ("name=foo,items=100,...").
// Keys and aliases are uWSGI's (§2.1) plus gouwsgi's replicate and
// linearizable; an unknown key, a bad value, or a missing name or items is
// an error naming the key.
func ParseConfig(line string) (Config, error) {
	var c Config
	seenItems := false
	for _, part := range strings.Split(line, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, val, _ := strings.Cut(part, "=")
		key = strings.TrimSpace(key)
		ck, ok := cacheKeys[key]
		if !ok {
			return Config{}, fmt.Errorf("cache2 %q: unknown key %q", line, key)
		}
		if err := ck.set(&c, key, strings.TrimSpace(val)); err != nil {
			return Config{}, err
		}
		if ck.name == "items" {
			seenItems = true
		}
	}
	if c.Name == "" {
		return Config{}, fmt.Errorf("cache2 %q: missing name=", line)
	}
	if !seenItems {
		return Config{}, fmt.Errorf("cache2 %q: missing items= (or max_items=)", line)
	}
	c.fillDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// LegacyConfig builds the cache created by the old `cache`, `cache-blocksize`
// and `cache-store` options: a cache named "default" with items slots.
// A blocksize of 0 means the default; the result still needs Validate.
func LegacyConfig(items int, blocksize int, store string) Config {
	c := Config{Name: DefaultName, Items: items, BlockSize: blocksize, Store: store}
	c.fillDefaults()
	return c
}

func (c *Config) fillDefaults() {
	if c.BlockSize == 0 {
		c.BlockSize = DefaultBlockSize
	}
	if c.Blocks == 0 {
		c.Blocks = c.Items
	}
	if c.Hash == "" {
		c.Hash = HashDJB33X
	}
	if c.HashSize == 0 {
		c.HashSize = DefaultHashSize
	}
	if c.KeySize == 0 {
		c.KeySize = DefaultKeySize
	}
}

// Validate checks the geometry and cross-key rules; messages name the key.
func (c Config) Validate() error {
	prefix := fmt.Sprintf("cache %q", c.Name)
	switch {
	case c.Name == "":
		return fmt.Errorf("cache: empty name")
	case c.Items < 2:
		return fmt.Errorf("%s: items=%d: want at least 2 (slot 0 is reserved)", prefix, c.Items)
	case c.Items >= maxSlots:
		return fmt.Errorf("%s: items=%d: want less than %d", prefix, c.Items, maxSlots)
	case c.BlockSize < 1:
		return fmt.Errorf("%s: blocksize=%d: want a positive size", prefix, c.BlockSize)
	case c.Blocks < c.Items:
		return fmt.Errorf("%s: blocks=%d: must be at least items (%d)", prefix, c.Blocks, c.Items)
	case c.Blocks >= maxSlots:
		return fmt.Errorf("%s: blocks=%d: want less than %d", prefix, c.Blocks, maxSlots)
	case c.HashSize < 1 || c.HashSize >= maxSlots:
		return fmt.Errorf("%s: hashsize=%d: want 1..%d", prefix, c.HashSize, maxSlots-1)
	case c.KeySize < 1 || c.KeySize > maxKeySize:
		return fmt.Errorf("%s: keysize=%d: want 1..%d", prefix, c.KeySize, maxKeySize)
	case c.StoreSync < 0 || c.SweepOnFull < 0:
		return fmt.Errorf("%s: store_sync and sweep_on_full must not be negative", prefix)
	case c.Linearizable && !c.Replicate:
		return fmt.Errorf("%s: linearizable=1 needs replicate=1", prefix)
	case c.Replicate && c.Store != "":
		return fmt.Errorf("%s: store= cannot be used with replicate=1 (Raft snapshots persist replicated caches)", prefix)
	}
	if _, ok := hashByName(c.Hash); !ok {
		return fmt.Errorf("%s: hash=%q: want %s or %s", prefix, c.Hash, HashDJB33X, HashMurmur2)
	}
	if n, ok := c.arenaBytes(); !ok {
		return fmt.Errorf("%s: items=%d, keysize=%d, blocks=%d, blocksize=%d need more than %d bytes",
			prefix, c.Items, c.KeySize, c.dataBlocks(), c.BlockSize, uint64(maxArenaBytes))
	} else if n == 0 {
		return fmt.Errorf("%s: empty geometry", prefix)
	}
	return nil
}

// dataBlocks is how many blocks the data arena needs: without bitmap every
// usable slot owns exactly one block, so blocks beyond items-1 are never used.
func (c Config) dataBlocks() int {
	if c.Bitmap {
		return c.Blocks
	}
	return c.Items - 1
}

// maxItemSize is the largest value the cache accepts.
func (c Config) maxItemSize() int {
	if c.Bitmap {
		return c.BlockSize * c.Blocks
	}
	return c.BlockSize
}

// arenaBytes is the preallocated memory for keys and values; ok is false on
// overflow or above maxArenaBytes.
func (c Config) arenaBytes() (uint64, bool) {
	keys := uint64(c.Items-1) * uint64(c.KeySize)
	if uint64(c.dataBlocks()) > maxArenaBytes/uint64(c.BlockSize) {
		return 0, false
	}
	data := uint64(c.dataBlocks()) * uint64(c.BlockSize)
	total := keys + data
	return total, total <= maxArenaBytes
}
