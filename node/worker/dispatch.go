package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gouwsgi/gouwsgi/node/request"
)

// errNoSlot is returned when no worker slot frees up before the request's
// deadline: every worker is busy or the pool is respawning crashed ones.
var errNoSlot = errors.New("no worker available")

// Pipelining: a worker thread serves the requests of its connection one
// after the other, so the master may send the next request before the
// previous response is complete. The worker then finds it waiting instead
// of idling for a round trip through the master. It only happens when no
// slot is idle, so a request never queues behind another while a worker is
// free, and only behind a request that started recently, so it does not
// queue behind a slow one either.
const (
	// pipelineDepth is the most requests one slot holds at a time.
	pipelineDepth = 4
	// pipelineMaxAge is how long the running request of a slot may have
	// been running for another to be sent behind it.
	pipelineMaxAge = 10 * time.Millisecond
)

// ticket is one request's place on a slot. Responses come back in the order
// the requests were sent, so each ticket waits for its turn to read.
type ticket struct {
	s *slot
	// turn receives true when the requests before this one are answered,
	// false when the slot broke before this request could start: it was
	// never run and may go to another worker.
	turn chan bool
	next *ticket
	r    *request.Request
}

var tickets = sync.Pool{New: func() any { return &ticket{turn: make(chan bool, 1)} }}

func newTicket(s *slot, r *request.Request) *ticket {
	t := tickets.Get().(*ticket)
	t.s, t.r = s, r
	return t
}

// free recycles t once nothing refers to it any more.
func (t *ticket) free() {
	select {
	case <-t.turn:
	default:
	}
	*t = ticket{turn: t.turn}
	tickets.Put(t)
}

// waiter is a request waiting for capacity. ch receives its ticket, or nil
// when it waited longer than the queue timeout.
type waiter struct {
	ch      chan *ticket
	canPipe bool
	r       *request.Request
	since   time.Time
}

var waiters = sync.Pool{New: func() any { return &waiter{ch: make(chan *ticket, 1)} }}

// dispatcher hands worker slots to requests. Idle slots are a LIFO stack so
// that a few hot workers take the load and idle ones stay idle long enough
// for cheaper to retire them; waiters are served first come, first served
// so no request starves behind later ones.
type dispatcher struct {
	// maxDepth and maxAge are pipelineDepth and pipelineMaxAge; tests
	// change them.
	maxDepth int
	maxAge   time.Duration
	// pipelined counts the requests sent behind another.
	pipelined atomic.Int64

	mu      sync.Mutex
	free    []*slot // idle slots of accepting workers
	all     []*slot // every slot of an accepting worker, for pipelining
	waiters []*waiter
}

// tryAcquireLocked returns an idle slot's ticket, or when none is idle and the
// request can be pipelined, a place behind a running request; nil when
// the request has to wait.
func (d *dispatcher) tryAcquireLocked(canPipe bool, r *request.Request) *ticket {
	if n := len(d.free); n > 0 {
		s := d.free[n-1]
		d.free = d.free[:n-1]
		return d.queueLocked(s, r)
	}
	if canPipe {
		if s := d.pipeSlotLocked(time.Now().UnixNano()); s != nil {
			return d.queueLocked(s, r)
		}
	}
	return nil
}

// queueLocked puts a new ticket at the tail of s. The slot is reserved for
// sending until sent is called, so requests leave in ticket order.
func (d *dispatcher) queueLocked(s *slot, r *request.Request) *ticket {
	t := newTicket(s, r)
	s.depth++
	s.sending = true
	if s.tail == nil {
		s.first, s.tail = t, t
		s.start.Store(time.Now().UnixNano())
		s.req.Store(r)
		t.turn <- true
	} else {
		s.tail.next = t
		s.tail = t
		d.pipelined.Add(1)
	}
	return t
}

// pipeSlotLocked picks the slot to send a request behind: the least deep,
// then the one whose running request started first (the likeliest to end
// soonest). Slots running a request older than pipelineMaxAge are skipped.
func (d *dispatcher) pipeSlotLocked(now int64) *slot {
	var best *slot
	var bestStart int64
	for _, s := range d.all {
		if !d.canPipeLocked(s) {
			continue
		}
		st := s.start.Load()
		if now-st > int64(d.maxAge) {
			continue
		}
		if best == nil || s.depth < best.depth || (s.depth == best.depth && st < bestStart) {
			best, bestStart = s, st
		}
	}
	return best
}

// canPipeLocked says whether s may take a request behind its running one.
func (d *dispatcher) canPipeLocked(s *slot) bool {
	return s.depth > 0 && s.depth < d.maxDepth && !s.sending && !s.dead && s.w.accepting.Load()
}

// acquire returns a ticket for the request, waiting until expire finds it
// too old or ctx ends. canPipe says the request is complete in memory (it
// can be sent behind another and resent elsewhere if it never ran).
func (d *dispatcher) acquire(ctx context.Context, canPipe bool, r *request.Request) (*ticket, error) {
	d.mu.Lock()
	if t := d.tryAcquireLocked(canPipe, r); t != nil {
		d.mu.Unlock()
		return t, nil
	}
	wt := waiters.Get().(*waiter)
	wt.canPipe, wt.r, wt.since = canPipe, r, time.Now()
	d.waiters = append(d.waiters, wt)
	d.mu.Unlock()
	var t *ticket
	select {
	case t = <-wt.ch:
	case <-ctx.Done():
		d.mu.Lock()
		for i, w := range d.waiters {
			if w == wt {
				d.waiters = append(d.waiters[:i], d.waiters[i+1:]...)
				d.mu.Unlock()
				wt.r = nil
				waiters.Put(wt)
				return nil, fmt.Errorf("waiting for a worker: %w (%w)", errNoSlot, ctx.Err())
			}
		}
		d.mu.Unlock()
		// Handed a ticket (or expired) just before the removal: a ticket is
		// queued on a slot, so the request has to go through with it.
		t = <-wt.ch
	}
	wt.r = nil
	waiters.Put(wt)
	if t == nil {
		return nil, fmt.Errorf("waiting for a worker: %w (%w)", errNoSlot, context.DeadlineExceeded)
	}
	return t, nil
}

// expire fails the requests waiting since before deadline; the master
// calls it on its tick, so no waiting request needs a timer of its own.
func (d *dispatcher) expire(deadline time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for n < len(d.waiters) && d.waiters[n].since.Before(deadline) {
		d.waiters[n].ch <- nil
		n++
	}
	if n > 0 {
		rest := copy(d.waiters, d.waiters[n:])
		clear(d.waiters[rest:])
		d.waiters = d.waiters[:rest]
	}
}

// sent ends the reservation queueLocked made: the request is on the wire
// and another may follow it on the slot.
func (d *dispatcher) sent(s *slot) {
	d.mu.Lock()
	s.sending = false
	d.pipeWaiterLocked(s)
	d.mu.Unlock()
}

// pipeWaiterLocked gives s to the first waiter that can be pipelined, when
// s can take one.
func (d *dispatcher) pipeWaiterLocked(s *slot) {
	if len(d.waiters) == 0 || !d.canPipeLocked(s) || time.Now().UnixNano()-s.start.Load() > int64(d.maxAge) {
		return
	}
	for i, w := range d.waiters {
		if w.canPipe {
			d.waiters = append(d.waiters[:i], d.waiters[i+1:]...)
			w.ch <- d.queueLocked(s, w.r)
			return
		}
	}
}

// done is called when t's response has been read whole: the next ticket of
// the slot gets its turn, and the capacity goes to a waiter or back to the
// idle stack.
func (d *dispatcher) done(t *ticket) {
	s := t.s
	d.mu.Lock()
	s.depth--
	s.first = t.next
	if s.first == nil {
		s.tail = nil
		s.start.Store(0)
	} else {
		s.start.Store(time.Now().UnixNano())
		s.req.Store(s.first.r)
		s.first.turn <- true
	}
	t.free()
	if s.depth > 0 {
		d.pipeWaiterLocked(s)
		d.mu.Unlock()
		return
	}
	d.releaseLocked(s)
}

// releaseLocked makes the idle slot s available again and unlocks d. A slot
// of a worker that stopped accepting is handed back to the worker instead,
// so it can retire.
func (d *dispatcher) releaseLocked(s *slot) {
	// Checked under the lock so that remove, which retiring workers call
	// after clearing accepting, sees every slot exactly once.
	if !s.w.accepting.Load() || s.dead {
		d.mu.Unlock()
		s.w.slotDone()
		return
	}
	if len(d.waiters) > 0 {
		w := d.waiters[0]
		d.waiters = d.waiters[1:]
		w.ch <- d.queueLocked(s, w.r)
		d.mu.Unlock()
		return
	}
	d.free = append(d.free, s)
	d.mu.Unlock()
}

// fail takes t's slot out of service after its connection broke: its worker
// stops accepting, and the requests queued behind t, which never started,
// are told to go elsewhere.
func (d *dispatcher) fail(t *ticket) {
	s := t.s
	d.mu.Lock()
	s.dead = true
	s.w.accepting.Store(false)
	d.removeLocked(s.w)
	for n := t.next; n != nil; n = n.next {
		n.turn <- false
	}
	s.first, s.tail, s.depth = nil, nil, 0
	s.start.Store(0)
	d.mu.Unlock()
	t.free()
}

// add offers the slots of a newly ready worker.
func (d *dispatcher) add(slots []*slot) {
	d.mu.Lock()
	d.all = append(d.all, slots...)
	d.mu.Unlock()
	for _, s := range slots {
		d.mu.Lock()
		d.releaseLocked(s)
	}
}

// remove takes the slots of w out of circulation and reports how many idle
// ones it took; slots in use come back through done once their requests
// end.
func (d *dispatcher) remove(w *worker) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.removeLocked(w)
}

func (d *dispatcher) removeLocked(w *worker) int {
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
	all := d.all[:0]
	for _, s := range d.all {
		if s.w != w {
			all = append(all, s)
		}
	}
	clear(d.all[len(all):])
	d.all = all
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
