package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// machineConfigs covers every policy the Machine must replay identically.
func machineConfigs(t testing.TB) []Config {
	t.Helper()
	var cfgs []Config
	for _, line := range []string{
		"name=plain,items=17,blocksize=16,hashsize=5,keysize=8,replicate=1",
		"name=lru,items=9,blocksize=16,hashsize=3,keysize=8,purge_lru=1,replicate=1",
		"name=bits,items=9,blocksize=4,blocks=24,bitmap=1,purge_lru=1,hash=murmur2,keysize=8,replicate=1",
		"name=policies,items=9,blocksize=16,keysize=8,sweep_on_full=1,clear_on_full=1,math_initial=7,lastmod=1,replicate=1",
	} {
		cfgs = append(cfgs, mustParse(t, line))
	}
	return cfgs
}

// randomOps generates a reproducible stream of ops on the caches of cfgs
// with a leader clock that moves forward.
func randomOps(seed uint64, n int, cfgs []Config) []Op {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	now := time.Unix(1_700_000_000, 0).UnixNano()
	kinds := []OpKind{OpSet, OpSet, OpUpdate, OpUpdate, OpUpdate, OpDel, OpInc, OpDec, OpMul, OpDiv, OpSweep}
	ops := make([]Op, 0, n)
	for range n {
		now += int64(r.IntN(300)) * int64(time.Millisecond)
		op := Op{
			Kind:  kinds[r.IntN(len(kinds))],
			Cache: cfgs[r.IntN(len(cfgs))].Name,
			Key:   fmt.Sprintf("k%d", r.IntN(24)),
			Now:   now,
		}
		switch r.IntN(200) {
		case 0:
			op.Kind = OpClear
		case 1:
			op.Cache = ""
			op.Kind = OpSweep
		}
		if r.IntN(3) == 0 {
			op.ExpireAt = now + int64(r.IntN(3000))*int64(time.Millisecond)
		}
		switch op.Kind {
		case OpSet, OpUpdate:
			if r.IntN(4) == 0 {
				// A number math can work on.
				op.Value = binary.NativeEndian.AppendUint64(nil, uint64(r.Int64N(1000)-500))
			} else {
				op.Value = bytes.Repeat([]byte{byte('a' + r.IntN(26))}, 1+r.IntN(16))
			}
		case OpInc, OpDec, OpMul, OpDiv:
			op.Operand = int64(r.IntN(7)) - 2
		}
		ops = append(ops, op)
	}
	return ops
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func applyBoth(t *testing.T, a, b *Machine, ops []Op) {
	t.Helper()
	for i, op := range ops {
		ra, rb := a.Apply(op), b.Apply(op)
		if ra.Value != rb.Value || errString(ra.Err) != errString(rb.Err) {
			t.Fatalf("op %d %+v: results differ: %+v vs %+v", i, op, ra, rb)
		}
	}
}

func snapshotBytes(t testing.TB, m *Machine) []byte {
	t.Helper()
	var buf bytes.Buffer
	mustDo(t, m.Snapshot(&buf))
	return buf.Bytes()
}

func TestMachineDeterminism(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			cfgs := machineConfigs(t)
			ops := randomOps(seed, 6000, cfgs)
			a, b := NewMachine(cfgs), NewMachine(cfgs)
			applyBoth(t, a, b, ops[:3000])
			if a.Digest() != b.Digest() {
				t.Fatal("digests differ after the same ops")
			}
			if !bytes.Equal(snapshotBytes(t, a), snapshotBytes(t, b)) {
				t.Fatal("snapshots differ after the same ops")
			}
			// The stream must have exercised the interesting paths.
			var full uint64
			for _, name := range a.Names() {
				st, err := a.Stats(name)
				mustDo(t, err)
				full += st.Full
				checkInvariants(t, a.caches[slices.Index(a.Names(), name)])
			}
			if full == 0 {
				t.Fatal("op stream never filled a cache")
			}

			// A replica restored from a snapshot continues in lockstep.
			c := NewMachine(cfgs)
			mustDo(t, c.Restore(bytes.NewReader(snapshotBytes(t, a))))
			if c.Digest() != a.Digest() {
				t.Fatal("digest changed across Snapshot/Restore")
			}
			applyBoth(t, a, c, ops[3000:])
			for _, op := range ops[3000:] {
				b.Apply(op)
			}
			if a.Digest() != c.Digest() || a.Digest() != b.Digest() {
				t.Fatal("restored replica diverged")
			}
			for _, e := range c.caches {
				checkInvariants(t, e)
			}
		})
	}
}

func TestMachineDigestSensitive(t *testing.T) {
	cfgs := machineConfigs(t)
	base := []Op{{Kind: OpUpdate, Cache: "plain", Key: "a", Value: []byte("1"), Now: 1}}
	tests := []struct {
		name string
		op   Op
	}{
		{"other value", Op{Kind: OpUpdate, Cache: "plain", Key: "a", Value: []byte("2"), Now: 1}},
		{"other expiry", Op{Kind: OpUpdate, Cache: "plain", Key: "a", Value: []byte("1"), ExpireAt: 5, Now: 1}},
		{"other cache", Op{Kind: OpUpdate, Cache: "lru", Key: "a", Value: []byte("1"), Now: 1}},
		{"extra key", Op{Kind: OpUpdate, Cache: "plain", Key: "b", Value: []byte("1"), Now: 1}},
	}
	ref := NewMachine(cfgs)
	ref.ApplyBatch(base)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMachine(cfgs)
			m.ApplyBatch(base)
			m.Apply(tc.op)
			if m.Digest() == ref.Digest() {
				t.Fatal("digest did not change")
			}
		})
	}
}

func TestMachineOps(t *testing.T) {
	m := NewMachine(machineConfigs(t))
	const sec = int64(time.Second)
	res := m.ApplyBatch([]Op{
		{Kind: OpSet, Key: "a", Value: []byte("1"), Now: 1},                 // "" = first cache
		{Kind: OpSet, Cache: "plain", Key: "a", Value: []byte("2"), Now: 1}, // add-only
		{Kind: OpUpdate, Cache: "plain", Key: "t", Value: []byte("x"), ExpireAt: 10 * sec, Now: 1},
		{Kind: OpInc, Cache: "policies", Key: "n", Operand: 3, ExpireAt: 5 * sec, Now: 1}, // math_initial 7
		{Kind: OpDiv, Cache: "policies", Key: "n", Operand: 0, Now: 2},                    // div by 0
		{Kind: OpDel, Cache: "plain", Key: "nope", Now: 2},
		{Kind: OpSet, Cache: "nope", Key: "a", Value: []byte("1"), Now: 2},
		{Kind: OpKind(200), Cache: "plain", Key: "a", Now: 2},
		{Kind: OpUpdate, Cache: "plain", Key: "neg", Value: []byte("1"), ExpireAt: -1, Now: 2},
	})
	want := []struct {
		val int64
		err error
	}{{0, nil}, {0, ErrExists}, {0, nil}, {10, nil}, {0, nil}, {0, ErrNotFound}, {0, ErrUnknownCache}, {0, ErrUnknownOp}, {0, ErrBadExpiry}}
	for i, w := range want {
		if res[i].Value != w.val || !errors.Is(res[i].Err, w.err) {
			t.Errorf("result %d = %+v, want %d, %v", i, res[i], w.val, w.err)
		}
	}

	// Reads hide expired items at the caller's now, without removing them.
	if v, ok := m.Get("plain", "t", 9*sec); !ok || string(v) != "x" {
		t.Fatalf("Get before expiry = %q, %v", v, ok)
	}
	if at, ok := m.Expires("plain", "t", 9*sec); !ok || at != 10*sec {
		t.Fatalf("Expires = %d, %v", at, ok)
	}
	if _, ok := m.Get("plain", "t", 10*sec); ok || m.Exists("plain", "t", 10*sec) {
		t.Fatal("expired item visible")
	}
	if keys, _ := m.Keys("plain", 10*sec); !slices.Equal(keys, []string{"a"}) {
		t.Fatalf("Keys = %q", keys)
	}
	// Writes treat an expired item as absent, so add-only set succeeds.
	if r := m.Apply(Op{Kind: OpSet, Cache: "plain", Key: "t", Value: []byte("y"), Now: 11 * sec}); r.Err != nil {
		t.Fatalf("set over an expired item: %v", r.Err)
	}
	// A sweep of every cache removes what expired by the leader's now.
	if r := m.Apply(Op{Kind: OpSweep, Now: 6 * sec}); r.Value != 1 {
		t.Fatalf("sweep removed %d, want 1 (policies/n)", r.Value)
	}
	if r := m.Apply(Op{Kind: OpClear, Cache: "plain", Now: 12 * sec}); r.Value != 2 {
		t.Fatalf("clear removed %d, want 2", r.Value)
	}
	st, err := m.Stats("plain")
	mustDo(t, err)
	if st.Items != 0 || st.Hits != 1 || st.Miss != 1 || st.Name != "plain" {
		t.Fatalf("stats = %+v", st)
	}
	if _, err := m.Stats("nope"); !errors.Is(err, ErrUnknownCache) {
		t.Fatalf("Stats of an unknown cache = %v", err)
	}
}

func TestMachineRestoreErrors(t *testing.T) {
	cfgs := machineConfigs(t)
	src := NewMachine(cfgs)
	src.ApplyBatch(randomOps(7, 500, cfgs))
	good := snapshotBytes(t, src)

	other := mustParse(t, "name=other,items=3,blocksize=8,replicate=1")
	resized := append([]Config(nil), cfgs...)
	resized[0].Items, resized[0].Blocks = 33, 33
	tests := []struct {
		name    string
		cfgs    []Config
		data    []byte
		wantErr error
		wantMsg string
	}{
		{"flipped byte", cfgs, flipped(good, len(good)/2), ErrCorrupt, ""},
		{"truncated", cfgs, good[:len(good)-10], ErrCorrupt, "truncated"},
		{"store file magic", cfgs, append(append([]byte{}, storeMagic[:]...), good[8:]...), ErrCorrupt, "bad magic"},
		{"cache not configured", []Config{other}, good, ErrUnknownCache, `"plain" is in the snapshot but not configured`},
		{"geometry changed", resized, good, ErrGeometry, "items=17"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMachine(tc.cfgs)
			m.Apply(Op{Kind: OpUpdate, Key: "sentinel", Value: []byte("v")})
			before := m.Digest()
			err := m.Restore(bytes.NewReader(tc.data))
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Restore = %v, want %v containing %q", err, tc.wantErr, tc.wantMsg)
			}
			if m.Digest() != before {
				t.Fatal("failed Restore changed the state")
			}
		})
	}

	t.Run("configured cache missing from snapshot starts empty", func(t *testing.T) {
		m := NewMachine(append(append([]Config(nil), cfgs...), other))
		m.Apply(Op{Kind: OpUpdate, Cache: "other", Key: "old", Value: []byte("v")})
		mustDo(t, m.Restore(bytes.NewReader(good)))
		if m.Exists("other", "old", 0) {
			t.Fatal("state from before the restore survived")
		}
		if keys, _ := m.Keys("plain", 0); len(keys) == 0 {
			t.Fatal("snapshot contents missing")
		}
	})
}

func flipped(b []byte, at int) []byte {
	c := bytes.Clone(b)
	c[at] ^= 0x01
	return c
}

func TestNewMachinePanicsOnBadConfig(t *testing.T) {
	ok := mustParse(t, "name=a,items=3,blocksize=8")
	tests := []struct {
		name string
		cfgs []Config
	}{
		{"duplicate", []Config{ok, ok}},
		{"invalid", []Config{{Name: "x", Items: 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("NewMachine did not panic")
				}
			}()
			NewMachine(tc.cfgs)
		})
	}
}

func TestMachineConcurrentSnapshot(t *testing.T) {
	cfgs := machineConfigs(t)
	m := NewMachine(cfgs)
	ops := randomOps(11, 4000, cfgs)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < len(ops); i += 50 {
			m.ApplyBatch(ops[i : i+50])
		}
	}()
	go func() {
		defer wg.Done()
		for i := range 2000 {
			m.Get("plain", fmt.Sprintf("k%d", i%24), ops[0].Now)
		}
	}()
	for range 20 {
		snap := snapshotBytes(t, m)
		r := NewMachine(cfgs)
		if err := r.Restore(bytes.NewReader(snap)); err != nil {
			t.Fatalf("snapshot taken during Apply does not restore: %v", err)
		}
	}
	wg.Wait()
}

func TestMachineLogsFull(t *testing.T) {
	logger, logs := newLogCapture(t)
	cfgs := []Config{mustParse(t, "name=m,items=2,blocksize=8,replicate=1")}
	m := NewMachine(cfgs)
	m.SetLogger(logger)
	m.Apply(Op{Kind: OpSet, Key: "a", Value: []byte("1")})
	if r := m.Apply(Op{Kind: OpSet, Key: "b", Value: []byte("1")}); !errors.Is(r.Err, ErrFull) {
		t.Fatalf("set on a full replicated cache = %v", r.Err)
	}
	// The logger survives a restore.
	mustDo(t, m.Restore(bytes.NewReader(snapshotBytes(t, m))))
	m.Apply(Op{Kind: OpDel, Key: "a"})
	m.Apply(Op{Kind: OpSet, Key: "a", Value: []byte("1")})
	m.Apply(Op{Kind: OpSet, Key: "b", Value: []byte("1")})
	if got := countContaining(logs(), `*** DANGER cache "m" is FULL !!! ***`); got != 2 {
		t.Fatalf("%d FULL warnings, want 2: %q", got, logs())
	}
}
