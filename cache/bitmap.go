package cache

// blockMap tracks which blocks of a bitmap-mode cache are in use. A value
// occupies a run of contiguous blocks; allocation is next-fit from pos, as
// uWSGI's uwsgi_cache_find_free_blocks, and runs never wrap around.
type blockMap struct {
	words []uint64
	n     int // number of blocks
	pos   int // where the next search starts
}

func newBlockMap(n int) *blockMap {
	return &blockMap{words: make([]uint64, (n+63)/64), n: n}
}

func (b *blockMap) used(i int) bool { return b.words[i>>6]&(1<<(uint(i)&63)) != 0 }

// alloc finds, marks and returns the first run of need free blocks at or
// after pos, then from the start.
func (b *blockMap) alloc(need int) (int, bool) {
	start, ok := b.findRun(b.pos, b.n, need)
	if !ok {
		start, ok = b.findRun(0, min(b.pos+need-1, b.n), need)
	}
	if !ok {
		return 0, false
	}
	b.mark(start, need)
	b.pos = start + need
	if b.pos >= b.n {
		b.pos = 0
	}
	return start, true
}

// findRun looks for need free blocks inside [from, to).
func (b *blockMap) findRun(from, to, need int) (int, bool) {
	run := 0
	for i := from; i < to; {
		w := b.words[i>>6]
		if i&63 == 0 && i+64 <= to {
			// Whole words are the common case on a big map: skip or count them at once.
			switch w {
			case ^uint64(0):
				run = 0
				i += 64
				continue
			case 0:
				if run+64 >= need {
					return i - run, true
				}
				run += 64
				i += 64
				continue
			}
		}
		if w&(1<<(uint(i)&63)) != 0 {
			run = 0
		} else if run++; run == need {
			return i - need + 1, true
		}
		i++
	}
	return 0, false
}

// isFree reports whether blocks [start, start+n) exist and are all free.
func (b *blockMap) isFree(start, n int) bool {
	if start < 0 || n < 1 || start+n > b.n {
		return false
	}
	for i := start; i < start+n; i++ {
		if b.used(i) {
			return false
		}
	}
	return true
}

func (b *blockMap) mark(start, n int)    { b.setRange(start, n, true) }
func (b *blockMap) release(start, n int) { b.setRange(start, n, false) }

func (b *blockMap) setRange(start, n int, on bool) {
	for i := start; i < start+n; {
		off := uint(i) & 63
		span := min(64-int(off), start+n-i)
		mask := (^uint64(0) >> (64 - uint(span))) << off
		if on {
			b.words[i>>6] |= mask
		} else {
			b.words[i>>6] &^= mask
		}
		i += span
	}
}
