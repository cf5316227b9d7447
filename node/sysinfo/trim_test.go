package sysinfo

import (
	"os"
	"testing"
)

// TestTrimBinary: the test binary's own read-only mappings are advised,
// its resident size drops, and the process keeps running (the pages fault
// back in on use).
func TestTrimBinary(t *testing.T) {
	before, _ := Memory(os.Getpid())
	n, err := TrimBinary()
	if err != nil {
		t.Fatalf("TrimBinary: %v", err)
	}
	if n == 0 {
		t.Fatal("no mapping of the executable was advised")
	}
	after, _ := Memory(os.Getpid())
	if after >= before {
		t.Fatalf("rss %d bytes before, %d after: nothing was paged out", before, after)
	}
}
