package logging_test

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/node/logging"
)

// TestSlogHandler: server lines are "message key=value ...", with no
// timestamp or level, values with spaces quoted, groups dotted, and the
// level filter applied.
func TestSlogHandler(t *testing.T) {
	tests := []struct {
		name string
		log  func(*slog.Logger)
		want []string
	}{
		{"plain message", func(l *slog.Logger) { l.Info("spawned uWSGI worker 1 (pid: 7, cores: 1)") },
			[]string{"spawned uWSGI worker 1 (pid: 7, cores: 1)"}},
		{"attrs", func(l *slog.Logger) { l.Info("cache", "name", "mycache", "items", 300, "on", true) },
			[]string{"cache name=mycache items=300 on=true"}},
		{"quoted values", func(l *slog.Logger) { l.Warn("bad", "err", `no such "file"`, "empty", "", "tab", "a\tb") },
			[]string{`bad err="no such \"file\"" empty="" tab="a\tb"`}},
		{"below the level is dropped", func(l *slog.Logger) { l.Debug("noise"); l.Info("kept") },
			[]string{"kept"}},
		{"error level kept", func(l *slog.Logger) { l.Error("boom", "code", 22) },
			[]string{"boom code=22"}},
		{"with attrs", func(l *slog.Logger) { l.With("wid", 2).Info("ready", "pid", 9) },
			[]string{"ready wid=2 pid=9"}},
		{"with group", func(l *slog.Logger) { l.WithGroup("legion").With("name", "lg").Info("lord", "node", "a") },
			[]string{"lord legion.name=lg legion.node=a"}},
		{"nested group attr", func(l *slog.Logger) { l.Info("m", slog.Group("req", "method", "GET", slog.Group("h", "n", 1))) },
			[]string{"m req.method=GET req.h.n=1"}},
		{"empty group name is no group", func(l *slog.Logger) { l.WithGroup("").Info("m", "k", "v") },
			[]string{"m k=v"}},
		{"empty attr skipped", func(l *slog.Logger) { l.Info("m", slog.Attr{}, "k", "v") },
			[]string{"m k=v"}},
		{"LogValuer resolved", func(l *slog.Logger) { l.Info("m", "v", valuer{}) },
			[]string{"m v=resolved"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &lines{}
			tt.log(logging.NewSink(out).Logger(slog.LevelInfo))
			if got := out.all(); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("lines %q, want %q", got, tt.want)
			}
		})
	}
}

type valuer struct{}

func (valuer) LogValue() slog.Value { return slog.StringValue("resolved") }

// TestLevelVar: a LevelVar changes what the logger keeps while it runs.
func TestLevelVar(t *testing.T) {
	out := &lines{}
	var lv slog.LevelVar
	lv.Set(slog.LevelWarn)
	l := logging.NewSink(out).Logger(&lv)
	l.Info("hidden")
	lv.Set(slog.LevelDebug)
	l.Debug("shown")
	if got := out.all(); len(got) != 1 || got[0] != "shown" {
		t.Fatalf("lines %q, want [shown]", got)
	}
}

// TestTapsSeeEveryLine: server lines, request lines and worker output all
// reach every tap (log-alarm), without their newline, in the order written.
func TestTapsSeeEveryLine(t *testing.T) {
	out := &lines{}
	sink := logging.NewSink(out)
	var mu sync.Mutex
	var a, b []string
	sink.AddTap(func(line string) { mu.Lock(); a = append(a, line); mu.Unlock() })
	sink.AddTap(func(line string) { mu.Lock(); b = append(b, line); mu.Unlock() })

	sink.Logger(slog.LevelInfo).Info("*** HARAKIRI ON WORKER 1 (pid: 5, try: 1) ***")
	sink.Line("with newline\n")
	reqLog, err := logging.NewRequestLog(logging.RequestConfig{Format: "%(method) %(uri)"}, sink)
	if err != nil {
		t.Fatal(err)
	}
	reqLog.LogRequest(uwsgiRequest())
	sink.CopyLines(strings.NewReader("Traceback (most recent call last):\r\n  boom\n"))

	want := []string{"*** HARAKIRI ON WORKER 1 (pid: 5, try: 1) ***", "with newline", "GET /x?y=1", "Traceback (most recent call last):", "  boom"}
	mu.Lock()
	defer mu.Unlock()
	for name, got := range map[string][]string{"tap a": a, "tap b": b, "output": out.all()} {
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s saw %q, want %q", name, got, want)
		}
	}
}

// TestCopyLinesLongLines: a line longer than MaxLine is forwarded in
// pieces, and the lines after it still arrive: one worker printing a huge
// line must not stop the log pipe every worker writes to.
func TestCopyLinesLongLines(t *testing.T) {
	huge := strings.Repeat("x", 3*logging.MaxLine+17)
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{"short lines", "a\nb\n", []string{"a", "b"}},
		{"last line without newline", "a\nb", []string{"a", "b"}},
		{"CRLF", "a\r\nb\r\n", []string{"a", "b"}},
		{"empty lines kept", "a\n\nb\n", []string{"a", "", "b"}},
		{"exactly MaxLine", strings.Repeat("y", logging.MaxLine-1) + "\nafter\n", []string{strings.Repeat("y", logging.MaxLine-1), "after"}},
		{"huge line split", huge + "\nafter\n", []string{huge[:logging.MaxLine], huge[logging.MaxLine : 2*logging.MaxLine], huge[2*logging.MaxLine : 3*logging.MaxLine], huge[3*logging.MaxLine:], "after"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &lines{}
			logging.NewSink(out).CopyLines(strings.NewReader(tt.input))
			got := out.all()
			if len(got) != len(tt.want) {
				t.Fatalf("%d lines, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("line %d: %d bytes %.20q..., want %d bytes %.20q...", i, len(got[i]), got[i], len(tt.want[i]), tt.want[i])
				}
			}
		})
	}
}

// TestCopyLinesDrainsPipe: after a huge line the writer is never blocked,
// as a worker writing its stderr into the shared pipe would be.
func TestCopyLinesDrainsPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := &lines{}
	done := make(chan struct{})
	go func() { logging.NewSink(out).CopyLines(r); close(done) }()
	wrote := make(chan error, 1)
	go func() {
		_, err := io.WriteString(w, strings.Repeat("z", 2<<20)+"\n")
		for i := 0; err == nil && i < 1000; i++ {
			_, err = io.WriteString(w, "line after the huge one\n")
		}
		wrote <- errors.Join(err, w.Close())
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("writer: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("writer blocked: CopyLines stopped draining the pipe")
	}
	<-done
	got := out.all()
	if n := len(got); n < 1000 || got[n-1] != "line after the huge one" {
		t.Fatalf("%d lines, last %.40q", n, got[n-1])
	}
}

// TestOpenFile: logto appends across opens, log-truncate starts afresh,
// and a path that cannot be opened is an error naming it.
func TestOpenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	write := func(truncate bool, line string) {
		t.Helper()
		f, err := logging.OpenFile(path, truncate)
		if err != nil {
			t.Fatal(err)
		}
		logging.NewSink(f).Line(line)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	write(false, "one")
	write(false, "two")
	if got := read(); got != "one\ntwo\n" {
		t.Fatalf("after two appends: %q", got)
	}
	write(true, "three")
	if got := read(); got != "three\n" {
		t.Fatalf("after log-truncate: %q", got)
	}
	bad := filepath.Join(t.TempDir(), "missing-dir", "x.log")
	if _, err := logging.OpenFile(bad, false); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("OpenFile(%s) error = %v, want one naming the path", bad, err)
	}
}

// TestSetOutput: lines after SetOutput go to the new writer only.
func TestSetOutput(t *testing.T) {
	first, second := &lines{}, &lines{}
	sink := logging.NewSink(first)
	sink.Line("before")
	sink.SetOutput(second)
	sink.Line("after")
	if a, b := first.all(), second.all(); len(a) != 1 || a[0] != "before" || len(b) != 1 || b[0] != "after" {
		t.Fatalf("first %q, second %q", a, b)
	}
}
