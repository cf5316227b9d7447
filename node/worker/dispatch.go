package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// errNoSlot is returned when no worker slot frees up before the request's
// deadline: every worker is busy or the pool is respawning crashed ones.
var errNoSlot = errors.New("no worker available")

// dispatcher hands free worker slots to requests. Free slots are a LIFO
// stack so that a few hot workers take the load and idle ones stay idle long
// enough for cheaper to retire them; waiters are served first come, first
// served so no request starves behind later ones.
type dispatcher struct {
	mu      sync.Mutex
	free    []*slot
	waiters []chan *slot
}

// acquire returns a free slot of an accepting worker, waiting until ctx ends.
func (d *dispatcher) acquire(ctx context.Context) (*slot, error) {
	d.mu.Lock()
	if n := len(d.free); n > 0 {
		s := d.free[n-1]
		d.free = d.free[:n-1]
		d.mu.Unlock()
		return s, nil
	}
	ch := make(chan *slot, 1)
	d.waiters = append(d.waiters, ch)
	d.mu.Unlock()
	select {
	case s := <-ch:
		return s, nil
	case <-ctx.Done():
		d.mu.Lock()
		for i, w := range d.waiters {
			if w == ch {
				d.waiters = append(d.waiters[:i], d.waiters[i+1:]...)
				break
			}
		}
		d.mu.Unlock()
		// A slot may have been handed over between ctx ending and the
		// removal above; give it back rather than lose it.
		select {
		case s := <-ch:
			d.release(s)
		default:
		}
		return nil, fmt.Errorf("waiting for a worker: %w (%w)", errNoSlot, ctx.Err())
	}
}

// release makes s available again, unless its worker stopped accepting, in
// which case the slot is handed back to the worker so it can retire.
func (d *dispatcher) release(s *slot) {
	d.mu.Lock()
	// Checked under the lock so that remove, which retiring workers call
	// after clearing accepting, sees every slot exactly once.
	if !s.w.accepting.Load() {
		d.mu.Unlock()
		s.w.slotDone()
		return
	}
	if len(d.waiters) > 0 {
		ch := d.waiters[0]
		d.waiters = d.waiters[1:]
		d.mu.Unlock()
		ch <- s
		return
	}
	d.free = append(d.free, s)
	d.mu.Unlock()
}

// add offers the slots of a newly ready worker.
func (d *dispatcher) add(slots []*slot) {
	for _, s := range slots {
		d.release(s)
	}
}

// remove takes the free slots of w out of circulation and reports how many
// it took; slots in use come back through release once their request ends.
func (d *dispatcher) remove(w *worker) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	kept := d.free[:0]
	for _, s := range d.free {
		if s.w == w {
			n++
			continue
		}
		kept = append(kept, s)
	}
	clear(d.free[len(kept):])
	d.free = kept
	return n
}

// waiting is the number of requests queued for a slot (the backlog cheaper
// and the stats server's listen_queue read).
func (d *dispatcher) waiting() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.waiters)
}

// idle is the number of free slots.
func (d *dispatcher) idle() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.free)
}
