package vip

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Errors returned by Manager.
var (
	// ErrNotSupported is returned by New on systems without netlink (anything but Linux).
	ErrNotSupported = errors.New("vip: not supported on this operating system (needs Linux netlink)")
	// ErrClosed is returned by a Manager's methods after Close.
	ErrClosed = errors.New("vip: manager closed")
)

// Config configures a Manager.
type Config struct {
	// Spec is the address to own and, optionally, its interface.
	Spec Spec
	// NetNS is the path of the network namespace to act in (for example
	// /run/netns/NAME); empty means the namespace of this process. Tests use
	// it to drive a throwaway namespace from inside the test process.
	NetNS string
	// BurstCount is how many announcements are sent when the address is claimed.
	BurstCount int
	// BurstInterval separates the announcements of a burst.
	BurstInterval time.Duration
	// ReannounceInterval is the period of the re-announcement (and
	// re-assertion of the address) while it is held.
	ReannounceInterval time.Duration
	// Logger receives the manager's log lines; nil means slog.Default().
	Logger *slog.Logger
	// Fence, when set, tells whether epoch still owns the address. Claim
	// and the periodic re-assertion check it under the manager's lock, so a
	// Release (lease lost) can never slip between the check and the address
	// add: a late claim of a lord that lost its lease adds nothing, and a
	// held address whose epoch is fenced off is removed.
	Fence func(epoch uint64) bool
}

// DefaultConfig returns a fully populated configuration for spec: a burst of
// three announcements over 200 ms, then one every 3 s.
func DefaultConfig(spec Spec) Config {
	return Config{
		Spec:               spec,
		BurstCount:         3,
		BurstInterval:      100 * time.Millisecond,
		ReannounceInterval: 3 * time.Second,
		Logger:             slog.Default(),
	}
}

// Validate checks the configuration without touching the system.
func (c Config) Validate() error {
	if err := c.Spec.Validate(); err != nil {
		return err
	}
	switch {
	case c.BurstCount < 1:
		return fmt.Errorf("vip %s: burst count %d must be at least 1", c.Spec, c.BurstCount)
	case c.BurstCount > 1 && c.BurstInterval <= 0:
		return fmt.Errorf("vip %s: burst interval %s must be positive", c.Spec, c.BurstInterval)
	case c.ReannounceInterval <= 0:
		return fmt.Errorf("vip %s: re-announce interval %s must be positive", c.Spec, c.ReannounceInterval)
	}
	return nil
}
