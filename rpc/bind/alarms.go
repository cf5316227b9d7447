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
	// The alarm goroutine records it asynchronously; wait a bounded time.
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	deadline := time.After(5 * time.Second)
	for {
		hist := b.M.History()
		for i := len(hist) - 1; i >= 0; i-- {
			if hist[i].Alarm == name && hist[i].Kind == alarm.KindAPI && strings.HasPrefix(message, strings.TrimSuffix(hist[i].Message, alarm.TruncatedMarker)) {
				return alarmOf(hist[i]), nil
			}
		}
		select {
		case <-t.C:
		case <-deadline:
			return admin.Alarm{}, fmt.Errorf("raise alarm %s: not recorded within 5s (alarm queue full?)", name)
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
