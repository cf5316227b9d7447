package cache

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func liveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestCacheSlotsOffHeap: a cache's preallocated slots (64 MiB here) do not
// count as live Go heap, which would let the collector's target, and the
// garbage it tolerates, grow by half of it; values still round-trip.
func TestCacheSlotsOffHeap(t *testing.T) {
	before := liveHeap()
	l, _, _ := newTestLocal(t, "name=big,items=1024,blocksize=65536")
	grown := liveHeap() - min(before, liveHeap())
	if grown > 8<<20 {
		t.Fatalf("a 64 MiB cache added %d bytes of live heap", grown)
	}
	val := bytes.Repeat([]byte("v"), 65536)
	for i := range 1023 {
		if err := l.Set(fmt.Sprint("k", i), val, 0); err != nil {
			t.Fatalf("set k%d: %v", i, err)
		}
	}
	for _, i := range []int{0, 511, 1022} {
		got, ok := l.Get(fmt.Sprint("k", i))
		if !ok || !bytes.Equal(got, val) {
			t.Fatalf("get k%d: %d bytes, found %v", i, len(got), ok)
		}
	}
}

// mapped reports whether addr is inside one of this process's mappings.
func mapped(t *testing.T, addr uintptr) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		var lo, hi uintptr
		if _, err := fmt.Sscanf(line, "%x-%x", &lo, &hi); err == nil && lo <= addr && addr < hi {
			return true
		}
	}
	return false
}

// TestCacheSlotsUnmapped: the slots of an engine nobody references any
// more are given back to the kernel.
func TestCacheSlotsUnmapped(t *testing.T) {
	addr := func() uintptr {
		e := newEngine(mustParse(t, "name=gone,items=64,blocksize=1048576"), false, nil)
		return uintptr(unsafe.Pointer(unsafe.SliceData(e.data)))
	}()
	if !mapped(t, addr) {
		t.Fatal("the engine's slots are not in /proc/self/maps")
	}
	for deadline := time.Now().Add(5 * time.Second); mapped(t, addr); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slots of an unreachable engine are still mapped after 5s")
		}
		runtime.GC()
	}
}
