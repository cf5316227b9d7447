package cache

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// Both store= files and Machine snapshots use one format:
//
//	magic [8]byte | version uint32 BE | sections uvarint | section... | crc32c uint32 BE
//	section: name | geometry | state | records uvarint | record...
//	geometry: items, blocks, blocksize, keysize uvarints, bitmap byte
//	state: nextScan varint, bitmap cursor uvarint, full uvarint, lastMod varint
//	record: key (uvarint len + bytes) | value (uvarint len + bytes) | expires varint | first block uvarint
//
// Expiry times are absolute unix nanoseconds, so a restart keeps them. The
// CRC covers everything before it: a torn or edited file is ErrCorrupt.
const formatVersion = 1

var (
	storeMagic    = [8]byte{'G', 'U', 'W', 'C', 'S', 'T', 'O', 'R'}
	snapshotMagic = [8]byte{'G', 'U', 'W', 'C', 'S', 'N', 'A', 'P'}
	castagnoli    = crc32.MakeTable(crc32.Castagnoli)
)

// geometry is what a cache's layout depends on; data written for one
// geometry is refused by a cache of another.
type geometry struct {
	items, blocks, blockSize, keySize int
	bitmap                            bool
}

func geometryOf(c Config) geometry {
	return geometry{items: c.Items, blocks: c.Blocks, blockSize: c.BlockSize, keySize: c.KeySize, bitmap: c.Bitmap}
}

func (g geometry) String() string {
	return fmt.Sprintf("items=%d,blocks=%d,blocksize=%d,keysize=%d,bitmap=%t", g.items, g.blocks, g.blockSize, g.keySize, g.bitmap)
}

// encoder writes the format and keeps the running CRC.
type encoder struct {
	dst io.Writer
	bw  *bufio.Writer
	crc hash.Hash32
	tmp []byte
}

func newEncoder(w io.Writer, magic [8]byte, sections int) *encoder {
	crc := crc32.New(castagnoli)
	en := &encoder{dst: w, bw: bufio.NewWriterSize(io.MultiWriter(w, crc), 64<<10), crc: crc}
	en.raw(magic[:])
	en.raw(binary.BigEndian.AppendUint32(nil, formatVersion))
	en.uvarint(uint64(sections))
	return en
}

func (en *encoder) raw(b []byte)     { en.bw.Write(b) } // errors surface at Flush
func (en *encoder) uvarint(v uint64) { en.raw(binary.AppendUvarint(en.tmp[:0], v)) }
func (en *encoder) varint(v int64)   { en.raw(binary.AppendVarint(en.tmp[:0], v)) }
func (en *encoder) bytes(b []byte)   { en.uvarint(uint64(len(b))); en.raw(b) }
func (en *encoder) flag(b bool)      { en.raw([]byte{boolByte(b)}) }

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// finish writes the CRC trailer.
func (en *encoder) finish() error {
	if err := en.bw.Flush(); err != nil {
		return err
	}
	_, err := en.dst.Write(binary.BigEndian.AppendUint32(nil, en.crc.Sum32()))
	return err
}

// encode writes e as one section. The caller holds e's owner's read lock.
func (e *engine) encode(en *encoder) {
	en.bytes([]byte(e.cfg.Name))
	g := geometryOf(e.cfg)
	en.uvarint(uint64(g.items))
	en.uvarint(uint64(g.blocks))
	en.uvarint(uint64(g.blockSize))
	en.uvarint(uint64(g.keySize))
	en.flag(g.bitmap)
	en.varint(e.nextScan)
	var pos int
	if e.blocks != nil {
		pos = e.blocks.pos
	}
	en.uvarint(uint64(pos))
	en.uvarint(e.full)
	en.varint(e.lastMod)
	order := e.recordOrder()
	en.uvarint(uint64(len(order)))
	for _, i := range order {
		en.bytes(e.keyAt(i))
		en.bytes(e.valueAt(i))
		en.varint(e.slots[i].expires)
		en.uvarint(uint64(e.slots[i].firstBlock))
	}
}

// decoder reads the format, feeding every consumed byte to the CRC.
type decoder struct {
	br  *bufio.Reader
	crc hash.Hash32
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// newDecoder checks magic and version and returns the section count.
func newDecoder(r io.Reader, magic [8]byte) (*decoder, int, error) {
	d := &decoder{br: bufio.NewReaderSize(r, 64<<10), crc: crc32.New(castagnoli)}
	var head [12]byte
	if err := d.full(head[:]); err != nil {
		return nil, 0, err
	}
	if [8]byte(head[:8]) != magic {
		return nil, 0, corrupt("bad magic %q, want %q", head[:8], magic[:])
	}
	if v := binary.BigEndian.Uint32(head[8:]); v != formatVersion {
		return nil, 0, corrupt("unsupported format version %d (this build reads %d)", v, formatVersion)
	}
	n, err := d.count("sections", 1<<16)
	return d, n, err
}

func (d *decoder) full(b []byte) error {
	if _, err := io.ReadFull(d.br, b); err != nil {
		return corrupt("truncated: %v", err)
	}
	d.crc.Write(b)
	return nil
}

func (d *decoder) ReadByte() (byte, error) {
	b, err := d.br.ReadByte()
	if err != nil {
		return 0, corrupt("truncated: %v", err)
	}
	d.crc.Write([]byte{b})
	return b, nil
}

func (d *decoder) uvarint() (uint64, error) {
	v, err := binary.ReadUvarint(d)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		err = corrupt("bad number: %v", err)
	}
	return v, err
}

func (d *decoder) varint() (int64, error) {
	v, err := binary.ReadVarint(d)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		err = corrupt("bad number: %v", err)
	}
	return v, err
}

// count reads a non-negative number no larger than limit.
func (d *decoder) count(what string, limit uint64) (int, error) {
	v, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	if v > limit {
		return 0, corrupt("%s %d above limit %d", what, v, limit)
	}
	return int(v), nil
}

// bytes reads a length-prefixed string of at most limit bytes.
func (d *decoder) bytes(what string, limit int) ([]byte, error) {
	n, err := d.count(what+" length", uint64(limit))
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	return b, d.full(b)
}

// finish checks the CRC trailer and that nothing follows it.
func (d *decoder) finish() error {
	want := d.crc.Sum32()
	var tail [4]byte
	if _, err := io.ReadFull(d.br, tail[:]); err != nil {
		return corrupt("missing checksum: %v", err)
	}
	if got := binary.BigEndian.Uint32(tail[:]); got != want {
		return corrupt("checksum %08x, computed %08x", got, want)
	}
	if _, err := d.br.ReadByte(); err != io.EOF {
		return corrupt("trailing data after checksum")
	}
	return nil
}

// sectionName reads the name that opens a section.
func (d *decoder) sectionName() (string, error) {
	b, err := d.bytes("cache name", 1<<16)
	return string(b), err
}

// section reads the rest of a section into a fresh engine for cfg. Records
// expired at dropBefore (unix nanos, 0 = keep all) are skipped.
func (d *decoder) section(cfg Config, lazy bool, logger *slog.Logger, dropBefore int64) (*engine, error) {
	var g geometry
	for _, f := range []*int{&g.items, &g.blocks, &g.blockSize, &g.keySize} {
		v, err := d.count("geometry", maxArenaBytes)
		if err != nil {
			return nil, err
		}
		*f = v
	}
	bm, err := d.ReadByte()
	if err != nil {
		return nil, err
	}
	g.bitmap = bm != 0
	if want := geometryOf(cfg); g != want {
		return nil, fmt.Errorf("%w: data has %s, cache %q is configured with %s", ErrGeometry, g, cfg.Name, want)
	}
	e := newEngine(cfg, lazy, logger)
	if e.nextScan, err = d.varint(); err != nil {
		return nil, err
	}
	pos, err := d.count("bitmap cursor", uint64(cfg.Blocks))
	if err != nil {
		return nil, err
	}
	if e.blocks != nil {
		e.blocks.pos = pos % cfg.Blocks
	}
	if e.full, err = d.uvarint(); err != nil {
		return nil, err
	}
	if e.lastMod, err = d.varint(); err != nil {
		return nil, err
	}
	n, err := d.count("records", uint64(cfg.Items-1))
	if err != nil {
		return nil, err
	}
	for range n {
		key, err := d.bytes("key", cfg.KeySize)
		if err != nil {
			return nil, err
		}
		val, err := d.bytes("value", e.maxItemSize)
		if err != nil {
			return nil, err
		}
		expires, err := d.varint()
		if err != nil {
			return nil, err
		}
		block, err := d.count("first block", uint64(cfg.Blocks))
		if err != nil {
			return nil, err
		}
		if dropBefore != 0 && expires != 0 && expires <= dropBefore {
			continue
		}
		if err := e.restoreItem(string(key), val, expires, block); err != nil {
			return nil, err
		}
	}
	e.version = 0
	return e, nil
}

// restoreItem inserts a decoded record at its recorded blocks.
func (e *engine) restoreItem(key string, val []byte, expires int64, block int) error {
	if err := e.checkKey(key); err != nil {
		return corrupt("%v", err)
	}
	if err := e.checkValue(val); err != nil {
		return corrupt("%v", err)
	}
	if expires < 0 {
		return corrupt("key %q: negative expiry", key)
	}
	i, h := e.lookupHash(key)
	if i != 0 {
		return corrupt("key %q appears twice", key)
	}
	if len(e.free) == 0 {
		return corrupt("more records than slots")
	}
	i = e.free[len(e.free)-1]
	first := int(i - 1)
	if e.blocks != nil {
		need := e.blocksFor(len(val))
		if !e.blocks.isFree(block, need) {
			return corrupt("key %q: blocks %d..%d overlap another item or the end", key, block, block+need-1)
		}
		e.blocks.mark(block, need)
		first = block
	}
	e.free = e.free[:len(e.free)-1]
	e.slots[i].firstBlock = first
	e.link(i, key, h, len(val), expires)
	copy(e.valueAt(i), val)
	return nil
}

// writeFileAtomic replaces path with data: temp file in the same directory,
// fsync, rename, fsync of the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	tmp := f.Name()
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		// Best effort: the rename is durable only once the directory is.
		d.Sync()
		d.Close()
	}
	return nil
}
