package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Limits that keep hostile or broken input (recursive includes, placeholders
// that expand into themselves) from hanging or exhausting the process.
const (
	maxIncludeDepth = 32
	maxEntries      = 100_000
	maxFileSize     = 16 << 20
	maxValueLen     = 1 << 20
	maxExpandedSize = 64 << 20
)

// entry is one key = value read from any source, in reading order.
type entry struct {
	key   string  // the key as written (unknown keys are placeholders)
	opt   *Option // the option it sets; nil for a placeholder
	value string
	src   string // where it was read, for messages ("x.ini:3", "command line")
	// placeholder marks keys defined with set-placeholder/set: never warned about.
	placeholder bool
	// raw marks values that are not expanded ($, @, %): include paths
	// and the like, which were acted on while reading.
	raw bool
	// checked is value as checkValue normalised it ("True" -> "true"),
	// set for the options gouwsgi reads.
	checked string
}

// Config is a loaded configuration: every option's values in reading
// order, the placeholders, and the notices to log at start-up.
type Config struct {
	entries entryList
	values  map[string][]string // canonical option name -> values
	notices []string
}

// Load reads the configuration from the environment (os.Environ form; only
// UWSGI_* variables are options, UWSGI_MAX_REQUESTS=5 meaning
// max-requests = 5) and then from args (os.Args[1:] form) in order:
// --name value, --name=value, bare boolean --master, short flags (-p 4,
// -p4, -ML), --ini file[:section] and bare *.ini arguments. environ is also
// what $(VAR) and if-env read. For a scalar option the last value wins;
// list options accumulate.
func Load(args, environ []string) (*Config, error) {
	l := newLoader(environ)
	if err := l.readEnviron(environ); err != nil {
		return nil, err
	}
	if err := l.readArgs(args); err != nil {
		return nil, err
	}
	return l.finish()
}

// newConfig returns an empty configuration: every option at its default.
func newConfig() *Config {
	return &Config{values: map[string][]string{}}
}

func (c *Config) option(name string) Option {
	o, ok := Lookup(name)
	if !ok {
		// Asking for an option that does not exist is a bug in the caller,
		// not bad input: fail loudly rather than return a silent default.
		panic(fmt.Sprintf("config: unknown option %q", name))
	}
	return o
}

// Str returns the last value of the option, or its default when unset.
// It panics if name is neither an option nor an alias.
func (c *Config) Str(name string) string {
	o := c.option(name)
	if v := c.values[o.Name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return o.Default
}

// List returns every value of the option in reading order (nil when
// unset; defaults are not included).
func (c *Config) List(name string) []string {
	o := c.option(name)
	return append([]string(nil), c.values[o.Name]...)
}

// Bool returns the option as a boolean (false when unset).
func (c *Config) Bool(name string) bool {
	b, err := parseBool(c.Str(name))
	return err == nil && b
}

// Int returns the option as an integer (0 when unset without default).
// Values of KindInt options were checked by Load.
func (c *Config) Int(name string) int {
	n, err := strconv.Atoi(c.Str(name))
	if err != nil {
		return 0
	}
	return n
}

// IsSet reports whether the configuration gave the option a value.
func (c *Config) IsSet(name string) bool {
	return len(c.values[c.option(name).Name]) > 0
}

// Set replaces the option's values (no values: back to the default),
// checking them as Load does. It is meant for tests and programmatic use;
// a Config is safe for concurrent reads, not for Set alongside them.
func (c *Config) Set(name string, values ...string) error {
	o, ok := Lookup(name)
	if !ok {
		return fmt.Errorf("set %s: %w", name, ErrUnknownOption)
	}
	checked := make([]string, 0, len(values))
	for _, v := range values {
		cv, err := checkValue(o, v)
		if err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
		checked = append(checked, cv)
	}
	if len(checked) == 0 {
		delete(c.values, o.Name)
		return nil
	}
	c.values[o.Name] = checked
	return nil
}

// Notices returns the start-up log lines Load produced: underscore keys
// read as options, unknown keys, unsupported uWSGI options, unset
// environment variables in $(VAR).
func (c *Config) Notices() []string {
	return append([]string(nil), c.notices...)
}

// Placeholder returns what %(name) expands to: as in uWSGI, the first value
// read for name, whether name is an option (by any of its names) or a
// placeholder. Defaults do not count.
func (c *Config) Placeholder(name string) (string, bool) {
	i := c.entries.find(name)
	if i < 0 {
		return "", false
	}
	return c.entries.list[i].value, true
}

// entryList is the entries in reading order, indexed for %(name) lookups:
// a config may hold many thousands of entries (for-times), each with
// placeholders.
type entryList struct {
	list []entry
	// first maps a key as written, and "option:" + canonical name, to the
	// first entry with it.
	first map[string]int
}

func (el *entryList) add(e entry) {
	if el.first == nil {
		el.first = map[string]int{}
	}
	i := len(el.list)
	el.list = append(el.list, e)
	if _, ok := el.first[e.key]; !ok {
		el.first[e.key] = i
	}
	if e.opt != nil {
		if _, ok := el.first["option:"+e.opt.Name]; !ok {
			el.first["option:"+e.opt.Name] = i
		}
	}
}

// find returns the index of the first entry %(name) refers to, or -1: an
// entry with that very key or, if name is an option, any entry setting
// that option under any of its names.
func (el *entryList) find(name string) int {
	best := -1
	if i, ok := el.first[name]; ok {
		best = i
	}
	if o, ok := Lookup(name); ok {
		if i, ok := el.first["option:"+o.Name]; ok && (best < 0 || i < best) {
			best = i
		}
	}
	return best
}

// Sentinel errors; Load's errors wrap them with the option and source.
var (
	// ErrUnknownOption is a command-line flag, or a key under strict, that
	// is not an option.
	ErrUnknownOption = errors.New("unknown option")
	// ErrUnsupportedOption is a uWSGI option gouwsgi does not implement,
	// read under strict.
	ErrUnsupportedOption = errors.New("uWSGI option not supported by gouwsgi")
	// ErrBadValue is a value that does not fit its option's kind.
	ErrBadValue = errors.New("invalid value")
)

// checkValue normalises one value of o: bare values become o.Bare,
// booleans become "true"/"false", integers are checked.
func checkValue(o Option, v string) (string, error) {
	if v == "" && o.Bare != "" {
		v = o.Bare
	}
	switch o.Kind {
	case KindBool:
		b, err := parseBool(v)
		if err != nil {
			return "", fmt.Errorf("%w: option %s wants a boolean (true/false/yes/no/on/off/1/0), got %q", ErrBadValue, o.Name, v)
		}
		return strconv.FormatBool(b), nil
	case KindInt:
		s := strings.TrimSpace(v)
		if _, err := strconv.ParseInt(s, 10, 64); err != nil {
			return "", fmt.Errorf("%w: option %s wants an integer, got %q", ErrBadValue, o.Name, v)
		}
		return s, nil
	}
	return v, nil
}

// parseBool accepts uWSGI's boolean words (case-insensitive) and integers.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "on":
		return true, nil
	case "false", "no", "off":
		return false, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return false, fmt.Errorf("not a boolean: %q", v)
	}
	return n != 0, nil
}

// readFileLimited reads a regular file of at most maxFileSize bytes:
// devices and FIFOs would block or never end.
func readFileLimited(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileSize)
	}
	return os.ReadFile(path)
}
