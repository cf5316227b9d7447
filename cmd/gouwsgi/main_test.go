package main

import (
	"strings"
	"testing"
)

func TestMasterProcs(t *testing.T) {
	for _, c := range []struct {
		workers, available int
		alone              bool
		want               int
	}{
		{1, 8, false, 1},
		{2, 8, false, 1},
		{3, 8, false, 2},
		{16, 8, false, 8},  // never more than the runtime found
		{16, 32, false, 8}, // half a core per worker
		{4, 1, false, 1},
		{0, 4, false, 1}, // at least one
		{2, 8, true, 8},  // requests the master answers alone: every core
		{2, 1, true, 1},
	} {
		if got := masterProcs(c.workers, c.available, c.alone); got != c.want {
			t.Errorf("masterProcs(%d workers, %d available, alone %v) = %d, want %d", c.workers, c.available, c.alone, got, c.want)
		}
	}
}

// TestHelpNamesRuntimeEnvironment: --help lists the options and the two
// Go runtime variables that size the master.
func TestHelpNamesRuntimeEnvironment(t *testing.T) {
	var b strings.Builder
	printHelp(&b)
	for _, want := range []string{"--http ", "--processes", "GOMAXPROCS  cores the master uses", "GOGC "} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("--help does not mention %q", want)
		}
	}
}
