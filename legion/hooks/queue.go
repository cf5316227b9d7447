package hooks

import (
	"context"
	"sync"
)

// queue is an unbounded FIFO of jobs served by one goroutine. It is
// unbounded so that firing an event never blocks the caller; legion events
// are rare (a handful per lordship change), so growth is not a concern.
type queue struct {
	mu     sync.Mutex
	jobs   []job
	closed bool
	wake   chan struct{} // capacity 1: a pending wake-up is never lost
}

type job struct {
	run  func(context.Context)
	done chan struct{}
}

func newQueue() *queue { return &queue{wake: make(chan struct{}, 1)} }

func (q *queue) push(run func(context.Context)) <-chan struct{} {
	j := job{run: run, done: make(chan struct{})}
	q.mu.Lock()
	q.jobs = append(q.jobs, j)
	q.mu.Unlock()
	q.signal()
	return j.done
}

// close lets serve return once the queue is empty.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// serve runs jobs in order until the queue is closed and drained.
func (q *queue) serve(ctx context.Context) {
	for {
		q.mu.Lock()
		if len(q.jobs) > 0 {
			j := q.jobs[0]
			q.jobs[0] = job{}
			q.jobs = q.jobs[1:]
			q.mu.Unlock()
			j.run(ctx)
			close(j.done)
			continue
		}
		if q.closed {
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		<-q.wake
	}
}
