//go:build !linux

package vip

import "context"

// Manager owns one virtual address on one interface. Only Linux has an
// implementation; elsewhere New returns ErrNotSupported.
type Manager struct{}

// New returns ErrNotSupported: managing addresses needs Linux netlink.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return nil, ErrNotSupported
}

// Spec returns the zero Spec.
func (m *Manager) Spec() Spec { return Spec{} }

// State reports nothing held.
func (m *Manager) State() (held bool, epoch uint64) { return false, 0 }

// Present returns ErrNotSupported.
func (m *Manager) Present(context.Context) (bool, error) { return false, ErrNotSupported }

// Claim returns ErrNotSupported.
func (m *Manager) Claim(context.Context, uint64) error { return ErrNotSupported }

// Release returns ErrNotSupported.
func (m *Manager) Release(context.Context, uint64) error { return ErrNotSupported }

// Drain returns ErrNotSupported.
func (m *Manager) Drain(context.Context) error { return ErrNotSupported }

// CleanStale returns ErrNotSupported.
func (m *Manager) CleanStale(context.Context) error { return ErrNotSupported }

// Reconcile returns ErrNotSupported.
func (m *Manager) Reconcile(context.Context, bool, uint64) error { return ErrNotSupported }

// Close does nothing.
func (m *Manager) Close() error { return nil }
