package rcache

import (
	"errors"

	"github.com/gouwsgi/gouwsgi/cache"
)

// Errors of replicated caches besides the cache package's (which keep their
// meaning: errors.Is(err, cache.ErrFull) works on a replicated write).
var (
	// ErrStopped is returned by writes and linearizable reads once the
	// Group is stopped.
	ErrStopped = errors.New("replicated caches are not running")
	// ErrStaleBatch is the refusal of a batch (a retry, typically) that
	// arrived after more newer batches of its node than the machine
	// remembers: this copy is not applied, an earlier one may have been.
	ErrStaleBatch = errors.New("stale cache batch")
	// ErrRemote is wrapped by refusals the machine returned without a
	// known cause (a newer node's error).
	ErrRemote = errors.New("replicated cache refused the write")
)

// codes maps the machine's refusals to wire codes and back. The numbers
// travel in the Raft log's results: never renumber them.
var codes = []struct {
	code uint32
	err  error
}{
	{1, cache.ErrExists},
	{2, cache.ErrNotFound},
	{3, cache.ErrFull},
	{4, cache.ErrTooLarge},
	{5, cache.ErrKeyTooLong},
	{6, cache.ErrEmptyKey},
	{7, cache.ErrEmptyValue},
	{8, cache.ErrNotNumber},
	{9, cache.ErrBadExpiry},
	{10, cache.ErrUnknownCache},
	{11, cache.ErrUnknownOp},
}

// codeOf classifies a machine error; 0 is success.
func codeOf(err error) uint32 {
	if err == nil {
		return 0
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return 255
}

// remoteError is a machine refusal rebuilt on the proposer: the machine's
// message, unwrapping to the sentinel its code names.
type remoteError struct {
	msg   string
	cause error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.cause }

func errorOf(code uint32, msg string) error {
	if code == 0 {
		return nil
	}
	for _, c := range codes {
		if c.code == code {
			return &remoteError{msg: msg, cause: c.err}
		}
	}
	return &remoteError{msg: msg, cause: ErrRemote}
}
