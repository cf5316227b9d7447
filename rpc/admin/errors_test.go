package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestToStatus checks the one place where domain errors become gRPC codes:
// each class keeps the implementation's message.
func TestToStatus(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"invalid", fmt.Errorf("empty key: %w", ErrInvalidArgument), codes.InvalidArgument, "empty key: invalid argument"},
		{"not found", fmt.Errorf("no cache x: %w", ErrNotFound), codes.NotFound, "no cache x: not found"},
		{"exists", fmt.Errorf("key k: %w", ErrExists), codes.AlreadyExists, "key k: already exists"},
		{"precondition", fmt.Errorf("local cache: %w", ErrFailedPrecondition), codes.FailedPrecondition, "local cache"},
		{"no legion", ErrNoLegion, codes.FailedPrecondition, "this node runs no legion"},
		{"unavailable", fmt.Errorf("no raft quorum: 1 of 3 voters reachable: %w", ErrUnavailable), codes.Unavailable, "1 of 3 voters reachable"},
		{"not leader", &NotLeaderError{LeaderID: "n2"}, codes.Unavailable, "the leader is n2"},
		{"deadline", fmt.Errorf("apply: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "apply"},
		{"canceled", context.Canceled, codes.Canceled, "canceled"},
		{"status kept", status.Error(codes.PermissionDenied, "forwarded"), codes.PermissionDenied, "forwarded"},
		{"other", errors.New("disk on fire"), codes.Internal, "disk on fire"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := status.Convert(toStatus(tt.err))
			if st.Code() != tt.code || !strings.Contains(st.Message(), tt.msg) {
				t.Fatalf("toStatus(%v) = %s %q, want %s containing %q", tt.err, st.Code(), st.Message(), tt.code, tt.msg)
			}
		})
	}
	if toStatus(nil) != nil {
		t.Error("toStatus(nil) != nil")
	}
}
