package fsm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	raftv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/raft/v1"
)

// Machine is a sub-state machine plugged into the FSM. Raft calls Apply,
// Snapshot and Restore from one goroutine, never concurrently with each
// other; a Machine guards its own state against concurrent readers.
type Machine interface {
	// Apply applies one committed command of a type the machine registered.
	// It must be deterministic and must not block on I/O.
	Apply(e Entry) Result
	// Snapshot writes the machine's whole state. It runs while Apply is
	// paused, so the state it sees is consistent.
	Snapshot(w io.Writer) error
	// Restore replaces the machine's state with what Snapshot wrote,
	// atomically: on error the old state must stay in place.
	Restore(r io.Reader) error
}

// SnapshotVersion is the version written in every snapshot header. A
// replica refuses snapshots with a higher version.
const SnapshotVersion = 1

// snapshotMagic opens every snapshot so a stray file is never restored.
var snapshotMagic = []byte("GWSFSM\x00\x01")

// Snapshot record types.
const (
	recordSection byte = 0x01 // machine name + its Snapshot bytes
	recordEnd     byte = 0xff
)

// ErrDuplicateRegistration is returned by Register for a name or command
// type that is already taken.
var ErrDuplicateRegistration = errors.New("already registered")

// FSM is the dispatcher hashicorp/raft drives (raft.FSM and
// raft.BatchingFSM).
type FSM struct {
	logger *slog.Logger

	mu       sync.RWMutex // guards the tables below; Register vs Apply
	order    []string
	machines map[string]Machine
	byType   map[CommandType]Machine

	legions *Legions
}

// New returns an FSM with the legions machine registered under "legion".
func New(logger *slog.Logger) *FSM {
	f := &FSM{
		logger:   logger,
		machines: make(map[string]Machine),
		byType:   make(map[CommandType]Machine),
		legions:  NewLegions(),
	}
	err := f.Register("legion", f.legions,
		RegisterMemberType, RemoveNodeType, SetLordType, ReleaseLordType, PinLordType)
	if err != nil {
		panic(err) // cannot happen on an empty table
	}
	return f
}

// Legions returns the built-in legions machine, for reads.
func (f *FSM) Legions() *Legions { return f.legions }

// Register adds a sub-state machine that owns the given command types.
// Register it on every node, before Raft starts, under the same name: the
// name keys its snapshot record.
func (f *FSM) Register(name string, m Machine, types ...CommandType) error {
	if name == "" || m == nil || len(types) == 0 {
		return fmt.Errorf("register machine %q: name, machine and at least one command type are required", name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.machines[name]; ok {
		return fmt.Errorf("register machine %q: %w", name, ErrDuplicateRegistration)
	}
	for _, t := range types {
		if _, ok := f.byType[t]; ok {
			return fmt.Errorf("register machine %q: command type %s: %w", name, t, ErrDuplicateRegistration)
		}
	}
	for _, t := range types {
		f.byType[t] = m
	}
	f.machines[name] = m
	f.order = append(f.order, name)
	return nil
}

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) interface{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applyLocked(l)
}

// ApplyBatch implements raft.BatchingFSM: raft hands over every entry one
// disk write committed, so concurrent proposals cost one fsync.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]interface{}, len(logs))
	for i, l := range logs {
		out[i] = f.applyLocked(l)
	}
	return out
}

func (f *FSM) applyLocked(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	t, body, err := Decode(l.Data)
	if err != nil {
		panic(fmt.Sprintf("fsm: log entry %d: %v", l.Index, err))
	}
	m, ok := f.byType[t]
	if !ok {
		if t&IgnoreUnknown != 0 {
			f.logger.Warn("skipping unknown ignorable command", "type", t.String(), "index", l.Index)
			return nil
		}
		panic(fmt.Sprintf("fsm: unknown command type %s at index %d (newer node in the cluster?)", t, l.Index))
	}
	return m.Apply(Entry{Type: t, Body: body, Index: l.Index, Term: l.Term, Time: l.AppendedAt})
}

// Snapshot implements raft.FSM. It captures every machine's state into
// memory while Apply is paused; Persist only copies bytes out.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var buf bytes.Buffer
	header, err := proto.Marshal(&raftv1.SnapshotHeader{Version: SnapshotVersion, Machines: f.order})
	if err != nil {
		return nil, fmt.Errorf("encode snapshot header: %w", err)
	}
	buf.Write(snapshotMagic)
	_ = writeBytes(&buf, header) // bytes.Buffer writes cannot fail
	var section bytes.Buffer
	for _, name := range f.order {
		section.Reset()
		if err := f.machines[name].Snapshot(&section); err != nil {
			return nil, fmt.Errorf("snapshot machine %q: %w", name, err)
		}
		buf.WriteByte(recordSection)
		_ = writeBytes(&buf, []byte(name))
		_ = writeBytes(&buf, section.Bytes())
	}
	buf.WriteByte(recordEnd)
	return &snapshot{data: buf.Bytes()}, nil
}

// Restore implements raft.FSM. The whole stream is read and checked first;
// only then does each machine swap its new state in.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	sections, err := f.readSnapshot(bufio.NewReader(rc))
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, name := range f.order {
		data := sections[name] // absent: the machine had no state then
		if err := f.machines[name].Restore(bytes.NewReader(data)); err != nil {
			return fmt.Errorf("restore machine %q: %w", name, err)
		}
	}
	return nil
}

func (f *FSM) readSnapshot(r *bufio.Reader) (map[string][]byte, error) {
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(r, magic); err != nil {
		return nil, fmt.Errorf("read magic: %w", err)
	}
	if !bytes.Equal(magic, snapshotMagic) {
		return nil, errors.New("not a gouwsgi snapshot (bad magic)")
	}
	raw, err := readBytes(r)
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	var header raftv1.SnapshotHeader
	if err := proto.Unmarshal(raw, &header); err != nil {
		return nil, fmt.Errorf("decode header: %w", err)
	}
	if header.GetVersion() > SnapshotVersion {
		return nil, fmt.Errorf("snapshot version %d is newer than this node understands (%d)", header.GetVersion(), SnapshotVersion)
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	sections := make(map[string][]byte)
	for {
		kind, err := r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("read record type: %w", err)
		}
		switch kind {
		case recordEnd:
			return sections, nil
		case recordSection:
			name, err := readBytes(r)
			if err != nil {
				return nil, fmt.Errorf("read section name: %w", err)
			}
			data, err := readBytes(r)
			if err != nil {
				return nil, fmt.Errorf("read section %q: %w", name, err)
			}
			if _, ok := f.machines[string(name)]; !ok {
				return nil, fmt.Errorf("snapshot holds state for machine %q, which this node does not run", name)
			}
			sections[string(name)] = data
		default:
			return nil, fmt.Errorf("unknown snapshot record type 0x%02x", kind)
		}
	}
}

// maxRecord bounds one snapshot record so a corrupt length cannot make
// Restore allocate without limit.
const maxRecord = 1 << 34

// writeBytes writes b prefixed with its uvarint length.
func writeBytes(w io.Writer, b []byte) error {
	if _, err := w.Write(binary.AppendUvarint(nil, uint64(len(b)))); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

func readBytes(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > maxRecord {
		return nil, fmt.Errorf("record length %d exceeds limit", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

type snapshot struct{ data []byte }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}
