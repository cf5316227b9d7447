package cache

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func openStore(t *testing.T, line string, clock *fakeClock) (*Local, error) {
	t.Helper()
	logger, _ := newLogCapture(t)
	return NewLocal(mustParse(t, line), clock.Now, logger)
}

func TestStoreRestart(t *testing.T) {
	for name, extra := range map[string]string{"plain": "", "bitmap": ",bitmap=1,blocks=20", "lru": ",purge_lru=1"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.store")
			line := "name=p,items=6,blocksize=8,keysize=8,store=" + path + extra
			clock := newFakeClock()
			l, err := openStore(t, line, clock)
			mustDo(t, err)
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("store file not created at start: %v", err)
			}
			mustDo(t, l.Set("keep", []byte("forever"), 0))
			mustDo(t, l.Set("later", []byte("v"), time.Hour))
			mustDo(t, l.Set("soon", []byte("v"), time.Second))
			if _, err := l.Math(MathInc, "n", 41, 0); err != nil {
				t.Fatal(err)
			}
			l.Get("keep") // LRU order: later, soon, n, keep
			later, _ := l.Expires("later")
			mustDo(t, l.Close())

			clock.Advance(2 * time.Second)
			l2, err := openStore(t, line, clock)
			mustDo(t, err)
			if got := l2.Keys(); !slices.Equal(got, []string{"keep", "later", "n"}) {
				t.Fatalf("keys after restart = %q", got)
			}
			if v, _ := l2.Get("keep"); string(v) != "forever" {
				t.Fatalf("keep = %q", v)
			}
			if at, ok := l2.Expires("later"); !ok || !at.Equal(later) {
				t.Fatalf("absolute expiry not kept: %v, want %v", at, later)
			}
			if n, _ := l2.Math(MathInc, "n", 1, 0); n != 42 {
				t.Fatalf("counter after restart = %d", n)
			}
			checkInvariants(t, l2.e)
			if l2.e.cfg.PurgeLRU {
				// LRU order survived: filling up evicts "later" first.
				mustDo(t, l2.Set("x", []byte("1"), 0))
				mustDo(t, l2.Set("y", []byte("1"), 0))
				mustDo(t, l2.Set("z", []byte("1"), 0))
				if l2.Exists("later") || !l2.Exists("keep") {
					t.Fatalf("LRU order lost across restart: %q", l2.Keys())
				}
			}
		})
	}
}

func TestStoreSync(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.store")
	clock := newFakeClock()
	l, err := openStore(t, "name=p,items=4,blocksize=8,store="+path, clock)
	mustDo(t, err)
	mustDo(t, l.Set("a", []byte("1"), 0))
	mustDo(t, l.Sync())
	before, _ := os.Stat(path)
	mustDo(t, l.Sync()) // unchanged: no rewrite
	after, _ := os.Stat(path)
	if !os.SameFile(before, after) {
		t.Fatal("Sync rewrote an unchanged store")
	}
	mustDo(t, l.Set("b", []byte("2"), 0))
	mustDo(t, l.Sync())
	after, _ = os.Stat(path)
	if os.SameFile(before, after) {
		t.Fatal("Sync did not replace the file by rename")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
	// A crash after Sync (no Close) still finds the synced items.
	l2, err := openStore(t, "name=p,items=4,blocksize=8,store="+path, clock)
	mustDo(t, err)
	if got := l2.Keys(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("keys = %q", got)
	}
}

func TestStoreErrors(t *testing.T) {
	write := func(t *testing.T, path string) {
		t.Helper()
		l, err := openStore(t, "name=p,items=4,blocksize=8,store="+path, newFakeClock())
		mustDo(t, err)
		mustDo(t, l.Set("a", []byte("1"), 0))
		mustDo(t, l.Close())
	}
	tests := []struct {
		name    string
		damage  func(t *testing.T, path string)
		line    string
		wantErr error
		wantMsg string
	}{
		{
			name:    "geometry mismatch names both",
			line:    "name=p,items=8,blocksize=8",
			wantErr: ErrGeometry,
			wantMsg: "data has items=4,blocks=4,blocksize=8,keysize=2048,bitmap=false, cache \"p\" is configured with items=8,blocks=8",
		},
		{
			name:    "flipped byte",
			damage:  func(t *testing.T, path string) { flipByte(t, path, -6) },
			line:    "name=p,items=4,blocksize=8",
			wantErr: ErrCorrupt,
			wantMsg: "checksum",
		},
		{
			name: "truncated",
			damage: func(t *testing.T, path string) {
				b, _ := os.ReadFile(path)
				mustDo(t, os.WriteFile(path, b[:len(b)-3], 0o600))
			},
			line:    "name=p,items=4,blocksize=8",
			wantErr: ErrCorrupt,
		},
		{
			name: "not a store file",
			damage: func(t *testing.T, path string) {
				mustDo(t, os.WriteFile(path, []byte("hello, this is not a cache"), 0o600))
			},
			line:    "name=p,items=4,blocksize=8",
			wantErr: ErrCorrupt,
			wantMsg: "bad magic",
		},
		{
			name:    "future version",
			damage:  func(t *testing.T, path string) { flipByte(t, path, 11) },
			line:    "name=p,items=4,blocksize=8",
			wantErr: ErrCorrupt,
			wantMsg: "unsupported format version",
		},
		{
			name:    "empty file",
			damage:  func(t *testing.T, path string) { mustDo(t, os.WriteFile(path, nil, 0o600)) },
			line:    "name=p,items=4,blocksize=8",
			wantErr: ErrCorrupt,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.store")
			write(t, path)
			if tc.damage != nil {
				tc.damage(t, path)
			}
			_, err := openStore(t, tc.line+",store="+path, newFakeClock())
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) || !strings.Contains(err.Error(), path) {
				t.Fatalf("NewLocal = %v, want %v mentioning %q and the path", err, tc.wantErr, tc.wantMsg)
			}
			// store_delete removes the unusable file and starts empty.
			l, err := openStore(t, tc.line+",store_delete=1,store="+path, newFakeClock())
			mustDo(t, err)
			if len(l.Keys()) != 0 {
				t.Fatalf("store_delete kept items: %q", l.Keys())
			}
			mustDo(t, l.Set("fresh", []byte("1"), 0))
			mustDo(t, l.Close())
			l, err = openStore(t, tc.line+",store="+path, newFakeClock())
			mustDo(t, err)
			if !l.Exists("fresh") {
				t.Fatal("new store file not written after store_delete")
			}
		})
	}
}

func TestStoreUnwritable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing-dir", "c.store")
	_, err := openStore(t, "name=p,items=4,blocksize=8,store="+path, newFakeClock())
	if err == nil || !strings.Contains(err.Error(), "missing-dir") {
		t.Fatalf("NewLocal with an unwritable store = %v", err)
	}
}

func flipByte(t *testing.T, path string, at int) {
	t.Helper()
	b, err := os.ReadFile(path)
	mustDo(t, err)
	if at < 0 {
		at += len(b)
	}
	b[at] ^= 0x40
	mustDo(t, os.WriteFile(path, b, 0o600))
}
