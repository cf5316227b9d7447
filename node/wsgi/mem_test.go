package wsgi

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestZygoteSharesMemory checks the point of zygote mode: workers forked
// from the process that imported Django share most of their pages with it,
// so each one's proportional share (PSS) is well below its RSS, unlike
// lazy workers which import everything themselves.
func TestZygoteSharesMemory(t *testing.T) {
	ratio := map[bool]float64{}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			spec, _ := appSpec(t, m.lazy, 1)
			spec.Chdir = testdata(t, "django")
			spec.Module = "mysite.wsgi:application"
			sp := newSpawner(t, spec)
			var pss, rss int
			for wid := 1; wid <= 2; wid++ {
				p := spawn(t, sp, wid)
				wantResponse(t, newClient(p.Data[0]).do(t, requestVars("GET", "/hello/"), nil), "200 OK", "Hello from Django")
				r, s := memory(t, p.PID)
				t.Logf("worker %d: rss %d KiB, pss %d KiB", wid, r, s)
				rss += r
				pss += s
			}
			ratio[m.lazy] = float64(pss) / float64(rss)
		})
	}
	t.Logf("pss/rss: zygote %.2f, lazy %.2f", ratio[false], ratio[true])
	if ratio[false] > ratio[true]-0.1 {
		t.Errorf("zygote workers' pss/rss %.2f (lazy %.2f): want them to share most pages", ratio[false], ratio[true])
	}
}

// memory returns the Rss and Pss of pid in KiB.
func memory(t *testing.T, pid int) (rss, pss int) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		t.Skipf("no smaps_rollup: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "Rss:":
			rss = n
		case "Pss:":
			pss = n
		}
	}
	return rss, pss
}
