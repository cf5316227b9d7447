package alarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/gouwsgi/gouwsgi/legion/fsm"
	raftv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/raft/v1"
)

// Command types of the alarms machine (legion/fsm reserves 0x30-0x3f).
const (
	RecordType   fsm.CommandType = 0x30
	ClaimType    fsm.CommandType = 0x31
	DoneType     fsm.CommandType = 0x32
	ReassignType fsm.CommandType = 0x33
	AckType      fsm.CommandType = 0x34
)

// Types lists the command types the machine registers.
var Types = []fsm.CommandType{RecordType, ClaimType, DoneType, ReassignType, AckType}

// MachineName keys the machine's snapshot section.
const MachineName = "alarm"

// Business refusals (fsm.Result.Err, legion.RefusedError on the proposer).
var (
	// ErrUnknownIncident: no incident with that id (never, or pruned).
	ErrUnknownIncident = errors.New("no such incident")
	// ErrNotOwner: a claim or reassignment lost a race: the incident has
	// another owner or instance now, or is done.
	ErrNotOwner = errors.New("incident is owned by another node or process, or done")
	// ErrInvalid: a well-formed command with missing fields.
	ErrInvalid = errors.New("invalid alarm command")
)

// DefaultRetain is how many incidents the machine keeps by default.
const DefaultRetain = 1000

// Raiser is one node's share of an incident.
type Raiser struct {
	NodeID, Name string
	Count        uint64
	First, Last  time.Time // leader-stamped
}

// Incident is one cluster incident: every raise of the same alarm with
// the same message within alarm-freq, wherever it happened.
type Incident struct {
	ID      uint64 // cluster-wide, from 1
	Alarm   string
	Message string
	Kind    string
	// First and Last are leader-stamped (Raft AppendedAt).
	First, Last time.Time
	Count       uint64 // records folded into it, the first included
	Raisers     []Raiser
	// Origin is the first raise as its node's alarm manager names it.
	Origin Origin
	// Owner runs the action; OwnerInstance is the process that claimed it
	// ("" while a reassigned incident waits for its new owner to claim).
	Owner, OwnerInstance string
	AssignedAt           time.Time
	Reassignments        int
	Done                 bool
	Outcome, DoneBy      string
	DoneAt               time.Time
	// Runs counts Done reports: how many times the action was run.
	Runs    int
	AckedAt time.Time // zero: not acknowledged
	AckedBy string
}

// Origin identifies the raise that opened an incident.
type Origin struct {
	NodeID, Name string
	LocalID      uint64
	RaisedAt     time.Time // the raiser's clock
}

// ChangeType tells what happened to an incident.
type ChangeType int

// ChangeType values.
const (
	Raised       ChangeType = iota + 1 // a new incident
	Repeated                           // a record folded into it
	Assigned                           // reassigned or claimed
	Finished                           // its action was reported done
	Acknowledged                       // an operator acknowledged it
)

func (c ChangeType) String() string {
	switch c {
	case Raised:
		return "raised"
	case Repeated:
		return "repeated"
	case Assigned:
		return "assigned"
	case Finished:
		return "finished"
	case Acknowledged:
		return "acknowledged"
	}
	return fmt.Sprintf("change-%d", int(c))
}

// Change is one applied change, for watchers.
type Change struct {
	Type     ChangeType
	Incident Incident
}

// Machine is the alarms sub-state machine (fsm.Machine). Reads are safe
// from any goroutine.
type Machine struct {
	retain int

	mu     sync.RWMutex
	nextID uint64
	incs   []*raftv1.AlarmIncident // ascending id
	open   map[string]uint64       // alarm\x00message -> latest incident id
	subs   map[chan Change]struct{}
	kicks  []chan struct{}
}

// NewMachine returns an empty machine keeping up to retain incidents
// (DefaultRetain when retain <= 0).
func NewMachine(retain int) *Machine {
	if retain <= 0 {
		retain = DefaultRetain
	}
	return &Machine{retain: retain, nextID: 1, open: map[string]uint64{}, subs: map[chan Change]struct{}{}}
}

func key(alarm, msg string) string { return alarm + "\x00" + msg }

// Apply implements fsm.Machine.
func (m *Machine) Apply(e fsm.Entry) fsm.Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	var res fsm.Result
	var ch Change
	switch e.Type {
	case RecordType:
		var c raftv1.AlarmRecord
		e.Unmarshal(&c)
		res, ch = m.record(&c, e.Time)
	case ClaimType:
		var c raftv1.AlarmClaim
		e.Unmarshal(&c)
		res, ch = m.claim(&c, e.Time)
	case DoneType:
		var c raftv1.AlarmDone
		e.Unmarshal(&c)
		res, ch = m.done(&c, e.Time)
	case ReassignType:
		var c raftv1.AlarmReassign
		e.Unmarshal(&c)
		res, ch = m.reassign(&c, e.Time)
	case AckType:
		var c raftv1.AlarmAck
		e.Unmarshal(&c)
		res, ch = m.ack(&c, e.Time)
	default:
		panic(fmt.Sprintf("alarm machine: command %s at index %d is not an alarm command", e.Type, e.Index))
	}
	if ch.Type != 0 {
		m.publish(ch)
	}
	return res
}

func (m *Machine) record(c *raftv1.AlarmRecord, now time.Time) (fsm.Result, Change) {
	if c.GetAlarm() == "" || c.GetNodeId() == "" {
		return fsm.Result{Err: fmt.Errorf("%w: record needs an alarm and a node id", ErrInvalid)}, Change{}
	}
	t := now.UnixNano()
	request := fmt.Sprintf("%s/%d", c.GetInstance(), c.GetLocalId())
	k := key(c.GetAlarm(), c.GetMessage())
	if inc := m.get(m.open[k]); inc != nil {
		if r := raiserOf(inc, c.GetNodeId()); r != nil && r.GetLastRequest() == request {
			// A retry of a record already applied: same answer, no count.
			return answer(inc, inc.GetOwnerInstance() == c.GetInstance() && inc.GetOwner() == c.GetNodeId() && inc.GetOriginLocalId() == c.GetLocalId()), Change{}
		}
		if c.GetFreqNanos() > 0 && t-inc.GetFirstUnixNano() < c.GetFreqNanos() {
			inc.Count++
			inc.LastUnixNano = t
			m.addRaiser(inc, c, t, request)
			return answer(inc, false), Change{Type: Repeated, Incident: toIncident(inc)}
		}
	}
	inc := &raftv1.AlarmIncident{
		Id: m.nextID, Alarm: c.GetAlarm(), Message: c.GetMessage(), Kind: c.GetKind(),
		FirstUnixNano: t, LastUnixNano: t, Count: 1,
		OriginNode: c.GetNodeId(), OriginName: c.GetNodeName(), OriginLocalId: c.GetLocalId(), OriginRaisedUnixNano: c.GetRaisedUnixNano(),
		Owner: c.GetNodeId(), OwnerInstance: c.GetInstance(), AssignedUnixNano: t,
	}
	m.nextID++
	m.addRaiser(inc, c, t, request)
	m.incs = append(m.incs, inc)
	m.open[k] = inc.GetId()
	m.prune()
	return answer(inc, true), Change{Type: Raised, Incident: toIncident(inc)}
}

func (m *Machine) addRaiser(inc *raftv1.AlarmIncident, c *raftv1.AlarmRecord, t int64, request string) {
	r := raiserOf(inc, c.GetNodeId())
	if r == nil {
		r = &raftv1.AlarmRaiser{NodeId: c.GetNodeId(), FirstUnixNano: t}
		inc.Raisers = append(inc.Raisers, r)
	}
	r.NodeName = c.GetNodeName()
	r.Count++
	r.LastUnixNano = t
	r.LastRequest = request
}

func raiserOf(inc *raftv1.AlarmIncident, node string) *raftv1.AlarmRaiser {
	for _, r := range inc.GetRaisers() {
		if r.GetNodeId() == node {
			return r
		}
	}
	return nil
}

func answer(inc *raftv1.AlarmIncident, runHere bool) fsm.Result {
	b, err := proto.Marshal(&raftv1.AlarmRecordResult{IncidentId: inc.GetId(), RunHere: runHere})
	if err != nil {
		panic(fmt.Sprintf("alarm machine: encode record result: %v", err))
	}
	return fsm.Result{Data: b}
}

// prune drops the oldest done incidents beyond retain; past twice retain
// it drops the oldest whatever their state, so memory stays bounded even
// when actions never report.
func (m *Machine) prune() {
	for len(m.incs) > m.retain {
		i := slices.IndexFunc(m.incs, func(inc *raftv1.AlarmIncident) bool { return inc.GetDone() })
		if i < 0 {
			if len(m.incs) <= 2*m.retain {
				return
			}
			i = 0
		}
		old := m.incs[i]
		m.incs = slices.Delete(m.incs, i, i+1)
		if k := key(old.GetAlarm(), old.GetMessage()); m.open[k] == old.GetId() {
			delete(m.open, k)
		}
	}
}

func (m *Machine) get(id uint64) *raftv1.AlarmIncident {
	i, ok := slices.BinarySearchFunc(m.incs, id, func(inc *raftv1.AlarmIncident, id uint64) int {
		switch {
		case inc.GetId() < id:
			return -1
		case inc.GetId() > id:
			return 1
		}
		return 0
	})
	if !ok {
		return nil
	}
	return m.incs[i]
}

func (m *Machine) claim(c *raftv1.AlarmClaim, now time.Time) (fsm.Result, Change) {
	inc := m.get(c.GetIncidentId())
	switch {
	case c.GetNodeId() == "" || c.GetInstance() == "":
		return fsm.Result{Err: fmt.Errorf("%w: claim needs a node id and an instance", ErrInvalid)}, Change{}
	case inc == nil:
		return fsm.Result{Err: fmt.Errorf("claim incident %d: %w", c.GetIncidentId(), ErrUnknownIncident)}, Change{}
	case inc.GetDone() || inc.GetOwner() != c.GetNodeId() || inc.GetOwnerInstance() != c.GetExpectInstance():
		return fsm.Result{Err: fmt.Errorf("claim incident %d: %w", c.GetIncidentId(), ErrNotOwner)}, Change{}
	}
	inc.OwnerInstance = c.GetInstance()
	inc.AssignedUnixNano = now.UnixNano()
	return fsm.Result{}, Change{Type: Assigned, Incident: toIncident(inc)}
}

func (m *Machine) done(c *raftv1.AlarmDone, now time.Time) (fsm.Result, Change) {
	inc := m.get(c.GetIncidentId())
	if inc == nil {
		return fsm.Result{Err: fmt.Errorf("done incident %d: %w", c.GetIncidentId(), ErrUnknownIncident)}, Change{}
	}
	if inc.GetDone() && inc.GetDoneBy() == c.GetNodeId() && inc.GetDoneInstance() == c.GetInstance() {
		return fsm.Result{}, Change{} // a retried report
	}
	inc.Runs++
	if inc.GetDone() {
		// A second run (an owner presumed dead finished after all): it is
		// counted, the first outcome stays.
		return fsm.Result{}, Change{Type: Finished, Incident: toIncident(inc)}
	}
	inc.Done, inc.Outcome, inc.DoneBy, inc.DoneInstance, inc.DoneUnixNano = true, c.GetOutcome(), c.GetNodeId(), c.GetInstance(), now.UnixNano()
	return fsm.Result{}, Change{Type: Finished, Incident: toIncident(inc)}
}

func (m *Machine) reassign(c *raftv1.AlarmReassign, now time.Time) (fsm.Result, Change) {
	inc := m.get(c.GetIncidentId())
	switch {
	case c.GetToNode() == "":
		return fsm.Result{Err: fmt.Errorf("%w: reassign needs a target node", ErrInvalid)}, Change{}
	case inc == nil:
		return fsm.Result{Err: fmt.Errorf("reassign incident %d: %w", c.GetIncidentId(), ErrUnknownIncident)}, Change{}
	case inc.GetDone() || inc.GetOwner() != c.GetFromNode():
		return fsm.Result{Err: fmt.Errorf("reassign incident %d: %w", c.GetIncidentId(), ErrNotOwner)}, Change{}
	}
	inc.Owner, inc.OwnerInstance, inc.AssignedUnixNano = c.GetToNode(), "", now.UnixNano()
	inc.Reassignments++
	return fsm.Result{}, Change{Type: Assigned, Incident: toIncident(inc)}
}

func (m *Machine) ack(c *raftv1.AlarmAck, now time.Time) (fsm.Result, Change) {
	inc := m.get(c.GetIncidentId())
	if inc == nil {
		return fsm.Result{Err: fmt.Errorf("acknowledge incident %d: %w", c.GetIncidentId(), ErrUnknownIncident)}, Change{}
	}
	if inc.GetAckedUnixNano() != 0 {
		return fsm.Result{}, Change{}
	}
	inc.AckedUnixNano, inc.AckedBy = now.UnixNano(), c.GetBy()
	return fsm.Result{}, Change{Type: Acknowledged, Incident: toIncident(inc)}
}

// Snapshot implements fsm.Machine.
func (m *Machine) Snapshot(w io.Writer) error {
	m.mu.RLock()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&raftv1.AlarmState{NextId: m.nextID, Incidents: m.incs})
	m.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("encode alarm state: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write alarm state: %w", err)
	}
	return nil
}

// Restore implements fsm.Machine; on error the old state stays.
func (m *Machine) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read alarm state: %w", err)
	}
	var st raftv1.AlarmState
	if err := proto.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("decode alarm state: %w", err)
	}
	incs := st.GetIncidents()
	open := map[string]uint64{}
	for i, inc := range incs {
		if i > 0 && inc.GetId() <= incs[i-1].GetId() {
			return fmt.Errorf("alarm state: incident ids not ascending (%d after %d)", inc.GetId(), incs[i-1].GetId())
		}
		if inc.GetId() >= st.GetNextId() {
			return fmt.Errorf("alarm state: incident %d not below next id %d", inc.GetId(), st.GetNextId())
		}
		open[key(inc.GetAlarm(), inc.GetMessage())] = inc.GetId()
	}
	next := st.GetNextId()
	if next == 0 {
		next = 1 // an empty section: a snapshot taken before any alarm
	}
	m.mu.Lock()
	m.nextID, m.incs, m.open = next, incs, open
	m.mu.Unlock()
	m.kick()
	return nil
}

// History returns every kept incident, oldest first.
func (m *Machine) History() []Incident {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Incident, len(m.incs))
	for i, inc := range m.incs {
		out[i] = toIncident(inc)
	}
	return out
}

// Get returns the incident with the given id.
func (m *Machine) Get(id uint64) (Incident, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	inc := m.get(id)
	if inc == nil {
		return Incident{}, false
	}
	return toIncident(inc), true
}

// Watch returns changes as they are applied until ctx ends. A watcher
// that does not keep up misses changes rather than stalling Raft.
func (m *Machine) Watch(ctx context.Context) <-chan Change {
	ch := make(chan Change, 64)
	m.mu.Lock()
	m.subs[ch] = struct{}{}
	m.mu.Unlock()
	go func() {
		<-ctx.Done()
		m.mu.Lock()
		delete(m.subs, ch)
		close(ch)
		m.mu.Unlock()
	}()
	return ch
}

// notify returns a channel that receives (coalesced) after every applied
// change and restore: Service's wake-up.
func (m *Machine) notify() <-chan struct{} {
	ch := make(chan struct{}, 1)
	m.mu.Lock()
	m.kicks = append(m.kicks, ch)
	m.mu.Unlock()
	return ch
}

// publish hands c to watchers and kicks; callers hold m.mu.
func (m *Machine) publish(c Change) {
	for ch := range m.subs {
		select {
		case ch <- c:
		default:
		}
	}
	m.kickLocked()
}

func (m *Machine) kick() {
	m.mu.RLock()
	defer m.mu.RUnlock()
	m.kickLocked()
}

func (m *Machine) kickLocked() {
	for _, k := range m.kicks {
		select {
		case k <- struct{}{}:
		default:
		}
	}
}

func ts(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func toIncident(p *raftv1.AlarmIncident) Incident {
	inc := Incident{
		ID: p.GetId(), Alarm: p.GetAlarm(), Message: p.GetMessage(), Kind: p.GetKind(),
		First: ts(p.GetFirstUnixNano()), Last: ts(p.GetLastUnixNano()), Count: p.GetCount(),
		Origin: Origin{NodeID: p.GetOriginNode(), Name: p.GetOriginName(), LocalID: p.GetOriginLocalId(), RaisedAt: ts(p.GetOriginRaisedUnixNano())},
		Owner:  p.GetOwner(), OwnerInstance: p.GetOwnerInstance(), AssignedAt: ts(p.GetAssignedUnixNano()),
		Reassignments: int(p.GetReassignments()), Done: p.GetDone(), Outcome: p.GetOutcome(), DoneBy: p.GetDoneBy(),
		DoneAt: ts(p.GetDoneUnixNano()), Runs: int(p.GetRuns()), AckedAt: ts(p.GetAckedUnixNano()), AckedBy: p.GetAckedBy(),
	}
	for _, r := range p.GetRaisers() {
		inc.Raisers = append(inc.Raisers, Raiser{NodeID: r.GetNodeId(), Name: r.GetNodeName(), Count: r.GetCount(),
			First: ts(r.GetFirstUnixNano()), Last: ts(r.GetLastUnixNano())})
	}
	return inc
}
