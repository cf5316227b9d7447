package node

import (
	"errors"
	"fmt"

	"github.com/gouwsgi/gouwsgi/node/sysinfo"
)

// zygoteOwner is a spawner that forks workers from a zygote.
type zygoteOwner interface{ ZygotePID() int }

// TrimMemory hands back to the kernel the file-backed pages that only
// start-up needed: the master's own (its executable) and the zygote's
// (what importing the app touched and no worker shares). Both fault back
// in if used. A zygote that may not be advised (no CAP_SYS_NICE) is left as
// it is; that is not an error.
func (n *Node) TrimMemory() error {
	if _, err := sysinfo.TrimBinary(); err != nil {
		return fmt.Errorf("trim the master's executable pages: %w", err)
	}
	z, ok := n.spawner.(zygoteOwner)
	if !ok {
		return nil
	}
	pid := z.ZygotePID()
	if pid == 0 {
		return nil
	}
	if _, err := sysinfo.PageOut(pid); err != nil && !errors.Is(err, sysinfo.ErrNoPermission) {
		return fmt.Errorf("trim the zygote's pages: %w", err)
	}
	return nil
}
