package alarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// fdWatch is one parsed alarm-fd: a private duplicate of the descriptor,
// read nbytes at a time; every successful read raises the alarm.
type fdWatch struct {
	spec   string
	alarm  *alarm
	file   *os.File
	nbytes int
	msg    string
}

// parseFD parses `<alarm> <fd>[:<nbytes>] <message>` and duplicates the
// descriptor, so that closing ours at shutdown leaves the original alone.
// The duplicate is switched to non-blocking mode (which the original
// shares, as O_NONBLOCK belongs to the open file) so that reads go through
// Go's poller and stop at shutdown.
func parseFD(spec string, alarms map[string]*alarm) (fdWatch, error) {
	fields := strings.SplitN(strings.TrimSpace(spec), " ", 3)
	if len(fields) < 3 || strings.TrimSpace(fields[2]) == "" {
		return fdWatch{}, fmt.Errorf("alarm-fd %q: want `<alarm> <fd>[:<nbytes>] <message>`", spec)
	}
	as, err := lookup("alarm-fd", spec, fields[0], alarms)
	if err != nil {
		return fdWatch{}, err
	}
	if len(as) != 1 {
		return fdWatch{}, fmt.Errorf("alarm-fd %q: name one alarm", spec)
	}
	fdStr, nStr, hasN := strings.Cut(fields[1], ":")
	fd, err := strconv.Atoi(fdStr)
	if err != nil || fd < 0 {
		return fdWatch{}, fmt.Errorf("alarm-fd %q: %q is not a file descriptor number", spec, fdStr)
	}
	nbytes := 1
	if target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd)); err == nil && target == "anon_inode:[eventfd]" {
		nbytes = 8 // an eventfd is read 8 bytes at a time or not at all
	}
	if hasN {
		if nbytes, err = strconv.Atoi(nStr); err != nil || nbytes < 1 || nbytes > 64<<10 {
			return fdWatch{}, fmt.Errorf("alarm-fd %q: nbytes %q must be between 1 and 65536", spec, nStr)
		}
	}
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fdWatch{}, fmt.Errorf("alarm-fd %q: fd %d: %w", spec, fd, err)
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return fdWatch{}, fmt.Errorf("alarm-fd %q: fd %d: set non-blocking: %w", spec, fd, err)
	}
	return fdWatch{spec: spec, alarm: as[0], file: os.NewFile(uintptr(dup), fmt.Sprintf("alarm-fd %d", fd)), nbytes: nbytes, msg: fields[2]}, nil
}

// watchFD raises the alarm each time nbytes (or fewer) are read, until
// the descriptor ends or Run stops (closeFDs unblocks the read).
func (m *Manager) watchFD(ctx context.Context, w fdWatch) {
	buf := make([]byte, w.nbytes)
	for {
		n, err := w.file.Read(buf)
		if n > 0 {
			m.queue(event{kind: KindFD, alarm: w.alarm, msg: w.msg})
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrClosed) || ctx.Err() != nil:
			return
		case errors.Is(err, io.EOF):
			m.warn("alarm-fd %q: end of file, no longer watched", w.spec)
			return
		default:
			m.warn("alarm-fd %q: read failed, no longer watched: %v", w.spec, err)
			return
		}
	}
}

// closeFDs closes the duplicated descriptors.
func (m *Manager) closeFDs() {
	for _, w := range m.fds {
		_ = w.file.Close()
	}
}
