package router

import (
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// condition is a compiled route-if test: "<name>:<a>[;<b>]".
type condition struct {
	a, b template
	re   *regexp.Regexp // regexp: compiled once; uWSGI compiles it per request
	net  netip.Prefix   // ipv4in/ipv6in with a literal network
	test func(c *condition, st *state) bool
	// incache
	slot int
	key  template
}

type condSpec struct {
	twoArgs bool
	test    func(c *condition, st *state) bool
}

func compare(f func(a, b string) bool) condSpec {
	return condSpec{twoArgs: true, test: func(c *condition, st *state) bool {
		a := c.a.str(st)
		return f(a, c.b.str(st))
	}}
}

func compareNum(f func(a, b int64) bool) condSpec {
	return compare(func(a, b string) bool { return f(atoi64(a), atoi64(b)) })
}

// atoi64 reads a leading integer like C's strtoll: junk yields 0.
func atoi64(s string) int64 {
	s = strings.TrimSpace(s)
	end := 0
	if end < len(s) && (s[end] == '-' || s[end] == '+') {
		end++
	}
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, _ := strconv.ParseInt(s[:end], 10, 64)
	return n
}

func fileTest(f func(path string) bool) condSpec {
	return condSpec{test: func(c *condition, st *state) bool { return f(c.a.str(st)) }}
}

func statMode(lstat bool, ok func(os.FileMode) bool) func(string) bool {
	return func(p string) bool {
		stat := os.Stat
		if lstat {
			stat = os.Lstat
		}
		fi, err := stat(p)
		return err == nil && ok(fi.Mode())
	}
}

var (
	condEqual = compare(func(a, b string) bool { return a == b })
	condHi    = compareNum(func(a, b int64) bool { return a > b })
	condHiEq  = compareNum(func(a, b int64) bool { return a >= b })
	condLo    = compareNum(func(a, b int64) bool { return a < b })
	condLoEq  = compareNum(func(a, b int64) bool { return a <= b })
	condHas   = compare(strings.Contains)
)

// conditions are the route-if tests of uWSGI's core and router_cache. The
// legion "lord" condition is not offered: the router lives on the node side,
// which does not know about the legion (see doc.go).
var conditions = map[string]condSpec{
	"equal": condEqual, "isequal": condEqual, "eq": condEqual, "==": condEqual,
	"ishigher": condHi, ">": condHi,
	"ishigherequal": condHiEq, ">=": condHiEq,
	"islower": condLo, "<": condLo,
	"islowerequal": condLoEq, "<=": condLoEq,
	"startswith": compare(strings.HasPrefix),
	"endswith":   compare(strings.HasSuffix),
	"contains":   condHas, "contain": condHas,
	"regexp": {twoArgs: true, test: testRegexp}, "re": {twoArgs: true, test: testRegexp},
	"empty":  {test: func(c *condition, st *state) bool { return c.a.str(st) == "" }},
	"exists": fileTest(func(p string) bool { _, err := os.Stat(p); return err == nil }),
	"isfile": fileTest(statMode(false, os.FileMode.IsRegular)),
	"isdir":  fileTest(statMode(false, os.FileMode.IsDir)),
	"islink": fileTest(statMode(true, func(m os.FileMode) bool { return m&os.ModeSymlink != 0 })),
	"isexec": fileTest(func(p string) bool { return unix.Access(p, unix.X_OK) == nil }),
	"ipv4in": {twoArgs: true, test: ipIn(false)},
	"ipv6in": {twoArgs: true, test: ipIn(true)},
	"incache": {test: func(c *condition, st *state) bool {
		store := st.h.stores[c.slot]
		return store != nil && store.Exists(c.key.str(st))
	}},
}

func testRegexp(c *condition, st *state) bool {
	s := c.a.str(st)
	st.caps = c.re.FindStringSubmatchIndex(s)
	st.capSubj = s
	return st.caps != nil
}

// ipIn tests "<addr>;<network>[/bits]"; a bare address means one host.
func ipIn(v6 bool) func(c *condition, st *state) bool {
	return func(c *condition, st *state) bool {
		addr, err := netip.ParseAddr(c.a.str(st))
		if err != nil || addr.Is6() != v6 {
			return false
		}
		pfx := c.net
		if !pfx.IsValid() {
			if pfx, err = parseNet(c.b.str(st)); err != nil {
				return false
			}
		}
		return pfx.Contains(addr)
	}
}

func parseNet(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (p *parser) condition(s string) (*condition, error) {
	name, arg, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("condition %q: expected <condition>:<args>", s)
	}
	if name == "lord" {
		return nil, fmt.Errorf("condition lord: not available in the router; use the legion hooks (legion-lord/legion-unlord) instead")
	}
	spec, ok := conditions[name]
	if !ok {
		return nil, fmt.Errorf("unknown route condition %q", name)
	}
	c := &condition{test: spec.test}
	var err error
	if name == "incache" {
		kv, err := parseKV(arg, "key", "name")
		if err != nil {
			return nil, fmt.Errorf("condition incache: %w", err)
		}
		if kv["key"] == "" {
			return nil, fmt.Errorf("condition incache: key= is required")
		}
		if c.key, err = p.tmpl(kv["key"]); err != nil {
			return nil, fmt.Errorf("condition incache: %w", err)
		}
		c.slot, err = p.cacheSlot(kv["name"])
		return c, err
	}
	if !spec.twoArgs {
		c.a, err = p.tmpl(arg)
		return c, err
	}
	a, b, ok := strings.Cut(arg, ";")
	if !ok {
		return nil, fmt.Errorf("condition %s needs two arguments: %s:<value>;<value>", name, name)
	}
	if c.a, err = p.tmpl(a); err != nil {
		return nil, err
	}
	switch name {
	case "regexp", "re":
		// The pattern is used as written (uWSGI does not expand variables in it).
		c.re, err = compileRegexp(b)
		return c, err
	case "ipv4in", "ipv6in":
		if !strings.Contains(b, "$") {
			if c.net, err = parseNet(b); err != nil {
				return nil, fmt.Errorf("condition %s: network %q: %w", name, b, err)
			}
		}
	}
	c.b, err = p.tmpl(b)
	return c, err
}
