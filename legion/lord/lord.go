// Package lord holds the two pure pieces of lord election: choosing the
// lord among a legion's members, and the leader-side fence that decides
// when a successor may be named without two lords ever overlapping.
//
// The protocol around them (legion package): a lord keeps its lordship
// only while the Raft leader keeps granting it leases. A grant is asked at
// local time s by the lord and lets it act until s+Lease on its own clock.
// The leader records the time r it received each granted request (r is
// after s in real time). To name a successor it stops granting (Revoke)
// and waits until r+Lease+Margin, by which time the old lord has given up
// on its own, whether or not anyone can still reach it. A new Raft leader
// knows nothing of its predecessor's grants, but they were all received
// before it won its election, so it waits Lease+Margin from the moment it
// took office. Margin absorbs clock-rate drift and scheduling delay of the
// old lord's timer. A lord that gives up voluntarily commits a release;
// then no wait is needed.
package lord

import (
	"sync"
	"time"
)

// Candidate is one legion member as the leader sees it.
type Candidate struct {
	NodeID string
	Valor  uint32
	// Eligible: alive in gossip, reachable, not penalised. Arbiters
	// (valor 0) are never picked whatever this says.
	Eligible bool
}

// Pick returns the member that should be lord: the pinned member when it
// is an eligible non-arbiter, otherwise the eligible member with the
// highest valor, ties broken by the lowest node id (stable across
// restarts, unlike uWSGI's per-start uuid). ok is false when nobody
// qualifies.
func Pick(cands []Candidate, pinned string) (nodeID string, ok bool) {
	var best *Candidate
	for i := range cands {
		c := &cands[i]
		if !c.Eligible || c.Valor == 0 {
			continue
		}
		if c.NodeID == pinned {
			return c.NodeID, true
		}
		if best == nil || c.Valor > best.Valor || (c.Valor == best.Valor && c.NodeID < best.NodeID) {
			best = c
		}
	}
	if best == nil {
		return "", false
	}
	return best.NodeID, true
}

// Fence is the Raft leader's record of the lease grants it made. It is
// created when leadership is established and dropped when it is lost.
type Fence struct {
	lease, margin time.Duration
	established   time.Time

	mu      sync.Mutex
	legions map[string]*fenceState
}

type fenceState struct {
	epoch     uint64
	lastGrant time.Time
	revoked   bool
}

// NewFence returns the fence of a leader that took office at established.
func NewFence(lease, margin time.Duration, established time.Time) *Fence {
	return &Fence{lease: lease, margin: margin, established: established, legions: make(map[string]*fenceState)}
}

func (f *Fence) state(legion string, epoch uint64) *fenceState {
	st, ok := f.legions[legion]
	if !ok || st.epoch != epoch {
		st = &fenceState{epoch: epoch}
		f.legions[legion] = st
	}
	return st
}

// Grant records a lease granted for (legion, epoch) on a request received
// at recv. It refuses (false) once the epoch has been revoked.
func (f *Fence) Grant(legion string, epoch uint64, recv time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.state(legion, epoch)
	if st.revoked {
		return false
	}
	if recv.After(st.lastGrant) {
		st.lastGrant = recv
	}
	return true
}

// Revoke stops all further grants for (legion, epoch) and returns the
// earliest time a successor may be named.
func (f *Fence) Revoke(legion string, epoch uint64) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.state(legion, epoch)
	st.revoked = true
	return f.successorAtLocked(st)
}

// Revoked reports whether (legion, epoch) has been revoked.
func (f *Fence) Revoked(legion string, epoch uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.legions[legion]
	return ok && st.epoch == epoch && st.revoked
}

// LeaseExpired reports whether the lord of (legion, epoch) has gone a whole
// lease plus margin without a grant: it has certainly given up by now.
func (f *Fence) LeaseExpired(legion string, epoch uint64, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !now.Before(f.successorAtLocked(f.state(legion, epoch)))
}

func (f *Fence) successorAtLocked(st *fenceState) time.Time {
	from := f.established
	if st.lastGrant.After(from) {
		from = st.lastGrant
	}
	return from.Add(f.lease + f.margin)
}
