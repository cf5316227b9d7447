package cache

import "errors"

// Errors returned by stores and the Machine. Callers test them with
// errors.Is; the returned errors wrap them with the cache name and details.
var (
	// ErrExists is returned by Set (add-only) when the key is present.
	ErrExists = errors.New("key already exists")
	// ErrNotFound is returned by Del when the key is absent.
	ErrNotFound = errors.New("key not found")
	// ErrFull is returned when no slot or block could be found, even after
	// the cache's full policy (purge_lru, sweep_on_full, clear_on_full) ran.
	ErrFull = errors.New("cache is full")
	// ErrTooLarge is returned for a value above the cache's max item size
	// (blocksize, or blocksize*blocks in bitmap mode); uWSGI drops it silently.
	ErrTooLarge = errors.New("value too large")
	// ErrKeyTooLong is returned for a key longer than keysize.
	ErrKeyTooLong = errors.New("key too long")
	// ErrEmptyKey is returned for an empty key.
	ErrEmptyKey = errors.New("empty key")
	// ErrEmptyValue is returned for an empty value (uWSGI refuses them too).
	ErrEmptyValue = errors.New("empty value")
	// ErrNotNumber is returned by math on a value that is not 8 bytes long.
	ErrNotNumber = errors.New("value is not a 64-bit number")
	// ErrBadExpiry is returned for a negative expiry.
	ErrBadExpiry = errors.New("negative expiry")
	// ErrUnknownCache is returned when a cache name resolves to no cache.
	ErrUnknownCache = errors.New("unknown cache")
	// ErrUnknownOp is returned by Machine.Apply for an OpKind it does not know.
	ErrUnknownOp = errors.New("unknown cache operation")
	// ErrCorrupt is returned when a store file or snapshot cannot be decoded.
	ErrCorrupt = errors.New("corrupt cache data")
	// ErrGeometry is returned when a store file or snapshot was written for a
	// cache of another geometry (items, blocks, blocksize, keysize, bitmap).
	ErrGeometry = errors.New("cache geometry mismatch")
)
