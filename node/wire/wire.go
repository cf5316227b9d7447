// Package wire owns the uwsgi binary protocol: the 4-byte packet header, the
// vars block nginx's uwsgi_pass sends, and the framing gouwsgi's master and
// its Python workers use on their persistent per-slot connections.
//
// Everything here is pure (no sockets, no goroutines) so it can be fuzzed.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrTruncated means a packet or vars block ended in the middle of a field.
	ErrTruncated = errors.New("uwsgi packet truncated")
	// ErrTooLarge means the vars block is larger than the configured buffer-size.
	ErrTooLarge = errors.New("uwsgi packet larger than buffer-size")
	// ErrEmptyKey means a var had a zero-length name, which uWSGI rejects too.
	ErrEmptyKey = errors.New("uwsgi var with empty key")
	// ErrTooManyVars means the block holds more vars than max-vars allows.
	ErrTooManyVars = errors.New("uwsgi packet has too many vars")
)

// HeaderSize is the size of the uwsgi packet header.
const HeaderSize = 4

// Header is the 4-byte uwsgi packet header: modifier1, a little-endian
// 16-bit size of the vars block (body excluded) and modifier2.
type Header struct {
	Modifier1 uint8
	Size      uint16
	Modifier2 uint8
}

// ParseHeader decodes the 4-byte header at the start of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("header needs %d bytes, got %d: %w", HeaderSize, len(b), ErrTruncated)
	}
	return Header{Modifier1: b[0], Size: binary.LittleEndian.Uint16(b[1:3]), Modifier2: b[3]}, nil
}

// Append appends the encoded header to b.
func (h Header) Append(b []byte) []byte {
	return append(b, h.Modifier1, byte(h.Size), byte(h.Size>>8), h.Modifier2)
}

// Var is one key/value pair of a vars block. Order is kept because nginx
// and CGI consumers care about it for duplicates.
type Var struct {
	Key, Value string
}

// Vars is an ordered vars block.
type Vars []Var

// Get returns the value of the first var named key.
func (vs Vars) Get(key string) (string, bool) {
	for i := range vs {
		if vs[i].Key == key {
			return vs[i].Value, true
		}
	}
	return "", false
}

// Value returns the value of key or "" when absent.
func (vs Vars) Value(key string) string {
	v, _ := vs.Get(key)
	return v
}

// Set replaces the first var named key, or appends it.
func (vs *Vars) Set(key, value string) {
	for i := range *vs {
		if (*vs)[i].Key == key {
			(*vs)[i].Value = value
			return
		}
	}
	*vs = append(*vs, Var{key, value})
}

// Del removes every var named key.
func (vs *Vars) Del(key string) {
	out := (*vs)[:0]
	for _, v := range *vs {
		if v.Key != key {
			out = append(out, v)
		}
	}
	*vs = out
}

// EncodedLen is the size of the vars block Append would produce.
func (vs Vars) EncodedLen() int {
	n := 0
	for _, v := range vs {
		n += 4 + len(v.Key) + len(v.Value)
	}
	return n
}

// Append encodes the vars block (without header) onto b. Keys and values
// longer than 65535 bytes cannot be represented and are an error.
func (vs Vars) Append(b []byte) ([]byte, error) {
	for _, v := range vs {
		if len(v.Key) > 0xffff || len(v.Value) > 0xffff {
			return b, fmt.Errorf("var %.32q: key or value over 65535 bytes: %w", v.Key, ErrTooLarge)
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(len(v.Key)))
		b = append(b, v.Key...)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(v.Value)))
		b = append(b, v.Value...)
	}
	return b, nil
}

// ParseVars decodes a vars block. maxVars bounds the number of pairs
// (0 means unbounded).
func ParseVars(b []byte, maxVars int) (Vars, error) {
	// One string for the block that every key and value is a slice of:
	// two allocations per packet rather than two per var.
	block := string(b)
	vs := make(Vars, 0, 24)
	for off := 0; off < len(b); {
		if maxVars > 0 && len(vs) >= maxVars {
			return nil, fmt.Errorf("more than %d vars: %w", maxVars, ErrTooManyVars)
		}
		k, n, err := readString(block, off)
		if err != nil {
			return nil, fmt.Errorf("var %d key at offset %d: %w", len(vs), off, err)
		}
		if len(k) == 0 {
			return nil, fmt.Errorf("var %d at offset %d: %w", len(vs), off, ErrEmptyKey)
		}
		off = n
		v, n, err := readString(block, off)
		if err != nil {
			return nil, fmt.Errorf("var %q value at offset %d: %w", k, off, err)
		}
		off = n
		vs = append(vs, Var{k, v})
	}
	return vs, nil
}

// NextVar decodes the var at offset off of a vars block held in a string.
// Key and value are slices of block, so a caller that converts a block once
// pays no allocation per var; next is the offset of the following var. An
// empty key is returned as is: callers decide whether they accept it.
func NextVar(block string, off int) (key, value string, next int, err error) {
	key, next, err = readString(block, off)
	if err != nil {
		return "", "", off, fmt.Errorf("var key at offset %d: %w", off, err)
	}
	value, next, err = readString(block, next)
	if err != nil {
		return "", "", off, fmt.Errorf("var %q value: %w", key, err)
	}
	return key, value, next, nil
}

func readString(b string, off int) (string, int, error) {
	if len(b)-off < 2 {
		return "", off, ErrTruncated
	}
	l := int(b[off]) | int(b[off+1])<<8
	off += 2
	if len(b)-off < l {
		return "", off, ErrTruncated
	}
	return b[off : off+l], off + l, nil
}

// Packet is a decoded uwsgi request packet (the body, if any, follows it on
// the stream and is not part of the packet).
type Packet struct {
	Header Header
	Vars   Vars
}

// ReadPacket reads one header and vars block from r. A vars block larger
// than bufferSize is refused before it is read, as uWSGI does
// ("invalid request block size").
func ReadPacket(r io.Reader, bufferSize, maxVars int) (Packet, error) {
	var hb [HeaderSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Packet{}, fmt.Errorf("read uwsgi header: %w", ErrTruncated)
		}
		return Packet{}, fmt.Errorf("read uwsgi header: %w", err)
	}
	h, _ := ParseHeader(hb[:])
	if int(h.Size) > bufferSize {
		return Packet{Header: h}, fmt.Errorf("invalid request block size: %d (max %d): %w", h.Size, bufferSize, ErrTooLarge)
	}
	buf := make([]byte, h.Size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return Packet{Header: h}, fmt.Errorf("read uwsgi vars block of %d bytes: %w", h.Size, ErrTruncated)
	}
	vs, err := ParseVars(buf, maxVars)
	if err != nil {
		return Packet{Header: h}, err
	}
	return Packet{Header: h, Vars: vs}, nil
}

// AppendPacket encodes a header (with the computed size) and the vars.
func AppendPacket(b []byte, mod1, mod2 uint8, vs Vars) ([]byte, error) {
	n := vs.EncodedLen()
	if n > 0xffff {
		return b, fmt.Errorf("vars block of %d bytes: %w", n, ErrTooLarge)
	}
	b = Header{Modifier1: mod1, Size: uint16(n), Modifier2: mod2}.Append(b)
	return vs.Append(b)
}
