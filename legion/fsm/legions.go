package fsm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	raftv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/raft/v1"
)

// Business refusals of legion commands (returned in Result.Err).
var (
	// ErrStaleEpoch: a SetLord whose epoch is not the current epoch + 1
	// lost a race with another decision; the proposer re-reads and retries.
	ErrStaleEpoch = errors.New("stale lord epoch")
	// ErrNotMember: the named node is not a member of the legion.
	ErrNotMember = errors.New("node is not a member of the legion")
	// ErrNotCandidate: an arbiter (valor 0) cannot be lord.
	ErrNotCandidate = errors.New("node is an arbiter (valor 0) and cannot be lord")
	// ErrNotLord: a ReleaseLord from a node that no longer holds the epoch.
	ErrNotLord = errors.New("node does not hold that lordship")
	// ErrInvalidCommand: a well-formed command with missing fields.
	ErrInvalidCommand = errors.New("invalid legion command")
)

// Member is one node's membership in a legion.
type Member struct {
	NodeID string
	Name   string
	Valor  uint32
	Scroll string
	Joined time.Time
	// Quorum is the member's legion-quorum setting.
	Quorum uint32
	// Draining: the member is shutting down and must not be named lord.
	Draining bool
}

// Legion is an immutable copy of one legion's replicated state.
type Legion struct {
	Name      string
	Members   []Member // sorted by NodeID
	Lord      string   // node id, "" while there is none
	Epoch     uint64   // fencing token: grows with every SetLord
	LordSince time.Time
	Pinned    string // preferred lord set by TransferLord, "" for valor order
}

// Member returns the member with the given node id.
func (l Legion) Member(nodeID string) (Member, bool) {
	i, ok := slices.BinarySearchFunc(l.Members, nodeID, func(m Member, id string) int {
		switch {
		case m.NodeID < id:
			return -1
		case m.NodeID > id:
			return 1
		}
		return 0
	})
	if !ok {
		return Member{}, false
	}
	return l.Members[i], true
}

// Legions is the legions sub-state machine: members, lord, epoch, pin.
// Reads are safe from any goroutine.
type Legions struct {
	mu      sync.RWMutex
	state   map[string]*raftv1.LegionRecord
	changed atomic.Pointer[func(legion string)]
}

// NewLegions returns an empty legions machine.
func NewLegions() *Legions {
	return &Legions{state: make(map[string]*raftv1.LegionRecord)}
}

// OnChange sets a function called (outside locks, on the FSM goroutine)
// after every applied command that changed a legion. It must not block.
func (l *Legions) OnChange(fn func(legion string)) { l.changed.Store(&fn) }

func (l *Legions) notify(names ...string) {
	if fn := l.changed.Load(); fn != nil {
		for _, n := range names {
			(*fn)(n)
		}
	}
}

// Get returns one legion.
func (l *Legions) Get(name string) (Legion, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	rec, ok := l.state[name]
	if !ok {
		return Legion{}, false
	}
	return toLegion(rec), true
}

// All returns every legion, sorted by name.
func (l *Legions) All() []Legion {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]Legion, 0, len(l.state))
	for _, rec := range l.state {
		out = append(out, toLegion(rec))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func toLegion(rec *raftv1.LegionRecord) Legion {
	lg := Legion{
		Name: rec.GetName(), Lord: rec.GetLord(), Epoch: rec.GetEpoch(), Pinned: rec.GetPinned(),
		LordSince: unixNano(rec.GetLordSinceUnixNano()),
	}
	for _, m := range rec.GetMembers() {
		lg.Members = append(lg.Members, Member{
			NodeID: m.GetNodeId(), Name: m.GetName(), Valor: m.GetValor(), Scroll: m.GetScroll(),
			Joined: unixNano(m.GetJoinedUnixNano()), Quorum: m.GetQuorum(), Draining: m.GetDraining(),
		})
	}
	return lg
}

func unixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Apply implements Machine.
func (l *Legions) Apply(e Entry) Result {
	var changed []string
	l.mu.Lock()
	res := l.applyLocked(e, &changed)
	l.mu.Unlock()
	l.notify(changed...)
	return res
}

func (l *Legions) applyLocked(e Entry, changed *[]string) Result {
	switch e.Type {
	case RegisterMemberType:
		var c raftv1.RegisterMember
		e.Unmarshal(&c)
		m := c.GetMember()
		if c.GetLegion() == "" || m.GetNodeId() == "" {
			return Result{Err: fmt.Errorf("%w: register-member needs a legion and a node id", ErrInvalidCommand)}
		}
		rec := l.legion(c.GetLegion())
		m = proto.Clone(m).(*raftv1.LegionMember)
		i, found := slices.BinarySearchFunc(rec.Members, m.GetNodeId(), compareMember)
		if found {
			rec.Members[i] = m
		} else {
			rec.Members = slices.Insert(rec.Members, i, m)
		}
		*changed = append(*changed, rec.GetName())
	case RemoveNodeType:
		var c raftv1.RemoveNode
		e.Unmarshal(&c)
		// The lord field is deliberately left alone: a removed node may
		// still hold a lease, and only the leader's election (which waits
		// for leases to expire) may name a successor.
		for _, name := range l.sortedNames() {
			rec := l.state[name]
			if i, found := slices.BinarySearchFunc(rec.Members, c.GetNodeId(), compareMember); found {
				rec.Members = slices.Delete(rec.Members, i, i+1)
				*changed = append(*changed, name)
			}
		}
	case SetLordType:
		var c raftv1.SetLord
		e.Unmarshal(&c)
		rec, ok := l.state[c.GetLegion()]
		if !ok {
			return Result{Err: fmt.Errorf("%w: unknown legion %q", ErrInvalidCommand, c.GetLegion())}
		}
		if c.GetEpoch() != rec.GetEpoch()+1 {
			return Result{Err: fmt.Errorf("%w: legion %s is at epoch %d, command carries %d", ErrStaleEpoch, rec.GetName(), rec.GetEpoch(), c.GetEpoch())}
		}
		if id := c.GetNodeId(); id != "" {
			i, found := slices.BinarySearchFunc(rec.Members, id, compareMember)
			if !found {
				return Result{Err: fmt.Errorf("%w: %s in legion %s", ErrNotMember, id, rec.GetName())}
			}
			if rec.Members[i].GetValor() == 0 {
				return Result{Err: fmt.Errorf("%w: %s in legion %s", ErrNotCandidate, id, rec.GetName())}
			}
		}
		rec.Lord, rec.Epoch, rec.LordSinceUnixNano = c.GetNodeId(), c.GetEpoch(), c.GetTimeUnixNano()
		*changed = append(*changed, rec.GetName())
	case ReleaseLordType:
		var c raftv1.ReleaseLord
		e.Unmarshal(&c)
		rec, ok := l.state[c.GetLegion()]
		if !ok {
			return Result{Err: fmt.Errorf("%w: unknown legion %q", ErrInvalidCommand, c.GetLegion())}
		}
		if c.GetLeaving() {
			if i, found := slices.BinarySearchFunc(rec.Members, c.GetNodeId(), compareMember); found {
				rec.Members[i].Draining = true
				*changed = append(*changed, rec.GetName())
			}
		}
		holds := rec.GetLord() != "" && rec.GetLord() == c.GetNodeId() && rec.GetEpoch() == c.GetEpoch()
		if !holds {
			if c.GetLeaving() {
				return Result{}
			}
			return Result{Err: fmt.Errorf("%w: %s epoch %d in legion %s", ErrNotLord, c.GetNodeId(), c.GetEpoch(), c.GetLegion())}
		}
		rec.Lord, rec.LordSinceUnixNano = "", c.GetTimeUnixNano()
		*changed = append(*changed, rec.GetName())
	case PinLordType:
		var c raftv1.PinLord
		e.Unmarshal(&c)
		rec, ok := l.state[c.GetLegion()]
		if !ok {
			return Result{Err: fmt.Errorf("%w: unknown legion %q", ErrInvalidCommand, c.GetLegion())}
		}
		if id := c.GetNodeId(); id != "" {
			i, found := slices.BinarySearchFunc(rec.Members, id, compareMember)
			if !found {
				return Result{Err: fmt.Errorf("%w: %s in legion %s", ErrNotMember, id, rec.GetName())}
			}
			if rec.Members[i].GetValor() == 0 {
				return Result{Err: fmt.Errorf("%w: %s in legion %s", ErrNotCandidate, id, rec.GetName())}
			}
		}
		rec.Pinned = c.GetNodeId()
		*changed = append(*changed, rec.GetName())
	default:
		panic(fmt.Sprintf("fsm: legions machine got foreign command %s at index %d", e.Type, e.Index))
	}
	return Result{}
}

func (l *Legions) legion(name string) *raftv1.LegionRecord {
	rec, ok := l.state[name]
	if !ok {
		rec = &raftv1.LegionRecord{Name: name}
		l.state[name] = rec
	}
	return rec
}

func (l *Legions) sortedNames() []string {
	names := make([]string, 0, len(l.state))
	for n := range l.state {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func compareMember(m *raftv1.LegionMember, id string) int {
	switch {
	case m.GetNodeId() < id:
		return -1
	case m.GetNodeId() > id:
		return 1
	}
	return 0
}

// Legion snapshot record types.
const recordLegion byte = 0x01

// Snapshot implements Machine: one record per legion, in name order, so
// equal states give byte-identical snapshots.
func (l *Legions) Snapshot(w io.Writer) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	bw := bufio.NewWriter(w)
	for _, name := range l.sortedNames() {
		data, err := proto.MarshalOptions{Deterministic: true}.Marshal(l.state[name])
		if err != nil {
			return fmt.Errorf("encode legion %s: %w", name, err)
		}
		if err := bw.WriteByte(recordLegion); err != nil {
			return err
		}
		if err := writeBytes(bw, data); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Restore implements Machine.
func (l *Legions) Restore(r io.Reader) error {
	br := bufio.NewReader(r)
	next := make(map[string]*raftv1.LegionRecord)
	for {
		kind, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read legion record: %w", err)
		}
		if kind != recordLegion {
			return fmt.Errorf("unknown legion record type 0x%02x", kind)
		}
		data, err := readBytes(br)
		if err != nil {
			return fmt.Errorf("read legion record: %w", err)
		}
		rec := &raftv1.LegionRecord{}
		if err := proto.Unmarshal(data, rec); err != nil {
			return fmt.Errorf("decode legion record: %w", err)
		}
		next[rec.GetName()] = rec
	}
	l.mu.Lock()
	old := l.state
	l.state = next
	names := l.sortedNames()
	l.mu.Unlock()
	for n := range old {
		if _, ok := next[n]; !ok {
			names = append(names, n)
		}
	}
	l.notify(names...)
	return nil
}
