package alarm

import (
	"context"
	"errors"
	"fmt"
)

// ErrUnknownIncident is returned for an incident id not in the history.
var ErrUnknownIncident = errors.New("no such incident")

// Change is a new or acknowledged incident, for watchers.
type Change struct {
	Incident     Incident
	Acknowledged bool // false: the incident was raised
}

// Acknowledge marks incident id as seen by an operator.
func (m *Manager) Acknowledge(id uint64) (Incident, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, inc := range m.hist {
		if inc.ID == id && inc.Node == m.node {
			if inc.AckedAt.IsZero() {
				inc.AckedAt = m.now()
				m.publish(Change{Incident: *inc, Acknowledged: true})
			}
			return *inc, nil
		}
	}
	return Incident{}, fmt.Errorf("acknowledge incident %d: %w", id, ErrUnknownIncident)
}

// Watch returns incidents as they are raised or acknowledged until ctx
// ends. A watcher that does not keep up misses changes rather than slowing
// the alarm goroutine.
func (m *Manager) Watch(ctx context.Context) <-chan Change {
	ch := make(chan Change, 64)
	m.mu.Lock()
	if m.subs == nil {
		m.subs = map[chan Change]struct{}{}
	}
	m.subs[ch] = struct{}{}
	m.mu.Unlock()
	go func() {
		<-ctx.Done()
		m.mu.Lock()
		delete(m.subs, ch)
		close(ch)
		m.mu.Unlock()
	}()
	return ch
}

// publish sends c to every watcher without blocking. Callers hold m.mu.
func (m *Manager) publish(c Change) {
	for ch := range m.subs {
		select {
		case ch <- c:
		default:
		}
	}
}
