package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/e2e/lab"
)

// How the failover benchmark's legion looks on every implementation: one
// legion of three hosts, h0 with the highest valor, the VIP on the lab's
// eth0, the app's HTTP listener on every address (so it serves the VIP as
// soon as the lord adds it).
const (
	benchLegion = "mylegion"
	benchSecret = "secret"
	legionPort  = 4242
	benchPort   = 8080
)

// benchValor is host i's valor: h0 is the preferred lord.
func benchValor(i int) int { return 100 - 10*i }

// failoverSetup is one row of the benchmark: an implementation with given
// settings, how to start a member of its legion, and the time bounds that
// follow from the settings.
type failoverSetup struct {
	// id selects the setup in GOUWSGI_BENCH_SETUPS.
	id string
	// impl and settings are the table's first two columns.
	impl, settings string
	trials         int
	// form bounds the first election after all members start together.
	form time.Duration
	// failover bounds one trial, from the host's death to a served request.
	failover time.Duration
	// settle bounds the wait for a stable lord after a dead host restarts.
	settle time.Duration
	// preempt is how long a lord other than the highest-valor host must
	// stay put before the restart counts as settled: the restarted host
	// may still take lordship back within it.
	preempt time.Duration
	// start starts host i's member and returns its process.
	start func(t *testing.T, i int) *lab.Proc
	// startupNote, if set, explains a setup whose legion never formed: it
	// is reported instead of failing the benchmark.
	startupNote string
}

// benchCluster is what every member needs to know about the lab.
type benchCluster struct {
	lab *lab.Lab
	vip netip.Prefix
	// dir holds each host's app (and data directories).
	dir string
}

// newBenchCluster writes one app per host into a temporary directory.
func newBenchCluster(t *testing.T, l *lab.Lab) *benchCluster {
	t.Helper()
	c := &benchCluster{lab: l, vip: l.VIP(0), dir: t.TempDir()}
	for _, h := range l.Hosts {
		if err := os.MkdirAll(filepath.Join(c.dir, h.Name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.appPath(h), []byte(hostApp(h.Name)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// hostApp is a WSGI app answering with the host's name, so that a response
// through the VIP tells which host served it.
func hostApp(name string) string {
	return fmt.Sprintf(`NAME = b%q


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(NAME)))])
    return [NAME]
`, name)
}

func (c *benchCluster) appPath(h *lab.Host) string {
	return filepath.Join(c.dir, h.Name, "app.py")
}

// legionAddr is host i's legion address.
func (c *benchCluster) legionAddr(i int) string {
	return netip.AddrPortFrom(c.lab.Hosts[i].IP, legionPort).String()
}

// peers lists the legion addresses of every host but i.
func (c *benchCluster) peers(i int) []string {
	var out []string
	for j := range c.lab.Hosts {
		if j != i {
			out = append(out, c.legionAddr(j))
		}
	}
	return out
}

// legionTimes are the uWSGI legion-freq and legion-tolerance.
type legionTimes struct {
	freq, tolerance time.Duration
}

func (lt legionTimes) String() string {
	return fmt.Sprintf("legion-freq %d, legion-tolerance %d", int(lt.freq.Seconds()), int(lt.tolerance.Seconds()))
}

// uwsgiSetup runs Debian's uWSGI with its Legion moving the VIP through
// cmd: hooks, as its documentation's IP-takeover pattern does.
//
// legion-quorum 2 (of 3) is set so that a restarted node alone does not elect
// itself before it hears the others, which would be a split brain of the
// configuration's making rather than of Legion's. The lord hook uses `ip addr
// replace` so that it still announces when a stale copy is present; Debian's
// arping (Habets' 2.23) updates neighbours only with -S.
func (c *benchCluster) uwsgiSetup(id, label string, lt legionTimes, trials int) failoverSetup {
	vip, dev := c.vip.String(), lab.Dev
	addr := c.vip.Addr().String()
	del := fmt.Sprintf("cmd:ip addr del %s dev %s 2>/dev/null || true", vip, dev)
	lord := fmt.Sprintf("cmd:ip addr replace %s dev %s && arping -q -c1 -w0 -U -S %s -i %s %s", vip, dev, addr, dev, addr)
	// uWSGI declares a member dead after tolerance and elects on its next
	// announce tick; the margins absorb a slow 2-core machine.
	cycle := lt.tolerance + lt.freq
	return failoverSetup{
		id:       id,
		impl:     "uWSGI " + uwsgiVersion() + " Legion, cmd: hooks",
		settings: label + " (" + lt.String() + ", legion-quorum 2)",
		trials:   trials,
		form:     cycle + 30*time.Second,
		failover: 2*cycle + 10*time.Second,
		settle:   2*cycle + 30*time.Second,
		preempt:  3*lt.freq + 2*time.Second,
		start: func(t *testing.T, i int) *lab.Proc {
			t.Helper()
			h := c.lab.Hosts[i]
			args := []string{
				"uwsgi", "--plugin", "python3,http", "--master", "--processes", "1",
				"--need-app", "--disable-logging",
				"--http", fmt.Sprintf("0.0.0.0:%d", benchPort), "--wsgi-file", c.appPath(h),
				"--legion", fmt.Sprintf("%s %s %d aes-256-cbc:%s", benchLegion, c.legionAddr(i), benchValor(i), benchSecret),
				"--legion-quorum", benchLegion + " 2",
				"--legion-freq", fmt.Sprint(int(lt.freq.Seconds())),
				"--legion-tolerance", fmt.Sprint(int(lt.tolerance.Seconds())),
				"--legion-setup", benchLegion + " " + del,
				"--legion-lord", benchLegion + " " + lord,
				"--legion-unlord", benchLegion + " " + del,
				"--legion-death", benchLegion + " " + del,
			}
			for _, p := range c.peers(i) {
				args = append(args, "--legion-node", benchLegion+" "+p)
			}
			cmd := h.Command(args...)
			cmd.Env = append(os.Environ(), debianPath())
			return h.StartCmd(cmd)
		},
	}
}

// uwsgiVersion is the installed uWSGI's version, for the table.
func uwsgiVersion() string {
	out, err := runQuiet("uwsgi", "--version")
	if err != nil {
		return "(unknown version)"
	}
	return strings.TrimSpace(out)
}

// gouwsgiSetup runs gouwsgi with the uWSGI options and its built-in vip:
// hook action, with its default timings. bin is the gouwsgi binary; extra
// lines are added to every host's ini. Each member runs in the host's
// directory (so a hook writing a relative path writes inside the host) and
// in its own UTS namespace named after the host, as on separate machines:
// the legion names members by hostname.
func (c *benchCluster) gouwsgiSetup(id string, bin string, trials int, extra ...string) failoverSetup {
	vipHook := fmt.Sprintf("%s vip:%s,dev=%s", benchLegion, c.vip, lab.Dev)
	return failoverSetup{
		id:       id,
		impl:     "gouwsgi, vip: hook",
		settings: "defaults",
		trials:   trials,
		form:     45 * time.Second,
		failover: 30 * time.Second,
		settle:   60 * time.Second,
		preempt:  5 * time.Second,
		start: func(t *testing.T, i int) *lab.Proc {
			t.Helper()
			h := c.lab.Hosts[i]
			// The data directory survives the host's restarts, so a
			// restarted host rejoins as the same member.
			data := filepath.Join(c.dir, h.Name, "legion")
			ini := []string{
				"[uwsgi]",
				fmt.Sprintf("http = 0.0.0.0:%d", benchPort),
				"wsgi-file = " + c.appPath(h),
				"master = true",
				"processes = 1",
				"home = /usr",
				"disable-logging = true",
				fmt.Sprintf("legion = %s %s %d aes256:%s", benchLegion, c.legionAddr(i), benchValor(i), benchSecret),
				"legion-data-dir = " + data,
				"legion-setup = " + vipHook,
				"legion-lord = " + vipHook,
				"legion-unlord = " + vipHook,
				"legion-death = " + vipHook,
			}
			for _, p := range c.peers(i) {
				ini = append(ini, fmt.Sprintf("legion-node = %s %s", benchLegion, p))
			}
			ini = append(ini, extra...)
			path := filepath.Join(c.dir, h.Name, "gouwsgi.ini")
			if err := os.WriteFile(path, []byte(strings.Join(ini, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			// unshare and sh exec in turn, so the PID stays gouwsgi's.
			cmd := h.Command("unshare", "--uts", "sh", "-c", `hostname "$0" && exec "$@"`, h.Name, bin, "--ini", path)
			cmd.Dir = filepath.Join(c.dir, h.Name)
			cmd.Env = append(os.Environ(), debianPath())
			return h.StartCmd(cmd)
		},
	}
}
