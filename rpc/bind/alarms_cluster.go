package bind

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	lalarm "github.com/gouwsgi/gouwsgi/legion/alarm"
	"github.com/gouwsgi/gouwsgi/node/alarm"
	"github.com/gouwsgi/gouwsgi/rpc/admin"
)

// ClusterAlarms joins the node's alarm manager (node/alarm) to the
// cluster's alarm history (legion/alarm) when a legion runs. It is three
// adapters over one mapping of incidents:
//
//   - the manager's alarm.Cluster: every local incident is recorded
//     through Raft, and the action runs here only when this node opened
//     the cluster incident;
//   - the service's lalarm.Executor: an incident the cluster hands over
//     (its owner died) runs through Manager.Execute;
//   - the admin API's admin.Alarms: List, Acknowledge and Watch show the
//     cluster history, the same from every node.
//
// Build it with NewClusterAlarms before the manager (which takes it with
// alarm.WithCluster), then SetManager once the manager exists.
type ClusterAlarms struct {
	s    *lalarm.Service
	freq time.Duration
	m    atomic.Pointer[alarm.Manager]

	mu  sync.Mutex
	ids map[incidentKey]uint64 // local incidents this node runs -> cluster id
}

// incidentKey names a local incident as the manager hands it back in
// Done: (node, id) alone could collide between a node's own incidents and
// those it executes for another node with the same host name.
type incidentKey struct {
	node string
	id   uint64
	at   int64
}

func keyOf(inc alarm.Incident) incidentKey {
	return incidentKey{node: inc.Node, id: inc.ID, at: inc.At.UnixNano()}
}

// NewClusterAlarms adapts s; freq is the node's alarm-freq, the window in
// which the cluster folds raises from any node into one incident.
func NewClusterAlarms(s *lalarm.Service, freq time.Duration) *ClusterAlarms {
	return &ClusterAlarms{s: s, freq: freq, ids: map[incidentKey]uint64{}}
}

// SetManager names the manager that runs incidents handed over by the
// cluster and raises operator alarms.
func (c *ClusterAlarms) SetManager(m *alarm.Manager) { c.m.Store(m) }

// Record implements alarm.Cluster.
func (c *ClusterAlarms) Record(ctx context.Context, inc alarm.Incident) (bool, error) {
	id, runHere, err := c.s.Record(ctx, lalarm.Raise{
		Alarm: inc.Alarm, Message: inc.Message, Kind: string(inc.Kind), NodeName: inc.Node,
		LocalID: inc.ID, Freq: c.freq, At: inc.At,
	})
	if err != nil {
		return false, err
	}
	if runHere {
		c.mu.Lock()
		c.ids[keyOf(inc)] = id
		c.mu.Unlock()
	}
	return runHere, nil
}

// Done implements alarm.Cluster.
func (c *ClusterAlarms) Done(ctx context.Context, inc alarm.Incident) error {
	k := keyOf(inc)
	c.mu.Lock()
	id, ok := c.ids[k]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("incident %d of %s: not one the cluster gave this node", inc.ID, inc.Node)
	}
	if err := c.s.Done(ctx, id, inc.Outcome); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.ids, k)
	c.mu.Unlock()
	return nil
}

// Execute implements lalarm.Executor: the manager runs the incident as
// its first raiser named it, and reports it with Done.
func (c *ClusterAlarms) Execute(inc lalarm.Incident) error {
	m := c.m.Load()
	if m == nil {
		return errors.New("the alarm manager is not running")
	}
	local := alarm.Incident{
		ID: inc.Origin.LocalID, Alarm: inc.Alarm, Message: inc.Message, Node: inc.Origin.Name, Kind: alarm.Kind(inc.Kind),
		At: inc.Origin.RaisedAt, Last: inc.Last, Count: int(inc.Count),
	}
	k := keyOf(local)
	c.mu.Lock()
	c.ids[k] = inc.ID
	c.mu.Unlock()
	if err := m.Execute(local); err != nil {
		c.mu.Lock()
		delete(c.ids, k)
		c.mu.Unlock()
		return err
	}
	return nil
}

func clusterAlarmOf(inc lalarm.Incident) admin.Alarm {
	a := admin.Alarm{
		ID: inc.ID, Name: inc.Alarm, Source: inc.Kind, Message: inc.Message, NodeID: inc.Origin.NodeID,
		RaisedAt: inc.First, Count: inc.Count, Acknowledged: !inc.AckedAt.IsZero(), AcknowledgedAt: inc.AckedAt,
		Owner: inc.Owner, Outcome: alarm.OutcomePending, Runs: uint32(inc.Runs), LastRaisedAt: inc.Last,
	}
	if inc.Done {
		a.Outcome = inc.Outcome
	}
	for _, r := range inc.Raisers {
		a.Raisers = append(a.Raisers, admin.AlarmRaiser{NodeID: r.NodeID, Name: r.Name, Count: r.Count, FirstRaisedAt: r.First, LastRaisedAt: r.Last})
	}
	return a
}

// List implements admin.Alarms with the cluster history, newest first.
func (c *ClusterAlarms) List(_ context.Context, includeAcknowledged bool) ([]admin.Alarm, error) {
	hist := c.s.Machine().History()
	out := make([]admin.Alarm, 0, len(hist))
	for i := len(hist) - 1; i >= 0; i-- {
		if !includeAcknowledged && !hist[i].AckedAt.IsZero() {
			continue
		}
		out = append(out, clusterAlarmOf(hist[i]))
	}
	return out, nil
}

// Raise implements admin.Alarms: the raise goes through the local
// manager (throttling, then the cluster) and the cluster incident it
// became is returned.
func (c *ClusterAlarms) Raise(ctx context.Context, name, message string) (admin.Alarm, error) {
	m := c.m.Load()
	if m == nil {
		return admin.Alarm{}, errors.New("the alarm manager is not running")
	}
	before := map[uint64]uint64{}
	for _, inc := range c.s.Machine().History() {
		before[inc.ID] = inc.Count
	}
	local := Alarms{M: m}
	localBefore, _ := local.find(name, message)
	if err := m.Trigger(alarm.KindAPI, name, message); err != nil {
		return admin.Alarm{}, fmt.Errorf("%w: %w", err, admin.ErrInvalidArgument)
	}
	a, err := waitRaised(ctx, name, func() (admin.Alarm, bool) {
		var latest *lalarm.Incident
		hist := c.s.Machine().History()
		for i := len(hist) - 1; i >= 0; i-- {
			inc := hist[i]
			if inc.Alarm != name || !sameMessage(message, inc.Message) {
				continue
			}
			if inc.Count > before[inc.ID] {
				return clusterAlarmOf(inc), true
			}
			if latest == nil {
				latest = &inc
			}
		}
		// Folded into a recent local incident, the raise is only counted
		// here (it never reaches the cluster): the cluster incident that
		// local one belongs to is the answer.
		l, ok := local.find(name, message)
		if ok && latest != nil && l.ID == localBefore.ID && l.Count > localBefore.Count {
			return clusterAlarmOf(*latest), true
		}
		return admin.Alarm{}, false
	})
	if err != nil {
		return admin.Alarm{}, fmt.Errorf("%w (without a raft quorum the action runs on this node)", err)
	}
	return a, nil
}

// Acknowledge implements admin.Alarms through Raft: every node sees it.
func (c *ClusterAlarms) Acknowledge(ctx context.Context, id uint64) (admin.Alarm, error) {
	inc, err := c.s.Acknowledge(ctx, id)
	if errors.Is(err, lalarm.ErrUnknownIncident) {
		return admin.Alarm{}, fmt.Errorf("%w: %w", err, admin.ErrNotFound)
	}
	if err != nil {
		return admin.Alarm{}, err
	}
	return clusterAlarmOf(inc), nil
}

// Watch implements admin.Alarms: new cluster incidents and
// acknowledgements, as every node applies them.
func (c *ClusterAlarms) Watch(ctx context.Context) (<-chan admin.AlarmEvent, error) {
	changes := c.s.Machine().Watch(ctx)
	out := make(chan admin.AlarmEvent, 16)
	go func() {
		defer close(out)
		for ch := range changes {
			var typ admin.AlarmEventType
			switch ch.Type {
			case lalarm.Raised:
				typ = admin.AlarmRaised
			case lalarm.Acknowledged:
				typ = admin.AlarmAcknowledged
			default:
				continue // repeats, assignments and outcomes are in List
			}
			select {
			case out <- admin.AlarmEvent{Type: typ, Alarm: clusterAlarmOf(ch.Incident)}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
