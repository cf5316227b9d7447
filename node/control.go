package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// HandleSignals maps the master's signals as uWSGI 2.1 does, which is what
// uWSGI 2.0 users get with die-on-term: SIGHUP reloads gracefully,
// SIGTERM and SIGINT shut down letting requests in flight finish, SIGQUIT
// shuts down at once, SIGUSR1 writes the stats to the log.
func (n *Node) HandleSignals(ctx context.Context) {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-ch:
				switch sig {
				case syscall.SIGHUP:
					n.log.Info("...gracefully killing workers... (SIGHUP)")
					n.Reload(false)
				case syscall.SIGTERM, syscall.SIGINT:
					n.log.Info(fmt.Sprintf("%s received: graceful shutdown", sig))
					n.Stop(true)
				case syscall.SIGQUIT:
					n.Stop(false)
				case syscall.SIGUSR1:
					n.logStats()
				}
			}
		}
	}()
}

// logStats writes the stats document to the log (SIGUSR1, FIFO "s").
func (n *Node) logStats() {
	b, err := json.Marshal(n.Stats())
	if err != nil {
		n.log.Error(fmt.Sprintf("stats: %v", err))
		return
	}
	n.sink.Line(string(b))
}

// readFIFO executes uWSGI's one-letter master FIFO commands. The FIFO is
// created when missing and opened read-write so that writers closing it
// never produce EOF.
func (n *Node) readFIFO(ctx context.Context, path string) {
	if err := unix.Mkfifo(path, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		n.log.Error(fmt.Sprintf("master-fifo %s: %v", path, err))
		return
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		n.log.Error(fmt.Sprintf("master-fifo %s: %v", path, err))
		return
	}
	go func() { <-ctx.Done(); f.Close() }()
	n.log.Info(fmt.Sprintf("master fifo %s ready", path))
	buf := make([]byte, 64)
	for {
		k, err := f.Read(buf)
		if err != nil {
			return
		}
		for _, c := range buf[:k] {
			n.fifoCommand(c)
		}
	}
}

func (n *Node) fifoCommand(c byte) {
	switch c {
	case 'r', 'w', 'R', 'W':
		n.log.Info(fmt.Sprintf("master-fifo %q: graceful reload", c))
		n.Reload(false)
	case 'c':
		n.Reload(true)
	case 'q':
		n.Stop(true)
	case 'Q':
		n.Stop(false)
	case '+':
		n.pool.Scale(1)
	case '-':
		n.pool.Scale(-1)
	case 's':
		n.logStats()
	case '\n', '\r', ' ':
	default:
		n.log.Warn(fmt.Sprintf("master-fifo: unknown command %q (known: r c q Q w W + - s)", c))
	}
}
