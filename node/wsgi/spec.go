package wsgi

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// Spec says how to start workers: which interpreter, which app, and how
// many threads each worker runs.
type Spec struct {
	// Python is the interpreter; "" means python3 from PATH.
	Python string
	// Chdir is the directory workers change to before importing the app.
	Chdir string
	// Module is "pkg.mod:callable" or "pkg.mod" (then Callable applies).
	Module string
	// WSGIFile is a Python file to load when Module is empty.
	WSGIFile string
	// Callable is the app's name in the module; "" means "application".
	Callable string
	// PythonPath entries are put in front of sys.path, as pythonpath= does.
	PythonPath []string
	// Env holds KEY=VALUE pairs added to the workers' environment.
	Env []string
	// Threads is the number of request threads (and data connections) per
	// worker; 0 means 1.
	Threads int
	// Processes is what uwsgi.numproc reports; wsgi.multiprocess is true
	// when it is above 1.
	Processes int
	// Opt is what uwsgi.opt reports: option values as bytes, "" meaning a
	// bare flag (True).
	Opt map[string]string
	// Procname is the workers' process name (procname); "" leaves it.
	Procname string
	// Lazy is lazy-apps: every worker imports the app itself. Otherwise a
	// zygote imports it once and forks the workers.
	Lazy bool
	// Stderr receives the workers' stdout and stderr; nil means os.Stderr.
	Stderr *os.File
	// RuntimeDir is where the worker script is written; "" means a fresh
	// temporary directory removed by Close.
	RuntimeDir string
}

// workerConfig is the JSON the worker reads from GOUWSGI_WORKER.
type workerConfig struct {
	WID        int               `json:"wid"`
	Chdir      string            `json:"chdir,omitempty"`
	Module     string            `json:"module,omitempty"`
	WSGIFile   string            `json:"wsgi_file,omitempty"`
	Callable   string            `json:"callable,omitempty"`
	PythonPath []string          `json:"pythonpath,omitempty"`
	Threads    int               `json:"threads"`
	NumProc    int               `json:"numproc"`
	Opt        map[string]string `json:"opt,omitempty"`
	MasterPID  int               `json:"masterpid"`
	Procname   string            `json:"procname,omitempty"`
	Mode       string            `json:"mode"`
	CtlFD      int               `json:"ctl_fd"`
	DataFDs    []int             `json:"data_fds"`
}

// normalize fills defaults and checks the spec, resolving the interpreter.
func (s Spec) normalize() (Spec, error) {
	if s.Module == "" && s.WSGIFile == "" {
		return s, errors.New("wsgi: neither module nor wsgi-file is set: no app to load")
	}
	if s.Module != "" && s.WSGIFile != "" {
		return s, fmt.Errorf("wsgi: both module %q and wsgi-file %q are set: choose one", s.Module, s.WSGIFile)
	}
	if s.Threads < 0 {
		return s, fmt.Errorf("wsgi: threads must be at least 1, got %d", s.Threads)
	}
	if s.Threads == 0 {
		s.Threads = 1
	}
	if s.Processes < 1 {
		s.Processes = 1
	}
	if s.Callable == "" {
		s.Callable = "application"
	}
	if s.Python == "" {
		s.Python = "python3"
	}
	py, err := exec.LookPath(s.Python)
	if err != nil {
		return s, fmt.Errorf("wsgi: python interpreter %q: %w", s.Python, err)
	}
	s.Python = py
	if s.Stderr == nil {
		s.Stderr = os.Stderr
	}
	return s, nil
}

// config is the worker configuration for one process.
func (s Spec) config(wid int, mode string) workerConfig {
	data := make([]int, 0, s.Threads)
	if mode == modeWorker {
		for i := range s.Threads {
			data = append(data, 4+i)
		}
	}
	return workerConfig{
		WID: wid, Chdir: s.Chdir, Module: s.Module, WSGIFile: s.WSGIFile, Callable: s.Callable,
		PythonPath: s.PythonPath, Threads: s.Threads, NumProc: s.Processes, Opt: s.Opt,
		MasterPID: os.Getpid(), Mode: mode, CtlFD: 3, DataFDs: data, Procname: s.Procname,
	}
}

const (
	modeWorker = "worker"
	modeZygote = "zygote"
)
