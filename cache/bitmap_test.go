package cache

import (
	"math/rand/v2"
	"testing"
)

// usedCount is the number of blocks in use.
func (b *blockMap) usedCount() int {
	c := 0
	for i := range b.n {
		if b.used(i) {
			c++
		}
	}
	return c
}

// naiveAlloc is the specification of blockMap.alloc: next-fit from pos over
// a []bool, runs never wrapping.
func naiveAlloc(used []bool, pos, need int) (int, bool) {
	fits := func(s int) bool {
		if s+need > len(used) {
			return false
		}
		for i := s; i < s+need; i++ {
			if used[i] {
				return false
			}
		}
		return true
	}
	for s := pos; s < len(used); s++ {
		if fits(s) {
			return s, true
		}
	}
	for s := 0; s < pos && s+need-1 < min(pos+need-1, len(used)); s++ {
		if fits(s) {
			return s, true
		}
	}
	return 0, false
}

func TestBlockMapMatchesNaive(t *testing.T) {
	for _, n := range []int{1, 7, 64, 65, 200, 1000} {
		t.Run("", func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(n), 1))
			b := newBlockMap(n)
			ref := make([]bool, n)
			type run struct{ start, n int }
			var live []run
			for step := range 3000 {
				if len(live) > 0 && r.IntN(3) == 0 {
					k := r.IntN(len(live))
					b.release(live[k].start, live[k].n)
					for i := live[k].start; i < live[k].start+live[k].n; i++ {
						ref[i] = false
					}
					live = append(live[:k], live[k+1:]...)
					continue
				}
				need := 1 + r.IntN(min(n, 150))
				wantStart, wantOK := naiveAlloc(ref, b.pos, need)
				if !b.isFree(wantStart, need) && wantOK {
					t.Fatalf("step %d: isFree disagrees with the reference at %d+%d", step, wantStart, need)
				}
				start, ok := b.alloc(need)
				if ok != wantOK || (ok && start != wantStart) {
					t.Fatalf("step %d: alloc(%d) = %d, %v; reference %d, %v", step, need, start, ok, wantStart, wantOK)
				}
				if ok {
					for i := start; i < start+need; i++ {
						ref[i] = true
					}
					live = append(live, run{start, need})
				}
				for i := range n {
					if b.used(i) != ref[i] {
						t.Fatalf("step %d: block %d used=%v, reference %v", step, i, b.used(i), ref[i])
					}
				}
			}
		})
	}
}
