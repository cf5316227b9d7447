package main

import "testing"

func TestMasterProcs(t *testing.T) {
	for _, c := range []struct{ workers, available, want int }{
		{1, 8, 1},
		{2, 8, 1},
		{3, 8, 2},
		{16, 8, 8},  // never more than the runtime found
		{16, 32, 8}, // half a core per worker
		{4, 1, 1},
		{0, 4, 1}, // at least one
	} {
		if got := masterProcs(c.workers, c.available); got != c.want {
			t.Errorf("masterProcs(%d workers, %d available) = %d, want %d", c.workers, c.available, got, c.want)
		}
	}
}
