package frontend

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ListenConfig is what the socket options say about every listener.
type ListenConfig struct {
	Backlog     int         // listen; uWSGI's default is 100
	ChmodSocket os.FileMode // chmod-socket for unix sockets; 0 leaves the umask's mode
	SoKeepalive bool        // so-keepalive on TCP sockets
}

// Network splits a uWSGI socket address into a Go network and address:
// "/path" or "./x.sock" is a unix socket, "@name" an abstract one, ":9090"
// and "host:port" are TCP.
func Network(addr string) (network, address string, err error) {
	switch {
	case addr == "":
		return "", "", fmt.Errorf("empty socket address")
	case strings.HasPrefix(addr, "@"):
		return "unix", "\x00" + addr[1:], nil
	case strings.Contains(addr, "/") || strings.HasSuffix(addr, ".sock"):
		return "unix", addr, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("socket address %q: %w", addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", "", fmt.Errorf("socket address %q: port %q is not a number", addr, port)
	}
	return "tcp", net.JoinHostPort(host, port), nil
}

// somaxconn is the kernel's cap on listen backlogs.
func somaxconn() int {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// Listen opens a listener with the configured backlog. Go's net.Listen
// always asks for somaxconn, so the socket is built by hand to honour
// `listen` as uWSGI does.
func Listen(addr string, cfg ListenConfig, log *slog.Logger) (net.Listener, error) {
	network, address, err := Network(addr)
	if err != nil {
		return nil, err
	}
	backlog := cfg.Backlog
	if backlog <= 0 {
		backlog = 100
	}
	if max := somaxconn(); max > 0 && backlog > max {
		log.Warn(fmt.Sprintf("*** listen queue size %d for %s is above the kernel's net.core.somaxconn (%d): the kernel caps it at %d; raise it with `sysctl -w net.core.somaxconn=%d` ***", backlog, addr, max, max, backlog))
	}
	var fd int
	var sa unix.Sockaddr
	if network == "unix" {
		if !strings.HasPrefix(address, "\x00") {
			// A stale socket from a crashed run would make bind fail; uWSGI
			// removes it too. A live server on it is detected first.
			if c, err := net.Dial("unix", address); err == nil {
				c.Close()
				return nil, fmt.Errorf("bind %s: another server is listening on it", addr)
			}
			_ = os.Remove(address)
		}
		fd, err = unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		sa = &unix.SockaddrUnix{Name: address}
	} else {
		tcp, rerr := net.ResolveTCPAddr("tcp", address)
		if rerr != nil {
			return nil, fmt.Errorf("resolve %s: %w", addr, rerr)
		}
		if ip4 := tcp.IP.To4(); ip4 != nil || tcp.IP == nil {
			fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			s4 := &unix.SockaddrInet4{Port: tcp.Port}
			if ip4 != nil {
				copy(s4.Addr[:], ip4)
			}
			sa = s4
		} else {
			fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			s6 := &unix.SockaddrInet6{Port: tcp.Port}
			copy(s6.Addr[:], tcp.IP.To16())
			sa = s6
		}
	}
	if err != nil {
		return nil, fmt.Errorf("socket for %s: %w", addr, err)
	}
	f := os.NewFile(uintptr(fd), addr)
	defer f.Close()
	if network == "tcp" {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return nil, fmt.Errorf("SO_REUSEADDR on %s: %w", addr, err)
		}
		if cfg.SoKeepalive {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1); err != nil {
				return nil, fmt.Errorf("SO_KEEPALIVE on %s: %w", addr, err)
			}
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, fmt.Errorf("bind %s: %w", addr, err)
	}
	if network == "unix" && cfg.ChmodSocket != 0 && !strings.HasPrefix(address, "\x00") {
		if err := os.Chmod(address, cfg.ChmodSocket); err != nil {
			return nil, fmt.Errorf("chmod-socket %o on %s: %w", cfg.ChmodSocket, addr, err)
		}
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	l, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("listener for %s: %w", addr, err)
	}
	if ul, ok := l.(*net.UnixListener); ok {
		// We remove the file ourselves (vacuum) so a reload never unlinks
		// a socket that is still in use.
		ul.SetUnlinkOnClose(false)
	}
	return l, nil
}

// queueLen reads a listening TCP socket's accept queue length and backlog
// from the kernel (TCP_INFO's unacked/sacked fields hold them for
// listeners), for the stats server and alarm-backlog.
func queueLen(l net.Listener) (queue, maxQueue int, ok bool) {
	sc, isSC := l.(syscall.Conn)
	if !isSC {
		return 0, 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, 0, false
	}
	var info *unix.TCPInfo
	_ = rc.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	})
	if err != nil || info == nil {
		return 0, 0, false
	}
	return int(info.Unacked), int(info.Sacked), true
}
