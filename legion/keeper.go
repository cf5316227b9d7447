package legion

import (
	"context"
	"errors"
	"time"

	"github.com/gouwsgi/gouwsgi/legion/fsm"
	raftv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/raft/v1"
)

// keeper holds this node's lordship of one legion: while the FSM names
// this node lord it asks the leader for a lease renewal every
// LordRenewInterval, and it is lord only until LordLease after the send
// time of the last granted renewal, on its own monotonic clock.
type keeper struct {
	n      *Node
	legion string
	kickCh chan struct{}
	stopCh chan struct{}
	done   chan struct{}

	// Owned by run (read by releaseOnLeave after done).
	lording    bool
	epoch      uint64
	leaseUntil time.Time
	released   uint64 // epoch this node gave up; do not renew it again
	lastErr    time.Time
}

func newKeeper(n *Node, legion string) *keeper {
	return &keeper{n: n, legion: legion, kickCh: make(chan struct{}, 1), stopCh: make(chan struct{}), done: make(chan struct{})}
}

func (k *keeper) kick() {
	select {
	case k.kickCh <- struct{}{}:
	default:
	}
}

func (k *keeper) stop() {
	select {
	case <-k.stopCh:
	default:
		close(k.stopCh)
	}
}

func (k *keeper) wait() { <-k.done }

// IsLord reports whether this node currently holds legion's lordship.
func (n *Node) IsLord(legion string) bool {
	k := n.keepers[legion]
	if k == nil {
		return false
	}
	lg, _ := n.fsm.Legions().Get(legion)
	return lg.Lord == n.id && n.leaseValid(legion)
}

func (n *Node) leaseValid(legion string) bool {
	k := n.keepers[legion]
	select {
	case <-k.done:
		return false
	default:
	}
	return k.lordingUntil().After(time.Now())
}

func (k *keeper) lordingUntil() time.Time {
	k.n.penaltyMu.Lock() // reuse a node mutex: reads from other goroutines are rare
	defer k.n.penaltyMu.Unlock()
	if !k.lording {
		return time.Time{}
	}
	return k.leaseUntil
}

func (k *keeper) set(lording bool, epoch uint64, until time.Time) {
	k.n.penaltyMu.Lock()
	k.lording, k.epoch, k.leaseUntil = lording, epoch, until
	k.n.penaltyMu.Unlock()
}

func (k *keeper) run() {
	defer close(k.done)
	n := k.n
	for {
		lg, _ := n.fsm.Legions().Get(k.legion)
		if k.lording && (lg.Lord != n.id || lg.Epoch != k.epoch) {
			k.unlord("the cluster named another lord", "lord", lg.Lord, "epoch", lg.Epoch)
		}
		if k.lording && !time.Now().Before(k.leaseUntil) {
			k.unlord("lease expired: no renewal confirmed by a raft quorum (leader unreachable or no quorum)",
				"lease_ended", k.leaseUntil.Format(time.RFC3339Nano))
		}
		var next time.Time
		if lg.Lord == n.id && lg.Epoch > k.released {
			next = k.renew(lg)
		}
		if k.lording && (next.IsZero() || k.leaseUntil.Before(next)) {
			next = k.leaseUntil
		}
		wait := time.Second
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		t := time.NewTimer(wait)
		select {
		case <-k.stopCh:
			t.Stop()
			return
		case <-k.kickCh:
		case <-t.C:
		}
		t.Stop()
	}
}

// renew asks for one lease renewal and returns when to ask again.
func (k *keeper) renew(lg fsm.Legion) time.Time {
	n := k.n
	sent := time.Now()
	deadline := sent.Add(n.cfg.LordLease)
	if k.lording && k.leaseUntil.Before(deadline) {
		deadline = k.leaseUntil
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	go func() {
		select {
		case <-k.stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	granted, revoked, reason, err := n.renew(ctx, k.legion, lg.Epoch)
	cancel()
	switch {
	case granted:
		until := sent.Add(n.cfg.LordLease)
		if !k.lording {
			if !time.Now().Before(until) {
				break // granted too late to be of use
			}
			n.markJoined(k.legion)
			k.set(true, lg.Epoch, until)
			n.log.Info("i am now the lord of the legion", "legion", k.legion, "epoch", lg.Epoch)
			n.reactor.OnLord(k.legion, lg.Epoch)
		} else {
			k.set(true, lg.Epoch, until)
		}
	case revoked:
		if k.lording {
			k.unlord("lordship revoked by the leader", "reason", reason)
		}
		k.released = lg.Epoch
		k.release(context.Background(), lg.Epoch, false)
	case err != nil && time.Since(k.lastErr) > 2*time.Second:
		k.lastErr = time.Now()
		n.log.Warn("lord lease renewal failed", "legion", k.legion, "epoch", lg.Epoch, "err", err)
	}
	return sent.Add(n.cfg.LordRenewInterval)
}

func (k *keeper) unlord(why string, args ...any) {
	epoch := k.epoch
	k.set(false, epoch, time.Time{})
	k.n.log.Warn("giving up lordship: "+why, append([]any{"legion", k.legion, "epoch", epoch}, args...)...)
	k.n.reactor.OnUnlord(k.legion, epoch)
}

// release commits that this node no longer holds epoch, so the leader
// may name a successor without waiting for the lease to run out.
func (k *keeper) release(ctx context.Context, epoch uint64, leaving bool) {
	ctx, cancel := context.WithTimeout(ctx, k.n.cfg.ApplyTimeout)
	defer cancel()
	_, err := k.n.Apply(ctx, fsm.ReleaseLordType, &raftv1.ReleaseLord{
		Legion: k.legion, NodeId: k.n.id, Epoch: epoch, TimeUnixNano: time.Now().UnixNano(), Leaving: leaving,
	})
	if err != nil && !errors.Is(err, ErrRefused) {
		k.n.log.Warn("release lordship", "legion", k.legion, "epoch", epoch, "err", err)
	}
}

// releaseOnLeave runs during graceful shutdown, after the keeper stopped:
// unlord first (the VIP goes), then commit the release marking this node
// draining, so the leader names a successor at once and not us again.
func (n *Node) releaseOnLeave(ctx context.Context, legion string) {
	k := n.keepers[legion]
	if k == nil {
		// An arbiter holds nothing, but marking it draining tells the
		// leader it left rather than died.
		k = newKeeper(n, legion)
		close(k.done)
	}
	if k.lording {
		k.unlord("shutting down, handing over")
	}
	lg, _ := n.fsm.Legions().Get(legion)
	epoch := k.epoch
	if lg.Lord == n.id {
		epoch = lg.Epoch
	}
	k.release(ctx, epoch, true)
	// Wait (bounded) until the FSM no longer names this node, so the
	// handover really started before this node disappears.
	for ctx.Err() == nil {
		lg, _ := n.fsm.Legions().Get(legion)
		if lg.Lord != n.id {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}
