package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// maxForTimes bounds for-times so a typo cannot make millions of entries.
const maxForTimes = 10_000

// logicBlock is an open if-*/for block (uWSGI's logic_opt): every line up
// to endif/endfor is fed to it, and it decides how often, if at all, the
// line is applied, with %(_) replaced by the tested value or the item.
type logicBlock struct {
	name, arg, src string
}

func isLogic(name string) bool {
	return strings.HasPrefix(name, "if-") || strings.HasPrefix(name, "for")
}

// feed applies one line of the block's body. As in uWSGI the condition is
// evaluated again for every line, and blocks do not nest.
func (b *logicBlock) feed(l *loader, key, value, src string) error {
	o, isOpt := l.resolve(key, src)
	if isOpt && (o.Name == "endif" || o.Name == "endfor") {
		l.logic = nil
		return nil
	}
	if isOpt && isLogic(o.Name) {
		return fmt.Errorf("%s: %w: %s inside the %s block opened at %s (config logic does not nest)", src, ErrBadValue, key, b.name, b.src)
	}
	items, err := b.items(l)
	if err != nil {
		return fmt.Errorf("%s: %s = %s: %w", b.src, b.name, b.arg, err)
	}
	for _, it := range items {
		if err := l.addDirect(key, strings.ReplaceAll(value, "%(_)", it), src); err != nil {
			return err
		}
	}
	return nil
}

// items returns the values %(_) takes: one per for item, one (the tested
// value) for a condition that holds, none for one that fails.
func (b *logicBlock) items(l *loader) ([]string, error) {
	switch b.name {
	case "for":
		return strings.Fields(b.arg), nil
	case "for-times":
		n, err := strconv.Atoi(strings.TrimSpace(b.arg))
		if err != nil || n > maxForTimes {
			return nil, fmt.Errorf("%w: want a count from 0 to %d", ErrBadValue, maxForTimes)
		}
		out := make([]string, 0, max(n, 0))
		for i := 1; i <= n; i++ {
			out = append(out, strconv.Itoa(i))
		}
		return out, nil
	case "for-glob":
		return globMarked(b.arg)
	case "for-readline":
		data, err := readFileLimited(b.arg)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, line := range strings.SplitAfter(string(data), "\n") {
			if line != "" {
				out = append(out, strings.TrimRight(line, "\r\n"))
			}
		}
		return out, nil
	case "if-reload":
		return nil, nil
	case "if-not-reload":
		return []string{""}, nil
	}
	negate := strings.Contains(b.name, "-not-")
	ok, value, err := b.test(l)
	if err != nil {
		return nil, err
	}
	if ok == negate {
		return nil, nil
	}
	return []string{value}, nil
}

// test evaluates an if-* condition (without its -not- negation) and
// returns the value %(_) stands for.
func (b *logicBlock) test(l *loader) (bool, string, error) {
	kind := strings.Replace(b.name, "-not-", "-", 1)
	switch kind {
	case "if-env", "if-opt":
		name, want, hasWant := strings.Cut(b.arg, "=")
		var v string
		var set bool
		if kind == "if-env" {
			v, set = l.env[name]
		} else {
			l.used[name] = true
			if i := l.entries.find(name); i >= 0 {
				v, set = l.entries.list[i].value, true
			}
		}
		if hasWant && set {
			set = v == want
		}
		return set, v, nil
	case "if-exists", "if-file", "if-dir":
		st, err := os.Stat(b.arg)
		if err != nil {
			return false, b.arg, nil
		}
		switch kind {
		case "if-file":
			return st.Mode().IsRegular(), b.arg, nil
		case "if-dir":
			return st.IsDir(), b.arg, nil
		}
		return true, b.arg, nil
	case "if-hostname":
		host, _ := os.Hostname()
		return host == b.arg, b.arg, nil
	case "if-hostname-match":
		re, err := regexp.Compile(b.arg)
		if err != nil {
			return false, "", fmt.Errorf("%w: %w", ErrBadValue, err)
		}
		host, _ := os.Hostname()
		return re.MatchString(host), b.arg, nil
	}
	return false, "", fmt.Errorf("%w: unknown config logic %s", ErrBadValue, b.name)
}

// globMarked is glob(3) with GLOB_MARK|GLOB_NOCHECK, as uWSGI's for-glob:
// directories get a trailing slash, no match yields the pattern itself.
func globMarked(pattern string) ([]string, error) {
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadValue, err)
	}
	if len(matches) == 0 {
		return []string{pattern}, nil
	}
	for i, m := range matches {
		if st, err := os.Stat(m); err == nil && st.IsDir() {
			matches[i] = m + "/"
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return matches, nil
}
