package sysinfo

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// TrimBinary asks the kernel to drop this process's resident pages of its
// own executable (MADV_PAGEOUT on the file-backed, non-writable mappings).
// A Go binary touches much of its text and read-only data once, during
// start-up and package init; those pages then count in the master's
// memory for nothing. What is still used comes back from the page cache on
// the next access. It returns the bytes advised.
func TrimBinary() (uint64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find own executable: %w", err)
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("read own mappings: %w", err)
	}
	defer f.Close()
	var total uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/gouwsgi
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_PAGEOUT); errno != 0 {
			return total, fmt.Errorf("madvise(MADV_PAGEOUT) %s: %w", fields[0], errno)
		}
		total += end - start
	}
	if err := sc.Err(); err != nil {
		return total, fmt.Errorf("read own mappings: %w", err)
	}
	return total, nil
}
