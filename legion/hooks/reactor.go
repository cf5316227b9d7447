package hooks

import (
	"context"
	"time"

	"github.com/gouwsgi/gouwsgi/legion"
)

// releaseTimeout bounds the synchronous VIP release of an unlord: it must
// finish within the lord lease margin or the address is left to the
// fence.
const releaseTimeout = 2 * time.Second

// Reactor turns legion events into hook runs, as uWSGI's legion does: it
// implements legion.Reactor (and legion.VIPReporter) over a Runner.
// Unlord releases the legion's VIPs on the caller's goroutine before the
// unlord hooks are queued, so the fenced resource goes first; setup and
// death wait for their hooks (a restarted node cleans a stale VIP before
// it joins, a stopping node releases before it exits).
type Reactor struct {
	R *Runner
	// Node is this node's name, for the hooks' environment.
	Node string
	// Lord names the current lord of a legion and the epoch of its
	// lordship ("", 0 when there is none), for the hooks' environment.
	Lord func(legion string) (name string, epoch uint64)
	// Wait bounds how long setup and death wait for their hooks.
	Wait time.Duration
}

var (
	_ legion.Reactor     = (*Reactor)(nil)
	_ legion.VIPReporter = (*Reactor)(nil)
	_ legion.Drainer     = (*Reactor)(nil)
)

// event describes phase p of legion l. epoch is the lordship a lord or
// unlord event is about; other events (epoch 0) carry the current one.
func (x *Reactor) event(p Phase, l string, epoch uint64) Event {
	ev := Event{Phase: p, Legion: l, Node: x.Node, Epoch: epoch}
	if x.Lord != nil {
		var current uint64
		ev.Lord, current = x.Lord(l)
		if epoch == 0 {
			ev.Epoch = current
		}
	}
	return ev
}

func (x *Reactor) wait(done <-chan struct{}) {
	d := x.Wait
	if d <= 0 {
		d = 30 * time.Second
	}
	select {
	case <-done:
	case <-time.After(d):
		x.R.log.Warn("legion hooks still running; not waiting any longer", "waited", d)
	}
}

// OnLord implements legion.Reactor.
func (x *Reactor) OnLord(l string, epoch uint64) {
	ev := x.event(PhaseLord, l, epoch)
	ev.Lord = x.Node
	x.R.Fire(ev)
}

// OnUnlord implements legion.Reactor.
func (x *Reactor) OnUnlord(l string, epoch uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if err := x.R.ReleaseVIPs(ctx, l, epoch); err != nil {
		x.R.log.Error("releasing the legion's vips on unlord failed", "legion", l, "epoch", epoch, "error", err)
	}
	x.R.Fire(x.event(PhaseUnlord, l, epoch))
}

// OnDrain implements legion.Drainer: before a graceful handover the
// legion's VIPs stop taking new connections and let those in progress end.
func (x *Reactor) OnDrain(ctx context.Context, l string, epoch uint64) {
	if err := x.R.DrainVIPs(ctx, l); err != nil {
		x.R.log.Warn("draining the legion's vips before the handover", "legion", l, "epoch", epoch, "error", err)
	}
}

// OnSetup implements legion.Reactor.
func (x *Reactor) OnSetup(l string) { x.wait(x.R.Fire(x.event(PhaseSetup, l, 0))) }

// OnJoin implements legion.Reactor.
func (x *Reactor) OnJoin(l string) { x.R.Fire(x.event(PhaseJoin, l, 0)) }

// OnNodeJoined implements legion.Reactor.
func (x *Reactor) OnNodeJoined(l string, m legion.MemberInfo) {
	ev := x.event(PhaseNodeJoined, l, 0)
	ev.Member = m.Name
	x.R.Fire(ev)
}

// OnNodeLeft implements legion.Reactor.
func (x *Reactor) OnNodeLeft(l string, m legion.MemberInfo) {
	ev := x.event(PhaseNodeLeft, l, 0)
	ev.Member = m.Name
	x.R.Fire(ev)
}

// OnDeath implements legion.Reactor.
func (x *Reactor) OnDeath(l string) { x.wait(x.R.Fire(x.event(PhaseDeath, l, 0))) }

// VIPs implements legion.VIPReporter: the addresses of legion-lord vip
// hooks this node holds.
func (x *Reactor) VIPs(l string) []string {
	var out []string
	for _, ref := range x.R.lordVIPs[l] {
		if held, _ := ref.v.State(); held {
			out = append(out, ref.spec.String())
		}
	}
	return out
}
