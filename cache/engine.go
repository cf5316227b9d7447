package cache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
)

// MathOp is an arithmetic operation on an 8-byte native-endian int64 value.
type MathOp uint8

// Math operations, as uWSGI's cache_inc/dec/mul/div.
const (
	MathInc MathOp = iota + 1
	MathDec
	MathMul
	MathDiv
)

func (op MathOp) String() string {
	switch op {
	case MathInc:
		return "inc"
	case MathDec:
		return "dec"
	case MathMul:
		return "mul"
	case MathDiv:
		return "div"
	}
	return fmt.Sprintf("mathop(%d)", uint8(op))
}

// apply computes cur op operand; division by zero gives 0 as in uWSGI, and
// overflow wraps as C's int64 does on the platforms uWSGI runs on.
func (op MathOp) apply(cur, operand int64) (int64, error) {
	switch op {
	case MathInc:
		return cur + operand, nil
	case MathDec:
		return cur - operand, nil
	case MathMul:
		return cur * operand, nil
	case MathDiv:
		if operand == 0 {
			return 0, nil
		}
		return cur / operand, nil
	}
	return 0, fmt.Errorf("%w: %s", ErrUnknownOp, op)
}

// slot is one item header. Index 0 is the "none" value of every link, which
// is why uWSGI reserves slot 0; keyLen 0 marks a free slot.
type slot struct {
	expires    int64 // absolute unix nanos; 0 = never
	valLen     int
	firstBlock int
	hash       uint32
	next, prev uint32 // bucket chain
	lruNext    uint32 // towards the most recently used
	lruPrev    uint32 // towards the least recently used
	keyLen     uint16
}

// engine is the one hash/LRU/capacity implementation behind Local and
// Machine. It never reads a clock: every method that needs time takes now
// (unix nanos). It does no locking; its owner does. Given the same calls in
// the same order two engines reach the same state, which is what Machine
// relies on.
type engine struct {
	cfg         Config
	hash        hashFunc
	maxItemSize int
	// lazy deletes expired items met by a lookup (lazy_expire, and always
	// in a Machine, whose reads hide expired items).
	lazy   bool
	logger *slog.Logger // nil: silent

	buckets []uint32
	slots   []slot
	keys    []byte // (Items-1)*KeySize, preallocated off the heap
	data    []byte // dataBlocks*BlockSize, preallocated off the heap
	free    []uint32
	blocks  *blockMap // bitmap mode only

	lruHead, lruTail uint32 // least and most recently used (purge_lru only)
	count            int
	// earliest is a lower bound on the expiry of every item, 0 if none
	// expires: sweeps before it have nothing to do.
	earliest   int64
	nextScan   int64 // sweep_on_full rate limit
	full       uint64
	lastMod    int64
	fullWarned bool
	// version changes on every mutation so Local.Sync can skip clean stores.
	version uint64

	hits, miss atomic.Uint64
}

func newEngine(cfg Config, lazy bool, logger *slog.Logger) *engine {
	hf, _ := hashByName(cfg.Hash)
	e := &engine{
		cfg:         cfg,
		hash:        hf,
		maxItemSize: cfg.maxItemSize(),
		lazy:        lazy || cfg.LazyExpire,
		logger:      logger,
		buckets:     make([]uint32, cfg.HashSize),
		slots:       make([]slot, cfg.Items),
		free:        make([]uint32, 0, cfg.Items-1),
	}
	e.keys = offHeap(e, (cfg.Items-1)*cfg.KeySize)
	e.data = offHeap(e, cfg.dataBlocks()*cfg.BlockSize)
	// Pushed in reverse so slot 1 is handed out first.
	for i := cfg.Items - 1; i >= 1; i-- {
		e.free = append(e.free, uint32(i))
	}
	if cfg.Bitmap {
		e.blocks = newBlockMap(cfg.Blocks)
	}
	return e
}

func (e *engine) keyAt(i uint32) []byte {
	off := int(i-1) * e.cfg.KeySize
	return e.keys[off : off+int(e.slots[i].keyLen)]
}

func (e *engine) valueAt(i uint32) []byte {
	s := &e.slots[i]
	off := s.firstBlock * e.cfg.BlockSize
	return e.data[off : off+s.valLen]
}

func (e *engine) blocksFor(size int) int { return (size + e.cfg.BlockSize - 1) / e.cfg.BlockSize }

func (e *engine) expired(i uint32, now int64) bool {
	x := e.slots[i].expires
	return x != 0 && x <= now
}

// lookup finds key without side effects; 0 means absent.
func (e *engine) lookup(key string) uint32 {
	i, _ := e.lookupHash(key)
	return i
}

func (e *engine) lookupHash(key string) (uint32, uint32) {
	h := e.hash(key)
	for i := e.buckets[h%uint32(len(e.buckets))]; i != 0; i = e.slots[i].next {
		s := &e.slots[i]
		if s.hash == h && int(s.keyLen) == len(key) && string(e.keyAt(i)) == key {
			return i, h
		}
	}
	return 0, h
}

// find is the lookup of every mutating path: under lazy expiry an expired
// item is deleted and reported absent, as uWSGI's check_lazy.
func (e *engine) find(key string, now int64) (uint32, uint32) {
	i, h := e.lookupHash(key)
	if i != 0 && e.lazy && e.expired(i, now) {
		e.remove(i)
		return 0, h
	}
	return i, h
}

func (e *engine) checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("cache %q: %w", e.cfg.Name, ErrEmptyKey)
	case len(key) > e.cfg.KeySize:
		return fmt.Errorf("cache %q: key of %d bytes, keysize is %d: %w", e.cfg.Name, len(key), e.cfg.KeySize, ErrKeyTooLong)
	}
	return nil
}

func (e *engine) checkValue(val []byte) error {
	switch {
	case len(val) == 0:
		return fmt.Errorf("cache %q: %w", e.cfg.Name, ErrEmptyValue)
	case len(val) > e.maxItemSize:
		return fmt.Errorf("cache %q: value of %d bytes, max item size is %d: %w", e.cfg.Name, len(val), e.maxItemSize, ErrTooLarge)
	}
	return nil
}

// touch moves i to the most recently used end of the LRU list.
func (e *engine) touch(i uint32) {
	if !e.cfg.PurgeLRU || e.lruTail == i {
		return
	}
	e.lruUnlink(i)
	e.lruAppend(i)
}

func (e *engine) lruAppend(i uint32) {
	s := &e.slots[i]
	s.lruPrev, s.lruNext = e.lruTail, 0
	if e.lruTail != 0 {
		e.slots[e.lruTail].lruNext = i
	} else {
		e.lruHead = i
	}
	e.lruTail = i
}

func (e *engine) lruUnlink(i uint32) {
	s := &e.slots[i]
	if s.lruNext != 0 {
		e.slots[s.lruNext].lruPrev = s.lruPrev
	} else {
		e.lruTail = s.lruPrev
	}
	if s.lruPrev != 0 {
		e.slots[s.lruPrev].lruNext = s.lruNext
	} else {
		e.lruHead = s.lruNext
	}
}

func (e *engine) modified(now int64) {
	e.version++
	if e.cfg.LastMod {
		e.lastMod = now
	}
}

func (e *engine) noteExpiry(at int64) {
	if at != 0 && (e.earliest == 0 || at < e.earliest) {
		e.earliest = at
	}
}

// remove frees slot i and its blocks.
func (e *engine) remove(i uint32) {
	s := &e.slots[i]
	if s.prev != 0 {
		e.slots[s.prev].next = s.next
	} else {
		e.buckets[s.hash%uint32(len(e.buckets))] = s.next
	}
	if s.next != 0 {
		e.slots[s.next].prev = s.prev
	}
	if e.cfg.PurgeLRU {
		e.lruUnlink(i)
	}
	if e.blocks != nil {
		e.blocks.release(s.firstBlock, e.blocksFor(s.valLen))
	}
	*s = slot{}
	e.free = append(e.free, i)
	e.count--
	e.version++
}

// place takes a free slot with room for size bytes and links key into it,
// running the full policy once when there is no room. The caller writes the
// value.
func (e *engine) place(key string, h uint32, size int, expiresAt, now int64) (uint32, error) {
	handled := false
	for {
		if i, ok := e.reserve(size); ok {
			e.link(i, key, h, size, expiresAt)
			return i, nil
		}
		switch {
		case !handled:
			e.onFull(now)
			handled = true
		case e.cfg.PurgeLRU && e.lruHead != 0:
			// A bitmap value may need more contiguous blocks than one
			// eviction frees: keep evicting the oldest until it fits.
			e.remove(e.lruHead)
		default:
			return 0, fmt.Errorf("cache %q: %w", e.cfg.Name, ErrFull)
		}
	}
}

// link fills the header of the reserved slot i and puts it in its bucket
// and at the most recently used end of the LRU list.
func (e *engine) link(i uint32, key string, h uint32, size int, expiresAt int64) {
	s := &e.slots[i]
	s.hash, s.keyLen, s.valLen, s.expires = h, uint16(len(key)), size, expiresAt
	copy(e.keys[int(i-1)*e.cfg.KeySize:], key)
	b := h % uint32(len(e.buckets))
	s.next = e.buckets[b]
	if s.next != 0 {
		e.slots[s.next].prev = i
	}
	e.buckets[b] = i
	if e.cfg.PurgeLRU {
		e.lruAppend(i)
	}
	e.noteExpiry(expiresAt)
	e.count++
}

// reserve pops a free slot and, in bitmap mode, a run of blocks.
func (e *engine) reserve(size int) (uint32, bool) {
	if len(e.free) == 0 {
		return 0, false
	}
	i := e.free[len(e.free)-1]
	first := int(i - 1)
	if e.blocks != nil {
		b, ok := e.blocks.alloc(e.blocksFor(size))
		if !ok {
			return 0, false
		}
		first = b
	}
	e.free = e.free[:len(e.free)-1]
	e.slots[i].firstBlock = first
	return i, true
}

// onFull is uWSGI's cache_full: warn, count, then purge_lru, sweep_on_full
// and clear_on_full in that order.
func (e *engine) onFull(now int64) {
	e.full++
	if !e.cfg.IgnoreFull && !e.fullWarned && e.logger != nil {
		if e.cfg.PurgeLRU {
			e.logger.Warn(fmt.Sprintf("LRU item will be purged from cache %q", e.cfg.Name), "cache", e.cfg.Name)
		} else {
			e.logger.Warn(fmt.Sprintf("*** DANGER cache %q is FULL !!! ***", e.cfg.Name), "cache", e.cfg.Name)
		}
	}
	// Warn once per episode: the flag is reset when del, clear or a sweep frees room.
	e.fullWarned = true
	if e.cfg.PurgeLRU && e.lruHead != 0 {
		e.remove(e.lruHead)
	}
	clear := e.cfg.ClearOnFull
	if e.cfg.SweepOnFull > 0 && e.nextScan <= now {
		e.nextScan = now + int64(e.cfg.SweepOnFull)
		if e.sweepExpired(now) > 0 {
			clear = false
		}
	}
	if clear {
		e.removeAll()
	}
}

// write stores val (an add when add is set, else an upsert) with an
// absolute expiry.
func (e *engine) write(key string, val []byte, expiresAt, now int64, add bool) error {
	if err := e.checkKey(key); err != nil {
		return err
	}
	if err := e.checkValue(val); err != nil {
		return err
	}
	if expiresAt < 0 {
		return fmt.Errorf("cache %q: %w", e.cfg.Name, ErrBadExpiry)
	}
	i, h := e.find(key, now)
	if i != 0 && add {
		return fmt.Errorf("cache %q: set %q: %w", e.cfg.Name, key, ErrExists)
	}
	if i != 0 && !e.resize(i, len(val)) {
		// No room for the bigger value where it is: the old value is being
		// replaced anyway, so drop it and insert as a new item.
		e.remove(i)
		i = 0
	}
	if i == 0 {
		var err error
		if i, err = e.place(key, h, len(val), expiresAt, now); err != nil {
			return err
		}
	} else {
		e.slots[i].expires = expiresAt
		e.noteExpiry(expiresAt)
		e.touch(i)
	}
	copy(e.valueAt(i), val)
	e.modified(now)
	return nil
}

// resize makes slot i hold size bytes, moving it to other blocks in bitmap
// mode; false means no run of free blocks was big enough.
func (e *engine) resize(i uint32, size int) bool {
	s := &e.slots[i]
	if e.blocks == nil {
		s.valLen = size
		return true
	}
	have, need := e.blocksFor(s.valLen), e.blocksFor(size)
	switch {
	case need < have:
		e.blocks.release(s.firstBlock+need, have-need)
	case need > have:
		e.blocks.release(s.firstBlock, have)
		b, ok := e.blocks.alloc(need)
		if !ok {
			e.blocks.mark(s.firstBlock, have)
			return false
		}
		s.firstBlock = b
	}
	s.valLen = size
	return true
}

// math applies op to the number at key. A missing key starts at
// math_initial and gets expiresAt; an existing one keeps its expiry and LRU
// position, as uWSGI's FIXEXPIRE math.
func (e *engine) math(op MathOp, key string, operand, expiresAt, now int64) (int64, error) {
	if err := e.checkKey(key); err != nil {
		return 0, err
	}
	if expiresAt < 0 {
		return 0, fmt.Errorf("cache %q: %w", e.cfg.Name, ErrBadExpiry)
	}
	i, h := e.find(key, now)
	cur := e.cfg.MathInitial
	if i != 0 {
		if e.slots[i].valLen != 8 {
			return 0, fmt.Errorf("cache %q: %s %q: %w", e.cfg.Name, op, key, ErrNotNumber)
		}
		cur = int64(binary.NativeEndian.Uint64(e.valueAt(i)))
	}
	v, err := op.apply(cur, operand)
	if err != nil {
		return 0, err
	}
	if i == 0 {
		if 8 > e.maxItemSize {
			return 0, fmt.Errorf("cache %q: value of 8 bytes, max item size is %d: %w", e.cfg.Name, e.maxItemSize, ErrTooLarge)
		}
		if i, err = e.place(key, h, 8, expiresAt, now); err != nil {
			return 0, err
		}
	}
	binary.NativeEndian.PutUint64(e.valueAt(i), uint64(v))
	e.modified(now)
	return v, nil
}

// del removes key; an expired item under lazy expiry counts as absent.
func (e *engine) del(key string, now int64) error {
	if err := e.checkKey(key); err != nil {
		return err
	}
	i, _ := e.find(key, now)
	if i == 0 {
		return fmt.Errorf("cache %q: del %q: %w", e.cfg.Name, key, ErrNotFound)
	}
	e.remove(i)
	e.roomFreed(now)
	return nil
}

// clear removes every item and returns how many there were.
func (e *engine) clear(now int64) int {
	n := e.removeAll()
	e.roomFreed(now)
	return n
}

// sweep removes expired items unless the cache has no_expire.
func (e *engine) sweep(now int64) int {
	if e.cfg.NoExpire {
		return 0
	}
	n := e.sweepExpired(now)
	if n > 0 {
		e.roomFreed(now)
	}
	return n
}

func (e *engine) roomFreed(now int64) {
	e.fullWarned = false
	e.modified(now)
}

func (e *engine) removeAll() int {
	n := 0
	for i := uint32(1); i < uint32(len(e.slots)); i++ {
		if e.slots[i].keyLen != 0 {
			e.remove(i)
			n++
		}
	}
	e.earliest = 0
	return n
}

func (e *engine) sweepExpired(now int64) int {
	if e.earliest == 0 || e.earliest > now {
		return 0
	}
	n := 0
	var earliest int64
	for i := uint32(1); i < uint32(len(e.slots)); i++ {
		s := &e.slots[i]
		if s.keyLen == 0 || s.expires == 0 {
			continue
		}
		if s.expires <= now {
			e.remove(i)
			n++
		} else if earliest == 0 || s.expires < earliest {
			earliest = s.expires
		}
	}
	e.earliest = earliest
	return n
}

// liveKeys returns the keys in sorted order, leaving out expired items when
// hideExpired is set.
func (e *engine) liveKeys(now int64, hideExpired bool) []string {
	keys := make([]string, 0, e.count)
	for i := uint32(1); i < uint32(len(e.slots)); i++ {
		if e.slots[i].keyLen != 0 && !(hideExpired && e.expired(i, now)) {
			keys = append(keys, string(e.keyAt(i)))
		}
	}
	slices.Sort(keys)
	return keys
}

// sortedSlots returns the used slots ordered by key, for canonical output.
func (e *engine) sortedSlots() []uint32 {
	idx := make([]uint32, 0, e.count)
	for i := uint32(1); i < uint32(len(e.slots)); i++ {
		if e.slots[i].keyLen != 0 {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(a, b uint32) int { return bytes.Compare(e.keyAt(a), e.keyAt(b)) })
	return idx
}

// recordOrder returns the used slots in the order a restore must insert
// them: LRU order (oldest first) when it matters, else slot order.
func (e *engine) recordOrder() []uint32 {
	idx := make([]uint32, 0, e.count)
	if e.cfg.PurgeLRU {
		for i := e.lruHead; i != 0; i = e.slots[i].lruNext {
			idx = append(idx, i)
		}
		return idx
	}
	for i := uint32(1); i < uint32(len(e.slots)); i++ {
		if e.slots[i].keyLen != 0 {
			idx = append(idx, i)
		}
	}
	return idx
}

// Stats is one cache's entry in the stats server's caches[] list, with
// uWSGI's JSON names.
type Stats struct {
	Name           string `json:"name"`
	Hash           string `json:"hash"`
	HashSize       uint64 `json:"hashsize"`
	KeySize        uint64 `json:"keysize"`
	MaxItems       uint64 `json:"max_items"`
	Blocks         uint64 `json:"blocks"`
	BlockSize      uint64 `json:"blocksize"`
	Items          uint64 `json:"items"`
	Hits           uint64 `json:"hits"`
	Miss           uint64 `json:"miss"`
	Full           uint64 `json:"full"`
	LastModifiedAt int64  `json:"last_modified_at"` // unix seconds; 0 unless lastmod
}

func (e *engine) stats() Stats {
	var lastMod int64
	if e.lastMod != 0 {
		lastMod = e.lastMod / 1e9
	}
	return Stats{
		Name:           e.cfg.Name,
		Hash:           e.cfg.Hash,
		HashSize:       uint64(e.cfg.HashSize),
		KeySize:        uint64(e.cfg.KeySize),
		MaxItems:       uint64(e.cfg.Items),
		Blocks:         uint64(e.cfg.Blocks),
		BlockSize:      uint64(e.cfg.BlockSize),
		Items:          uint64(e.count),
		Hits:           e.hits.Load(),
		Miss:           e.miss.Load(),
		Full:           e.full,
		LastModifiedAt: lastMod,
	}
}
