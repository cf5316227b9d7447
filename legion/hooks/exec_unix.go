//go:build unix

package hooks

import (
	"os/exec"
	"syscall"
	"time"
)

// waitDelay is how long a finished or cancelled command's children may hold
// its output pipes before Wait gives up on them.
const waitDelay = 2 * time.Second

// killGroupOnCancel runs cmd in its own process group and makes cancellation
// kill the whole group: `sh -c 'sleep 60'` must not leave the sleep behind.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
}
