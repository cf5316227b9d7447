package admin

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors that implementations of Node, Legion, Caches and Alarms wrap (with
// %w, keeping their own message) so that the API answers with the right
// gRPC code. Any other error is INTERNAL.
var (
	// ErrInvalidArgument marks bad input: INVALID_ARGUMENT.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound marks a missing cache, key, legion, node or alarm: NOT_FOUND.
	ErrNotFound = errors.New("not found")
	// ErrExists marks a SetModeSet write of an existing key: ALREADY_EXISTS.
	ErrExists = errors.New("already exists")
	// ErrFailedPrecondition marks a request the node cannot serve in its
	// current state (e.g. a linearizable read of a local cache):
	// FAILED_PRECONDITION.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrUnavailable marks a request the node cannot serve now but may
	// after a retry: no Raft leader or quorum, a peer unreachable.
	// UNAVAILABLE (clients retry with backoff).
	ErrUnavailable = errors.New("unavailable")
	// ErrNoLegion is returned by LegionService on a node without a legion.
	ErrNoLegion = fmt.Errorf("%w: this node runs no legion", ErrFailedPrecondition)
)

// NotLeaderError reports that a write reached a node that is not the Raft
// leader and could not be forwarded. It becomes UNAVAILABLE with the leader
// named in the message and in an ErrorInfo detail (reason NOT_LEADER,
// metadata leader_id and leader_addr), so clients can retry there.
type NotLeaderError struct {
	LeaderID   string // "" when no leader is known
	LeaderAddr string // the leader's admin address, if known
}

// Error names the leader, or says that none is known.
func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "not the leader and no leader is known (election in progress or quorum lost)"
	}
	if e.LeaderAddr == "" {
		return fmt.Sprintf("not the leader; the leader is %s", e.LeaderID)
	}
	return fmt.Sprintf("not the leader; the leader is %s at %s", e.LeaderID, e.LeaderAddr)
}

// ErrorReasonNotLeader is the ErrorInfo reason attached to NotLeaderError.
const ErrorReasonNotLeader = "NOT_LEADER"

// toStatus maps a domain error to a gRPC status error. It is the only
// place where that mapping happens.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		// Already a status (e.g. from a forwarded call): keep its code.
		return err
	}
	var nl *NotLeaderError
	switch {
	case errors.As(err, &nl):
		st := status.New(codes.Unavailable, err.Error())
		if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{
			Reason:   ErrorReasonNotLeader,
			Domain:   "gouwsgi",
			Metadata: map[string]string{"leader_id": nl.LeaderID, "leader_addr": nl.LeaderAddr},
		}); derr == nil {
			st = withInfo
		}
		return st.Err()
	case errors.Is(err, ErrInvalidArgument):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, ErrFailedPrecondition):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}

// invalid builds an INVALID_ARGUMENT status for a request field.
func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}
