package rcache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/cache"
	"github.com/gouwsgi/gouwsgi/legion"
)

// A write on any node is readable on every node, errors cross forwarding
// with their cause, and counters see every increment once.
func TestWriteAnywhereReadEverywhere(t *testing.T) {
	skipShort(t)
	c := newTestCluster(t, mustConfig(t,
		"name=sessions,items=100,blocksize=64,replicate=1",
		"name=tiny,items=3,blocksize=8,replicate=1"), nil)
	nodes := c.start(3)
	for i, m := range nodes {
		key := fmt.Sprintf("k%d", i)
		if err := m.store(t, "sessions").Set(key, []byte("v"+key), 0); err != nil {
			t.Fatalf("set on node %d: %v", i, err)
		}
		if _, err := m.store(t, "sessions").Math(cache.MathInc, "hits", 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "every key on every node", func() bool {
		for _, m := range nodes {
			s := m.store(t, "sessions")
			for i := range nodes {
				if v, ok := s.Get(fmt.Sprintf("k%d", i)); !ok || string(v) != fmt.Sprintf("vk%d", i) {
					return false
				}
			}
			if v, ok := s.Get("hits"); !ok || v[0] != 3 {
				return false
			}
		}
		return true
	})

	follower := c.followers()[0]
	tests := []struct {
		name string
		do   func(s *Store) error
		want error
		msg  string
	}{
		{"set of an existing key", func(s *Store) error { return s.Set("k0", []byte("x"), 0) }, cache.ErrExists, "already exists"},
		{"del of a missing key", func(s *Store) error { return s.Del("nope") }, cache.ErrNotFound, "not found"},
		{"value above blocksize", func(s *Store) error { return s.Set("big", make([]byte, 65), 0) }, cache.ErrTooLarge, "max item size is 64"},
		{"value above the replication limit", func(s *Store) error { return s.Update("huge", make([]byte, MaxValue+1), 0) }, cache.ErrTooLarge, "replicated caches take at most"},
		{"math on a string", func(s *Store) error { _, err := s.Math(cache.MathInc, "k0", 1, 0); return err }, cache.ErrNotNumber, "64-bit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do(follower.store(t, "sessions"))
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tt.want, tt.msg)
			}
		})
	}
	t.Run("cache full", func(t *testing.T) {
		tiny := follower.store(t, "tiny")
		for _, k := range []string{"a", "b"} {
			if err := tiny.Set(k, []byte(k), 0); err != nil {
				t.Fatal(err)
			}
		}
		err := tiny.Set("c", []byte("c"), 0)
		if !errors.Is(err, cache.ErrFull) || !strings.Contains(err.Error(), `cache "tiny"`) {
			t.Fatalf("err = %v, want ErrFull naming the cache", err)
		}
	})
	t.Run("clear", func(t *testing.T) {
		if err := nodes[0].store(t, "tiny").Clear(); err != nil {
			t.Fatal(err)
		}
		keys, err := follower.store(t, "tiny").LinearizableKeys(context.Background())
		if err != nil || len(keys) != 0 {
			t.Fatalf("keys %v, %v after clear", keys, err)
		}
	})
}

// An acknowledged write survives the leader's crash right after the ack.
func TestAckedWriteSurvivesLeaderCrash(t *testing.T) {
	skipShort(t)
	c := newTestCluster(t, mustConfig(t, "name=c,items=1000,blocksize=64,replicate=1"), nil)
	c.start(3)
	leader := c.waitLeader(3)
	// Concurrent writers on the leader and a follower; the leader dies
	// right after the last acknowledgement.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []string
	for _, m := range []*member{leader, c.followers()[0]} {
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := fmt.Sprintf("%s-%d", m.node.ID()[:8], w)
				if err := m.store(t, "c").Update(key, []byte("v"), 0); err == nil {
					mu.Lock()
					acked = append(acked, key)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	leader.crash()
	if len(acked) < 16 {
		t.Fatalf("only %d of 16 writes acknowledged before the crash", len(acked))
	}
	c.waitLeader(3) // the dead node stays a voter until it is reaped
	for _, m := range c.alive() {
		for _, k := range acked {
			v, _, ok, err := m.store(t, "c").LinearizableGet(context.Background(), k)
			if err != nil || !ok || string(v) != "v" {
				t.Fatalf("node %s lost acknowledged key %s: %q %v %v", m.node.ID(), k, v, ok, err)
			}
		}
	}
}

// Replicas stay byte-identical through expiry, sweeps, LRU eviction and
// full caches, with writes from every node at once.
func TestReplicasIdenticalAfterExpiryAndEviction(t *testing.T) {
	skipShort(t)
	c := newTestCluster(t, mustConfig(t,
		"name=lru,items=20,blocksize=32,purge_lru=1,replicate=1",
		"name=bitmap,items=20,blocks=40,blocksize=8,bitmap=1,purge_lru=1,replicate=1",
		"name=full,items=30,blocksize=16,sweep_on_full=1,replicate=1"), nil)
	nodes := c.start(3)
	var wg sync.WaitGroup
	var incs atomic.Int64
	for i, m := range nodes {
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 15 {
					key := fmt.Sprintf("k%d", (j*7+i*13+w*5)%60)
					ttl := time.Duration(0)
					if j%3 == 0 {
						ttl = time.Duration(1+j%2) * 150 * time.Millisecond
					}
					_ = m.store(t, "lru").Update(key, []byte(fmt.Sprintf("%d-%d-%d", i, w, j)), ttl)
					_ = m.store(t, "bitmap").Update(key, make([]byte, 1+(j+w)%20), ttl)
					_ = m.store(t, "full").Set(key, []byte("x"), ttl)
					if _, err := m.store(t, "full").Math(cache.MathInc, "n", 1, 0); err == nil {
						incs.Add(1)
					}
					if j%5 == 4 {
						_ = m.store(t, "lru").Del(key)
					}
				}
			}()
		}
	}
	wg.Wait()
	// Let the TTLs run out and the leader's sweeps commit.
	waitFor(t, 10*time.Second, "the sweeps to remove every expiring item", func() bool {
		return !nodes[0].group.State().Caches().SweepDue(time.Now().UnixNano())
	})
	c.waitConverged()
	want := nodes[0].group.State().Caches().Digest()
	for _, m := range nodes[1:] {
		if got := m.group.State().Caches().Digest(); got != want {
			t.Fatalf("replica %s digest %x, want %x", m.node.ID(), got[:8], want[:8])
		}
	}
	for _, name := range []string{"lru", "bitmap", "full"} {
		if st := nodes[0].store(t, name).Stats(); st.Full == 0 {
			t.Errorf("cache %s never filled up (%+v): the run did not exercise eviction", name, st)
		}
	}
	v, ok := nodes[1].store(t, "full").Get("n")
	if got := int64(binary.NativeEndian.Uint64(v)); !ok || got != incs.Load() {
		t.Fatalf("counter %d, want %d acknowledged increments", got, incs.Load())
	}
}

// Every node restarts in turn, some from a snapshot (the log is compacted
// fast here), and comes back with every unexpired key; a node that joins
// later catches up too.
func TestRestartEachNodeKeepsKeys(t *testing.T) {
	skipShort(t)
	c := newTestCluster(t, mustConfig(t, "name=c,items=1000,blocksize=32,replicate=1"), func(lc *legion.Config) {
		lc.SnapshotThreshold = 32
		lc.SnapshotInterval = 200 * time.Millisecond
		lc.TrailingLogs = 16
	})
	nodes := c.start(3)
	write := func(m *member, from, to int) {
		for i := from; i < to; i++ {
			ttl := time.Duration(0)
			if i%10 == 0 {
				ttl = 200 * time.Millisecond // these expire during the test
			}
			if err := m.store(t, "c").Update(fmt.Sprintf("k%03d", i), []byte(fmt.Sprint(i)), ttl); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(m *member, upTo int) {
		t.Helper()
		keys, err := m.store(t, "c").LinearizableKeys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, k := range keys {
			got[k] = true
		}
		for i := range upTo {
			if i%10 != 0 && !got[fmt.Sprintf("k%03d", i)] {
				t.Fatalf("node %s lost k%03d after restart (%d keys)", m.node.ID(), i, len(keys))
			}
		}
	}
	write(nodes[0], 0, 100)
	written := 100
	for i, m := range nodes {
		m.crash()
		// Writes while it is down: it must catch up from the log or a
		// snapshot sent by the leader.
		write(c.alive()[0], written, written+50)
		written += 50
		back := c.restart(m)
		nodes[i] = back
		c.waitLeader(3)
		check(back, written)
	}
	// The log was compacted into snapshots (what the restarts restored).
	if snaps, _ := filepath.Glob(filepath.Join(nodes[0].cfg.DataDir, "snapshots", "*", "state.bin")); len(snaps) == 0 {
		t.Fatal("no snapshot written: the test did not exercise restore from a snapshot")
	}
	late := c.launchLate(nodes[0].cfg.GossipAddr())
	c.waitLeader(4)
	check(late, written)
	c.waitConverged()
	want := nodes[0].group.State().Caches().Digest()
	if got := late.group.State().Caches().Digest(); got != want {
		t.Fatal("the late node's replica differs")
	}
}

// launchLate starts a new member that joins through peer.
func (c *testCluster) launchLate(peer string) *member {
	c.t.Helper()
	addr := freeGossipAddr(c.t)
	m, err := c.launch(c.config(addr, c.t.TempDir(), []string{peer}))
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// Without a quorum a write is refused with an error saying so, and is not
// applied later behind the client's back once the quorum is back.
func TestNoQuorumWriteRefused(t *testing.T) {
	skipShort(t)
	c := newTestCluster(t, mustConfig(t, "name=c,items=100,blocksize=32,replicate=1"), func(lc *legion.Config) {
		lc.ApplyTimeout = time.Second
	})
	nodes := c.start(3)
	if err := nodes[0].store(t, "c").Set("before", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	survivor := nodes[0]
	for _, m := range nodes[1:] {
		m.crash()
	}
	start := time.Now()
	err := survivor.store(t, "c").Set("lost", []byte("1"), 0)
	if !errors.Is(err, legion.ErrNoQuorum) || !strings.Contains(err.Error(), "no raft quorum") || !strings.Contains(err.Error(), `cache "c": set "lost"`) {
		t.Fatalf("err = %v, want ErrNoQuorum naming the cache and key", err)
	}
	t.Logf("refused after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if _, _, _, err := survivor.store(t, "c").LinearizableGet(context.Background(), "before"); !errors.Is(err, legion.ErrNoQuorum) {
		t.Fatalf("linearizable read without quorum: %v", err)
	}
	if v, ok := survivor.store(t, "c").Get("before"); !ok || string(v) != "1" {
		t.Fatal("local reads must keep working without a quorum")
	}
}
