package sysinfo

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapping is one line of /proc/PID/maps that maps a file.
type mapping struct {
	start, end uint64
	writable   bool
	path       string
}

// fileMappings returns the file-backed mappings of pid.
func fileMappings(pid int) ([]mapping, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/maps")
	if err != nil {
		return nil, fmt.Errorf("read mappings of pid %d: %w", pid, err)
	}
	defer f.Close()
	var ms []mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/gouwsgi
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || !strings.HasPrefix(fields[5], "/") {
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
		ms = append(ms, mapping{start: start, end: end, writable: strings.Contains(fields[1], "w"), path: fields[5]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mappings of pid %d: %w", pid, err)
	}
	return ms, nil
}

// TrimBinary asks the kernel to drop this process's resident pages of its
// own executable. A Go binary touches much of its text and read-only data
// once, during start-up and package init; those pages then count in the
// master's memory for nothing. What is still used comes back from the page
// cache on the next access.
//
// The mappings are marked MADV_RANDOM first: without it every page that
// faults back in brings its readahead window along, and under load the
// executable was measured back at 8 MiB resident within a second (3 MiB
// with it). Pages of the data section the process wrote to are anonymous
// and stay. It returns the bytes advised.
func TrimBinary() (uint64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find own executable: %w", err)
	}
	ms, err := fileMappings(os.Getpid())
	if err != nil {
		return 0, err
	}
	var total uint64
	for _, m := range ms {
		if m.path != exe {
			continue
		}
		for _, advice := range []int{unix.MADV_RANDOM, unix.MADV_PAGEOUT} {
			if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), uintptr(advice)); errno != 0 {
				return total, fmt.Errorf("madvise %x-%x of %s (advice %d): %w", m.start, m.end, exe, advice, errno)
			}
		}
		total += m.end - m.start
	}
	return total, nil
}

// ErrNoPermission says the kernel refused to advise another process's
// memory: process_madvise needs CAP_SYS_NICE as well as ptrace access.
var ErrNoPermission = errors.New("not permitted to advise another process (needs CAP_SYS_NICE)")

// remoteIovec is struct iovec for addresses in another process: integers
// rather than pointers, as they mean nothing in this one.
type remoteIovec struct{ base, len uintptr }

// PageOut asks the kernel to drop the file-backed pages only pid has
// mapped (process_madvise MADV_PAGEOUT). Pages other processes map too are
// left alone by the kernel, which is what makes it right for a zygote: it
// keeps what its workers share with it and gives back what only its
// start-up touched (the interpreter's import machinery, compile paths).
// Anonymous memory is not touched (without swap it cannot be paged out).
// It returns the bytes advised.
func PageOut(pid int) (uint64, error) {
	ms, err := fileMappings(pid)
	if err != nil {
		return 0, err
	}
	if len(ms) == 0 {
		return 0, nil
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return 0, fmt.Errorf("open pidfd of %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	iov := make([]remoteIovec, 0, len(ms))
	var total uint64
	for _, m := range ms {
		iov = append(iov, remoteIovec{base: uintptr(m.start), len: uintptr(m.end - m.start)})
		total += m.end - m.start
	}
	// The kernel takes at most IOV_MAX (1024) ranges per call.
	for len(iov) > 0 {
		batch := iov[:min(len(iov), 1024)]
		_, _, errno := unix.Syscall6(unix.SYS_PROCESS_MADVISE, uintptr(pidfd), uintptr(unsafe.Pointer(&batch[0])), uintptr(len(batch)), unix.MADV_PAGEOUT, 0, 0)
		switch {
		case errno == unix.EPERM:
			return 0, fmt.Errorf("page out pid %d: %w", pid, ErrNoPermission)
		case errno == unix.ESRCH:
			return 0, fmt.Errorf("page out pid %d: %w", pid, os.ErrProcessDone)
		case errno != 0:
			return 0, fmt.Errorf("page out pid %d: process_madvise: %w", pid, errno)
		}
		iov = iov[len(batch):]
	}
	return total, nil
}
