package node

import (
	"context"
	"fmt"
	"time"

	"github.com/gouwsgi/gouwsgi/node/frontend"
)

// BacklogAlarm receives full listen queues (alarm-backlog).
type BacklogAlarm interface {
	Backlog(socket string, queue, maxQueue int)
}

// watchBacklog checks once a second whether a listen queue is full, as
// uWSGI's master does every cycle. gouwsgi accepts connections at once and
// queues requests for workers itself, so "full" also means more requests
// waiting for a worker than the listen backlog allows.
func (n *Node) watchBacklog(ctx context.Context, alarm BacklogAlarm) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	backlog := n.cfg.Int("listen")
	if backlog <= 0 {
		backlog = frontend.DefaultConfig().Listen.Backlog
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, s := range n.front.Sockets() {
			if s.MaxQueue > 0 && s.Queue >= s.MaxQueue {
				n.log.Error(fmt.Sprintf("*** uWSGI listen queue of socket %q full !!! (%d/%d) ***", s.Name, s.Queue, s.MaxQueue))
				alarm.Backlog(s.Name, s.Queue, s.MaxQueue)
			}
		}
		if waiting := n.pool.Stats().ListenQueue; waiting >= backlog {
			n.log.Error(fmt.Sprintf("*** uWSGI listen queue of the workers full !!! (%d/%d requests waiting for a worker) ***", waiting, backlog))
			alarm.Backlog("workers", waiting, backlog)
		}
	}
}
