package rcache

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/gouwsgi/gouwsgi/cache"
	"github.com/gouwsgi/gouwsgi/legion"
	"github.com/gouwsgi/gouwsgi/legion/fsm"
	raftv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/raft/v1"
)

// benchValue is the payload of every benchmarked write.
var benchValue = []byte(strings.Repeat("v", 64))

// load runs conc goroutines calling op for d and reports ops/s and
// latency percentiles.
type loadResult struct {
	ops           int
	perSec        float64
	p50, p99, max time.Duration
	errors        int
}

func runLoad(conc int, d time.Duration, op func(worker, i int) error) loadResult {
	var wg sync.WaitGroup
	lat := make([][]time.Duration, conc)
	var errs atomic.Int64
	start := time.Now()
	deadline := start.Add(d)
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				t := time.Now()
				if err := op(w, i); err != nil {
					errs.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := loadResult{ops: len(all), perSec: float64(len(all)) / elapsed.Seconds(), errors: int(errs.Load())}
	if len(all) > 0 {
		r.p50, r.p99, r.max = all[len(all)/2], all[len(all)*99/100], all[len(all)-1]
	}
	return r
}

// nopFSM is the trivial state machine of the raw Raft baseline.
type nopFSM struct{ n atomic.Uint64 }

func (f *nopFSM) Apply(*raft.Log) interface{}         { f.n.Add(1); return nil }
func (f *nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnap{}, nil }
func (f *nopFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type nopSnap struct{}

func (nopSnap) Persist(s raft.SnapshotSink) error { return s.Close() }
func (nopSnap) Release()                          {}

// rawCluster is three plain hashicorp/raft nodes on loopback with the
// legion's stores (raft-boltdb/v2, file snapshots) and Raft timings.
// apply returns the function that applies payload on the current leader,
// following it when leadership moves.
func rawCluster(t *testing.T) (func(payload []byte) error, func()) {
	t.Helper()
	lc := legion.DefaultConfig()
	type rnode struct {
		r     *raft.Raft
		store *raftboltdb.BoltStore
		trans *raft.NetworkTransport
	}
	var nodes []rnode
	var servers []raft.Server
	var transports []*raft.NetworkTransport
	for i := range 3 {
		trans, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, lc.TransportTimeout, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		transports = append(transports, trans)
		servers = append(servers, raft.Server{ID: raft.ServerID(strconv.Itoa(i)), Address: trans.LocalAddr()})
	}
	for i, trans := range transports {
		dir := t.TempDir()
		store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
		if err != nil {
			t.Fatal(err)
		}
		snaps, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		rc := raft.DefaultConfig()
		rc.LocalID = servers[i].ID
		rc.LogOutput = io.Discard
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = lc.HeartbeatTimeout, lc.ElectionTimeout, lc.LeaderLeaseTimeout
		rc.CommitTimeout, rc.MaxAppendEntries, rc.BatchApplyCh = lc.CommitTimeout, lc.MaxAppendEntries, true
		rc.SnapshotThreshold, rc.TrailingLogs = lc.SnapshotThreshold, lc.TrailingLogs
		r, err := raft.NewRaft(rc, &nopFSM{}, store, store, snaps, trans)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
				t.Fatal(err)
			}
		}
		nodes = append(nodes, rnode{r, store, trans})
	}
	var leader atomic.Pointer[raft.Raft]
	find := func() bool {
		for _, n := range nodes {
			if n.r.State() == raft.Leader {
				leader.Store(n.r)
				return true
			}
		}
		return false
	}
	waitFor(t, 10*time.Second, "a raw raft leader", find)
	apply := func(payload []byte) error {
		err := leader.Load().Apply(payload, 5*time.Second).Error()
		if err != nil {
			time.Sleep(5 * time.Millisecond)
			find()
		}
		return err
	}
	return apply, func() {
		for _, n := range nodes {
			_ = n.r.Shutdown().Error()
			n.store.Close()
			n.trans.Close()
		}
	}
}

// TestReplicatedSetThroughput prints replicated cache write throughput and
// latency beside raw hashicorp/raft applies of the same entry bytes, on
// 3-node clusters on loopback. GOUWSGI_BENCH=1 runs it;
// GOUWSGI_BENCH_SECONDS sets the time per row (default 3).
func TestReplicatedSetThroughput(t *testing.T) {
	if os.Getenv("GOUWSGI_BENCH") == "" {
		t.Skip("benchmark: set GOUWSGI_BENCH=1")
	}
	d := 3 * time.Second
	if s, err := strconv.Atoi(os.Getenv("GOUWSGI_BENCH_SECONDS")); err == nil && s > 0 {
		d = time.Duration(s) * time.Second
	}
	concs := []int{1, 16, 128}
	// The raw baseline applies the log entry of a one-write batch.
	payload, err := fsm.Encode(BatchType, &raftv1.CacheBatch{Origin: "0123456789abcdef", Seq: 1,
		Ops: []*raftv1.CacheOp{{Kind: uint32(cache.OpUpdate), Cache: "bench", Key: "key-00000", Value: benchValue}}})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		name string
		res  map[int]loadResult
	}
	var rows []row

	apply, stop := rawCluster(t)
	raw := row{name: "raw raft.Apply on the leader", res: map[int]loadResult{}}
	for _, conc := range concs {
		raw.res[conc] = runLoad(conc, d, func(int, int) error { return apply(payload) })
	}
	stop()
	rows = append(rows, raw)

	c := newTestCluster(t, mustConfig(t, "name=bench,items=20000,blocksize=128,replicate=1"), nil)
	c.start(3)
	lead := c.waitLeader(3)
	update := func(m *member) func(w, i int) error {
		s := m.store(t, "bench")
		return func(w, i int) error {
			return s.Update(fmt.Sprintf("key-%05d", (w*1000+i)%10000), benchValue, 0)
		}
	}
	onLeader := row{name: "rcache update, clients on the leader", res: map[int]loadResult{}}
	spread := row{name: "rcache update, clients on all 3 nodes", res: map[int]loadResult{}}
	for _, conc := range concs {
		onLeader.res[conc] = runLoad(conc, d, update(lead))
		members := c.alive()
		ops := make([]func(w, i int) error, len(members))
		for i, m := range members {
			ops[i] = update(m)
		}
		spread.res[conc] = runLoad(conc, d, func(w, i int) error { return ops[w%len(ops)](w, i) })
	}
	rows = append(rows, onLeader, spread)

	var b strings.Builder
	fmt.Fprintf(&b, "\n| writes (64-byte values, 3 nodes on loopback, %s per cell) | conc 1 | conc 16 | conc 128 |\n|---|---|---|---|\n", d)
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s |", r.name)
		for _, conc := range concs {
			res := r.res[conc]
			fmt.Fprintf(&b, " %.0f/s p50 %s p99 %s", res.perSec, res.p50.Round(10*time.Microsecond), res.p99.Round(10*time.Microsecond))
			if res.errors > 0 {
				fmt.Fprintf(&b, " (%d errors)", res.errors)
			}
			b.WriteString(" |")
		}
		b.WriteString("\n")
	}
	t.Log(b.String())
	fmt.Print(b.String())
	for _, r := range rows {
		for _, conc := range concs {
			if r.res[conc].ops == 0 {
				t.Errorf("%s at concurrency %d: no operation completed", r.name, conc)
			}
		}
	}
}

// BenchmarkReplicatedGet is a local read of a replicated cache (the
// default read path): run with -cpu 1 for one core.
func BenchmarkReplicatedGet(b *testing.B) {
	cfgs := mustConfig(b, "name=c,items=1001,blocksize=64,replicate=1")
	m := NewMachine(cfgs, nil)
	ops := make([]*raftv1.CacheOp, 1000)
	for i := range ops {
		ops[i] = &raftv1.CacheOp{Kind: uint32(cache.OpUpdate), Cache: "c", Key: fmt.Sprintf("key-%d", i), Value: benchValue}
	}
	data, err := fsm.Encode(BatchType, &raftv1.CacheBatch{Ops: ops})
	if err != nil {
		b.Fatal(err)
	}
	if res := m.Apply(fsm.Entry{Type: BatchType, Body: data[1:], Index: 1, Time: time.Now()}); res.Err != nil {
		b.Fatal(res.Err)
	}
	g := &Group{m: m}
	s := &Store{g: g, cfg: cfgs[0]}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := s.Get(keys[i%len(keys)]); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
}
