package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// maxSubstitutions bounds the expansions of one value: a placeholder whose
// value contains itself would otherwise expand forever.
const maxSubstitutions = 1000

// expander is one pass: it resolves the inside of sym( ... ); ok=false
// leaves the text as it is.
type expander func(l *loader, inner string) (value string, ok bool, err error)

// finish runs the three passes of uWSGI's uwsgi_setup ($ then @ then %) over
// every value read, then checks the values against the table.
func (l *loader) finish() (*Config, error) {
	if l.logic != nil {
		l.notice("%s block opened at %s is never closed", l.logic.name, l.logic.src)
	}
	passes := []struct {
		sym byte
		fn  expander
	}{{'$', expandEnv}, {'@', expandFile}, {'%', expandPlaceholder}}
	for _, p := range passes {
		for i := range l.entries.list {
			e := &l.entries.list[i]
			if e.raw {
				continue
			}
			v, err := l.expand(e.value, p.sym, p.fn)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", e.src, e.key, err)
			}
			e.value = v
		}
	}
	return l.check()
}

// expand replaces every sym(inner) of s (nested parentheses are part of
// inner) and, as uWSGI does, scans the replacement again, so a
// placeholder's value may itself hold placeholders. uWSGI rescans from the
// start of the value; resuming where the replacement begins keeps the work
// linear, and text before it was already expanded.
func (l *loader) expand(s string, sym byte, fn expander) (string, error) {
	subs := 0
	for i := 0; i+1 < len(s); i++ {
		if s[i] != sym || s[i+1] != '(' {
			continue
		}
		end := closingParen(s, i+2)
		if end < 0 {
			break
		}
		inner := s[i+2 : end]
		if inner == "" {
			i = end
			continue
		}
		v, ok, err := fn(l, inner)
		if err != nil {
			return "", err
		}
		if !ok {
			i = end
			continue
		}
		s = s[:i] + v + s[end+1:]
		subs++
		l.expanded += len(v)
		if subs > maxSubstitutions || len(s) > maxValueLen || l.expanded > maxExpandedSize {
			return "", fmt.Errorf("%w: %c( ) expansion does not end (a placeholder that contains itself?)", ErrBadValue, sym)
		}
		i--
	}
	return s, nil
}

// closingParen returns the index of the ')' closing a '(' just before
// from, counting nested parentheses, or -1.
func closingParen(s string, from int) int {
	depth := 0
	for j := from; j < len(s); j++ {
		switch s[j] {
		case '(':
			depth++
		case ')':
			if depth == 0 {
				return j
			}
			depth--
		}
	}
	return -1
}

// expandEnv is $(VAR), with uWSGI 2.1's defaults: $(VAR:-default) when VAR
// is unset or empty, $(VAR-default) when it is unset.
func expandEnv(l *loader, inner string) (string, bool, error) {
	if name, def, ok := strings.Cut(inner, ":-"); ok {
		if v := l.env[name]; v != "" {
			return v, true, nil
		}
		return def, true, nil
	}
	if name, def, ok := strings.Cut(inner, "-"); ok {
		if v, set := l.env[name]; set {
			return v, true, nil
		}
		return def, true, nil
	}
	if v, ok := l.env[inner]; ok {
		return v, true, nil
	}
	l.notice("environment variable %s is not set; $(%s) left as it is", inner, inner)
	return "", false, nil
}

// expandFile is @(path): the file's content without its final newline.
func expandFile(_ *loader, inner string) (string, bool, error) {
	if strings.Contains(inner, "://") {
		return "", false, fmt.Errorf("%w: @(%s): only plain files can be read, not uWSGI's exec://, http://, fd://... sources", ErrBadValue, inner)
	}
	data, err := readFileLimited(inner)
	if err != nil {
		return "", false, fmt.Errorf("@(%s): %w", inner, err)
	}
	s := strings.TrimSuffix(string(data), "\n")
	return strings.TrimSuffix(s, "\r"), true, nil
}

// expandPlaceholder is %(name), or %( ) math when inner has a space.
func expandPlaceholder(l *loader, inner string) (string, bool, error) {
	if !strings.Contains(inner, " ") {
		return l.placeholder(inner)
	}
	v, ok, err := l.math(inner)
	if err != nil {
		return "", false, fmt.Errorf("%%(%s): %w", inner, err)
	}
	return v, ok, nil
}

// placeholder returns the first value read for name, as uWSGI's
// uwsgi_get_exported_opt does.
func (l *loader) placeholder(name string) (string, bool, error) {
	l.used[name] = true
	if i := l.entries.find(name); i >= 0 {
		return l.entries.list[i].value, true, nil
	}
	return "", false, nil
}

// math evaluates uWSGI's %( ) expressions (uwsgi_manage_placeholder): the
// space-separated tokens are a left-to-right pipeline over int64 with no
// precedence: an operator (+ - * /) applies to the next operand, ++ and --
// change the value so far, and operands with no operator between them are
// concatenated as strings ("%(a b)" is a's value followed by b's). Division
// by zero gives 0. Unlike uWSGI, a token that is neither a number, an
// operator nor a known option or placeholder is an error (uWSGI reads it as
// an empty string), and so is an expression ending in an operator.
func (l *loader) math(expr string) (string, bool, error) {
	const (
		concat = iota
		sum
		sub
		mul
		div
	)
	state := concat
	var cur *string
	for _, tok := range strings.Split(expr, " ") {
		if tok == "" {
			continue
		}
		switch tok {
		case "+":
			state = sum
			continue
		case "-":
			state = sub
			continue
		case "*":
			state = mul
			continue
		case "/":
			state = div
			continue
		case "++", "--":
			if cur != nil {
				n := strtoll(*cur)
				if tok == "++" {
					n++
				} else {
					n--
				}
				s := strconv.FormatInt(n, 10)
				cur = &s
			}
			state = concat
			continue
		}
		value := tok
		if !isNumber(tok) {
			v, ok, _ := l.placeholder(tok)
			if !ok {
				return "", false, fmt.Errorf("%w: %q is not a number, an operator (+ - * / ++ --) or a known option or placeholder", ErrBadValue, tok)
			}
			value = v
		}
		prev := ""
		if cur != nil {
			prev = *cur
		}
		a, b := strtoll(prev), strtoll(value)
		var res string
		switch state {
		case concat:
			res = prev + value
		case sum:
			res = strconv.FormatInt(a+b, 10)
		case sub:
			res = strconv.FormatInt(a-b, 10)
		case mul:
			res = strconv.FormatInt(a*b, 10)
		case div:
			if b == 0 {
				res = "0"
			} else if a == math.MinInt64 && b == -1 {
				res = strconv.FormatInt(a, 10) // wraps, as int64 division does in C on most targets
			} else {
				res = strconv.FormatInt(a/b, 10)
			}
		}
		if len(res) > maxValueLen {
			return "", false, fmt.Errorf("%w: result longer than %d bytes", ErrBadValue, maxValueLen)
		}
		cur = &res
		state = concat
	}
	if state != concat {
		return "", false, fmt.Errorf("%w: the expression ends with an operator", ErrBadValue)
	}
	if cur == nil {
		return "", false, nil
	}
	return *cur, true, nil
}

// isNumber is uWSGI's is_a_number: only ASCII digits.
func isNumber(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// strtoll is C's strtoll(s, NULL, 10): leading space, an optional sign,
// then digits up to the first non-digit; 0 if none; clamped on overflow.
func strtoll(s string) int64 {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var n uint64
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + uint64(s[i]-'0')
		if n > limit {
			n = limit
			break
		}
	}
	if neg {
		if n > math.MaxInt64 {
			return math.MinInt64
		}
		return -int64(n)
	}
	return int64(n)
}

// check turns the expanded entries into a Config: values are checked
// against their option, unsupported options and unused unknown keys become
// notices, or errors under strict.
func (l *loader) check() (*Config, error) {
	c := newConfig()
	c.entries = l.entries
	for i := range l.entries.list {
		e := &l.entries.list[i]
		if e.opt == nil || e.opt.Status == Unsupported {
			continue
		}
		v, err := checkValue(*e.opt, e.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.src, err)
		}
		e.checked = v
		c.values[e.opt.Name] = append(c.values[e.opt.Name], v)
	}
	strict := c.Bool("strict")
	for _, e := range l.entries.list {
		switch {
		case e.opt != nil && e.opt.Status == Unsupported:
			if strict {
				return nil, fmt.Errorf("%s: %s: %w (strict mode)", e.src, e.key, ErrUnsupportedOption)
			}
			l.notice("option %s is a uWSGI option gouwsgi does not support; ignored (%s)", e.key, e.src)
		case e.opt == nil && !e.placeholder && !l.used[e.key]:
			if strict {
				return nil, fmt.Errorf("%s: %s: %w (strict mode; not used as a placeholder either)", e.src, e.key, ErrUnknownOption)
			}
			l.notice("unknown option %s in %s: not an option and not used as a %%(%s) placeholder; ignored", e.key, e.src, e.key)
		}
	}
	c.notices = l.notices
	return c, nil
}
