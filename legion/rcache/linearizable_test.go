package rcache

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/gouwsgi/gouwsgi/cache"
)

type kvInput struct {
	op  string // get, put, inc
	key string
	val int64
}

type kvOutput struct {
	val     int64
	found   bool
	unknown bool // a write whose outcome the client never learned
}

type kvState struct {
	val   int64
	found bool
}

// kvModel is a register per key with add (inc starts a missing key at 0,
// the cache's math_initial).
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return kvState{} },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		st, in, out := state.(kvState), input.(kvInput), output.(kvOutput)
		switch in.op {
		case "get":
			return out.found == st.found && (!st.found || out.val == st.val), st
		case "put":
			return true, kvState{val: in.val, found: true}
		default: // inc
			next := kvState{val: st.val + in.val, found: true}
			return out.unknown || out.val == next.val, next
		}
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(kvInput), output.(kvOutput)
		return fmt.Sprintf("%s(%s,%d) -> %d %v unknown=%v", in.op, in.key, in.val, out.val, out.found, out.unknown)
	},
}

// Concurrent clients on every node do set/get/inc on a linearizable cache
// while a nemesis crashes, restarts and partitions nodes; the history must
// be linearizable.
func TestLinearizableUnderNemesis(t *testing.T) {
	skipShort(t)
	c := newTestCluster(t, mustConfig(t, "name=c,items=100,blocksize=16,replicate=1,linearizable=1"), nil)
	c.opts.Timeout = 4 * time.Second
	nodes := c.start(3)
	var slots [3]atomic.Pointer[member]
	for i, m := range nodes {
		slots[i].Store(m)
	}
	base := time.Now()
	clock := func() int64 { return time.Since(base).Nanoseconds() }

	var mu sync.Mutex
	var history []porcupine.Operation
	var okOps, unknownOps atomic.Int64
	stop := make(chan struct{})
	var clients sync.WaitGroup
	for id := range 6 {
		clients.Add(1)
		go func() {
			defer clients.Done()
			rng := rand.New(rand.NewPCG(uint64(id), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				m := slots[id%3].Load()
				if m.dead.Load() {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				s := m.store(t, "c")
				in := kvInput{key: []string{"a", "b"}[rng.IntN(2)], val: int64(rng.IntN(100))}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				call := clock()
				var out kvOutput
				var err error
				switch r := rng.IntN(10); {
				case r < 4:
					in.op = "get"
					var v []byte
					v, _, out.found, err = s.LinearizableGet(ctx, in.key)
					if out.found {
						out.val = int64(binary.NativeEndian.Uint64(v))
					}
				case r < 7:
					in.op = "put"
					err = s.UpdateContext(ctx, in.key, binary.NativeEndian.AppendUint64(nil, uint64(in.val)), 0)
				default:
					in.op = "inc"
					out.val, err = s.MathContext(ctx, cache.MathInc, in.key, in.val, 0)
				}
				ret := clock()
				cancel()
				if err != nil {
					if in.op == "get" {
						continue // a failed read has no effect
					}
					out, ret = kvOutput{unknown: true}, math.MaxInt64
					unknownOps.Add(1)
				} else {
					okOps.Add(1)
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		}()
	}

	// The nemesis: crash and restart a node, or cut one off and heal it.
	rng := rand.New(rand.NewPCG(42, 1))
	for round := range 6 {
		time.Sleep(300 * time.Millisecond)
		i := rng.IntN(3)
		m := slots[i].Load()
		if round%2 == 0 {
			t.Logf("nemesis: crash %s", m.node.ID())
			m.crash()
			time.Sleep(time.Second)
			slots[i].Store(c.restart(m))
		} else {
			t.Logf("nemesis: partition %s", m.node.ID())
			m.node.CutNetwork()
			time.Sleep(time.Second)
			m.node.HealNetwork()
		}
		c.waitLeader(3)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	clients.Wait()

	t.Logf("%d operations acknowledged, %d writes with unknown outcome", okOps.Load(), unknownOps.Load())
	if okOps.Load() < 50 {
		t.Fatalf("only %d operations succeeded: the cluster did not serve through the nemesis", okOps.Load())
	}
	res, info := porcupine.CheckOperationsVerbose(kvModel, history, 60*time.Second)
	switch res {
	case porcupine.Illegal:
		path := t.TempDir() + "/history.html"
		if err := porcupine.VisualizePath(kvModel, info, path); err != nil {
			t.Log(err)
		}
		t.Fatalf("history of %d operations is not linearizable (visualization: %s)", len(history), path)
	case porcupine.Unknown:
		t.Logf("linearizability check timed out on %d operations: no violation found", len(history))
	}
}
