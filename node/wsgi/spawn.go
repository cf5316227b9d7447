package wsgi

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gouwsgi/gouwsgi/node/wire"
)

//go:embed worker.py
var workerPy []byte

// Sentinel errors of spawning; test them with errors.Is.
var (
	// ErrAppLoad means the worker could not import the app; the error text
	// carries the Python traceback.
	ErrAppLoad = errors.New("no app loaded")
	// ErrWorkerDied means the worker went away before it said hello.
	ErrWorkerDied = errors.New("worker died before it was ready")
	// ErrClosed means the spawner was closed.
	ErrClosed = errors.New("spawner closed")
)

// Process is a started worker that said hello: its pid and the master ends
// of its connections. Whoever holds it reaps the pid with Wait.
type Process struct {
	PID  int
	WID  int
	Ctl  net.Conn
	Data []net.Conn
}

// Close closes the master ends of the worker's connections. The worker
// finishes the requests it holds and exits once every data connection is
// closed.
func (p *Process) Close() error {
	var errs []error
	for _, c := range p.Data {
		errs = append(errs, c.Close())
	}
	if p.Ctl != nil {
		errs = append(errs, p.Ctl.Close())
	}
	return errors.Join(errs...)
}

// Spawner starts worker processes.
type Spawner interface {
	// Spawn starts worker wid and returns its pid and the master ends of
	// its connections once it said hello.
	Spawn(ctx context.Context, wid int) (*Process, error)
	// Close stops spawning (and the zygote) and removes runtime files.
	Close() error
}

// NewSpawner prepares spawning workers for spec. In zygote mode (spec.Lazy
// false) it starts the zygote, makes this process a child subreaper so the
// zygote's workers are reparented to it, and waits until the app is
// imported; an import failure is an ErrAppLoad error carrying the Python
// traceback.
func NewSpawner(ctx context.Context, spec Spec, logger *slog.Logger) (Spawner, error) {
	spec, err := spec.normalize()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	l := &launcher{spec: spec, log: logger.With("component", "wsgi")}
	if err := l.writeScript(); err != nil {
		return nil, err
	}
	if spec.Lazy {
		return &lazySpawner{launcher: l}, nil
	}
	if err := SetSubreaper(); err != nil {
		l.removeScript()
		return nil, err
	}
	zs := &zygoteSpawner{launcher: l}
	if zs.z, err = zs.startZygote(ctx); err != nil {
		l.removeScript()
		return nil, err
	}
	return zs, nil
}

// SetSubreaper makes this process a child subreaper: orphaned descendants
// (the zygote's double-forked workers) are reparented to it, not to init.
func SetSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	return nil
}

// Wait reaps pid and returns its status. It waits on a pidfd through the
// runtime's poller, so a waiting goroutine does not pin an OS thread in
// wait4 (one per worker otherwise: every thread costs the master its
// stacks). Without pidfds (Linux before 5.10) it blocks in wait4.
func Wait(pid int) (unix.WaitStatus, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		_, ws, err := wait4(pid, 0)
		return ws, err
	}
	f := os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid))
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("wait for pid %d: %w", pid, err)
	}
	var ws unix.WaitStatus
	var werr error
	// A pidfd turns readable once the process is a zombie, so the wait4
	// after a wake-up finds it; before that WNOHANG reaps nothing.
	err = rc.Read(func(uintptr) bool {
		var reaped int
		reaped, ws, werr = wait4(pid, unix.WNOHANG)
		return reaped != 0 || werr != nil
	})
	if err != nil {
		return ws, fmt.Errorf("wait for pid %d: %w", pid, err)
	}
	return ws, werr
}

// wait4 calls wait4(2) for pid, retrying on EINTR; it returns the pid
// reaped (0 with WNOHANG when pid has not exited yet).
func wait4(pid, options int) (int, unix.WaitStatus, error) {
	var ws unix.WaitStatus
	for {
		wpid, err := unix.Wait4(pid, &ws, options, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, ws, fmt.Errorf("wait4 pid %d: %w", pid, err)
		}
		return wpid, ws, nil
	}
}

// AppendRequest appends a request for a worker's data connection: the
// ModRequest vars packet, body as ModBody chunks, and the body end.
func AppendRequest(b []byte, vars wire.Vars, body []byte) ([]byte, error) {
	b, err := wire.AppendPacket(b, wire.ModRequest, 0, vars)
	if err != nil {
		return b, fmt.Errorf("encode request vars: %w", err)
	}
	return wire.AppendBodyEnd(wire.AppendBody(b, body)), nil
}

// launcher starts Python processes running the embedded worker script.
type launcher struct {
	spec      Spec
	log       *slog.Logger
	script    string
	removeDir string // temporary runtime dir to remove on Close
}

func (l *launcher) writeScript() error {
	dir := l.spec.RuntimeDir
	if dir == "" {
		d, err := os.MkdirTemp("", "gouwsgi-wsgi-")
		if err != nil {
			return fmt.Errorf("wsgi: create runtime dir: %w", err)
		}
		dir, l.removeDir = d, d
	}
	// Written under a unique name and renamed, so several nodes sharing a
	// runtime dir never run a half-written script.
	f, err := os.CreateTemp(dir, ".gouwsgi-worker-*.py")
	if err != nil {
		return fmt.Errorf("wsgi: write worker script: %w", err)
	}
	_, err = f.Write(workerPy)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	l.script = filepath.Join(dir, fmt.Sprintf("gouwsgi_worker_%d.py", os.Getpid()))
	if err == nil {
		err = os.Rename(f.Name(), l.script)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("wsgi: write worker script: %w", err)
	}
	return nil
}

func (l *launcher) removeScript() {
	if l.removeDir != "" {
		_ = os.RemoveAll(l.removeDir)
		return
	}
	_ = os.Remove(l.script)
}

// start runs the worker script with cfg; files become fds 3, 4, ...
func (l *launcher) start(cfg workerConfig, files []*os.File) (int, error) {
	js, err := json.Marshal(cfg)
	if err != nil {
		return 0, fmt.Errorf("encode worker config: %w", err)
	}
	env := mergeEnv(os.Environ(), l.spec.Env, []string{"GOUWSGI_WORKER=" + string(js)})
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer devnull.Close()
	attr := &os.ProcAttr{
		Env:   env,
		Files: append([]*os.File{devnull, l.spec.Stderr, l.spec.Stderr}, files...),
	}
	p, err := os.StartProcess(l.spec.Python, []string{l.spec.Python, l.script}, attr)
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", l.spec.Python, err)
	}
	pid := p.Pid
	// The pool reaps the pid with Wait; os.Process must not hold on to it.
	_ = p.Release()
	return pid, nil
}

// mergeEnv joins KEY=VALUE lists, a later list overriding an earlier
// one: Python keeps the first of duplicate variables, so they must not
// reach it.
func mergeEnv(lists ...[]string) []string {
	var out []string
	at := map[string]int{}
	for _, l := range lists {
		for _, kv := range l {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := at[k]; ok {
				out[i] = kv
				continue
			}
			at[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

// bury kills a process that never became a usable worker and reaps it:
// nobody else knows its pid.
func bury(pid int) {
	_ = unix.Kill(pid, unix.SIGKILL)
	_, _ = Wait(pid)
}

// conns is a fresh set of connections for one process.
type conns struct {
	ctl    *net.UnixConn
	data   []net.Conn
	remote []*os.File // the worker's ends, in fd order: ctl, data...
}

func newConns(threads int) (*conns, error) {
	c := &conns{}
	for i := 0; i <= threads; i++ {
		m, w, err := socketPair()
		if err != nil {
			c.close()
			return nil, err
		}
		c.remote = append(c.remote, w)
		if i == 0 {
			c.ctl = m
		} else {
			c.data = append(c.data, m)
		}
	}
	return c, nil
}

// closeRemote closes this process's copies of the worker's ends, so that
// the worker's death shows as EOF.
func (c *conns) closeRemote() {
	for _, f := range c.remote {
		_ = f.Close()
	}
	c.remote = nil
}

func (c *conns) close() {
	c.closeRemote()
	if c.ctl != nil {
		_ = c.ctl.Close()
	}
	for _, d := range c.data {
		_ = d.Close()
	}
}

func socketPair() (*net.UnixConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	mf := os.NewFile(uintptr(fds[0]), "gouwsgi-master")
	c, err := net.FileConn(mf)
	_ = mf.Close()
	if err != nil {
		_ = unix.Close(fds[1])
		return nil, nil, fmt.Errorf("socketpair conn: %w", err)
	}
	return c.(*net.UnixConn), os.NewFile(uintptr(fds[1]), "gouwsgi-worker"), nil
}

// readPacket reads one packet without buffering (so nothing that follows
// is lost to a buffer), giving up when ctx ends.
func readPacket(ctx context.Context, c net.Conn) (wire.Header, []byte, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
	var hb [wire.HeaderSize]byte
	_, err := io.ReadFull(c, hb[:])
	h, _ := wire.ParseHeader(hb[:])
	var p []byte
	if err == nil {
		p = make([]byte, h.Size)
		_, err = io.ReadFull(c, p)
	}
	if !stop() {
		return h, nil, ctx.Err()
	}
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return h, nil, ErrWorkerDied
		}
		return h, nil, err
	}
	return h, p, nil
}

// awaitHello waits for process pid to say hello on its control
// connection. The worker's uwsgi module makes no calls before that, so any
// other packet is a protocol error.
func awaitHello(ctx context.Context, c net.Conn, pid int) error {
	h, p, err := readPacket(ctx, c)
	if err != nil {
		return fmt.Errorf("waiting for hello: %w", err)
	}
	if h.Modifier1 != wire.ModHello {
		return fmt.Errorf("unexpected modifier %d while waiting for hello", h.Modifier1)
	}
	vars, err := wire.ParseVars(p, 0)
	if err != nil {
		return fmt.Errorf("malformed hello: %w", err)
	}
	if h.Modifier2 != 0 {
		return fmt.Errorf("%w:\n%s", ErrAppLoad, vars.Value("error"))
	}
	if got := vars.Value("pid"); got != strconv.Itoa(pid) {
		return fmt.Errorf("hello from pid %q, expected %d", got, pid)
	}
	return nil
}

// lazySpawner starts every worker as a fresh interpreter (lazy-apps).
type lazySpawner struct {
	*launcher
	closed atomic.Bool
}

func (s *lazySpawner) Spawn(ctx context.Context, wid int) (*Process, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("spawn worker %d: %w", wid, ErrClosed)
	}
	c, err := newConns(s.spec.Threads)
	if err != nil {
		return nil, fmt.Errorf("spawn worker %d: %w", wid, err)
	}
	pid, err := s.start(s.spec.config(wid, modeWorker), c.remote)
	c.closeRemote()
	if err != nil {
		c.close()
		return nil, fmt.Errorf("spawn worker %d: %w", wid, err)
	}
	if err := awaitHello(ctx, c.ctl, pid); err != nil {
		c.close()
		bury(pid)
		return nil, fmt.Errorf("spawn worker %d (pid %d): %w", wid, pid, err)
	}
	return &Process{PID: pid, WID: wid, Ctl: c.ctl, Data: c.data}, nil
}

func (s *lazySpawner) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.removeScript()
	return nil
}

// zygoteSpawner forks workers from one interpreter that imported the app.
type zygoteSpawner struct {
	*launcher
	mu     sync.Mutex // one spawn or reload at a time on the zygote's ctl
	z      *zygote
	closed bool
}

type zygote struct {
	pid    int
	ctl    *net.UnixConn
	exited chan struct{}
}

func (s *zygoteSpawner) startZygote(ctx context.Context) (*zygote, error) {
	c, err := newConns(0)
	if err != nil {
		return nil, fmt.Errorf("start zygote: %w", err)
	}
	pid, err := s.start(s.spec.config(0, modeZygote), c.remote)
	c.closeRemote()
	if err != nil {
		c.close()
		return nil, fmt.Errorf("start zygote: %w", err)
	}
	if err := awaitHello(ctx, c.ctl, pid); err != nil {
		c.close()
		bury(pid)
		return nil, fmt.Errorf("start zygote (pid %d): %w", pid, err)
	}
	z := &zygote{pid: pid, ctl: c.ctl, exited: make(chan struct{})}
	go func() {
		ws, err := Wait(pid)
		if err != nil {
			s.log.Error("reaping the zygote failed", "pid", pid, "err", err)
		} else if ws.Signaled() || ws.ExitStatus() != 0 {
			s.log.Warn("zygote exited", "pid", pid, "status", ws.ExitStatus(), "signal", ws.Signal())
		}
		close(z.exited)
	}()
	s.log.Info("zygote ready", "pid", pid)
	return z, nil
}

// ZygotePID returns the pid of the running zygote, 0 when there is none.
func (s *zygoteSpawner) ZygotePID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.z == nil || !s.z.alive() {
		return 0
	}
	return s.z.pid
}

func (z *zygote) alive() bool {
	select {
	case <-z.exited:
		return false
	default:
		return true
	}
}

// stop closes the zygote's control connection, which makes it exit, and
// kills it if it lingers.
func (z *zygote) stop() {
	_ = z.ctl.Close()
	select {
	case <-z.exited:
	case <-time.After(5 * time.Second):
		_ = unix.Kill(z.pid, unix.SIGKILL)
		<-z.exited
	}
}

func (s *zygoteSpawner) Spawn(ctx context.Context, wid int) (*Process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("spawn worker %d: %w", wid, ErrClosed)
	}
	if !s.z.alive() {
		s.log.Warn("zygote is gone, starting a new one", "pid", s.z.pid)
		z, err := s.startZygote(ctx)
		if err != nil {
			return nil, fmt.Errorf("spawn worker %d: %w", wid, err)
		}
		s.z = z
	}
	c, err := newConns(s.spec.Threads)
	if err != nil {
		return nil, fmt.Errorf("spawn worker %d: %w", wid, err)
	}
	pid, err := s.fork(ctx, wid, c)
	c.closeRemote()
	if err != nil {
		c.close()
		return nil, fmt.Errorf("spawn worker %d: %w", wid, err)
	}
	if err := awaitHello(ctx, c.ctl, pid); err != nil {
		c.close()
		// Reparented to this process (a subreaper), so reapable here.
		bury(pid)
		return nil, fmt.Errorf("spawn worker %d (pid %d): %w", wid, pid, err)
	}
	return &Process{PID: pid, WID: wid, Ctl: c.ctl, Data: c.data}, nil
}

// fork asks the zygote for a worker owning c's remote ends and returns its
// pid.
func (s *zygoteSpawner) fork(ctx context.Context, wid int, c *conns) (int, error) {
	msg, err := wire.AppendPacket(nil, wire.ModSpawn, 0, wire.Vars{{Key: "wid", Value: strconv.Itoa(wid)}})
	if err != nil {
		return 0, fmt.Errorf("encode spawn request: %w", err)
	}
	fds := make([]int, len(c.remote))
	for i, f := range c.remote {
		fds[i] = int(f.Fd())
	}
	if _, _, err := s.z.ctl.WriteMsgUnix(msg, unix.UnixRights(fds...), nil); err != nil {
		return 0, fmt.Errorf("send spawn request to zygote (pid %d): %w", s.z.pid, err)
	}
	h, p, err := readPacket(ctx, s.z.ctl)
	if err != nil {
		if errors.Is(err, ErrWorkerDied) {
			err = fmt.Errorf("zygote (pid %d) died", s.z.pid)
		}
		return 0, fmt.Errorf("waiting for the zygote's spawn reply: %w", err)
	}
	vars, err := wire.ParseVars(p, 0)
	if err != nil {
		return 0, fmt.Errorf("malformed spawn reply from zygote: %w", err)
	}
	switch {
	case h.Modifier1 != wire.ModSpawned:
		return 0, fmt.Errorf("zygote answered a spawn with modifier %d", h.Modifier1)
	case h.Modifier2 != 0:
		return 0, fmt.Errorf("zygote could not fork worker %d: %s", wid, vars.Value("error"))
	case vars.Value("wid") != strconv.Itoa(wid):
		return 0, fmt.Errorf("zygote forked worker %q, asked for %d", vars.Value("wid"), wid)
	}
	pid, err := strconv.Atoi(vars.Value("pid"))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("zygote reported invalid pid %q for worker %d", vars.Value("pid"), wid)
	}
	return pid, nil
}

// Reload starts a new zygote, which imports the app afresh, and retires
// the old one once the new one is ready; on failure the old one stays.
func (s *zygoteSpawner) Reload(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("reload zygote: %w", ErrClosed)
	}
	z, err := s.startZygote(ctx)
	if err != nil {
		return fmt.Errorf("reload zygote: %w", err)
	}
	old := s.z
	s.z = z
	old.stop()
	return nil
}

func (s *zygoteSpawner) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.z.stop()
	s.removeScript()
	return nil
}
