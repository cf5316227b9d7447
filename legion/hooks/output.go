package hooks

import (
	"bytes"
	"log/slog"
)

// maxLine bounds a buffered output line, so a command printing without
// newlines cannot grow memory without limit.
const maxLine = 64 << 10

// lineLogger is an io.Writer that logs each complete line a command writes.
type lineLogger struct {
	log   *slog.Logger
	attrs []any
	buf   []byte
}

func newLineLogger(log *slog.Logger, attrs []any) *lineLogger {
	return &lineLogger{log: log, attrs: attrs}
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) >= maxLine {
		l.emit(l.buf)
		l.buf = nil
	}
	return len(p), nil
}

// flush logs a last line that had no newline.
func (l *lineLogger) flush() {
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = nil
	}
}

func (l *lineLogger) emit(line []byte) {
	l.log.Info("hook output", append(l.attrs, "line", string(bytes.TrimRight(line, "\r")))...)
}
