// Package sysinfo reads the process facts a node reports (worker memory
// for stats, memory-report and reload-on-rss) from /proc, and hands pages
// that only start-up needed back to the kernel (the master's executable,
// the zygote's files).
package sysinfo

import (
	"os"
	"strconv"
	"strings"
)

// Memory returns the resident and virtual size of pid in bytes, from
// /proc/PID/statm; zeros when the process is gone.
func Memory(pid int) (rss, vsz uint64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, 0
	}
	page := uint64(os.Getpagesize())
	v, _ := strconv.ParseUint(f[0], 10, 64)
	r, _ := strconv.ParseUint(f[1], 10, 64)
	return r * page, v * page
}
