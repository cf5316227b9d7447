package fsm

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
)

// CommandType is the first byte of every log entry. Values are never
// reused; ranges are reserved per machine so packages can add types without
// coordination:
//
//	0x01-0x0f  legions (this package)
//	0x10-0x2f  replicated caches
//	0x30-0x3f  alarms
//
// The same ranges with IgnoreUnknown set are for commands that older
// replicas may safely skip.
type CommandType uint8

// IgnoreUnknown marks a command type that a replica without a machine for
// it skips instead of panicking.
const IgnoreUnknown CommandType = 0x80

// Legion command types.
const (
	RegisterMemberType CommandType = 0x01
	RemoveNodeType     CommandType = 0x02
	SetLordType        CommandType = 0x03
	ReleaseLordType    CommandType = 0x04
	PinLordType        CommandType = 0x05
)

func (t CommandType) String() string {
	switch t {
	case RegisterMemberType:
		return "register-member"
	case RemoveNodeType:
		return "remove-node"
	case SetLordType:
		return "set-lord"
	case ReleaseLordType:
		return "release-lord"
	case PinLordType:
		return "pin-lord"
	}
	return fmt.Sprintf("command-0x%02x", uint8(t))
}

// ErrEmptyEntry is returned by Decode for a zero-length log entry.
var ErrEmptyEntry = errors.New("empty log entry")

// Encode builds a log entry: the type byte followed by msg's wire form.
func Encode(t CommandType, msg proto.Message) ([]byte, error) {
	out := []byte{byte(t)}
	out, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(out, msg)
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w", t, err)
	}
	return out, nil
}

// Decode splits a log entry into its type and protobuf body.
func Decode(entry []byte) (CommandType, []byte, error) {
	if len(entry) == 0 {
		return 0, nil, ErrEmptyEntry
	}
	return CommandType(entry[0]), entry[1:], nil
}

// Entry is one committed command handed to a Machine.
type Entry struct {
	Type  CommandType
	Body  []byte
	Index uint64
	Term  uint64
	// Time is when the leader appended the entry (raft.Log.AppendedAt). It
	// is replicated with the entry, so every replica sees the same value;
	// commands that need a time for their meaning carry their own stamp.
	Time time.Time
}

// Unmarshal decodes the entry's body into msg and panics when it cannot:
// a committed entry that does not decode means replicas may diverge.
func (e Entry) Unmarshal(msg proto.Message) {
	if err := proto.Unmarshal(e.Body, msg); err != nil {
		panic(fmt.Sprintf("fsm: undecodable %s command at index %d: %v", e.Type, e.Index, err))
	}
}

// Result is what applying one entry returns; raft hands it to the future
// of the node that proposed the entry.
type Result struct {
	// Data is the machine's encoded answer (may be nil).
	Data []byte
	// Err is a business refusal: the entry was committed, the machine
	// deterministically declined it (stale epoch, unknown member...).
	Err error
}
