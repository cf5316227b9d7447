package legion

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// hclogAdapter lets hashicorp/raft log through slog (the upstream bridges
// are unmerged, see STYLE.md).
type hclogAdapter struct {
	l    *slog.Logger
	name string
	args []interface{}
}

func newHclog(l *slog.Logger, name string) hclog.Logger {
	return &hclogAdapter{l: l, name: name}
}

var hclogLevels = map[hclog.Level]slog.Level{
	hclog.Trace: slog.LevelDebug - 4, hclog.Debug: slog.LevelDebug, hclog.Info: slog.LevelInfo,
	hclog.Warn: slog.LevelWarn, hclog.Error: slog.LevelError,
}

func (h *hclogAdapter) Log(level hclog.Level, msg string, args ...interface{}) {
	lvl, ok := hclogLevels[level]
	if !ok {
		lvl = slog.LevelInfo
	}
	if !h.l.Enabled(context.Background(), lvl) {
		return
	}
	all := append(append([]interface{}{}, h.args...), args...)
	for i, a := range all {
		// hclog.Fmt("%+v", x) values are format calls, not values.
		if f, ok := a.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				all[i] = fmt.Sprintf(format, f[1:]...)
			}
		}
	}
	h.l.Log(context.Background(), lvl, strings.ToLower(msg), all...)
}

func (h *hclogAdapter) Trace(msg string, args ...interface{}) { h.Log(hclog.Trace, msg, args...) }
func (h *hclogAdapter) Debug(msg string, args ...interface{}) { h.Log(hclog.Debug, msg, args...) }
func (h *hclogAdapter) Info(msg string, args ...interface{})  { h.Log(hclog.Info, msg, args...) }
func (h *hclogAdapter) Warn(msg string, args ...interface{})  { h.Log(hclog.Warn, msg, args...) }
func (h *hclogAdapter) Error(msg string, args ...interface{}) { h.Log(hclog.Error, msg, args...) }

func (h *hclogAdapter) enabled(l slog.Level) bool { return h.l.Enabled(context.Background(), l) }
func (h *hclogAdapter) IsTrace() bool             { return h.enabled(slog.LevelDebug - 4) }
func (h *hclogAdapter) IsDebug() bool             { return h.enabled(slog.LevelDebug) }
func (h *hclogAdapter) IsInfo() bool              { return h.enabled(slog.LevelInfo) }
func (h *hclogAdapter) IsWarn() bool              { return h.enabled(slog.LevelWarn) }
func (h *hclogAdapter) IsError() bool             { return h.enabled(slog.LevelError) }

func (h *hclogAdapter) ImpliedArgs() []interface{} { return h.args }
func (h *hclogAdapter) With(args ...interface{}) hclog.Logger {
	return &hclogAdapter{l: h.l, name: h.name, args: append(append([]interface{}{}, h.args...), args...)}
}
func (h *hclogAdapter) Name() string { return h.name }
func (h *hclogAdapter) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return h.ResetNamed(name)
}
func (h *hclogAdapter) ResetNamed(name string) hclog.Logger {
	return &hclogAdapter{l: h.l.With("subsystem", name), name: name, args: h.args}
}

// SetLevel is a no-op: the slog handler decides what is shown.
func (h *hclogAdapter) SetLevel(hclog.Level) {}
func (h *hclogAdapter) GetLevel() hclog.Level {
	switch {
	case h.IsTrace():
		return hclog.Trace
	case h.IsDebug():
		return hclog.Debug
	case h.IsInfo():
		return hclog.Info
	case h.IsWarn():
		return hclog.Warn
	}
	return hclog.Error
}
func (h *hclogAdapter) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(nil), "", 0)
}
func (h *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return &levelWriter{l: h.l}
}

// levelWriter turns "[LEVEL] source: message" lines, as memberlist and
// raft's standard loggers write them, into slog records at that level.
// (slog.NewLogLogger would log every line at one level.)
type levelWriter struct{ l *slog.Logger }

var stdLevels = []struct {
	tag   string
	level slog.Level
}{
	{"[ERR]", slog.LevelError}, {"[ERROR]", slog.LevelError}, {"[WARN]", slog.LevelWarn},
	{"[INFO]", slog.LevelInfo}, {"[DEBUG]", slog.LevelDebug}, {"[TRACE]", slog.LevelDebug - 4},
}

func (w *levelWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		msg := strings.TrimSpace(string(line))
		level := slog.LevelInfo
		for _, s := range stdLevels {
			if rest, ok := strings.CutPrefix(msg, s.tag); ok {
				level, msg = s.level, strings.TrimSpace(rest)
				break
			}
		}
		msg = strings.TrimPrefix(msg, "memberlist: ")
		if strings.Contains(msg, "decrypt") || strings.Contains(msg, "No installed keys") {
			// The only reason two nodes of one cluster cannot read each
			// other's gossip is a different legion secret: say so.
			w.l.Error("gossip message rejected: cannot decrypt it, the sender uses a different legion secret", "detail", msg)
			continue
		}
		w.l.Log(context.Background(), level, msg)
	}
	return len(p), nil
}

func newStdLogger(l *slog.Logger) *log.Logger {
	return log.New(&levelWriter{l: l}, "", 0)
}
