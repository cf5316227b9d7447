package cache

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// offHeap returns n zeroed bytes mapped straight from the kernel rather
// than from the Go heap, and arranges for them to be unmapped once owner is
// unreachable.
//
// A cache's slots are preallocated (items × blocksize: 19 MiB for the
// seed's items=300) but mostly never written, so they cost no memory, as in
// uWSGI's mmap'd cache. On the Go heap they still counted as live: the
// collector, which lets garbage grow in proportion to the live heap, then
// let the master's garbage grow to half the cache's size, and a master
// serving cache hits held 16 MiB of it. Outside the heap they count for
// nothing until used.
//
// Every access to the bytes goes through owner (an engine, reachable from
// its Local or Machine while the access holds their lock), and values leave
// the cache as copies, so nothing can use them after the unmap.
func offHeap(owner *engine, n int) []byte {
	if n == 0 {
		return nil
	}
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		// Out of address space or mappings: the heap still works.
		return make([]byte, n)
	}
	runtime.AddCleanup(owner, func(b []byte) { _ = unix.Munmap(b) }, b)
	return b
}
