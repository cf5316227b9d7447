package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzParseVars checks that any input either parses into vars that encode
// back to exactly the same bytes, or fails with one of the package's
// sentinel errors, and that maxVars is honoured.
func FuzzParseVars(f *testing.F) {
	seed, _ := Vars{{"REQUEST_METHOD", "GET"}, {"PATH_INFO", "/"}, {"QUERY_STRING", ""}}.Append(nil)
	f.Add(seed, 0)
	f.Add(seed, 2)
	f.Add([]byte{}, 0)
	f.Add([]byte{0, 0, 0, 0}, 0)      // empty key
	f.Add([]byte{5, 0, 'a'}, 0)       // truncated key
	f.Add([]byte{1, 0, 'a', 9, 0}, 0) // truncated value
	f.Add([]byte{1, 0, 'a', 0, 0}, 1) // one var, empty value
	f.Add([]byte{1, 0, 'a', 0}, 0)    // truncated value length
	f.Fuzz(func(t *testing.T, b []byte, maxVars int) {
		maxVars %= 64
		if maxVars < 0 {
			maxVars = -maxVars
		}
		// NextVar walks the same block the same way, short of the checks
		// on empty keys and the count.
		var walked Vars
		var walkErr error
		for off := 0; off < len(b); {
			k, v, next, err := NextVar(string(b), off)
			if err != nil {
				walkErr = err
				break
			}
			walked, off = append(walked, Var{k, v}), next
		}
		if walkErr != nil && !errors.Is(walkErr, ErrTruncated) {
			t.Fatalf("NextVar on %q: error %v is not ErrTruncated", b, walkErr)
		}
		vs, err := ParseVars(b, maxVars)
		if err != nil {
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrEmptyKey) && !errors.Is(err, ErrTooManyVars) {
				t.Fatalf("ParseVars(%q) error %v is not a sentinel", b, err)
			}
			if errors.Is(err, ErrTruncated) && walkErr == nil {
				t.Fatalf("ParseVars(%q) error %v, but NextVar read it whole", b, err)
			}
			return
		}
		if walkErr != nil || len(walked) != len(vs) {
			t.Fatalf("NextVar read %d vars (error %v), ParseVars %d", len(walked), walkErr, len(vs))
		}
		for i := range vs {
			if walked[i] != vs[i] {
				t.Fatalf("var %d: NextVar %q, ParseVars %q", i, walked[i], vs[i])
			}
		}
		if maxVars > 0 && len(vs) > maxVars {
			t.Fatalf("ParseVars returned %d vars, max %d", len(vs), maxVars)
		}
		for _, v := range vs {
			if v.Key == "" {
				t.Fatalf("ParseVars(%q) returned an empty key", b)
			}
		}
		if n := vs.EncodedLen(); n != len(b) {
			t.Fatalf("EncodedLen = %d, input was %d bytes", n, len(b))
		}
		out, err := vs.Append(nil)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip changed %q into %q", b, out)
		}
	})
}

// FuzzReadPacket checks that ReadPacket never panics, refuses oversized
// blocks before reading them, and that a packet it accepts re-encodes to
// the bytes it consumed.
func FuzzReadPacket(f *testing.F) {
	pkt, _ := AppendPacket(nil, 0, 0, Vars{{"REQUEST_METHOD", "POST"}, {"CONTENT_LENGTH", "5"}})
	f.Add(append(pkt, "hello"...), 4096, 0)
	f.Add(pkt, 8, 0)                             // block larger than buffer-size
	f.Add(pkt[:len(pkt)-3], 4096, 0)             // truncated block
	f.Add(pkt[:2], 4096, 0)                      // truncated header
	f.Add([]byte{}, 4096, 0)                     // EOF
	f.Add([]byte{ModBody, 0, 0, BodyEnd}, 0, 0)  // empty block
	f.Add(pkt, 4096, 1)                          // too many vars
	f.Add([]byte{0, 4, 0, 0, 0, 0, 0, 0}, 64, 0) // empty key
	f.Fuzz(func(t *testing.T, data []byte, bufferSize, maxVars int) {
		bufferSize %= 1 << 17
		if bufferSize < 0 {
			bufferSize = -bufferSize
		}
		maxVars %= 64
		if maxVars < 0 {
			maxVars = -maxVars
		}
		r := bytes.NewReader(data)
		p, err := ReadPacket(r, bufferSize, maxVars)
		consumed := len(data) - r.Len()
		if err != nil {
			if len(data) >= HeaderSize {
				h, _ := ParseHeader(data)
				if p.Header != h {
					t.Fatalf("error path returned header %+v, want %+v", p.Header, h)
				}
				if int(h.Size) > bufferSize && (!errors.Is(err, ErrTooLarge) || consumed != HeaderSize) {
					t.Fatalf("oversized block: err %v after %d bytes, want ErrTooLarge after the header", err, consumed)
				}
			}
			return
		}
		if int(p.Header.Size) > bufferSize {
			t.Fatalf("accepted a %d-byte block with buffer-size %d", p.Header.Size, bufferSize)
		}
		if consumed != HeaderSize+int(p.Header.Size) {
			t.Fatalf("consumed %d bytes for a %d-byte block", consumed, p.Header.Size)
		}
		out, err := AppendPacket(nil, p.Header.Modifier1, p.Header.Modifier2, p.Vars)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(out, data[:consumed]) {
			t.Fatalf("round trip changed %q into %q", data[:consumed], out)
		}
	})
}

// FuzzFrameReader checks that a stream of frames is read back frame by
// frame, each re-encoding to exactly the bytes it came from, and that a
// cut stream ends in an error rather than a short payload.
func FuzzFrameReader(f *testing.F) {
	resp, _ := AppendPacket(nil, ModHeaders, 0, Vars{{":status", "200 OK"}, {"Content-Type", "text/plain"}})
	resp = AppendBody(resp, []byte("Hello World"))
	resp = AppendFrame(resp, ModEnd, 0, nil)
	f.Add(resp)
	f.Add(resp[:len(resp)-2])
	f.Add(AppendBodyEnd(AppendBody(nil, bytes.Repeat([]byte("x"), 70000))))
	f.Add([]byte{ModBody, 0xff, 0xff, BodyData})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := NewFrameReader(bytes.NewReader(data))
		off := 0
		for {
			h, p, err := fr.Next()
			if err != nil {
				if off == len(data) && err != io.EOF {
					t.Fatalf("clean end of stream gave %v, want io.EOF", err)
				}
				if off < len(data) && err == io.EOF {
					t.Fatalf("stream cut at %d of %d bytes reported as a clean EOF", off, len(data))
				}
				return
			}
			if int(h.Size) != len(p) {
				t.Fatalf("header says %d bytes, payload has %d", h.Size, len(p))
			}
			frame := AppendFrame(nil, h.Modifier1, h.Modifier2, p)
			if !bytes.Equal(frame, data[off:off+len(frame)]) {
				t.Fatalf("frame at %d re-encodes differently", off)
			}
			off += len(frame)
		}
	})
}
