package alarm

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/gouwsgi/gouwsgi/legion/fsm"
	raftv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/raft/v1"
)

// applier feeds commands to a machine as Raft would: increasing indexes
// and leader-stamped times on a fake clock.
type applier struct {
	t     *testing.T
	m     *Machine
	index uint64
	now   time.Time
}

func newApplier(t *testing.T, retain int) *applier {
	return &applier{t: t, m: NewMachine(retain), now: time.Unix(1_700_000_000, 0)}
}

func (a *applier) apply(typ fsm.CommandType, msg proto.Message) fsm.Result {
	a.t.Helper()
	body, err := proto.Marshal(msg)
	if err != nil {
		a.t.Fatal(err)
	}
	a.index++
	return a.m.Apply(fsm.Entry{Type: typ, Body: body, Index: a.index, Term: 1, Time: a.now})
}

const freq = 3 * time.Second

// record applies a record of alarm "pager" and returns the answer.
func (a *applier) record(node, instance string, localID uint64, msg string) (uint64, bool) {
	a.t.Helper()
	res := a.apply(RecordType, &raftv1.AlarmRecord{Alarm: "pager", Message: msg, Kind: "log", NodeId: node, NodeName: "host-" + node,
		Instance: instance, LocalId: localID, FreqNanos: int64(freq), RaisedUnixNano: a.now.UnixNano()})
	if res.Err != nil {
		a.t.Fatalf("record: %v", res.Err)
	}
	var out raftv1.AlarmRecordResult
	if err := proto.Unmarshal(res.Data, &out); err != nil {
		a.t.Fatal(err)
	}
	return out.GetIncidentId(), out.GetRunHere()
}

func (a *applier) get(id uint64) Incident {
	a.t.Helper()
	inc, ok := a.m.Get(id)
	if !ok {
		a.t.Fatalf("incident %d missing", id)
	}
	return inc
}

func TestRecordDedupWindow(t *testing.T) {
	tests := []struct {
		name    string
		after   time.Duration // between the first and the second record
		node    string
		msg     string
		same    bool
		runHere bool
	}{
		{"same message other node within freq", time.Second, "b", "boom", true, false},
		{"same message same node within freq", 2 * time.Second, "a", "boom", true, false},
		{"same message at freq is a new incident", freq, "b", "boom", false, true},
		{"other message within freq is a new incident", time.Second, "b", "bang", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApplier(t, 0)
			first, run := a.record("a", "ia", 1, "boom")
			if !run || first != 1 {
				t.Fatalf("first record: id %d runHere %v, want 1 true", first, run)
			}
			a.now = a.now.Add(tt.after)
			id, run := a.record(tt.node, "i"+tt.node, 2, tt.msg)
			if (id == first) != tt.same || run != tt.runHere {
				t.Fatalf("second record: id %d runHere %v; want same incident %v, runHere %v", id, run, tt.same, tt.runHere)
			}
			inc := a.get(id)
			if tt.same {
				if inc.Count != 2 || inc.Owner != "a" || !inc.Last.Equal(a.now) || inc.First.Equal(inc.Last) {
					t.Fatalf("folded incident %+v", inc)
				}
			} else if inc.Count != 1 || inc.Owner != tt.node {
				t.Fatalf("new incident %+v", inc)
			}
		})
	}
}

func TestRecordThreeNodesOneIncident(t *testing.T) {
	a := newApplier(t, 0)
	owners := 0
	for i, node := range []string{"a", "b", "c"} {
		a.now = a.now.Add(100 * time.Millisecond)
		if _, run := a.record(node, "i"+node, uint64(i+1), "boom"); run {
			owners++
		}
	}
	inc := a.get(1)
	if owners != 1 || inc.Owner != "a" || inc.Count != 3 || len(inc.Raisers) != 3 {
		t.Fatalf("owners %d, incident %+v", owners, inc)
	}
	for i, r := range inc.Raisers {
		if r.NodeID != []string{"a", "b", "c"}[i] || r.Count != 1 || r.Name != "host-"+r.NodeID {
			t.Fatalf("raiser %d = %+v", i, r)
		}
	}
	if inc.Origin.NodeID != "a" || inc.Origin.LocalID != 1 || inc.Origin.Name != "host-a" {
		t.Fatalf("origin %+v", inc.Origin)
	}
}

// A record retried after an unknown outcome (the answer was lost) gets the
// same answer and is not counted twice.
func TestRecordRetryIsIdempotent(t *testing.T) {
	a := newApplier(t, 0)
	a.record("a", "ia", 7, "boom")
	a.record("b", "ib", 3, "boom")
	for _, tt := range []struct {
		node, inst string
		local      uint64
		runHere    bool
	}{{"a", "ia", 7, true}, {"b", "ib", 3, false}} {
		if id, run := a.record(tt.node, tt.inst, tt.local, "boom"); id != 1 || run != tt.runHere {
			t.Fatalf("retry from %s: id %d runHere %v", tt.node, id, run)
		}
	}
	if inc := a.get(1); inc.Count != 2 {
		t.Fatalf("count %d after retries, want 2", inc.Count)
	}
}

func TestFreqZeroNeverFolds(t *testing.T) {
	a := newApplier(t, 0)
	for i := range 3 {
		res := a.apply(RecordType, &raftv1.AlarmRecord{Alarm: "pager", Message: "boom", NodeId: "a", Instance: "i", LocalId: uint64(i + 1)})
		var out raftv1.AlarmRecordResult
		if err := proto.Unmarshal(res.Data, &out); err != nil || !out.GetRunHere() || out.GetIncidentId() != uint64(i+1) {
			t.Fatalf("record %d: %v %+v", i, err, &out)
		}
	}
}

// Reassignment and claims are compare-and-sets: one owner, one process.
func TestReassignAndClaim(t *testing.T) {
	a := newApplier(t, 0)
	a.record("a", "ia", 1, "boom")
	a.record("b", "ib", 1, "boom")
	steps := []struct {
		name    string
		typ     fsm.CommandType
		msg     proto.Message
		wantErr error
		check   func(Incident) bool
	}{
		{"reassign from a non-owner is refused", ReassignType, &raftv1.AlarmReassign{IncidentId: 1, FromNode: "b", ToNode: "c"}, ErrNotOwner, nil},
		{"claim by a non-owner is refused", ClaimType, &raftv1.AlarmClaim{IncidentId: 1, NodeId: "b", Instance: "ib2", ExpectInstance: "ia"}, ErrNotOwner, nil},
		{"reassign from the dead owner", ReassignType, &raftv1.AlarmReassign{IncidentId: 1, FromNode: "a", ToNode: "b", Reason: "a is dead"}, nil,
			func(inc Incident) bool { return inc.Owner == "b" && inc.OwnerInstance == "" && inc.Reassignments == 1 }},
		{"stale reassign (a again) is refused", ReassignType, &raftv1.AlarmReassign{IncidentId: 1, FromNode: "a", ToNode: "c"}, ErrNotOwner, nil},
		{"claim by the new owner", ClaimType, &raftv1.AlarmClaim{IncidentId: 1, NodeId: "b", Instance: "ib+claim", ExpectInstance: ""}, nil,
			func(inc Incident) bool { return inc.Owner == "b" && inc.OwnerInstance == "ib+claim" }},
		{"a second claim of the same assignment is refused", ClaimType, &raftv1.AlarmClaim{IncidentId: 1, NodeId: "b", Instance: "other", ExpectInstance: ""}, ErrNotOwner, nil},
		{"done", DoneType, &raftv1.AlarmDone{IncidentId: 1, NodeId: "b", Outcome: "ok"}, nil,
			func(inc Incident) bool { return inc.Done && inc.Outcome == "ok" && inc.DoneBy == "b" && inc.Runs == 1 }},
		{"a retried done report is not a second run", DoneType, &raftv1.AlarmDone{IncidentId: 1, NodeId: "b", Outcome: "ok"}, nil,
			func(inc Incident) bool { return inc.Runs == 1 }},
		{"no reassignment once done", ReassignType, &raftv1.AlarmReassign{IncidentId: 1, FromNode: "b", ToNode: "c"}, ErrNotOwner, nil},
		{"no claim once done", ClaimType, &raftv1.AlarmClaim{IncidentId: 1, NodeId: "b", Instance: "x", ExpectInstance: "ib+claim"}, ErrNotOwner, nil},
		{"a late second run is counted, first outcome kept", DoneType, &raftv1.AlarmDone{IncidentId: 1, NodeId: "a", Outcome: "failed: x"}, nil,
			func(inc Incident) bool { return inc.Outcome == "ok" && inc.Runs == 2 }},
		{"unknown incident", ClaimType, &raftv1.AlarmClaim{IncidentId: 99, NodeId: "b", Instance: "x"}, ErrUnknownIncident, nil},
		{"claim without instance", ClaimType, &raftv1.AlarmClaim{IncidentId: 1, NodeId: "b"}, ErrInvalid, nil},
		{"reassign without target", ReassignType, &raftv1.AlarmReassign{IncidentId: 1, FromNode: "b"}, ErrInvalid, nil},
		{"record without node", RecordType, &raftv1.AlarmRecord{Alarm: "pager"}, ErrInvalid, nil},
		{"done of unknown incident", DoneType, &raftv1.AlarmDone{IncidentId: 42}, ErrUnknownIncident, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			res := a.apply(st.typ, st.msg)
			if !errors.Is(res.Err, st.wantErr) {
				t.Fatalf("err = %v, want %v", res.Err, st.wantErr)
			}
			if st.check != nil {
				if inc := a.get(1); !st.check(inc) {
					t.Fatalf("incident after step: %+v", inc)
				}
			}
		})
	}
}

func TestAcknowledge(t *testing.T) {
	a := newApplier(t, 0)
	a.record("a", "ia", 1, "boom")
	a.now = a.now.Add(time.Minute)
	at := a.now
	if res := a.apply(AckType, &raftv1.AlarmAck{IncidentId: 1, By: "b"}); res.Err != nil {
		t.Fatal(res.Err)
	}
	a.now = a.now.Add(time.Minute)
	a.apply(AckType, &raftv1.AlarmAck{IncidentId: 1, By: "c"}) // the first acknowledgement stays
	if inc := a.get(1); !inc.AckedAt.Equal(at) || inc.AckedBy != "b" {
		t.Fatalf("acked %s by %q", inc.AckedAt, inc.AckedBy)
	}
	if res := a.apply(AckType, &raftv1.AlarmAck{IncidentId: 5}); !errors.Is(res.Err, ErrUnknownIncident) {
		t.Fatalf("ack unknown: %v", res.Err)
	}
}

func TestSnapshotRestore(t *testing.T) {
	a := newApplier(t, 0)
	a.record("a", "ia", 1, "boom")
	a.record("b", "ib", 1, "boom")
	a.record("c", "ic", 1, "other")
	a.apply(ReassignType, &raftv1.AlarmReassign{IncidentId: 1, FromNode: "a", ToNode: "b"})
	a.apply(AckType, &raftv1.AlarmAck{IncidentId: 2, By: "a"})
	var snap bytes.Buffer
	if err := a.m.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	b := newApplier(t, 0)
	b.now, b.index = a.now, a.index
	if err := b.m.Restore(bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	got, want := b.m.History(), a.m.History()
	if len(got) != len(want) {
		t.Fatalf("restored %d incidents, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Owner != want[i].Owner || got[i].Count != want[i].Count ||
			len(got[i].Raisers) != len(want[i].Raisers) || !got[i].AckedAt.Equal(want[i].AckedAt) || got[i].Reassignments != want[i].Reassignments {
			t.Fatalf("incident %d restored as %+v, want %+v", i, got[i], want[i])
		}
	}
	// The restored machine goes on where the snapshot left off: the fold
	// index and the id sequence came back.
	if id, run := b.record("c", "ic", 9, "boom"); id != 1 || run {
		t.Fatalf("record after restore: id %d runHere %v, want the open incident 1", id, run)
	}
	if id, _ := b.record("c", "ic", 10, "new"); id != 3 {
		t.Fatalf("new incident after restore got id %d, want 3", id)
	}

	t.Run("empty section", func(t *testing.T) {
		m := NewMachine(0)
		if err := m.Restore(bytes.NewReader(nil)); err != nil || len(m.History()) != 0 {
			t.Fatalf("restore empty: %v", err)
		}
	})
	t.Run("corrupt state keeps the old one", func(t *testing.T) {
		for _, bad := range [][]byte{{0xff, 0xff, 0xff}, mustMarshal(t, &raftv1.AlarmState{NextId: 1, Incidents: []*raftv1.AlarmIncident{{Id: 5}}})} {
			err := b.m.Restore(bytes.NewReader(bad))
			if err == nil || !strings.Contains(err.Error(), "alarm state") {
				t.Fatalf("restore %x: err %v", bad, err)
			}
			if len(b.m.History()) != 3 {
				t.Fatal("a failed restore changed the state")
			}
		}
	})
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Pruning drops done incidents first and bounds undone ones at twice the
// retention.
func TestPrune(t *testing.T) {
	a := newApplier(t, 2)
	for i := range 3 {
		a.record("a", "ia", uint64(i+1), "m"+string(rune('0'+i)))
	}
	if len(a.m.History()) != 3 {
		t.Fatalf("kept %d undone incidents, want all 3 (below twice the retention)", len(a.m.History()))
	}
	a.apply(DoneType, &raftv1.AlarmDone{IncidentId: 2, NodeId: "a", Outcome: "ok"})
	a.record("a", "ia", 4, "m3")
	var ids []uint64
	for _, inc := range a.m.History() {
		ids = append(ids, inc.ID)
	}
	if len(ids) != 3 || ids[0] != 1 || ids[1] != 3 || ids[2] != 4 {
		t.Fatalf("kept %v, want [1 3 4] (the done one pruned first)", ids)
	}
	for i := range 3 {
		a.record("a", "ia", uint64(10+i), "n"+string(rune('0'+i)))
	}
	if n := len(a.m.History()); n != 4 {
		t.Fatalf("kept %d, want 4 (twice the retention)", n)
	}
}

func TestWatchSeesChanges(t *testing.T) {
	a := newApplier(t, 0)
	ctx, cancel := contextWithCancel(t)
	ch := a.m.Watch(ctx)
	a.record("a", "ia", 1, "boom")
	a.record("b", "ib", 1, "boom")
	a.apply(AckType, &raftv1.AlarmAck{IncidentId: 1})
	var got []ChangeType
	for range 3 {
		got = append(got, (<-ch).Type)
	}
	if got[0] != Raised || got[1] != Repeated || got[2] != Acknowledged {
		t.Fatalf("changes %v", got)
	}
	cancel()
	for range ch { // closed once the watcher is gone
	}
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx, cancel
}
