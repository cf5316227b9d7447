package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/e2e/lab"
)

// Probing the VIP from the client during a failover: a new GET every
// probeEvery, each given probeTimeout, several in flight. A request sent
// while the client still resolves the VIP to the dead host's MAC waits for a
// SYN retransmission (1 s), so sequential requests would measure the
// retransmission timer rather than the failover.
const (
	probeEvery   = 10 * time.Millisecond
	probeTimeout = 200 * time.Millisecond
	// stableEvery and stableTimeout pace the (sequential) checks of a
	// settled lord between trials.
	stableEvery   = 50 * time.Millisecond
	stableTimeout = 500 * time.Millisecond
	// settledQuiet is how long the highest-valor host must hold and serve
	// the VIP before a trial starts.
	settledQuiet = time.Second
)

// failoverResult is what one setup measured.
type failoverResult struct {
	setup failoverSetup
	// gaps are the successful trials' times from host death to served GET.
	gaps   []time.Duration
	failed int
	// dual counts sampler observations with two or more live holders, by
	// phase: during failovers, during restarts (preemption), and at other
	// times (formation).
	dualFailover, dualRestore, dualOther int
	samples                              int
	notes                                []string
	// measured is false when the setup never got to its trials.
	measured bool
}

func (r *failoverResult) dual() int { return r.dualFailover + r.dualRestore + r.dualOther }

func (r *failoverResult) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// deathWindow is one trial's timeline.
type deathWindow struct {
	host string
	// died is when the link went down (then kill -9), served when a GET
	// through the VIP succeeded (zero if none did), up when the link came
	// back (the host "rebooted"), settled when a lord was stable again.
	died, served, up, settled time.Time
}

// failoverRun runs one setup's trials in its own lab.
type failoverRun struct {
	t      *testing.T
	c      *benchCluster
	s      failoverSetup
	procs  []*lab.Proc
	client *http.Client
	url    string
	res    *failoverResult
	deaths []deathWindow
}

// runFailoverSetup builds a lab, makes the setup for it and runs its trials.
func runFailoverSetup(t *testing.T, setup func(*benchCluster) failoverSetup) *failoverResult {
	l := lab.New(t, 3)
	c := newBenchCluster(t, l)
	s := setup(c)
	r := newFailoverRun(t, c, s)
	sampler := l.SampleVIP(c.vip.Addr())
	defer func() {
		r.stopAll()
		r.analyseSamples(sampler.Stop())
	}()

	for i := range l.Hosts {
		r.procs[i] = s.start(t, i)
	}
	formed := time.Now()
	lord, err := r.waitStable(s.form)
	if err != nil {
		if s.startupNote != "" {
			r.res.note("%s (%v)", s.startupNote, err)
			t.Log(r.res.notes[len(r.res.notes)-1])
		} else {
			t.Errorf("%s: no stable lord after start: %v", s.id, err)
			r.res.note("no stable lord after start: %v", err)
		}
		r.logOutputs()
		return r.res
	}
	r.res.measured = true
	t.Logf("%s: %s lord and serving %s after %s", s.id, l.Hosts[lord].Name, r.url, time.Since(formed).Round(time.Millisecond))

	for trial := 1; trial <= s.trials; trial++ {
		next, err := r.trial(trial, lord)
		if err != nil {
			// Without a stable lord there is nothing to kill: the remaining
			// trials cannot run.
			r.res.failed += s.trials - trial
			r.res.note("stopped after trial %d: %v", trial, err)
			t.Errorf("%s: %v", s.id, err)
			r.logOutputs()
			break
		}
		lord = next
	}
	return r.res
}

// newFailoverRun prepares a run of setup s in cluster c; no member runs yet.
func newFailoverRun(t *testing.T, c *benchCluster, s failoverSetup) *failoverRun {
	return &failoverRun{
		t: t, c: c, s: s,
		procs:  make([]*lab.Proc, len(c.lab.Hosts)),
		client: c.lab.Client.HTTPClient(),
		url:    fmt.Sprintf("http://%s:%d/", c.vip.Addr(), benchPort),
		res:    &failoverResult{setup: s},
	}
}

// trial kills host lord (link down, then kill -9 of its process group, so
// that it sends nothing more, not even TCP resets), measures until a GET
// through the VIP succeeds from the client, then restarts the host and waits
// for a stable lord, which it returns.
func (r *failoverRun) trial(n, lord int) (int, error) {
	h := r.c.lab.Hosts[lord]
	w := deathWindow{host: h.Name, died: time.Now()}
	if err := r.killHost(lord); err != nil {
		return 0, fmt.Errorf("trial %d: %w", n, err)
	}
	at, by, err := probeUntilServing(r.client, r.url, w.died.Add(r.s.failover), h.Name)
	if err != nil {
		r.res.failed++
		r.t.Logf("%s trial %d: %s died, VIP not serving within %s: %v", r.s.id, n, h.Name, r.s.failover, err)
	} else {
		w.served = at
		gap := at.Sub(w.died)
		r.res.gaps = append(r.res.gaps, gap)
		r.t.Logf("%s trial %d: %s died, %s served through the VIP after %s", r.s.id, n, h.Name, by, gap.Round(time.Millisecond))
	}

	// The host comes back as from a reboot: no VIP, no neighbour cache.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.Exec(ctx, "sh", "-c", fmt.Sprintf("ip addr del %s dev %s 2>/dev/null; ip neigh flush all", r.c.vip, lab.Dev)); err != nil {
		return 0, fmt.Errorf("trial %d: reboot %s: %w", n, h.Name, err)
	}
	if err := h.LinkUp(); err != nil {
		return 0, fmt.Errorf("trial %d: %w", n, err)
	}
	w.up = time.Now()
	r.procs[lord] = r.s.start(r.t, lord)
	next, err := r.waitStable(r.s.settle)
	w.settled = time.Now()
	r.deaths = append(r.deaths, w)
	if err != nil {
		return 0, fmt.Errorf("trial %d: no stable lord after %s restarted: %w", n, h.Name, err)
	}
	r.t.Logf("%s trial %d: %s restarted, %s lord and serving after %s", r.s.id, n, h.Name, r.c.lab.Hosts[next].Name, w.settled.Sub(w.up).Round(time.Millisecond))
	return next, nil
}

// killHost kills host i as a power cut would: its link goes down first, so
// it sends nothing more (not even TCP resets), then its member's process
// group is killed with SIGKILL. Its addresses stay on its interface.
func (r *failoverRun) killHost(i int) error {
	if err := r.c.lab.Hosts[i].LinkDown(); err != nil {
		return err
	}
	return r.procs[i].Kill()
}

// waitStable waits until one host holds the VIP and serves the client's
// GETs through it, without change for settledQuiet if it is the
// highest-valor host (h0) or for the setup's preempt time otherwise (h0 may
// still take lordship back). It gives up early when every member exited.
func (r *failoverRun) waitStable(timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	holder, since := "", time.Time{}
	var last error
	for time.Now().Before(deadline) {
		if r.allExited() {
			return 0, fmt.Errorf("every member exited; h0's output ends with: %s", tail(r.procs[0].Output(), 3))
		}
		cur, err := r.servingHolder()
		switch {
		case err != nil:
			holder, last = "", err
		case cur != holder:
			holder, since = cur, time.Now()
		default:
			need := r.s.preempt
			if holder == r.c.lab.Hosts[0].Name {
				need = settledQuiet
			}
			if time.Since(since) >= need {
				return hostIndex(r.c.lab, holder), nil
			}
		}
		time.Sleep(stableEvery)
	}
	return 0, fmt.Errorf("not within %s; last: %v", timeout, last)
}

// servingHolder returns the VIP's only holder if a GET through the VIP is
// answered by it.
func (r *failoverRun) servingHolder() (string, error) {
	holders, err := r.c.lab.Holders(r.c.vip.Addr())
	if err != nil {
		return "", err
	}
	if len(holders) != 1 {
		return "", fmt.Errorf("VIP holders %v", holders)
	}
	ctx, cancel := context.WithTimeout(context.Background(), stableTimeout)
	defer cancel()
	body, err := getBody(ctx, r.client, r.url)
	if err != nil {
		return "", err
	}
	if body != holders[0] {
		return "", fmt.Errorf("%s holds the VIP, %q answered", holders[0], body)
	}
	return holders[0], nil
}

func (r *failoverRun) allExited() bool {
	for _, p := range r.procs {
		select {
		case <-p.Done():
		default:
			return false
		}
	}
	return true
}

// stopAll kills every member by its process group.
func (r *failoverRun) stopAll() {
	for _, p := range r.procs {
		if p == nil {
			continue
		}
		if err := p.Kill(); err != nil {
			r.t.Errorf("stop member: %v", err)
		}
	}
}

// logOutputs shows the members' output when a setup went wrong.
func (r *failoverRun) logOutputs() {
	for i, p := range r.procs {
		if p != nil {
			r.t.Logf("%s output (last lines):\n%s", r.c.lab.Hosts[i].Name, tail(p.Output(), 30))
		}
	}
}

// analyseSamples reads the sampler's observations. It attributes those
// with two or more live holders to the phase they fall in; a dead host
// (link down, process killed) still has the VIP on its interface but nobody
// can reach it, so it is left out of the holders from its death until its
// link comes back (by then its address is gone, as after a reboot). It also
// notes when the VIP appeared on a live host in each trial, to tell the
// election's share of a gap from the neighbour caches' share.
func (r *failoverRun) analyseSamples(rep lab.Report) {
	r.res.samples = len(rep.Samples)
	moved := make([]time.Time, len(r.deaths))
	for _, s := range rep.Samples {
		if s.Err != nil {
			continue
		}
		phase := &r.res.dualOther
		dead := ""
		for i, w := range r.deaths {
			switch {
			case !s.At.Before(w.died) && s.At.Before(w.up):
				phase, dead = &r.res.dualFailover, w.host
				if moved[i].IsZero() && slices.ContainsFunc(s.Holders, func(h string) bool { return h != w.host }) {
					moved[i] = s.At
				}
			case !s.At.Before(w.up) && !s.At.After(w.settled):
				phase = &r.res.dualRestore
			}
		}
		live := len(s.Holders)
		if slices.Contains(s.Holders, dead) {
			live--
		}
		if live > 1 {
			*phase++
		}
	}
	if rep.Errors > 0 {
		r.res.note("%d of %d holder samples failed", rep.Errors, len(rep.Samples))
	}
	var toVIP, toServed []time.Duration
	for i, w := range r.deaths {
		if moved[i].IsZero() || w.served.IsZero() {
			continue
		}
		toVIP = append(toVIP, moved[i].Sub(w.died))
		toServed = append(toServed, w.served.Sub(moved[i]))
	}
	if len(toVIP) > 0 {
		r.res.note("medians: the VIP was on a live host %s ms after the death, and served %s ms after that",
			ms(sorted(toVIP), 0.5), ms(sorted(toServed), 0.5))
	}
}

// probeUntilServing starts a GET of url from the client every probeEvery
// until one returns 200 from a host other than dead, or until deadline. It
// returns when that response completed and who sent it.
func probeUntilServing(c *http.Client, url string, deadline time.Time, dead string) (time.Time, string, error) {
	type result struct {
		at   time.Time
		body string
		err  error
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	results := make(chan result)
	launch := func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, rcancel := context.WithTimeout(ctx, probeTimeout)
			defer rcancel()
			body, err := getBody(rctx, c, url)
			select {
			case results <- result{time.Now(), body, err}:
			case <-ctx.Done():
			}
		}()
	}
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	launch()
	var last error
	for {
		select {
		case <-ctx.Done():
			return time.Time{}, "", fmt.Errorf("no GET succeeded (last error: %v)", last)
		case <-tick.C:
			launch()
		case res := <-results:
			switch {
			case res.err != nil:
				last = res.err
			case res.body == dead:
				last = fmt.Errorf("answered by the dead host %s", dead)
			default:
				return res.at, res.body, nil
			}
		}
	}
}

// getBody GETs url and returns the body of a 200 response.
func getBody(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return "", fmt.Errorf("GET %s: read body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: status %d: %q", url, resp.StatusCode, b)
	}
	return string(b), nil
}

func hostIndex(l *lab.Lab, name string) int {
	for i, h := range l.Hosts {
		if h.Name == name {
			return i
		}
	}
	return -1
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runQuiet runs a short command outside the lab and returns its output.
func runQuiet(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}
