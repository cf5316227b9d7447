package router

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"mime"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// segKind says how one piece of a template is produced.
type segKind uint8

const (
	segLit        segKind = iota // literal text
	segVar                       // ${NAME}: request var
	segCapture                   // $N: regex capture of the current rule
	segCookie                    // ${cookie[name]}
	segQS                        // ${qs[name]}
	segMime                      // ${mime[VAR]}
	segTimeUnix                  // ${time[unix]}
	segTimeMicros                // ${time[micros]}
	segHTTPTime                  // ${httptime[+secs]}
	segMath                      // ${math[expr]}
	segBase64                    // ${base64[VAR]}
	segHex                       // ${hex[VAR]}
	segUpper                     // ${upper[VAR]}
	segLower                     // ${lower[VAR]}
	segWID                       // ${uwsgi[wid]}
	segPID                       // ${uwsgi[pid]}
	segUUID                      // ${uwsgi[uuid]}
	segStatus                    // ${uwsgi[status]}
	segRTime                     // ${uwsgi[rtime]}
	segRSize                     // ${uwsgi[rsize]}
	segSOR                       // ${uwsgi[sor]}
)

type segment struct {
	kind segKind
	text string // literal text, var name or function argument
	n    int64  // capture number or httptime offset
	expr mathNode
}

// template is a route argument with its variables parsed once at start-up,
// so a request only walks the segments.
type template struct {
	segs []segment
	// static is set when the template has no variables; lit is then its value
	// and expanding it costs nothing.
	static bool
	lit    string
	// caps is set when the template refers to $0..$9.
	caps bool
}

// funcKinds maps ${name[arg]} functions whose argument is a plain string.
var funcKinds = map[string]segKind{
	"cookie": segCookie, "qs": segQS, "mime": segMime, "base64": segBase64,
	"hex": segHex, "upper": segUpper, "lower": segLower,
}

var uwsgiKinds = map[string]segKind{
	"wid": segWID, "pid": segPID, "uuid": segUUID, "status": segStatus,
	"rtime": segRTime, "rsize": segRSize, "sor": segSOR,
}

// compileTemplate parses the uWSGI variable syntax of a route argument.
func compileTemplate(s string) (template, error) {
	var t template
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.segs = append(t.segs, segment{kind: segLit, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			lit.WriteByte(c)
			continue
		}
		switch d := s[i+1]; {
		case d >= '0' && d <= '9':
			flush()
			t.segs = append(t.segs, segment{kind: segCapture, n: int64(d - '0')})
			t.caps = true
			i++
		case d == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return template{}, fmt.Errorf("unterminated ${ at offset %d in %q", i, s)
			}
			seg, err := parseVarRef(s[i+2 : i+2+end])
			if err != nil {
				return template{}, err
			}
			flush()
			t.segs = append(t.segs, seg)
			i += 2 + end
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	switch {
	case len(t.segs) == 0:
		t.static = true
	case len(t.segs) == 1 && t.segs[0].kind == segLit:
		t.static, t.lit = true, t.segs[0].text
	}
	return t, nil
}

// parseVarRef parses the inside of ${...}.
func parseVarRef(ref string) (segment, error) {
	open := strings.IndexByte(ref, '[')
	if open < 0 {
		if ref == "" {
			return segment{}, fmt.Errorf("empty variable ${}")
		}
		return segment{kind: segVar, text: ref}, nil
	}
	if !strings.HasSuffix(ref, "]") {
		return segment{}, fmt.Errorf("variable ${%s}: missing ]", ref)
	}
	name, arg := ref[:open], ref[open+1:len(ref)-1]
	if k, ok := funcKinds[name]; ok {
		return segment{kind: k, text: arg}, nil
	}
	switch name {
	case "time":
		switch arg {
		case "unix":
			return segment{kind: segTimeUnix}, nil
		case "micros":
			return segment{kind: segTimeMicros}, nil
		}
		return segment{}, fmt.Errorf("variable ${%s}: time takes unix or micros", ref)
	case "httptime":
		var off int64
		if arg != "" {
			n, err := strconv.ParseInt(arg, 10, 64)
			if err != nil {
				return segment{}, fmt.Errorf("variable ${%s}: offset is not a number of seconds", ref)
			}
			off = n
		}
		return segment{kind: segHTTPTime, n: off}, nil
	case "math":
		e, err := parseMath(arg)
		if err != nil {
			return segment{}, fmt.Errorf("variable ${%s}: %w", ref, err)
		}
		return segment{kind: segMath, expr: e}, nil
	case "uwsgi":
		if k, ok := uwsgiKinds[arg]; ok {
			return segment{kind: k}, nil
		}
		return segment{}, fmt.Errorf("variable ${%s}: gouwsgi offers uwsgi[wid|pid|uuid|status|rtime|rsize|sor]", ref)
	}
	return segment{}, fmt.Errorf("variable ${%s}: unknown function %q", ref, name)
}

// str returns the expanded template. Static templates cost nothing; the
// others build into the request's scratch buffer and copy once.
func (t *template) str(st *state) string {
	if t.static {
		return t.lit
	}
	st.scratch = t.appendTo(st, st.scratch[:0])
	return string(st.scratch)
}

func (t *template) appendTo(st *state, b []byte) []byte {
	if t.static {
		return append(b, t.lit...)
	}
	for i := range t.segs {
		b = t.segs[i].appendTo(st, b)
	}
	return b
}

func (sg *segment) appendTo(st *state, b []byte) []byte {
	vars := st.r.Vars
	switch sg.kind {
	case segLit:
		return append(b, sg.text...)
	case segVar:
		return append(b, vars.Value(sg.text)...)
	case segCapture:
		return append(b, st.capture(int(sg.n))...)
	case segCookie:
		return append(b, cookieValue(vars.Value("HTTP_COOKIE"), sg.text)...)
	case segQS:
		return append(b, qsValue(vars.Value("QUERY_STRING"), sg.text)...)
	case segMime:
		if v, ok := vars.Get(sg.text); ok {
			return append(b, mime.TypeByExtension(path.Ext(v))...)
		}
		return b
	case segTimeUnix:
		return strconv.AppendInt(b, time.Now().Unix(), 10)
	case segTimeMicros:
		return strconv.AppendInt(b, time.Now().UnixMicro(), 10)
	case segHTTPTime:
		return time.Now().Add(time.Duration(sg.n)*time.Second).UTC().AppendFormat(b, httpTimeFormat)
	case segMath:
		return strconv.AppendFloat(b, sg.expr.eval(st), 'f', -1, 64)
	case segBase64:
		return base64.StdEncoding.AppendEncode(b, []byte(vars.Value(sg.text)))
	case segHex:
		return hex.AppendEncode(b, []byte(vars.Value(sg.text)))
	case segUpper:
		return append(b, strings.ToUpper(vars.Value(sg.text))...)
	case segLower:
		return append(b, strings.ToLower(vars.Value(sg.text))...)
	case segWID:
		return strconv.AppendInt(b, int64(st.r.Log.WorkerID), 10)
	case segPID:
		pid := st.r.Log.WorkerPID
		if pid == 0 {
			pid = os.Getpid()
		}
		return strconv.AppendInt(b, int64(pid), 10)
	case segUUID:
		return appendUUID(b)
	case segStatus:
		return strconv.AppendInt(b, int64(st.rw.status), 10)
	case segRTime:
		if st.r.Start.IsZero() {
			return append(b, '0')
		}
		return strconv.AppendInt(b, time.Since(st.r.Start).Microseconds(), 10)
	case segRSize:
		return strconv.AppendInt(b, st.rw.written, 10)
	case segSOR:
		return strconv.AppendInt(b, st.r.Start.UnixMicro(), 10)
	}
	return b
}

// httpTimeFormat is http.TimeFormat; kept here so the template code needs
// no net/http import.
const httpTimeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"

// cookieValue finds name in a Cookie header without allocating.
func cookieValue(header, name string) string {
	for header != "" {
		var part string
		part, header, _ = strings.Cut(header, ";")
		part = strings.TrimSpace(part)
		if k, v, ok := strings.Cut(part, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// qsValue finds name in a query string; the value is returned raw (not
// percent-decoded), as uWSGI does.
func qsValue(qs, name string) string {
	for qs != "" {
		var part string
		part, qs, _ = strings.Cut(qs, "&")
		if k, v, ok := strings.Cut(part, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// appendUUID appends a random (version 4) UUID, what uwsgi[uuid] yields.
func appendUUID(b []byte) []byte {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails on Linux
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return append(b, s[:]...)
}
