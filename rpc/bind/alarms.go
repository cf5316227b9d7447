package bind

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gouwsgi/gouwsgi/node/alarm"
	"github.com/gouwsgi/gouwsgi/rpc/admin"
)

// Alarms adapts the node's alarm manager to admin.Alarms.
type Alarms struct{ M *alarm.Manager }

func alarmOf(inc alarm.Incident) admin.Alarm {
	return admin.Alarm{
		ID: inc.ID, Name: inc.Alarm, Source: string(inc.Kind), Message: inc.Message, NodeID: inc.Node,
		RaisedAt: inc.At, Count: uint64(inc.Count), Acknowledged: !inc.AckedAt.IsZero(), AcknowledgedAt: inc.AckedAt,
	}
}

// List implements admin.Alarms, newest first.
func (b Alarms) List(_ context.Context, includeAcknowledged bool) ([]admin.Alarm, error) {
	hist := b.M.History()
	out := make([]admin.Alarm, 0, len(hist))
	for i := len(hist) - 1; i >= 0; i-- {
		if !includeAcknowledged && !hist[i].AckedAt.IsZero() {
			continue
		}
		out = append(out, alarmOf(hist[i]))
	}
	return out, nil
}

// Raise implements admin.Alarms: the operator's raise goes through the
// same throttling and actions as any other source, and the incident it
// became (new, or a repeat folded into a recent one) is returned.
func (b Alarms) Raise(ctx context.Context, name, message string) (admin.Alarm, error) {
	if err := b.M.Trigger(alarm.KindAPI, name, message); err != nil {
		return admin.Alarm{}, fmt.Errorf("%w: %w", err, admin.ErrInvalidArgument)
	}
	return waitRaised(ctx, name, func() (admin.Alarm, bool) { return b.find(name, message) })
}

// find returns the latest local incident of an API raise of name with
// message (cut to alarm-msg-size).
func (b Alarms) find(name, message string) (admin.Alarm, bool) {
	hist := b.M.History()
	for i := len(hist) - 1; i >= 0; i-- {
		if hist[i].Alarm == name && hist[i].Kind == alarm.KindAPI && sameMessage(message, hist[i].Message) {
			return alarmOf(hist[i]), true
		}
	}
	return admin.Alarm{}, false
}

// sameMessage: recorded is raised, possibly truncated at alarm-msg-size.
func sameMessage(raised, recorded string) bool {
	return strings.HasPrefix(raised, strings.TrimSuffix(recorded, alarm.TruncatedMarker))
}

// raiseWait bounds how long Raise waits for the alarm goroutine (and the
// cluster) to record a raise.
const raiseWait = 5 * time.Second

// waitRaised polls find until the raise is recorded: the alarm goroutine
// records it asynchronously.
func waitRaised(ctx context.Context, name string, find func() (admin.Alarm, bool)) (admin.Alarm, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	deadline := time.After(raiseWait)
	for {
		if a, ok := find(); ok {
			return a, nil
		}
		select {
		case <-t.C:
		case <-deadline:
			return admin.Alarm{}, fmt.Errorf("raise alarm %s: not recorded within %s (alarm queue full?)", name, raiseWait)
		case <-ctx.Done():
			return admin.Alarm{}, fmt.Errorf("raise alarm %s: %w", name, ctx.Err())
		}
	}
}

// Acknowledge implements admin.Alarms.
func (b Alarms) Acknowledge(_ context.Context, id uint64) (admin.Alarm, error) {
	inc, err := b.M.Acknowledge(id)
	if errors.Is(err, alarm.ErrUnknownIncident) {
		return admin.Alarm{}, fmt.Errorf("%w: %w", err, admin.ErrNotFound)
	}
	if err != nil {
		return admin.Alarm{}, err
	}
	return alarmOf(inc), nil
}

// Watch implements admin.Alarms.
func (b Alarms) Watch(ctx context.Context) (<-chan admin.AlarmEvent, error) {
	changes := b.M.Watch(ctx)
	out := make(chan admin.AlarmEvent, 16)
	go func() {
		defer close(out)
		for c := range changes {
			ev := admin.AlarmEvent{Type: admin.AlarmRaised, Alarm: alarmOf(c.Incident)}
			if c.Acknowledged {
				ev.Type = admin.AlarmAcknowledged
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
