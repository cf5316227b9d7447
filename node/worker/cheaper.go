package worker

import (
	"context"
	"fmt"
	"time"
)

// cheaperState is what the cheaper algorithms remember between cycles.
type cheaperState struct {
	overloaded int       // consecutive cycles with every slot busy / a backlog
	busy       []float64 // busyness samples, one per cycle
}

// Busyness thresholds of uWSGI's busyness algorithm (cheaper-busyness-max
// and -min defaults), in percent.
const (
	busynessMax = 50
	busynessMin = 25
)

// cheaper runs one cycle (a second) of the configured cheaper algorithm:
// spare adds workers when every slot has been busy for cheaper-overload
// cycles; backlog when more than cheaper-overload requests wait; busyness
// when the average busy share over the window exceeds 50%. All of them
// retire one worker that has been idle for cheaper-overload seconds (or,
// for busyness, when the average falls under 25%), never going below
// cheaper.
func (p *Pool) cheaper(ctx context.Context, cs *cheaperState, now time.Time) {
	if p.cfg.Cheaper <= 0 {
		return
	}
	ws := p.running()
	slots, busy := 0, 0
	for _, w := range ws {
		if !w.accepting.Load() {
			continue
		}
		for _, s := range w.slots {
			slots++
			if s.start.Load() != 0 {
				busy++
			}
		}
	}
	waiting := p.disp.waiting()
	window := p.cfg.CheaperOverload
	grow, shrink := false, false
	switch p.cfg.CheaperAlgo {
	case "backlog":
		grow = waiting > p.cfg.CheaperOverload
	case "busyness":
		share := 100.0
		if slots > 0 {
			share = 100 * float64(busy) / float64(slots)
		}
		cs.busy = append(cs.busy, share)
		if len(cs.busy) > window {
			cs.busy = cs.busy[1:]
		}
		if len(cs.busy) == window {
			avg := 0.0
			for _, b := range cs.busy {
				avg += b
			}
			avg /= float64(window)
			grow = avg > busynessMax || waiting > 0
			shrink = avg < busynessMin
			if grow || shrink {
				cs.busy = cs.busy[:0]
			}
		}
	default: // spare
		if slots == 0 || busy == slots || waiting > 0 {
			cs.overloaded++
		} else {
			cs.overloaded = 0
		}
		grow = cs.overloaded >= window
	}
	if grow {
		cs.overloaded = 0
		if p.countWanted() < p.cfg.Processes {
			p.log.Info(fmt.Sprintf("cheaper: %d/%d slots busy, %d waiting: spawning %d worker(s)", busy, slots, waiting, p.cfg.CheaperStep))
			p.scale(ctx, p.cfg.CheaperStep)
		}
		return
	}
	if p.cfg.CheaperAlgo != "busyness" {
		idleFor := time.Duration(window) * time.Second
		for _, w := range ws {
			if w.accepting.Load() && w.idle() && now.Sub(time.Unix(0, w.lastBusy.Load())) >= idleFor {
				shrink = true
				break
			}
		}
	}
	if shrink && p.countWanted() > p.cfg.Cheaper {
		p.scale(ctx, -1)
	}
}

// idle reports whether no slot of w runs a request.
func (w *worker) idle() bool {
	for _, s := range w.slots {
		if s.start.Load() != 0 {
			return false
		}
	}
	return true
}
