package logging

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gouwsgi/gouwsgi/node/request"
	"github.com/gouwsgi/gouwsgi/node/sysinfo"
)

// RequestConfig is the request log's part of the configuration.
type RequestConfig struct {
	Disabled     bool   // disable-logging
	Format       string // logformat; "" is uWSGI's default line
	Micros       bool   // log-micros: request time in microseconds
	MemoryReport bool   // memory-report: the worker's memory before the line
}

// RequestLog writes one line per request.
type RequestLog struct {
	cfg   RequestConfig
	sink  *Sink
	segs  []segment
	total atomic.Int64
}

// segment is a literal or a %(var) of a compiled logformat.
type segment struct {
	lit string
	fn  func(*lineCtx) string
}

type lineCtx struct {
	r   *request.Request
	res request.Result
	now time.Time
	n   int64
	rss uint64
	vsz uint64
	mem bool
}

// NewRequestLog compiles the format; an unknown %(var) is an error naming it.
func NewRequestLog(cfg RequestConfig, sink *Sink) (*RequestLog, error) {
	l := &RequestLog{cfg: cfg, sink: sink}
	if cfg.Format != "" {
		segs, err := compile(cfg.Format)
		if err != nil {
			return nil, err
		}
		l.segs = segs
	}
	return l, nil
}

// LogRequest implements request.Logger.
func (l *RequestLog) LogRequest(r *request.Request, res request.Result) {
	n := l.total.Add(1)
	if l.cfg.Disabled || r.Log.NoLog {
		return
	}
	c := &lineCtx{r: r, res: res, now: time.Now(), n: n}
	var b strings.Builder
	if l.cfg.MemoryReport && r.Log.WorkerPID != 0 {
		c.rss, c.vsz = sysinfo.Memory(r.Log.WorkerPID)
		c.mem = true
		fmt.Fprintf(&b, "{address space usage: %d bytes/%dMB} {rss usage: %d bytes/%dMB} ", c.vsz, c.vsz>>20, c.rss, c.rss>>20)
	}
	if l.segs == nil {
		l.defaultLine(&b, c)
	} else {
		for _, s := range l.segs {
			if s.fn != nil {
				b.WriteString(s.fn(c))
			} else {
				b.WriteString(s.lit)
			}
		}
	}
	l.sink.Line(b.String())
}

// defaultLine is uWSGI's default request line.
func (l *RequestLog) defaultLine(b *strings.Builder, c *lineCtx) {
	vs := c.r.Vars
	unit, dur := "msecs", c.res.Duration.Milliseconds()
	if l.cfg.Micros {
		unit, dur = "micros", c.res.Duration.Microseconds()
	}
	fmt.Fprintf(b, "[pid: %d|app: 0|req: %d/%d] %s (%s) {%d vars in %d bytes} [%s] %s %s => generated %d bytes in %d %s (%s %d) %d headers in %d bytes (1 switches on core 0)",
		pidOf(c.r), c.n, c.n, vs.Value("REMOTE_ADDR"), vs.Value("REMOTE_USER"), len(vs), vs.EncodedLen(),
		c.r.Start.Format("Mon Jan _2 15:04:05 2006"), vs.Value("REQUEST_METHOD"), vs.Value("REQUEST_URI"),
		c.res.Size, dur, unit, vs.Value("SERVER_PROTOCOL"), c.res.Status, c.res.Headers, c.res.HeaderBytes)
}

func pidOf(r *request.Request) int {
	if r.Log.WorkerPID != 0 {
		return r.Log.WorkerPID
	}
	return os.Getpid()
}

// vars maps logformat variable names to their value.
var vars = map[string]func(*lineCtx) string{
	"uri":       func(c *lineCtx) string { return c.r.Vars.Value("REQUEST_URI") },
	"method":    func(c *lineCtx) string { return c.r.Vars.Value("REQUEST_METHOD") },
	"user":      func(c *lineCtx) string { return c.r.Vars.Value("REMOTE_USER") },
	"addr":      func(c *lineCtx) string { return c.r.Vars.Value("REMOTE_ADDR") },
	"host":      func(c *lineCtx) string { return c.r.Vars.Value("HTTP_HOST") },
	"proto":     func(c *lineCtx) string { return c.r.Vars.Value("SERVER_PROTOCOL") },
	"uagent":    func(c *lineCtx) string { return c.r.Vars.Value("HTTP_USER_AGENT") },
	"referer":   func(c *lineCtx) string { return c.r.Vars.Value("HTTP_REFERER") },
	"status":    func(c *lineCtx) string { return strconv.Itoa(c.res.Status) },
	"micros":    func(c *lineCtx) string { return strconv.FormatInt(c.res.Duration.Microseconds(), 10) },
	"msecs":     func(c *lineCtx) string { return strconv.FormatInt(c.res.Duration.Milliseconds(), 10) },
	"secs":      func(c *lineCtx) string { return strconv.FormatFloat(c.res.Duration.Seconds(), 'f', 6, 64) },
	"tmsecs":    func(c *lineCtx) string { return strconv.FormatInt(c.r.Start.UnixMilli(), 10) },
	"tmicros":   func(c *lineCtx) string { return strconv.FormatInt(c.r.Start.UnixMicro(), 10) },
	"time":      func(c *lineCtx) string { return strconv.FormatInt(c.r.Start.Unix(), 10) },
	"epoch":     func(c *lineCtx) string { return strconv.FormatInt(c.now.Unix(), 10) },
	"ctime":     func(c *lineCtx) string { return c.r.Start.Format("Mon Jan _2 15:04:05 2006") },
	"ltime":     func(c *lineCtx) string { return c.r.Start.Format("02/Jan/2006:15:04:05 -0700") },
	"ftime":     func(c *lineCtx) string { return c.r.Start.Format("02/Jan/2006:15:04:05 -0700") },
	"size":      func(c *lineCtx) string { return strconv.FormatInt(c.res.Size, 10) },
	"rsize":     func(c *lineCtx) string { return strconv.FormatInt(c.res.Size, 10) },
	"hsize":     func(c *lineCtx) string { return strconv.Itoa(c.res.HeaderBytes) },
	"headers":   func(c *lineCtx) string { return strconv.Itoa(c.res.Headers) },
	"cl":        func(c *lineCtx) string { return c.r.Vars.Value("CONTENT_LENGTH") },
	"pid":       func(c *lineCtx) string { return strconv.Itoa(pidOf(c.r)) },
	"wid":       func(c *lineCtx) string { return strconv.Itoa(c.r.Log.WorkerID) },
	"core":      func(*lineCtx) string { return "0" },
	"switches":  func(*lineCtx) string { return "1" },
	"vars":      func(c *lineCtx) string { return strconv.Itoa(len(c.r.Vars)) },
	"pktsize":   func(c *lineCtx) string { return strconv.Itoa(c.r.Vars.EncodedLen()) },
	"modifier1": func(c *lineCtx) string { return strconv.Itoa(int(c.r.Modifier1)) },
	"modifier2": func(c *lineCtx) string { return strconv.Itoa(int(c.r.Modifier2)) },
	"rss":       func(c *lineCtx) string { c.memory(); return strconv.FormatUint(c.rss, 10) },
	"vsz":       func(c *lineCtx) string { c.memory(); return strconv.FormatUint(c.vsz, 10) },
	"rssM":      func(c *lineCtx) string { c.memory(); return strconv.FormatUint(c.rss>>20, 10) },
	"vszM":      func(c *lineCtx) string { c.memory(); return strconv.FormatUint(c.vsz>>20, 10) },
	"rerr":      func(*lineCtx) string { return "0" },
	"werr":      func(*lineCtx) string { return "0" },
	"ioerr":     func(*lineCtx) string { return "0" },
}

func (c *lineCtx) memory() {
	if !c.mem && c.r.Log.WorkerPID != 0 {
		c.rss, c.vsz = sysinfo.Memory(c.r.Log.WorkerPID)
		c.mem = true
	}
}

// compile splits a logformat into literals and variables. %(var.NAME) is a
// request var; any other unknown name is a logvar set by the app or a route
// (uwsgi.set_logvar, logvar:), which is why unknown names are accepted when
// they look like identifiers.
func compile(format string) ([]segment, error) {
	var segs []segment
	rest := format
	for {
		i := strings.Index(rest, "%(")
		if i < 0 {
			if rest != "" {
				segs = append(segs, segment{lit: rest})
			}
			return segs, nil
		}
		if i > 0 {
			segs = append(segs, segment{lit: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], ')')
		if j < 0 {
			return nil, fmt.Errorf("logformat %q: unterminated %%( at offset %d", format, len(format)-len(rest)+i)
		}
		name := rest[i+2 : i+j]
		rest = rest[i+j+1:]
		switch {
		case vars[name] != nil:
			segs = append(segs, segment{fn: vars[name]})
		case strings.HasPrefix(name, "var.") && len(name) > 4:
			key := name[4:]
			segs = append(segs, segment{fn: func(c *lineCtx) string { return c.r.Vars.Value(key) }})
		case validLogvar(name):
			segs = append(segs, segment{fn: func(c *lineCtx) string {
				for _, v := range c.r.Log.LogVars {
					if v.Key == name {
						return v.Value
					}
				}
				return "-"
			}})
		default:
			return nil, fmt.Errorf("logformat %q: unknown variable %%(%s)", format, name)
		}
	}
}

func validLogvar(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if !(c == '_' || c == '-' || c == '.' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')) {
			return false
		}
	}
	return true
}
