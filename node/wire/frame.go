package wire

import (
	"bufio"
	"fmt"
	"io"
)

// Modifiers of the master↔worker protocol. Every message on a worker
// connection is a plain uwsgi packet (4-byte header + payload of at most
// 65535 bytes); modifier1 says what the payload is. The request itself is
// the standard modifier1 0 vars block, so a worker is a normal uwsgi peer.
//
// Data connection (one per worker thread, master → worker):
//
//	ModRequest vars          the WSGI environ
//	ModBody ... ModBody/End  the request body in chunks, always terminated
//
// The master may send a request before the previous one on the connection
// is answered (pipelining); the worker reads the next request only when it
// has answered the previous one.
//
// Data connection (worker → master), one response per request, in order:
//
//	ModHeaders vars          first pair ":status" = "200 OK", then headers
//	ModBody ...              response body chunks
//	ModEnd vars              end of response; "exception"="1" when the app
//	                         raised; "aborted"="1" when the body was cut
//
// Control connection (one per worker):
//
//	worker → master ModHello (mod2 0 ready, mod2 1 app failed with vars
//	"error"); ModCall vars + body stream, answered by ModReply vars (mod2 is
//	a ReplyStatus) + body stream. Zygote spawning uses ModSpawn/ModSpawned.
const (
	ModRequest uint8 = 0
	ModBody    uint8 = 240
	ModHeaders uint8 = 241
	ModEnd     uint8 = 242
	ModCall    uint8 = 243
	ModReply   uint8 = 244
	ModHello   uint8 = 245
	ModSpawn   uint8 = 246
	ModSpawned uint8 = 247
)

// Modifier2 values of ModBody.
const (
	BodyData uint8 = 0
	BodyEnd  uint8 = 1
	// BodyAbort ends a request body that the client cut short: the worker's
	// wsgi.input raises instead of returning a truncated body as complete.
	BodyAbort uint8 = 2
)

// ReplyStatus is modifier2 of a ModReply.
type ReplyStatus = uint8

// Reply statuses.
const (
	ReplyOK       ReplyStatus = 0
	ReplyNone     ReplyStatus = 1 // the Python side returns None
	ReplyError    ReplyStatus = 2 // vars "error" says why
	ReplyNotFound ReplyStatus = 3
)

// MaxPayload is the largest payload one packet can carry.
const MaxPayload = 0xffff

// AppendFrame appends one packet carrying payload (at most MaxPayload bytes).
func AppendFrame(b []byte, mod1, mod2 uint8, payload []byte) []byte {
	b = Header{Modifier1: mod1, Size: uint16(len(payload)), Modifier2: mod2}.Append(b)
	return append(b, payload...)
}

// AppendBody appends data as ModBody chunks (split at MaxPayload); it does
// not terminate the stream.
func AppendBody(b []byte, data []byte) []byte {
	for len(data) > 0 {
		n := min(len(data), MaxPayload)
		b = AppendFrame(b, ModBody, BodyData, data[:n])
		data = data[n:]
	}
	return b
}

// AppendBodyEnd terminates a body stream.
func AppendBodyEnd(b []byte) []byte {
	return AppendFrame(b, ModBody, BodyEnd, nil)
}

// FrameReader reads packets from a worker connection. The returned payload
// is valid until the next call.
type FrameReader struct {
	r   *bufio.Reader
	buf []byte
}

// NewFrameReader wraps r with a buffer sized for typical responses. A
// payload larger than the buffer is read straight into its own buffer, so
// the reader's buffer need not hold a full packet: every worker slot has
// one, so it is kept small.
func NewFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{r: bufio.NewReaderSize(r, 16<<10), buf: make([]byte, 0, 4096)}
}

// Buffered is how many bytes are already read and waiting; 0 means the
// next Next would block, which is when a streamed response should be
// flushed to the client.
func (fr *FrameReader) Buffered() int { return fr.r.Buffered() }

// Next reads one packet.
func (fr *FrameReader) Next() (Header, []byte, error) {
	var hb [HeaderSize]byte
	if _, err := io.ReadFull(fr.r, hb[:]); err != nil {
		return Header{}, nil, err
	}
	h, _ := ParseHeader(hb[:])
	if cap(fr.buf) < int(h.Size) {
		fr.buf = make([]byte, h.Size)
	}
	p := fr.buf[:h.Size]
	if _, err := io.ReadFull(fr.r, p); err != nil {
		return h, nil, fmt.Errorf("read %d-byte payload of modifier %d: %w", h.Size, h.Modifier1, ErrTruncated)
	}
	return h, p, nil
}
