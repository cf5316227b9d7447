package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	adminv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/admin/v1"
)

// errorApp logs one error line per request to /err, with the query
// string in it, as an app's own logging would.
const errorApp = `import sys


def application(environ, start_response):
    if environ["PATH_INFO"] == "/err":
        print("CLUSTER-ERROR: database exploded " + environ["QUERY_STRING"], file=sys.stderr, flush=True)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
`

// alarmNode is one gouwsgi process of the alarm cluster.
type alarmNode struct {
	s    *server
	name string // n0, n1, n2: what its alarm action writes
	base string // HTTP base URL
	ctl  ctl
	id   string // legion node id
}

// incident returns the node's cluster history entry whose message
// contains marker.
func (n *alarmNode) incident(t *testing.T, marker string) (*adminv1.Alarm, error) {
	t.Helper()
	var resp adminv1.AlarmServiceListResponse
	n.ctl.json(t, &resp, "alarms", "list", "--all")
	var found *adminv1.Alarm
	for _, a := range resp.GetAlarms() {
		if strings.Contains(a.GetMessage(), marker) {
			if found != nil {
				return nil, fmt.Errorf("node %s lists two incidents for %q: %v and %v", n.name, marker, found, a)
			}
			found = a
		}
	}
	if found == nil {
		return nil, fmt.Errorf("node %s lists no incident for %q (%d alarms)", n.name, marker, len(resp.GetAlarms()))
	}
	return found, nil
}

// lines returns the lines of a file the alarm action appends to that
// contain marker.
func lines(path, marker string) []string {
	b, _ := os.ReadFile(path)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, marker) {
			out = append(out, l)
		}
	}
	return out
}

// TestAlarmCluster runs three gouwsgi nodes of one legion on loopback.
// The same error logged on all three runs the cmd: action exactly once;
// when the node running the (slow) action dies with it, another node runs
// it, and the cluster history still records one execution. Every node's
// admin API shows the same incident, raised by all three nodes.
func TestAlarmCluster(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	app := filepath.Join(dir, "app.py")
	if err := os.WriteFile(app, []byte(errorApp), 0o644); err != nil {
		t.Fatal(err)
	}
	starts, runs := filepath.Join(dir, "starts"), filepath.Join(dir, "runs")
	taken := map[int]bool{}
	ports := []int{legionPorts(t, taken), legionPorts(t, taken), legionPorts(t, taken)}
	nodes := make([]*alarmNode, 3)
	for i := range nodes {
		name := fmt.Sprintf("n%d", i)
		// One line in starts when the action begins (with its process
		// group, so the test can kill it with its node), one in runs when
		// it completes: runs counts executions.
		action := fmt.Sprintf(`pager cmd:msg=$(cat); echo "$$ %s $msg" >> %s; sleep 3; echo "%s $msg" >> %s`, name, starts, name, runs)
		args := []string{
			"--wsgi-file", app, "--master", "--processes", "1", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0",
			"--alarm", action, "--alarm-freq", "60", "--log-alarm", `pager ^CLUSTER-ERROR: `,
			"--legion", fmt.Sprintf("web 127.0.0.1:%d %d aes256:e2e-alarm-secret", ports[i], 100-10*i),
			"--legion-data-dir", filepath.Join(dir, name),
		}
		for j := range nodes {
			if j != i {
				args = append(args, "--legion-node", fmt.Sprintf("web 127.0.0.1:%d", ports[j]))
			}
		}
		nodeDir := filepath.Join(dir, name+"-cwd")
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			t.Fatal(err)
		}
		nodes[i] = &alarmNode{s: start(t, nodeDir, args...), name: name}
	}
	for _, n := range nodes {
		n.ctl = newCtl(t, n.s.adminAddr())
		n.base = n.s.httpAddr()
		n.s.ready(1)
	}
	// Every node knows the same Raft leader: all three are voters, so
	// every record goes through Raft.
	poll(t, 60*time.Second, "one raft leader seen by all three nodes", func() error {
		leader := ""
		for _, n := range nodes {
			var st adminv1.StatusResponse
			n.ctl.json(t, &st, "legion", "status")
			n.id = st.GetNodeId()
			if st.GetLeaderId() == "" || (leader != "" && st.GetLeaderId() != leader) {
				return fmt.Errorf("node %s sees leader %q, another saw %q", n.name, st.GetLeaderId(), leader)
			}
			leader = st.GetLeaderId()
		}
		return nil
	})
	raiseOnAll := func(t *testing.T, ns []*alarmNode, marker string) {
		t.Helper()
		for _, n := range ns {
			if code, _, _ := get(t, n.base+"/err?"+marker); code != http.StatusOK {
				t.Fatalf("GET /err on %s: %d", n.name, code)
			}
		}
	}
	// settled waits until every node in ns lists the incident done, with
	// all three nodes as raisers, and returns the first node's view.
	settled := func(t *testing.T, ns []*alarmNode, marker string) *adminv1.Alarm {
		t.Helper()
		var got *adminv1.Alarm
		poll(t, 60*time.Second, "incident "+marker+" done and raised by all three nodes everywhere", func() error {
			for i, n := range ns {
				a, err := n.incident(t, marker)
				if err != nil {
					return err
				}
				if a.GetOutcome() != "ok" || a.GetCount() != 3 || len(a.GetRaisers()) != 3 {
					return fmt.Errorf("node %s: %v", n.name, a)
				}
				if i == 0 {
					got = a
				}
			}
			return nil
		})
		ids := map[string]bool{}
		for _, r := range got.GetRaisers() {
			ids[r.GetNodeId()] = true
		}
		for _, n := range nodes {
			if !ids[n.id] {
				t.Fatalf("incident %s raisers %v lack node %s (%s)", marker, got.GetRaisers(), n.name, n.id)
			}
		}
		return got
	}

	t.Run("one error on every node runs the action once", func(t *testing.T) {
		raiseOnAll(t, nodes, "phase=1")
		a := settled(t, nodes, "phase=1")
		if got := lines(runs, "phase=1"); len(got) != 1 || a.GetRuns() != 1 {
			t.Fatalf("action ran %d times (%q), history says %d; want once", len(got), got, a.GetRuns())
		}
		if got := lines(starts, "phase=1"); len(got) != 1 {
			t.Fatalf("action started %d times: %q", len(got), got)
		}
		// Acknowledged on one node (through Raft), seen on every node.
		nodes[1].ctl.ok(t, "alarms", "ack", strconv.FormatUint(a.GetId(), 10))
		poll(t, 10*time.Second, "the acknowledgement on every node", func() error {
			for _, n := range nodes {
				var open adminv1.AlarmServiceListResponse
				n.ctl.json(t, &open, "alarms", "list")
				for _, o := range open.GetAlarms() {
					if o.GetId() == a.GetId() {
						return fmt.Errorf("node %s still lists incident %d as open", n.name, a.GetId())
					}
				}
				if got, err := n.incident(t, "phase=1"); err != nil || !got.GetAcknowledged() {
					return fmt.Errorf("node %s: %v %v", n.name, got, err)
				}
			}
			return nil
		})
	})

	t.Run("an operator raise is a cluster incident", func(t *testing.T) {
		var resp adminv1.AlarmServiceRaiseResponse
		nodes[2].ctl.json(t, &resp, "alarms", "raise", "pager", "manual page phase=0")
		if a := resp.GetAlarm(); a.GetNodeId() != nodes[2].id || a.GetOwnerNodeId() != nodes[2].id || a.GetCount() != 1 {
			t.Fatalf("raise answered %v; want the cluster incident raised and owned by %s", a, nodes[2].id)
		}
		poll(t, 30*time.Second, "the manual page to run once", func() error {
			if got := lines(runs, "phase=0"); len(got) != 1 || !strings.HasPrefix(got[0], "n2 ") {
				return fmt.Errorf("runs %q", got)
			}
			return nil
		})
	})

	t.Run("the running node dies: another node runs it once", func(t *testing.T) {
		raiseOnAll(t, nodes, "phase=2")
		var pid int
		var victim *alarmNode
		poll(t, 30*time.Second, "the action to start", func() error {
			got := lines(starts, "phase=2")
			if len(got) == 0 {
				return fmt.Errorf("no start yet")
			}
			f := strings.Fields(got[0])
			p, err := strconv.Atoi(f[0])
			if err != nil || len(f) < 2 {
				return fmt.Errorf("bad start line %q", got[0])
			}
			pid = p
			for _, n := range nodes {
				if n.name == f[1] {
					victim = n
				}
			}
			return nil
		})
		// The host dies: its master first (so it cannot report), then the
		// action it started (its own process group).
		if err := victim.s.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-victim.s.done
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill the action's process group %d: %v", pid, err)
		}
		var rest []*alarmNode
		for _, n := range nodes {
			if n != victim {
				rest = append(rest, n)
			}
		}
		a := settled(t, rest, "phase=2")
		if a.GetOwnerNodeId() == victim.id || a.GetRuns() != 1 {
			t.Fatalf("incident after %s died: owner %s, runs %d", victim.name, a.GetOwnerNodeId(), a.GetRuns())
		}
		got := lines(runs, "phase=2")
		if len(got) != 1 || strings.HasPrefix(got[0], victim.name+" ") {
			t.Fatalf("completed executions %q; want exactly one, not on the dead %s", got, victim.name)
		}
		if st := lines(starts, "phase=2"); len(st) != 2 {
			t.Fatalf("action started %d times (%q); want twice: killed on %s, then the rerun", len(st), st, victim.name)
		}
		for _, n := range rest {
			if strings.Contains(n.s.logs(), "cluster record failed") {
				t.Fatalf("node %s ran an alarm locally because the cluster record failed", n.name)
			}
		}
	})
}
