package cache

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		line string
		want Config
	}{
		{
			line: "name=mycache,items=300,hash=murmur2",
			want: Config{Name: "mycache", Items: 300, BlockSize: 65536, Blocks: 300, Hash: "murmur2", HashSize: 65536, KeySize: 2048},
		},
		{
			line: "name=b,max_items=10,blocksize=64,blocks=100,bitmap=1,hash_size=16,key_size=32,math_initial=-5",
			want: Config{Name: "b", Items: 10, BlockSize: 64, Blocks: 100, Bitmap: true, Hash: "djb33x", HashSize: 16, KeySize: 32, MathInitial: -5},
		},
		{
			line: "name=s, maxitems=4, store=/tmp/x.cache, storesync=5, storedelete, lru, lazy, sweep_on_full=2, clear_on_full, no_expire, ignore_full, lastmod",
			want: Config{Name: "s", Items: 4, BlockSize: 65536, Blocks: 4, Hash: "djb33x", HashSize: 65536, KeySize: 2048,
				Store: "/tmp/x.cache", StoreSync: 5 * time.Second, StoreDelete: true, PurgeLRU: true, LazyExpire: true,
				SweepOnFull: 2 * time.Second, ClearOnFull: true, NoExpire: true, IgnoreFull: true, LastMod: true},
		},
		{
			line: "name=r,items=8,purge_lru=1,lazy_expire=true,store_sync=0,replicate=1,linearizable=yes,bitmap=0",
			want: Config{Name: "r", Items: 8, BlockSize: 65536, Blocks: 8, Hash: "djb33x", HashSize: 65536, KeySize: 2048,
				PurgeLRU: true, LazyExpire: true, Replicate: true, Linearizable: true},
		},
		{
			line: "name=u,items=8,nodes=127.0.0.1:4242;127.0.0.1:4243,udp=127.0.0.1:4242,sync=127.0.0.1:3031",
			want: Config{Name: "u", Items: 8, BlockSize: 65536, Blocks: 8, Hash: "djb33x", HashSize: 65536, KeySize: 2048,
				Ignored: []string{"nodes", "udp", "sync"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			got, err := ParseConfig(tc.line)
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		line, wantErr string
	}{
		{"items=10", "missing name"},
		{"name=x", "missing items"},
		{"name=x,items=10,colour=red", `unknown key "colour"`},
		{"name=x,items=ten", `items="ten"`},
		{"name=x,items=0", `items="0"`},
		{"name=x,items=1", "items=1: want at least 2"},
		{"name=x,items=10,blocks=5", "blocks=5: must be at least items (10)"},
		{"name=x,items=10,hash=md5", `hash="md5"`},
		{"name=x,items=10,keysize=70000", "keysize=70000"},
		{"name=x,items=10,blocksize=-1", `blocksize="-1"`},
		{"name=x,items=10,lru=maybe", `lru="maybe"`},
		{"name=x,items=10,sweep_on_full=soon", `sweep_on_full="soon"`},
		{"name=x,items=10,math_initial=1.5", `math_initial="1.5"`},
		{"name=x,items=10,linearizable=1", "linearizable=1 needs replicate=1"},
		{"name=x,items=10,replicate=1,store=/tmp/f", "store= cannot be used with replicate=1"},
		{"name=x,items=1000000,blocksize=10000000", "need more than"},
		{"name=,items=3", "empty name"},
		{"name=x,items=3,store=", "empty path"},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			_, err := ParseConfig(tc.line)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseConfig(%q) = %v, want error containing %q", tc.line, err, tc.wantErr)
			}
		})
	}
}

func TestLegacyConfig(t *testing.T) {
	tests := []struct {
		name            string
		items, bs       int
		store           string
		wantBS, wantBlk int
	}{
		{"defaults", 100, 0, "", 65536, 100},
		{"blocksize and store", 50, 4096, "/var/cache.db", 4096, 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := LegacyConfig(tc.items, tc.bs, tc.store)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			if c.Name != "default" || c.Items != tc.items || c.BlockSize != tc.wantBS || c.Blocks != tc.wantBlk ||
				c.Store != tc.store || c.Hash != HashDJB33X || c.KeySize != 2048 || c.HashSize != 65536 {
				t.Fatalf("LegacyConfig = %+v", c)
			}
		})
	}
}

func TestHashes(t *testing.T) {
	// Expected values come from uWSGI's core/hash.c compiled with gcc on amd64.
	keys := []string{"", "a", "ab", "abc", "abcd", "hello world", "GET/feedback?x=1", "été", "\xff\xfe\xfd", "abcd\x80"}
	want := [][2]uint32{
		{0x00001505, 0x00000000}, {0x0002b5c4, 0x92685f5e}, {0x00596e26, 0x1aa14063}, {0x0b873285, 0x13577c9b},
		{0x7c6d8341, 0x26873021}, {0xf8c65345, 0xdf0ed166}, {0xdd7e595e, 0x35637e16}, {0x070d6611, 0x0999862b},
		{0xf4794919, 0xe3203b2b}, {0xf5e214e1, 0x0944ef56},
	}
	for i, k := range keys {
		t.Run(k, func(t *testing.T) {
			if got := djb33x(k); got != want[i][0] {
				t.Errorf("djb33x(%q) = %#08x, want %#08x", k, got, want[i][0])
			}
			if got := murmur2(k); got != want[i][1] {
				t.Errorf("murmur2(%q) = %#08x, want %#08x", k, got, want[i][1])
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Name: "v", Items: 4, BlockSize: 8, Blocks: 4, Hash: HashDJB33X, HashSize: 4, KeySize: 8}
	tests := []struct {
		name    string
		edit    func(c *Config)
		wantErr string
	}{
		{"valid", func(*Config) {}, ""},
		{"no name", func(c *Config) { c.Name = "" }, "empty name"},
		{"too many items", func(c *Config) { c.Items, c.Blocks = maxSlots, maxSlots }, "want less than"},
		{"zero blocksize", func(c *Config) { c.BlockSize = 0 }, "blocksize=0"},
		{"too many blocks", func(c *Config) { c.Blocks = maxSlots }, "blocks=2147483648"},
		{"zero hashsize", func(c *Config) { c.HashSize = 0 }, "hashsize=0"},
		{"zero keysize", func(c *Config) { c.KeySize = 0 }, "keysize=0"},
		{"negative store_sync", func(c *Config) { c.StoreSync = -1 }, "must not be negative"},
		{"unknown hash", func(c *Config) { c.Hash = "crc" }, `hash="crc"`},
		{"bitmap too big", func(c *Config) { c.Bitmap, c.Blocks, c.BlockSize = true, 1<<30, 1<<20 }, "need more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
