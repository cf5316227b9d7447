package rcache

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/gouwsgi/gouwsgi/cache"
	"github.com/gouwsgi/gouwsgi/legion/fsm"
	raftv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/raft/v1"
)

var t0 = time.Unix(1_700_000_000, 0)

// entry builds the fsm.Entry a leader would commit at index, appended at
// the given offset from t0.
func entry(t *testing.T, index uint64, at time.Duration, b *raftv1.CacheBatch) fsm.Entry {
	t.Helper()
	data, err := fsm.Encode(BatchType, b)
	if err != nil {
		t.Fatal(err)
	}
	typ, body, err := fsm.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	return fsm.Entry{Type: typ, Body: body, Index: index, Term: 1, Time: t0.Add(at)}
}

func results(t *testing.T, r fsm.Result) *raftv1.CacheBatchResult {
	t.Helper()
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	var out raftv1.CacheBatchResult
	if err := proto.Unmarshal(r.Data, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func set(key, val string, ttl time.Duration) *raftv1.CacheOp {
	return &raftv1.CacheOp{Kind: uint32(cache.OpSet), Cache: "c", Key: key, Value: []byte(val), TtlNanos: int64(ttl)}
}

func TestMachineExpiryUsesLeaderTime(t *testing.T) {
	m := NewMachine(mustConfig(t, "name=c,items=10,blocksize=16,replicate=1"), nil)
	res := results(t, m.Apply(entry(t, 1, 0, &raftv1.CacheBatch{Ops: []*raftv1.CacheOp{
		set("a", "1", 10*time.Second), set("b", "2", 0), set("a", "3", 0),
		{Kind: uint32(cache.OpInc), Cache: "c", Key: "n", Operand: 5, TtlNanos: int64(time.Second)},
		set("bad", "x", -time.Second),
		{Kind: 200, Cache: "c", Key: "k"},
	}})))
	wantCodes := []error{nil, nil, cache.ErrExists, nil, cache.ErrBadExpiry, cache.ErrUnknownOp}
	for i, r := range res.GetResults() {
		if err := errorOf(r.GetCode(), r.GetError()); !errors.Is(err, wantCodes[i]) || (wantCodes[i] == nil) != (err == nil) {
			t.Errorf("op %d: err %v, want %v", i, err, wantCodes[i])
		}
	}
	if res.GetIndex() != 1 || res.GetResults()[3].GetValue() != 5 {
		t.Fatalf("result %v", res)
	}
	at, ok := m.Caches().Expires("c", "a", t0.UnixNano())
	if !ok || at != t0.Add(10*time.Second).UnixNano() {
		t.Fatalf("expiry of a = %v, %v; want the leader's append time + ttl", at, ok)
	}
	// An entry stamped earlier (a new leader with a slow clock) does not
	// move the machine's clock back.
	m.Apply(entry(t, 2, -time.Hour, &raftv1.CacheBatch{Ops: []*raftv1.CacheOp{set("c", "1", time.Second)}}))
	if at, _ := m.Caches().Expires("c", "c", 0); at != t0.Add(time.Second).UnixNano() {
		t.Fatalf("expiry of c = %v, want t0+1s", time.Unix(0, at))
	}
	if !m.Caches().SweepDue(t0.Add(2 * time.Second).UnixNano()) {
		t.Fatal("sweep not due after the expiry")
	}
	res = results(t, m.Apply(entry(t, 3, 2*time.Second, &raftv1.CacheBatch{Ops: []*raftv1.CacheOp{{Kind: uint32(cache.OpSweep)}}})))
	if got := res.GetResults()[0].GetValue(); got != 2 {
		t.Fatalf("sweep removed %d items, want 2 (n and c)", got)
	}
	if m.LastIndex() != 3 {
		t.Fatalf("last index %d", m.LastIndex())
	}
}

func TestMachineDeduplicatesRetriedBatches(t *testing.T) {
	m := NewMachine(mustConfig(t, "name=c,items=10,blocksize=16,replicate=1"), nil)
	inc := &raftv1.CacheBatch{Origin: "o", Seq: 1, Ops: []*raftv1.CacheOp{{Kind: uint32(cache.OpInc), Cache: "c", Key: "n", Operand: 1}}}
	first := m.Apply(entry(t, 1, 0, inc))
	again := m.Apply(entry(t, 2, 0, inc))
	if !bytes.Equal(first.Data, again.Data) {
		t.Fatal("a retried batch got another answer")
	}
	if v, _ := m.Caches().Get("c", "n", 0); len(v) != 8 || v[0] != 1 {
		t.Fatalf("counter %v after a retried inc, want 1", v)
	}
	if m.LastIndex() != 2 {
		t.Fatalf("a duplicate must still advance the index (readers wait on it): %d", m.LastIndex())
	}
	// Other origins and later batches apply; a batch older than the whole
	// window is refused.
	for seq := uint64(2); seq <= sessionWindow+2; seq++ {
		m.Apply(entry(t, seq+1, 0, &raftv1.CacheBatch{Origin: "o", Seq: seq}))
	}
	stale := m.Apply(entry(t, 100, 0, &raftv1.CacheBatch{Origin: "o", Seq: 1}))
	if !errors.Is(stale.Err, ErrStaleBatch) {
		t.Fatalf("stale batch: %v", stale.Err)
	}
	// Idle origins are forgotten after sessionTTL of leader time.
	m.Apply(entry(t, 101, sessionTTL+time.Second, &raftv1.CacheBatch{Origin: "p", Seq: 1}))
	if _, ok := m.sessions["o"]; ok {
		t.Fatal("idle session kept")
	}
}

func TestMachineSnapshotRoundTrip(t *testing.T) {
	cfgs := mustConfig(t, "name=c,items=4,blocksize=16,purge_lru=1,replicate=1", "name=d,items=10,blocksize=8,replicate=1")
	src := NewMachine(cfgs, nil)
	for i, k := range []string{"a", "b", "c", "d", "e"} { // LRU evicts a and b
		src.Apply(entry(t, uint64(i+1), time.Duration(i)*time.Second, &raftv1.CacheBatch{Origin: "o", Seq: uint64(i + 1), Ops: []*raftv1.CacheOp{set(k, k, time.Minute)}}))
	}
	var snap bytes.Buffer
	if err := src.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	dst := NewMachine(cfgs, nil)
	if err := dst.Restore(bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	if src.Caches().Digest() != dst.Caches().Digest() || dst.LastIndex() != 5 {
		t.Fatalf("restored replica differs (index %d)", dst.LastIndex())
	}
	// Both go on identically: same LRU victim, same dedup memory.
	next := entry(t, 6, 10*time.Second, &raftv1.CacheBatch{Origin: "o", Seq: 6, Ops: []*raftv1.CacheOp{set("f", "f", 0)}})
	src.Apply(next)
	dst.Apply(next)
	dup := entry(t, 7, 10*time.Second, &raftv1.CacheBatch{Origin: "o", Seq: 6, Ops: []*raftv1.CacheOp{set("g", "g", 0)}})
	src.Apply(dup)
	dst.Apply(dup)
	if src.Caches().Digest() != dst.Caches().Digest() {
		t.Fatal("replicas diverged after a restore")
	}
	if dst.Caches().Exists("c", "g", 0) {
		t.Fatal("a duplicate seq was applied after restore")
	}

	t.Run("empty stream restores empty caches", func(t *testing.T) {
		if err := dst.Restore(bytes.NewReader(nil)); err != nil {
			t.Fatal(err)
		}
		if keys, _ := dst.Caches().Keys("c", 0); len(keys) != 0 {
			t.Fatalf("keys %v after an empty restore", keys)
		}
	})
	bad := []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", snap.Bytes()[:snap.Len()-3], "restore"},
		{"huge header", []byte{0xff, 0xff, 0xff, 0xff, 0x7f}, "corrupt"},
		{"other geometry", func() []byte {
			var b bytes.Buffer
			other := NewMachine(mustConfig(t, "name=c,items=5,blocksize=16,replicate=1"), nil)
			if err := other.Snapshot(&b); err != nil {
				t.Fatal(err)
			}
			return b.Bytes()
		}(), "geometry"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMachine(cfgs, nil)
			m.Apply(entry(t, 1, 0, &raftv1.CacheBatch{Ops: []*raftv1.CacheOp{set("keep", "1", 0)}}))
			err := m.Restore(bytes.NewReader(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if !m.Caches().Exists("c", "keep", 0) {
				t.Fatal("a failed restore lost the old state")
			}
		})
	}
}

func TestNewRejectsBadConfigs(t *testing.T) {
	local := mustConfig(t, "name=l,items=10")
	repl := mustConfig(t, "name=r,items=10,replicate=1")
	tests := []struct {
		name string
		cfgs []cache.Config
		want string
	}{
		{"none", nil, "no cache"},
		{"local cache", local, "not replicate=1"},
		{"duplicate", append(repl, repl...), "configured twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfgs, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
