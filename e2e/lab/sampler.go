package lab

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultSampleInterval is how often a Sampler looks at the VIP's holders.
const DefaultSampleInterval = 10 * time.Millisecond

// Sample is one observation of which hosts held an address.
type Sample struct {
	At      time.Time
	Holders []string // host names, in lab order
	Err     error    // set when the observation failed; Holders may be partial
}

// Report summarises a Sampler's observations.
type Report struct {
	Samples []Sample
	// Dual counts samples with more than one holder: split brain.
	Dual int
	// None counts samples with no holder.
	None int
	// Errors counts failed observations.
	Errors int
}

// Changes returns the samples where the holder set differs from the previous
// sample (the first sample always counts), which is where failovers show.
func (r Report) Changes() []Sample {
	var out []Sample
	for i, s := range r.Samples {
		if i == 0 || !slices.Equal(s.Holders, r.Samples[i-1].Holders) {
			out = append(out, s)
		}
	}
	return out
}

// LongestGap is the longest run of consecutive samples without a holder,
// measured from the first empty sample to the next sample with a holder (or
// the last sample).
func (r Report) LongestGap() time.Duration {
	var longest time.Duration
	var start time.Time
	for _, s := range r.Samples {
		switch {
		case len(s.Holders) == 0 && start.IsZero():
			start = s.At
		case len(s.Holders) > 0 && !start.IsZero():
			longest = max(longest, s.At.Sub(start))
			start = time.Time{}
		}
	}
	if !start.IsZero() {
		longest = max(longest, r.Samples[len(r.Samples)-1].At.Sub(start))
	}
	return longest
}

// String summarises the report and lists its changes.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d samples, %d with two or more holders, %d with none, %d errors", len(r.Samples), r.Dual, r.None, r.Errors)
	for _, c := range r.Changes() {
		fmt.Fprintf(&b, "\n  %s holders=%v", c.At.Format("15:04:05.000"), c.Holders)
	}
	return b.String()
}

// Sampler polls which hosts hold an address until stopped.
type Sampler struct {
	lab      *Lab
	addr     netip.Addr
	interval time.Duration
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once

	mu     sync.Mutex
	report Report
}

// SampleVIP starts sampling the holders of addr every DefaultSampleInterval.
// The lab's teardown stops it if the test does not.
func (l *Lab) SampleVIP(addr netip.Addr) *Sampler {
	return l.SampleVIPEvery(addr, DefaultSampleInterval)
}

// SampleVIPEvery starts sampling the holders of addr every interval.
func (l *Lab) SampleVIPEvery(addr netip.Addr, interval time.Duration) *Sampler {
	s := &Sampler{lab: l, addr: addr, interval: interval, stop: make(chan struct{}), done: make(chan struct{})}
	l.mu.Lock()
	l.samplers = append(l.samplers, s)
	l.mu.Unlock()
	go s.run()
	return s
}

func (s *Sampler) run() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.observe()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

func (s *Sampler) observe() {
	holders, err := s.lab.Holders(s.addr)
	sample := Sample{At: time.Now(), Holders: holders, Err: err}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &s.report
	r.Samples = append(r.Samples, sample)
	switch {
	case err != nil:
		r.Errors++
	case len(holders) > 1:
		r.Dual++
	case len(holders) == 0:
		r.None++
	}
}

// Report returns a copy of the observations so far; the sampler keeps running.
func (s *Sampler) Report() Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.report
	r.Samples = slices.Clone(r.Samples)
	return r
}

// Stop ends sampling and returns the final report. It may be called more than once.
func (s *Sampler) Stop() Report {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return s.Report()
}
