package fsm

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	raftv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/raft/v1"
)

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// logOf hand-builds the raft.Log a leader would append.
func logOf(t *testing.T, index uint64, ct CommandType, msg proto.Message) *raft.Log {
	t.Helper()
	data, err := Encode(ct, msg)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Unix(1700000000, 0)}
}

func member(id string, valor uint32) *raftv1.LegionMember {
	return &raftv1.LegionMember{NodeId: id, Name: "host-" + id, Valor: valor}
}

func apply(t *testing.T, f *FSM, l *raft.Log) Result {
	t.Helper()
	res, ok := f.Apply(l).(Result)
	if !ok {
		t.Fatalf("apply %d returned %T, want Result", l.Index, f.Apply(l))
	}
	return res
}

func TestLegionCommands(t *testing.T) {
	f := New(testLogger(t))
	var seq uint64
	next := func(ct CommandType, msg proto.Message) Result {
		seq++
		return apply(t, f, logOf(t, seq, ct, msg))
	}
	for _, m := range []*raftv1.LegionMember{member("b", 10), member("a", 5), member("c", 0)} {
		if res := next(RegisterMemberType, &raftv1.RegisterMember{Legion: "web", Member: m}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}

	tests := []struct {
		name    string
		ct      CommandType
		msg     proto.Message
		wantErr error
		check   func(t *testing.T, lg Legion)
	}{
		{"lord with next epoch", SetLordType, &raftv1.SetLord{Legion: "web", NodeId: "b", Epoch: 1, TimeUnixNano: 42}, nil,
			func(t *testing.T, lg Legion) {
				if lg.Lord != "b" || lg.Epoch != 1 || lg.LordSince.UnixNano() != 42 {
					t.Fatalf("got lord %q epoch %d since %v", lg.Lord, lg.Epoch, lg.LordSince)
				}
			}},
		{"same epoch again is stale", SetLordType, &raftv1.SetLord{Legion: "web", NodeId: "a", Epoch: 1}, ErrStaleEpoch, nil},
		{"skipping an epoch is stale", SetLordType, &raftv1.SetLord{Legion: "web", NodeId: "a", Epoch: 3}, ErrStaleEpoch, nil},
		{"arbiter cannot be lord", SetLordType, &raftv1.SetLord{Legion: "web", NodeId: "c", Epoch: 2}, ErrNotCandidate, nil},
		{"stranger cannot be lord", SetLordType, &raftv1.SetLord{Legion: "web", NodeId: "z", Epoch: 2}, ErrNotMember, nil},
		{"unknown legion", SetLordType, &raftv1.SetLord{Legion: "nope", NodeId: "a", Epoch: 1}, ErrInvalidCommand, nil},
		{"release by non-lord refused", ReleaseLordType, &raftv1.ReleaseLord{Legion: "web", NodeId: "a", Epoch: 1}, ErrNotLord, nil},
		{"release of old epoch refused", ReleaseLordType, &raftv1.ReleaseLord{Legion: "web", NodeId: "b", Epoch: 0}, ErrNotLord, nil},
		{"release by lord", ReleaseLordType, &raftv1.ReleaseLord{Legion: "web", NodeId: "b", Epoch: 1, TimeUnixNano: 50}, nil,
			func(t *testing.T, lg Legion) {
				if lg.Lord != "" || lg.Epoch != 1 {
					t.Fatalf("after release: lord %q epoch %d", lg.Lord, lg.Epoch)
				}
			}},
		{"pin arbiter refused", PinLordType, &raftv1.PinLord{Legion: "web", NodeId: "c"}, ErrNotCandidate, nil},
		{"pin member", PinLordType, &raftv1.PinLord{Legion: "web", NodeId: "a"}, nil,
			func(t *testing.T, lg Legion) {
				if lg.Pinned != "a" {
					t.Fatalf("pinned %q", lg.Pinned)
				}
			}},
		{"register without node id", RegisterMemberType, &raftv1.RegisterMember{Legion: "web", Member: &raftv1.LegionMember{}}, ErrInvalidCommand, nil},
		{"remove node keeps others sorted", RemoveNodeType, &raftv1.RemoveNode{NodeId: "a"}, nil,
			func(t *testing.T, lg Legion) {
				if len(lg.Members) != 2 || lg.Members[0].NodeID != "b" || lg.Members[1].NodeID != "c" {
					t.Fatalf("members %+v", lg.Members)
				}
				if _, ok := lg.Member("a"); ok {
					t.Fatal("a still a member")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := next(tt.ct, tt.msg)
			if !errors.Is(res.Err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", res.Err, tt.wantErr)
			}
			lg, _ := f.Legions().Get("web")
			if tt.check != nil {
				tt.check(t, lg)
			}
		})
	}
}

func TestUnknownCommands(t *testing.T) {
	f := New(testLogger(t))
	t.Run("ignorable type is skipped", func(t *testing.T) {
		l := &raft.Log{Index: 1, Type: raft.LogCommand, Data: []byte{byte(IgnoreUnknown | 0x3f), 1, 2}}
		if got := f.Apply(l); got != nil {
			t.Fatalf("got %v, want nil", got)
		}
	})
	cases := map[string]*raft.Log{
		"unknown type panics":     {Index: 2, Type: raft.LogCommand, Data: []byte{0x3f}},
		"empty entry panics":      {Index: 3, Type: raft.LogCommand},
		"undecodable body panics": {Index: 4, Type: raft.LogCommand, Data: []byte{byte(SetLordType), 0xff, 0xff}},
	}
	for name, l := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil {
					t.Fatal("no panic")
				}
			}()
			f.Apply(l)
		})
	}
	t.Run("non-command entries are ignored", func(t *testing.T) {
		if got := f.Apply(&raft.Log{Index: 5, Type: raft.LogConfiguration}); got != nil {
			t.Fatalf("got %v", got)
		}
	})
}

// counter is a second machine, standing in for caches and alarms.
type counter struct{ n byte }

const counterType CommandType = 0x30

func (c *counter) Apply(e Entry) Result { c.n += e.Body[0]; return Result{Data: []byte{c.n}} }
func (c *counter) Snapshot(w io.Writer) error {
	_, err := w.Write([]byte{c.n})
	return err
}
func (c *counter) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	c.n = 0
	if len(b) > 0 {
		c.n = b[0]
	}
	return nil
}

func TestRegisterAndBatch(t *testing.T) {
	f := New(testLogger(t))
	c := &counter{}
	if err := f.Register("counter", c, counterType); err != nil {
		t.Fatal(err)
	}
	if err := f.Register("counter", &counter{}, 0x31); !errors.Is(err, ErrDuplicateRegistration) {
		t.Fatalf("duplicate name: %v", err)
	}
	if err := f.Register("other", &counter{}, SetLordType); !errors.Is(err, ErrDuplicateRegistration) {
		t.Fatalf("duplicate type: %v", err)
	}
	logs := []*raft.Log{
		{Index: 1, Type: raft.LogCommand, Data: []byte{byte(counterType), 2}},
		{Index: 2, Type: raft.LogNoop},
		{Index: 3, Type: raft.LogCommand, Data: []byte{byte(counterType), 3}},
	}
	out := f.ApplyBatch(logs)
	if len(out) != 3 || out[1] != nil {
		t.Fatalf("batch results %v", out)
	}
	if got := out[2].(Result).Data[0]; got != 5 {
		t.Fatalf("counter = %d, want 5", got)
	}
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func snapshotBytes(t *testing.T, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	return sink.Bytes()
}

func TestSnapshotRoundTrip(t *testing.T) {
	src := New(testLogger(t))
	c := &counter{}
	if err := src.Register("counter", c, counterType); err != nil {
		t.Fatal(err)
	}
	cmds := []struct {
		ct  CommandType
		msg proto.Message
	}{
		{RegisterMemberType, &raftv1.RegisterMember{Legion: "web", Member: &raftv1.LegionMember{NodeId: "n1", Valor: 3, Scroll: "dump-socket=x", JoinedUnixNano: 7}}},
		{RegisterMemberType, &raftv1.RegisterMember{Legion: "web", Member: member("n2", 0)}},
		{RegisterMemberType, &raftv1.RegisterMember{Legion: "db", Member: member("n2", 9)}},
		{SetLordType, &raftv1.SetLord{Legion: "web", NodeId: "n1", Epoch: 1, TimeUnixNano: 99}},
		{PinLordType, &raftv1.PinLord{Legion: "db", NodeId: "n2"}},
	}
	for i, cmd := range cmds {
		if res := apply(t, src, logOf(t, uint64(i+1), cmd.ct, cmd.msg)); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	src.Apply(&raft.Log{Index: 10, Type: raft.LogCommand, Data: []byte{byte(counterType), 7}})
	data := snapshotBytes(t, src)

	dst := New(testLogger(t))
	dc := &counter{n: 100}
	if err := dst.Register("counter", dc, counterType); err != nil {
		t.Fatal(err)
	}
	var notified []string
	dst.Legions().OnChange(func(l string) { notified = append(notified, l) })
	if err := dst.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if dc.n != 7 {
		t.Fatalf("counter restored to %d", dc.n)
	}
	for _, name := range []string{"web", "db"} {
		a, _ := src.Legions().Get(name)
		b, ok := dst.Legions().Get(name)
		if !ok {
			t.Fatalf("legion %s missing after restore", name)
		}
		if a.Lord != b.Lord || a.Epoch != b.Epoch || a.Pinned != b.Pinned || len(a.Members) != len(b.Members) || a.Members[0] != b.Members[0] {
			t.Fatalf("legion %s: %+v != %+v", name, a, b)
		}
	}
	if len(notified) != 2 {
		t.Fatalf("restore notified %v", notified)
	}
	if again := snapshotBytes(t, dst); !bytes.Equal(again, data) {
		t.Fatal("snapshot of restored state differs: snapshots are not deterministic")
	}
}

func TestRestoreRejectsBadStreams(t *testing.T) {
	good := snapshotBytes(t, New(testLogger(t)))
	withCounter := New(testLogger(t))
	if err := withCounter.Register("counter", &counter{}, counterType); err != nil {
		t.Fatal(err)
	}
	foreign := snapshotBytes(t, withCounter)
	newer := func() []byte {
		h, _ := proto.Marshal(&raftv1.SnapshotHeader{Version: SnapshotVersion + 1})
		var b bytes.Buffer
		b.Write(snapshotMagic)
		_ = writeBytes(&b, h)
		b.WriteByte(recordEnd)
		return b.Bytes()
	}()
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"bad magic", []byte("not a snapshot at all"), "bad magic"},
		{"truncated", good[:len(good)-1], "read record type"},
		{"newer version", newer, "newer than this node"},
		{"unknown machine", foreign, `machine "counter"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := New(testLogger(t))
			if res := apply(t, f, logOf(t, 1, RegisterMemberType, &raftv1.RegisterMember{Legion: "keep", Member: member("n1", 1)})); res.Err != nil {
				t.Fatal(res.Err)
			}
			err := f.Restore(io.NopCloser(bytes.NewReader(tt.data)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if _, ok := f.Legions().Get("keep"); !ok {
				t.Fatal("failed restore lost the old state")
			}
		})
	}
}
