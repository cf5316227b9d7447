package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseKV parses uWSGI's `key=value,key=value` lists (cache2, route action
// arguments). Keys are trimmed; a value runs from the first '=' to the next
// unescaped ',' and may contain '='; `\,` is a literal comma and `\\` a
// backslash, as in uWSGI's uwsgi_kvlist_parse. A repeated key keeps its
// last value; an item without '=' is an error.
func ParseKV(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, item := range splitEscaped(s, ',') {
		if strings.TrimSpace(item) == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: %q in %q is not key=value", ErrBadValue, item, s)
		}
		out[k] = v
	}
	return out, nil
}

// splitEscaped splits s at every sep not preceded by a backslash and drops
// the escaping backslashes.
func splitEscaped(s string, sep byte) []string {
	var items []string
	var b strings.Builder
	escaped := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			b.WriteByte(c)
			escaped = false
		case c == '\\':
			escaped = true
		case c == sep:
			items = append(items, b.String())
			b.Reset()
		default:
			b.WriteByte(c)
		}
	}
	return append(items, b.String())
}

// Bytes parses a size: a decimal count of bytes with an optional binary
// suffix k, m or g (any case, optionally followed by "b" or "ib"): "4096",
// "64k", "1M", "2GiB".
func Bytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "b"), "i")
	shift := 0
	if t != "" {
		switch t[len(t)-1] {
		case 'k':
			shift = 10
		case 'm':
			shift = 20
		case 'g':
			shift = 30
		}
	}
	if shift > 0 {
		t = t[:len(t)-1]
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: %q is not a size (bytes, or a number with k/m/g)", ErrBadValue, s)
	}
	if n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%w: size %q is too large", ErrBadValue, s)
	}
	return n << shift, nil
}
