package bind

import (
	"errors"
	"fmt"
	"testing"

	"github.com/gouwsgi/gouwsgi/legion"
	"github.com/gouwsgi/gouwsgi/rpc/admin"
)

// TestLegionErrors: the legion's refusals reach the admin API as the error
// class that maps to their gRPC code, with their text kept.
func TestLegionErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{legion.ErrUnknownLegion, admin.ErrNotFound},
		{legion.ErrUnknownNode, admin.ErrNotFound},
		{legion.ErrNoQuorum, admin.ErrUnavailable},
		{legion.ErrNodeAlive, admin.ErrFailedPrecondition},
		{legion.ErrNoLord, admin.ErrFailedPrecondition},
		{legion.ErrNoSuccessor, admin.ErrFailedPrecondition},
	} {
		in := fmt.Errorf("legion web: %w", tc.err)
		got := Legion{}.err(in)
		if !errors.Is(got, tc.want) || !errors.Is(got, tc.err) {
			t.Errorf("err(%v) = %v, want it to be %v", in, got, tc.want)
		}
	}
}
