package wsgi

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkWorkerHello drives one single-threaded worker directly over one
// data connection, one request at a time: the Python per-request path plus
// the framing, without any frontend. Besides the round trip it reports the
// worker's own CPU time per request, the figure that bounds throughput when
// many workers are busy.
func BenchmarkWorkerHello(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			spec, _ := appSpec(b, m.lazy, 1)
			p := spawn(b, newSpawner(b, spec), 1)
			c := newClient(p.Data[0])
			req, err := AppendRequest(nil, requestVars("GET", "/"), nil)
			if err != nil {
				b.Fatal(err)
			}
			cpu0 := cpuTicks(b, p.PID)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.conn.Write(req); err != nil {
					b.Fatal(err)
				}
				r, err := c.read(nil)
				if err != nil {
					b.Fatal(err)
				}
				if r.status != "200 OK" {
					b.Fatalf("status %q", r.status)
				}
			}
			b.StopTimer()
			// /proc ticks are 1/100 s (USER_HZ on Linux).
			cpu := float64(cpuTicks(b, p.PID)-cpu0) * 10000 / float64(b.N)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			b.ReportMetric(cpu, "worker-cpu-µs/req")
		})
	}
}

// cpuTicks is utime+stime of pid from /proc/pid/stat.
func cpuTicks(tb testing.TB, pid int) int64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: state is
	// field 3, utime 14, stime 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}
