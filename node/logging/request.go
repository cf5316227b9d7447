package logging

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gouwsgi/gouwsgi/node/request"
	"github.com/gouwsgi/gouwsgi/node/sysinfo"
	"github.com/gouwsgi/gouwsgi/node/wire"
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

	// mu guards perWorker: the app request count of each worker process,
	// the R of uWSGI's "req: R/T" (it restarts with the process, as the
	// app counter lives in the worker's memory in uWSGI).
	mu        sync.Mutex
	perWorker map[int]workerCount
}

type workerCount struct {
	pid int
	n   int64
}

// segment is a literal or a %(var) of a compiled logformat.
type segment struct {
	lit string
	fn  func(*lineCtx) string
}

type lineCtx struct {
	r    *request.Request
	res  request.Result
	now  time.Time
	n    int64 // requests of the node so far, this one included
	appN int64 // requests of the serving worker process; -1 when no worker served it
	rss  uint64
	vsz  uint64
	mem  bool
}

// NewRequestLog compiles the format; an unknown %(var) is an error naming it.
func NewRequestLog(cfg RequestConfig, sink *Sink) (*RequestLog, error) {
	l := &RequestLog{cfg: cfg, sink: sink, perWorker: map[int]workerCount{}}
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
	appN := l.countWorker(r.Log)
	if l.cfg.Disabled || r.Log.NoLog {
		return
	}
	c := &lineCtx{r: r, res: res, now: time.Now(), n: n, appN: appN}
	var b strings.Builder
	if l.segs == nil {
		// As in uWSGI, the memory prefix belongs to the default line only;
		// a logformat shows memory with %(rss) and %(vsz).
		if l.cfg.MemoryReport {
			c.memory()
			fmt.Fprintf(&b, "{address space usage: %d bytes/%dMB} {rss usage: %d bytes/%dMB} ", c.vsz, c.vsz>>20, c.rss, c.rss>>20)
		}
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

// countWorker counts a request against the worker process that served it
// and returns that process's count, or -1 when no worker served it.
func (l *RequestLog) countWorker(li request.LogInfo) int64 {
	if li.WorkerID == 0 {
		return -1
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	wc := l.perWorker[li.WorkerID]
	if wc.pid != li.WorkerPID {
		wc = workerCount{pid: li.WorkerPID}
	}
	wc.n++
	l.perWorker[li.WorkerID] = wc
	return wc.n
}

// defaultLine is uWSGI's default request line. A request no app served (a
// cache hit, a static file, a route answer) shows "app: -1|req: -1/T", as
// uWSGI logs requests its router answered.
func (l *RequestLog) defaultLine(b *strings.Builder, c *lineCtx) {
	vs := c.r.Vars
	unit, dur := "msecs", c.res.Duration.Milliseconds()
	if l.cfg.Micros {
		unit, dur = "micros", c.res.Duration.Microseconds()
	}
	app := 0
	if c.appN < 0 {
		app = -1
	}
	fmt.Fprintf(b, "[pid: %d|app: %d|req: %d/%d] %s (%s) {%d vars in %d bytes} [%s] %s %s => generated %d bytes in %d %s (%s %d) %d headers in %d bytes (1 switches on core 0)",
		pidOf(c.r), app, c.appN, c.n, vs.Value("REMOTE_ADDR"), vs.Value("REMOTE_USER"), varCount(vs), vs.EncodedLen(),
		c.r.Start.Format("Mon Jan _2 15:04:05 2006"), vs.Value("REQUEST_METHOD"), vs.Value("REQUEST_URI"),
		c.res.Size, dur, unit, vs.Value("SERVER_PROTOCOL"), c.res.Status, c.res.Headers, c.res.HeaderBytes)
}

// varCount is uWSGI's var_cnt: it counts keys and values separately, so a
// request with 12 vars reports 24.
func varCount(vs wire.Vars) int { return 2 * len(vs) }

// orDash is how uWSGI prints an empty user, user agent, referer or
// request var in a logformat.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func pidOf(r *request.Request) int {
	if r.Log.WorkerPID != 0 {
		return r.Log.WorkerPID
	}
	return os.Getpid()
}

// vars maps logformat variable names to their value.
var vars = map[string]func(*lineCtx) string{
	"uri":     func(c *lineCtx) string { return c.r.Vars.Value("REQUEST_URI") },
	"method":  func(c *lineCtx) string { return c.r.Vars.Value("REQUEST_METHOD") },
	"user":    func(c *lineCtx) string { return orDash(c.r.Vars.Value("REMOTE_USER")) },
	"addr":    func(c *lineCtx) string { return c.r.Vars.Value("REMOTE_ADDR") },
	"host":    func(c *lineCtx) string { return host(c.r.Vars) },
	"proto":   func(c *lineCtx) string { return c.r.Vars.Value("SERVER_PROTOCOL") },
	"uagent":  func(c *lineCtx) string { return orDash(c.r.Vars.Value("HTTP_USER_AGENT")) },
	"referer": func(c *lineCtx) string { return orDash(c.r.Vars.Value("HTTP_REFERER")) },
	"status":  func(c *lineCtx) string { return strconv.Itoa(c.res.Status) },
	"micros":  func(c *lineCtx) string { return strconv.FormatInt(c.res.Duration.Microseconds(), 10) },
	"msecs":   func(c *lineCtx) string { return strconv.FormatInt(c.res.Duration.Milliseconds(), 10) },
	"secs":    func(c *lineCtx) string { return strconv.FormatFloat(c.res.Duration.Seconds(), 'f', 6, 64) },
	"tmsecs":  func(c *lineCtx) string { return strconv.FormatInt(c.r.Start.UnixMilli(), 10) },
	"tmicros": func(c *lineCtx) string { return strconv.FormatInt(c.r.Start.UnixMicro(), 10) },
	"time":    func(c *lineCtx) string { return strconv.FormatInt(c.r.Start.Unix(), 10) },
	"epoch":   func(c *lineCtx) string { return strconv.FormatInt(c.now.Unix(), 10) },
	"ctime":   func(c *lineCtx) string { return c.r.Start.Format("Mon Jan _2 15:04:05 2006") },
	"ltime":   func(c *lineCtx) string { return c.r.Start.Format("02/Jan/2006:15:04:05 -0700") },
	"ftime":   func(c *lineCtx) string { return c.r.Start.Format("02/Jan/2006:15:04:05 -0700") },
	// size is the whole response, head included; rsize is the body only.
	"size":      func(c *lineCtx) string { return strconv.FormatInt(int64(c.res.HeaderBytes)+c.res.Size, 10) },
	"rsize":     func(c *lineCtx) string { return strconv.FormatInt(c.res.Size, 10) },
	"hsize":     func(c *lineCtx) string { return strconv.Itoa(c.res.HeaderBytes) },
	"headers":   func(c *lineCtx) string { return strconv.Itoa(c.res.Headers) },
	"cl":        func(c *lineCtx) string { return contentLength(c.r.Vars) },
	"pid":       func(c *lineCtx) string { return strconv.Itoa(pidOf(c.r)) },
	"wid":       func(c *lineCtx) string { return strconv.Itoa(c.r.Log.WorkerID) },
	"core":      func(*lineCtx) string { return "0" },
	"switches":  func(*lineCtx) string { return "1" },
	"vars":      func(c *lineCtx) string { return strconv.Itoa(varCount(c.r.Vars)) },
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

// host is the Host header, else SERVER_NAME, as uWSGI reports a request
// without one.
func host(vs wire.Vars) string {
	if h := vs.Value("HTTP_HOST"); h != "" {
		return h
	}
	return orDash(vs.Value("SERVER_NAME"))
}

// contentLength is the request body length as a number (0 without one).
func contentLength(vs wire.Vars) string {
	if n, err := strconv.ParseInt(vs.Value("CONTENT_LENGTH"), 10, 64); err == nil && n >= 0 {
		return strconv.FormatInt(n, 10)
	}
	return "0"
}

// memory reads the serving process's memory once per line: the worker's,
// or this process's when Go answered the request itself.
func (c *lineCtx) memory() {
	if !c.mem {
		c.rss, c.vsz = sysinfo.Memory(pidOf(c.r))
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
		case name == "var.":
			return nil, fmt.Errorf("logformat %q: unknown variable %%(var.): name the request var, as in %%(var.HTTP_X_FORWARDED_FOR)", format)
		case strings.HasPrefix(name, "var."):
			key := name[4:]
			segs = append(segs, segment{fn: func(c *lineCtx) string { return orDash(c.r.Vars.Value(key)) }})
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
