package alarm

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestAcknowledgeAndWatch: a watcher sees an incident raised and then
// acknowledged; the history keeps the acknowledgement; unknown ids fail.
func TestAcknowledgeAndWatch(t *testing.T) {
	cfg := testConfig()
	cfg.Alarms = []string{"page log:PAGE"}
	h := newHarness(t, cfg, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := h.m.Watch(ctx)
	if err := h.m.RaiseAlarm("page", "disk full"); err != nil {
		t.Fatal(err)
	}
	next := func() Change {
		t.Helper()
		select {
		case c := <-changes:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("no change seen by the watcher")
			return Change{}
		}
	}
	raised := next()
	if raised.Acknowledged || raised.Incident.Message != "disk full" || raised.Incident.Alarm != "page" {
		t.Fatalf("first change %+v, want the raise of page", raised)
	}
	inc, err := h.m.Acknowledge(raised.Incident.ID)
	if err != nil || inc.AckedAt.IsZero() {
		t.Fatalf("Acknowledge: %+v, %v", inc, err)
	}
	if c := next(); !c.Acknowledged || c.Incident.ID != raised.Incident.ID {
		t.Fatalf("second change %+v, want the acknowledgement", c)
	}
	hist := h.m.History()
	if len(hist) != 1 || hist[0].AckedAt.IsZero() {
		t.Fatalf("history %+v, want one acknowledged incident", hist)
	}
	if _, err := h.m.Acknowledge(999); !errors.Is(err, ErrUnknownIncident) {
		t.Fatalf("Acknowledge(999): %v, want ErrUnknownIncident", err)
	}
	cancel()
	for range changes { // closed when ctx ends
	}
}
