// Package logging owns a node's log stream in uWSGI's spirit: one sink that
// every line goes through (server messages, worker output, request lines),
// with taps for log-alarm; a slog handler that writes plain uWSGI-style
// lines; logto/daemonize files; and the request logger with uWSGI's
// default line, logformat variables, log-micros and memory-report.
package logging

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
)

// Sink serialises log lines to one writer and shows each line to the taps.
type Sink struct {
	mu   sync.Mutex
	w    io.Writer
	taps []func(line string)
}

// NewSink writes lines to w.
func NewSink(w io.Writer) *Sink { return &Sink{w: w} }

// OpenFile opens a logto/daemonize target for appending (or truncating,
// with log-truncate).
func OpenFile(path string, truncate bool) (*os.File, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if truncate {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log file %s: %w", path, err)
	}
	return f, nil
}

// SetOutput redirects the sink (logto after start-up).
func (s *Sink) SetOutput(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}

// AddTap registers f to see every line (log-alarm). Taps must not block.
func (s *Sink) AddTap(f func(line string)) {
	s.mu.Lock()
	s.taps = append(s.taps, f)
	s.mu.Unlock()
}

// Line writes one line (a trailing newline is added when missing).
func (s *Sink) Line(line string) {
	s.mu.Lock()
	w, taps := s.w, s.taps
	if strings.HasSuffix(line, "\n") {
		_, _ = io.WriteString(w, line)
	} else {
		_, _ = io.WriteString(w, line+"\n")
	}
	s.mu.Unlock()
	for _, t := range taps {
		t(strings.TrimSuffix(line, "\n"))
	}
}

// MaxLine is the longest line CopyLines forwards in one piece; a longer
// line is forwarded as several lines of at most MaxLine bytes.
const MaxLine = 64 << 10

// CopyLines forwards every line read from r (a worker's stdout/stderr
// pipe) to the sink until r ends. It never stops early: every worker
// writes to the same pipe, and one that is no longer drained blocks every
// worker that prints, so an overlong line is split rather than an error.
func (s *Sink) CopyLines(r io.Reader) {
	br := bufio.NewReaderSize(r, MaxLine)
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			line := strings.TrimSuffix(strings.TrimSuffix(string(chunk), "\n"), "\r")
			s.Line(line)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// Logger returns a slog.Logger writing uWSGI-style lines to the sink.
func (s *Sink) Logger(level slog.Leveler) *slog.Logger {
	return slog.New(&handler{sink: s, level: level})
}

// handler formats records as "message key=value ...", with no timestamp
// or level prefix, as uWSGI's own lines look; errors and warnings are
// already worded for operators.
type handler struct {
	sink   *Sink
	level  slog.Leveler
	attrs  string
	prefix string
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.prefix, a)
		return true
	})
	h.sink.Line(b.String())
	return nil
}

func appendAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		for _, g := range a.Value.Group() {
			appendAttr(b, prefix+a.Key+".", g)
		}
		return
	}
	v := a.Value.String()
	if strings.ContainsAny(v, " \t\"") || v == "" {
		v = fmt.Sprintf("%q", v)
	}
	fmt.Fprintf(b, " %s%s=%s", prefix, a.Key, v)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		appendAttr(&b, h.prefix, a)
	}
	return &handler{sink: h.sink, level: h.level, attrs: b.String(), prefix: h.prefix}
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &handler{sink: h.sink, level: h.level, attrs: h.attrs, prefix: h.prefix + name + "."}
}
