package legion

import (
	"errors"
	"fmt"
)

// Errors returned by Node. Test with errors.Is.
var (
	// ErrNotLeader: the operation must run on the Raft leader. The
	// concrete error is a *NotLeaderError carrying the leader hint.
	ErrNotLeader = errors.New("not the raft leader")
	// ErrNoQuorum: no leader could be found (or kept) within the apply
	// timeout: a quorum of voters is unreachable.
	ErrNoQuorum = errors.New("no raft quorum")
	// ErrUnknownLegion: the named legion does not exist in the cluster.
	ErrUnknownLegion = errors.New("unknown legion")
	// ErrUnknownNode: the named node is not a cluster or legion member.
	ErrUnknownNode = errors.New("unknown node")
	// ErrNodeAlive: RemoveNode refuses a node gossip still sees alive.
	ErrNodeAlive = errors.New("node is alive")
	// ErrNotRunning: the node has not started or has shut down.
	ErrNotRunning = errors.New("legion node is not running")
	// ErrNoLord: ResignLord on a legion that has no lord.
	ErrNoLord = errors.New("legion has no lord")
	// ErrNoSuccessor: ResignLord found no other alive, eligible member to
	// hand the lordship to.
	ErrNoSuccessor = errors.New("no other alive member with valor > 0 to hand the lordship to")
	// ErrRefused: the state machine declined a committed command; the
	// concrete error is a *RefusedError with the machine's message.
	ErrRefused = errors.New("command refused by the state machine")
)

// NotLeaderError is ErrNotLeader with the current leader, when known.
type NotLeaderError struct {
	LeaderID      string
	LeaderRPCAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "not the raft leader (leader unknown)"
	}
	return fmt.Sprintf("not the raft leader (leader is %s at %s)", e.LeaderID, e.LeaderRPCAddr)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// LeaderHint implements rpc/cluster.LeaderHinter.
func (e *NotLeaderError) LeaderHint() (string, string) { return e.LeaderID, e.LeaderRPCAddr }

// NoQuorumError is ErrNoQuorum with what this node could see.
type NoQuorumError struct {
	Voters, Reachable int
	Waited            string
}

func (e *NoQuorumError) Error() string {
	return fmt.Sprintf("no raft quorum: no leader within %s; %d of %d voters reachable, %d needed",
		e.Waited, e.Reachable, e.Voters, e.Voters/2+1)
}

// Is makes errors.Is(err, ErrNoQuorum) true.
func (e *NoQuorumError) Is(target error) bool { return target == ErrNoQuorum }

// NoQuorum implements rpc/cluster.NoQuorumer.
func (e *NoQuorumError) NoQuorum() bool { return true }

// RefusedError is a business refusal from the state machine, carried
// across forwarding as text.
type RefusedError struct{ Msg string }

func (e *RefusedError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// aliveError is ErrNodeAlive as a failed precondition for rpc/cluster.
type aliveError struct{ id string }

func (e *aliveError) Error() string {
	return fmt.Sprintf("node %s is alive in the leader's gossip: stop it (it leaves by itself) before removing it; a node that just died is declared dead after a few seconds", e.id)
}
func (e *aliveError) Is(target error) bool     { return target == ErrNodeAlive }
func (e *aliveError) FailedPrecondition() bool { return true }
