//go:build !unix

package hooks

import (
	"os/exec"
	"time"
)

// waitDelay is how long a finished or cancelled command's children may hold
// its output pipes before Wait gives up on them.
const waitDelay = 2 * time.Second

// killGroupOnCancel only bounds the wait: without process groups, the
// command's children may outlive a cancellation.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.WaitDelay = waitDelay
}
