package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const small = "name=t,items=5,blocksize=16,hashsize=4,keysize=8"

// step is one call on a Store and what it must return.
type step struct {
	op      string // set, update, del, get, exists, clear, math
	key     string
	val     string
	expires time.Duration
	mathOp  MathOp
	operand int64
	wantErr error
	wantVal string // for get: "" means miss
	wantNum int64  // for math
	wantOK  bool   // for exists
}

func runSteps(t *testing.T, s Store, steps []step) {
	t.Helper()
	for n, st := range steps {
		var err error
		switch st.op {
		case "set":
			err = s.Set(st.key, []byte(st.val), st.expires)
		case "update":
			err = s.Update(st.key, []byte(st.val), st.expires)
		case "del":
			err = s.Del(st.key)
		case "clear":
			err = s.Clear()
		case "get":
			v, ok := s.Get(st.key)
			if ok != (st.wantVal != "") || string(v) != st.wantVal {
				t.Fatalf("step %d: Get(%q) = %q, %v; want %q", n, st.key, v, ok, st.wantVal)
			}
		case "exists":
			if got := s.Exists(st.key); got != st.wantOK {
				t.Fatalf("step %d: Exists(%q) = %v, want %v", n, st.key, got, st.wantOK)
			}
		case "math":
			var v int64
			v, err = s.Math(st.mathOp, st.key, st.operand, st.expires)
			if err == nil && v != st.wantNum {
				t.Fatalf("step %d: Math(%s, %q, %d) = %d, want %d", n, st.mathOp, st.key, st.operand, v, st.wantNum)
			}
		default:
			t.Fatalf("step %d: unknown op %q", n, st.op)
		}
		if !errors.Is(err, st.wantErr) {
			t.Fatalf("step %d: %s(%q) error = %v, want %v", n, st.op, st.key, err, st.wantErr)
		}
	}
}

func TestLocalBasics(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"set is add-only", []step{
			{op: "set", key: "k", val: "v1"},
			{op: "set", key: "k", val: "v2", wantErr: ErrExists},
			{op: "get", key: "k", wantVal: "v1"},
		}},
		{"update upserts", []step{
			{op: "update", key: "k", val: "v1"},
			{op: "update", key: "k", val: "longer-v2"},
			{op: "get", key: "k", wantVal: "longer-v2"},
			{op: "update", key: "k", val: "v3"},
			{op: "get", key: "k", wantVal: "v3"},
		}},
		{"del", []step{
			{op: "del", key: "k", wantErr: ErrNotFound},
			{op: "set", key: "k", val: "v"},
			{op: "del", key: "k"},
			{op: "get", key: "k"},
			{op: "del", key: "k", wantErr: ErrNotFound},
			{op: "set", key: "k", val: "again"},
			{op: "get", key: "k", wantVal: "again"},
		}},
		{"exists", []step{
			{op: "exists", key: "k", wantOK: false},
			{op: "set", key: "k", val: "v"},
			{op: "exists", key: "k", wantOK: true},
		}},
		{"clear", []step{
			{op: "set", key: "a", val: "1"},
			{op: "set", key: "b", val: "2"},
			{op: "clear"},
			{op: "get", key: "a"},
			{op: "exists", key: "b", wantOK: false},
			{op: "set", key: "a", val: "3"},
			{op: "get", key: "a", wantVal: "3"},
		}},
		{"bad input", []step{
			{op: "set", key: "", val: "v", wantErr: ErrEmptyKey},
			{op: "update", key: "k", val: "", wantErr: ErrEmptyValue},
			{op: "set", key: "123456789", val: "v", wantErr: ErrKeyTooLong},
			{op: "set", key: "12345678", val: "v"},
			{op: "set", key: "big", val: strings.Repeat("x", 17), wantErr: ErrTooLarge},
			{op: "update", key: "big", val: strings.Repeat("x", 16)},
			{op: "set", key: "neg", val: "v", expires: -time.Second, wantErr: ErrBadExpiry},
			{op: "set", key: "far", val: "v", expires: math.MaxInt64},
			{op: "get", key: "far", wantVal: "v"},
			{op: "math", key: "", mathOp: MathInc, operand: 1, wantErr: ErrEmptyKey},
			{op: "math", key: "k", mathOp: MathOp(99), operand: 1, wantErr: ErrUnknownOp},
		}},
		{"full slots", []step{
			{op: "set", key: "a", val: "1"},
			{op: "set", key: "b", val: "2"},
			{op: "set", key: "c", val: "3"},
			{op: "set", key: "d", val: "4"},
			{op: "set", key: "e", val: "5", wantErr: ErrFull},
			{op: "math", key: "e", mathOp: MathInc, operand: 1, wantErr: ErrFull},
			{op: "update", key: "d", val: "44"},
			{op: "get", key: "d", wantVal: "44"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, _, _ := newTestLocal(t, small)
			runSteps(t, l, tc.steps)
			checkInvariants(t, l.e)
		})
	}
}

func TestLocalMath(t *testing.T) {
	num := func(v int64) string { return string(binary.NativeEndian.AppendUint64(nil, uint64(v))) }
	tests := []struct {
		name, line string
		steps      []step
	}{
		{"inc from zero", small, []step{
			{op: "math", key: "n", mathOp: MathInc, operand: 1, wantNum: 1},
			{op: "math", key: "n", mathOp: MathInc, operand: 5, wantNum: 6},
			{op: "math", key: "n", mathOp: MathDec, operand: 10, wantNum: -4},
			{op: "get", key: "n", wantVal: num(-4)},
		}},
		{"math_initial", small + ",math_initial=100", []step{
			{op: "math", key: "i", mathOp: MathInc, operand: 1, wantNum: 101},
			{op: "math", key: "d", mathOp: MathDec, operand: 1, wantNum: 99},
			{op: "math", key: "m", mathOp: MathMul, operand: 3, wantNum: 300},
			{op: "math", key: "q", mathOp: MathDiv, operand: 7, wantNum: 14},
		}},
		{"div by zero gives zero", small + ",math_initial=9", []step{
			{op: "math", key: "q", mathOp: MathDiv, operand: 0, wantNum: 0},
			{op: "math", key: "q", mathOp: MathInc, operand: 9, wantNum: 9},
			{op: "math", key: "q", mathOp: MathDiv, operand: 0, wantNum: 0},
		}},
		{"overflow wraps", small, []step{
			{op: "update", key: "n", val: num(math.MaxInt64)},
			{op: "math", key: "n", mathOp: MathInc, operand: 1, wantNum: math.MinInt64},
			{op: "math", key: "n", mathOp: MathDiv, operand: -1, wantNum: math.MinInt64},
		}},
		{"value set by update is a number", small, []step{
			{op: "update", key: "n", val: num(42)},
			{op: "math", key: "n", mathOp: MathMul, operand: 2, wantNum: 84},
		}},
		{"not a number", small, []step{
			{op: "set", key: "s", val: "text"},
			{op: "math", key: "s", mathOp: MathInc, operand: 1, wantErr: ErrNotNumber},
			{op: "get", key: "s", wantVal: "text"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, _, _ := newTestLocal(t, tc.line)
			runSteps(t, l, tc.steps)
		})
	}
}

func TestLocalExpiry(t *testing.T) {
	t.Run("readable until swept", func(t *testing.T) {
		l, clock, _ := newTestLocal(t, small)
		mustDo(t, l.Set("k", []byte("v"), 10*time.Second))
		mustDo(t, l.Set("forever", []byte("v"), 0))
		at, ok := l.Expires("k")
		if !ok || !at.Equal(clock.Now().Add(10*time.Second)) {
			t.Fatalf("Expires = %v, %v", at, ok)
		}
		if _, ok := l.Expires("forever"); ok {
			t.Fatal("Expires reports an expiry for an item without one")
		}
		clock.Advance(11 * time.Second)
		if v, ok := l.Get("k"); !ok || string(v) != "v" {
			t.Fatalf("expired item not readable before the sweep: %q %v", v, ok)
		}
		if err := l.Set("k", []byte("new"), 0); !errors.Is(err, ErrExists) {
			t.Fatalf("Set on an unswept expired key = %v, want ErrExists", err)
		}
		if n := l.Sweep(clock.Now()); n != 1 {
			t.Fatalf("Sweep removed %d, want 1", n)
		}
		if l.Exists("k") || !l.Exists("forever") {
			t.Fatal("sweep removed the wrong items")
		}
		if n := l.Sweep(clock.Now()); n != 0 {
			t.Fatalf("second Sweep removed %d", n)
		}
	})
	t.Run("lazy_expire hides and deletes", func(t *testing.T) {
		l, clock, _ := newTestLocal(t, small+",lazy_expire=1")
		mustDo(t, l.Set("k", []byte("v"), time.Second))
		mustDo(t, l.Set("j", []byte("v"), time.Second))
		if !l.Exists("k") {
			t.Fatal("fresh item missing")
		}
		clock.Advance(time.Second)
		if _, ok := l.Get("k"); ok {
			t.Fatal("lazy cache served an expired item")
		}
		if l.Stats().Items != 1 {
			t.Fatalf("lazy lookup did not delete: %+v", l.Stats())
		}
		if slices.Contains(l.Keys(), "j") {
			t.Fatal("Keys lists an expired item of a lazy cache")
		}
		mustDo(t, l.Set("j", []byte("again"), 0))
		checkInvariants(t, l.e)
	})
	t.Run("update resets expiry, math keeps it", func(t *testing.T) {
		l, clock, _ := newTestLocal(t, small)
		mustDo(t, l.Set("k", []byte("v"), time.Second))
		mustDo(t, l.Update("k", []byte("v2"), 0))
		if _, ok := l.Expires("k"); ok {
			t.Fatal("update with expires=0 kept the old expiry")
		}
		mustDo(t, l.Update("k", []byte("v3"), time.Minute))
		if at, _ := l.Expires("k"); !at.Equal(clock.Now().Add(time.Minute)) {
			t.Fatalf("update did not set the new expiry: %v", at)
		}
		if _, err := l.Math(MathInc, "n", 1, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		created, _ := l.Expires("n")
		if !created.Equal(clock.Now().Add(5 * time.Second)) {
			t.Fatalf("math did not set the expiry of the item it created: %v", created)
		}
		clock.Advance(time.Second)
		if _, err := l.Math(MathInc, "n", 1, time.Hour); err != nil {
			t.Fatal(err)
		}
		if at, _ := l.Expires("n"); !at.Equal(created) {
			t.Fatalf("math changed the expiry of an existing item: %v, want %v", at, created)
		}
	})
	t.Run("no_expire is never swept", func(t *testing.T) {
		l, clock, _ := newTestLocal(t, small+",no_expire=1")
		mustDo(t, l.Set("k", []byte("v"), time.Second))
		clock.Advance(time.Hour)
		if n := l.Sweep(clock.Now()); n != 0 || !l.Exists("k") {
			t.Fatalf("no_expire cache swept %d items", n)
		}
	})
}

func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestLocalFullPolicies(t *testing.T) {
	fill := func(t *testing.T, l *Local, expires time.Duration, keys ...string) {
		t.Helper()
		for _, k := range keys {
			mustDo(t, l.Set(k, []byte("v-"+k), expires))
		}
	}
	tests := []struct {
		name      string
		line      string
		run       func(t *testing.T, l *Local, clock *fakeClock)
		wantFull  uint64
		wantKeys  []string
		wantWarns int
		warning   string
	}{
		{
			name: "plain full counts, errors and warns once",
			line: small,
			run: func(t *testing.T, l *Local, _ *fakeClock) {
				fill(t, l, 0, "a", "b", "c", "d")
				for range 3 {
					if err := l.Set("e", []byte("v"), 0); !errors.Is(err, ErrFull) {
						t.Fatalf("Set on a full cache = %v, want ErrFull", err)
					}
				}
			},
			wantFull: 3, wantKeys: []string{"a", "b", "c", "d"}, wantWarns: 1, warning: `*** DANGER cache "t" is FULL !!! ***`,
		},
		{
			name: "warning again after room was freed",
			line: small,
			run: func(t *testing.T, l *Local, _ *fakeClock) {
				fill(t, l, 0, "a", "b", "c", "d")
				l.Set("e", []byte("v"), 0)
				mustDo(t, l.Del("a"))
				fill(t, l, 0, "a")
				l.Set("e", []byte("v"), 0)
			},
			wantFull: 2, wantKeys: []string{"a", "b", "c", "d"}, wantWarns: 2, warning: "is FULL",
		},
		{
			name: "ignore_full is silent but counts",
			line: small + ",ignore_full=1",
			run: func(t *testing.T, l *Local, _ *fakeClock) {
				fill(t, l, 0, "a", "b", "c", "d")
				l.Set("e", []byte("v"), 0)
			},
			wantFull: 1, wantKeys: []string{"a", "b", "c", "d"}, wantWarns: 0, warning: "FULL",
		},
		{
			name: "purge_lru evicts the least recently used",
			line: small + ",purge_lru=1",
			run: func(t *testing.T, l *Local, _ *fakeClock) {
				fill(t, l, 0, "a", "b", "c", "d")
				l.Get("a")                                // a is now the most recent
				l.Exists("b")                             // exists does not bump
				mustDo(t, l.Update("c", []byte("c2"), 0)) // update bumps
				fill(t, l, 0, "e")                        // evicts b
				fill(t, l, 0, "f")                        // evicts d
			},
			wantFull: 2, wantKeys: []string{"a", "c", "e", "f"}, wantWarns: 1, warning: `LRU item will be purged from cache "t"`,
		},
		{
			name: "sweep_on_full frees expired items, at most once per interval",
			line: small + ",sweep_on_full=10,clear_on_full=1",
			run: func(t *testing.T, l *Local, clock *fakeClock) {
				fill(t, l, time.Second, "a", "b")
				fill(t, l, 0, "c", "d")
				clock.Advance(2 * time.Second)
				fill(t, l, 0, "e") // sweep frees a and b, so no clear
				fill(t, l, time.Second, "f")
				clock.Advance(2 * time.Second)
				// Within the interval: no sweep, so clear_on_full wipes all.
				fill(t, l, 0, "g")
			},
			wantFull: 2, wantKeys: []string{"g"}, wantWarns: 1, warning: "is FULL",
		},
		{
			name: "clear_on_full wipes the cache",
			line: small + ",clear_on_full=1",
			run: func(t *testing.T, l *Local, _ *fakeClock) {
				fill(t, l, 0, "a", "b", "c", "d", "e")
			},
			wantFull: 1, wantKeys: []string{"e"}, wantWarns: 1, warning: "is FULL",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, clock, logs := newTestLocal(t, tc.line)
			tc.run(t, l, clock)
			if got := l.Stats().Full; got != tc.wantFull {
				t.Errorf("full = %d, want %d", got, tc.wantFull)
			}
			if got := l.Keys(); !slices.Equal(got, tc.wantKeys) {
				t.Errorf("keys = %q, want %q", got, tc.wantKeys)
			}
			if got := countContaining(logs(), tc.warning); got != tc.wantWarns {
				t.Errorf("%d log lines contain %q, want %d: %q", got, tc.warning, tc.wantWarns, logs())
			}
			checkInvariants(t, l.e)
		})
	}
}

func TestLocalBitmap(t *testing.T) {
	const line = "name=bm,items=5,blocksize=4,blocks=8,bitmap=1,keysize=8"
	t.Run("values span blocks", func(t *testing.T) {
		l, _, _ := newTestLocal(t, line)
		mustDo(t, l.Set("a", []byte("0123456789"), 0)) // 3 blocks
		mustDo(t, l.Set("b", []byte("xy"), 0))         // 1 block
		mustDo(t, l.Set("c", []byte("ABCDEFGH"), 0))   // 2 blocks
		for k, want := range map[string]string{"a": "0123456789", "b": "xy", "c": "ABCDEFGH"} {
			if v, _ := l.Get(k); string(v) != want {
				t.Fatalf("Get(%q) = %q, want %q", k, v, want)
			}
		}
		if err := l.Set("d", bytes.Repeat([]byte("z"), 33), 0); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("value above blocksize*blocks: %v", err)
		}
		// 2 blocks left: a 3-block value does not fit.
		if err := l.Set("d", []byte("123456789"), 0); !errors.Is(err, ErrFull) {
			t.Fatalf("Set without free blocks = %v, want ErrFull", err)
		}
		checkInvariants(t, l.e)
	})
	t.Run("update grows and shrinks", func(t *testing.T) {
		l, _, _ := newTestLocal(t, line)
		mustDo(t, l.Set("a", []byte("1234"), 0))
		mustDo(t, l.Set("b", []byte("1234"), 0))
		mustDo(t, l.Update("a", []byte("0123456789abcdef"), 0)) // 4 blocks, must move
		if v, _ := l.Get("a"); string(v) != "0123456789abcdef" {
			t.Fatalf("grown value = %q", v)
		}
		mustDo(t, l.Update("a", []byte("s"), 0))
		if v, _ := l.Get("a"); string(v) != "s" {
			t.Fatalf("shrunk value = %q", v)
		}
		mustDo(t, l.Set("c", bytes.Repeat([]byte("c"), 20), 0)) // 5 blocks: only fits in the room the shrink freed
		checkInvariants(t, l.e)
	})
	t.Run("purge_lru evicts until a run fits", func(t *testing.T) {
		l, _, _ := newTestLocal(t, line+",purge_lru=1")
		for _, k := range []string{"a", "b", "c", "d"} {
			mustDo(t, l.Set(k, []byte("12345678"), 0)) // 2 blocks each: bitmap full
		}
		mustDo(t, l.Set("big", bytes.Repeat([]byte("x"), 20), 0)) // 5 blocks: evicts a, b, c
		if got := l.Keys(); !slices.Equal(got, []string{"big", "d"}) {
			t.Fatalf("keys = %q", got)
		}
		checkInvariants(t, l.e)
	})
}

func TestLocalStats(t *testing.T) {
	l, clock, _ := newTestLocal(t, "name=st,items=10,blocksize=32,hash=murmur2,hashsize=7,keysize=16,lastmod=1")
	mustDo(t, l.Set("a", []byte("1"), 0))
	l.Get("a")
	l.Get("a")
	l.Get("zz")
	l.Exists("a")
	want := Stats{Name: "st", Hash: "murmur2", HashSize: 7, KeySize: 16, MaxItems: 10, Blocks: 10, BlockSize: 32,
		Items: 1, Hits: 2, Miss: 1, LastModifiedAt: clock.Now().Unix()}
	if got := l.Stats(); got != want {
		t.Fatalf("Stats = %+v\nwant    %+v", got, want)
	}
}

func TestRegistry(t *testing.T) {
	var r Registry
	if _, ok := r.Get(""); ok {
		t.Fatal("empty registry has a default cache")
	}
	a, _, _ := newTestLocal(t, "name=a,items=3,blocksize=8")
	b, _, _ := newTestLocal(t, "name=b,items=3,blocksize=8")
	mustDo(t, r.Add(a))
	mustDo(t, r.Add(b))
	if err := r.Add(a); err == nil || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("duplicate Add = %v", err)
	}
	tests := []struct {
		name string
		want Store
		ok   bool
	}{{"", a, true}, {"a", a, true}, {"b", b, true}, {"c", nil, false}}
	for _, tc := range tests {
		t.Run("get "+tc.name, func(t *testing.T) {
			got, ok := r.Get(tc.name)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Fatalf("Get(%q) = %v, %v", tc.name, got, ok)
			}
		})
	}
	if all := r.All(); len(all) != 2 || all[0] != a || all[1] != b {
		t.Fatalf("All = %v", all)
	}
}

func TestLocalConcurrent(t *testing.T) {
	for _, line := range []string{
		"name=c,items=65,blocksize=32,hashsize=16",
		"name=c,items=65,blocksize=32,hashsize=16,purge_lru=1,lazy_expire=1",
		"name=c,items=65,blocksize=8,blocks=256,bitmap=1,purge_lru=1",
	} {
		t.Run(line, func(t *testing.T) {
			l, clock, _ := newTestLocal(t, line)
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(2)
				go func() {
					defer wg.Done()
					for i := range 2000 {
						k := fmt.Sprintf("k%d", (i*7+w)%100)
						switch i % 5 {
						case 0:
							l.Update(k, []byte(k), time.Duration(i%3)*time.Millisecond)
						case 1:
							l.Del(k)
						case 2:
							l.Math(MathInc, "n", 1, 0)
						case 3:
							clock.Advance(time.Millisecond)
							l.Sweep(clock.Now())
						default:
							l.Set(k, []byte(k+k), 0)
						}
					}
				}()
				go func() {
					defer wg.Done()
					for i := range 4000 {
						k := fmt.Sprintf("k%d", i%100)
						if v, ok := l.Get(k); ok && !bytes.HasPrefix(v, []byte(k)) {
							t.Errorf("Get(%q) = %q: value of another key", k, v)
							return
						}
						l.Exists(k)
						l.Expires(k)
					}
				}()
			}
			wg.Wait()
			checkInvariants(t, l.e)
			if st := l.Stats(); st.Hits+st.Miss != 4*4000 {
				t.Fatalf("hits %d + miss %d != %d gets", st.Hits, st.Miss, 4*4000)
			}
		})
	}
}
