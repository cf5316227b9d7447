package config

import (
	"bytes"
	"fmt"
	"strings"
)

// loader reads every source into entries, in order; finish expands and
// checks them.
type loader struct {
	env     map[string]string
	entries entryList
	notices []string
	noticed map[string]bool
	// used holds the keys %(...) and if-opt looked up: unknown keys among
	// them are placeholders, not typos.
	used map[string]bool
	// underscored holds the underscore keys already reported.
	underscored map[string]bool
	magic       map[byte]string // process-wide magic variables, computed lazily
	lastINI     string          // for `ini = :section`
	depth       int             // ini nesting
	logic       *logicBlock     // the open if-*/for block, nil if none
	expanded    int             // bytes produced by expansion so far
}

func newLoader(environ []string) *loader {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return &loader{
		env:         env,
		noticed:     map[string]bool{},
		used:        map[string]bool{},
		underscored: map[string]bool{},
	}
}

func (l *loader) notice(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !l.noticed[msg] {
		l.noticed[msg] = true
		l.notices = append(l.notices, msg)
	}
}

// uWSGI's own bookkeeping variables (parse_sys_envs skips them too).
var internalEnv = map[string]bool{
	"UWSGI_RELOADS": true, "UWSGI_VASSALS_DIR": true, "UWSGI_EMPEROR_FD": true,
	"UWSGI_BROODLORD_NUM": true, "UWSGI_EMPEROR_FD_CONFIG": true, "UWSGI_EMPEROR_PROXY": true,
	"UWSGI_JAIL_PID": true, "UWSGI_ORIGINAL_PROC_NAME": true,
}

// readEnviron reads UWSGI_FOO_BAR=v as foo-bar = v.
func (l *loader) readEnviron(environ []string) error {
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, "UWSGI_") || internalEnv[name] || len(name) == len("UWSGI_") {
			continue
		}
		key := strings.ReplaceAll(strings.ToLower(name[len("UWSGI_"):]), "_", "-")
		if err := l.add(key, value, "environment variable "+name); err != nil {
			return err
		}
	}
	return nil
}

const srcArgs = "command line"

// readArgs reads the command line the way getopt_long does for uWSGI:
// options that take a value consume the next argument unless given as
// --name=value; booleans and optional-value options consume it only when
// it can be nothing else (see optionalValue).
func (l *loader) readArgs(args []string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			for _, p := range args[i+1:] {
				if err := l.positional(p); err != nil {
					return err
				}
			}
			return nil
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a[2:], "=")
			o, err := l.flag(name)
			if err != nil {
				return err
			}
			if !hasValue && o.takesValue() {
				if i+1 >= len(args) {
					return fmt.Errorf("%s: %w: option --%s needs a value", srcArgs, ErrBadValue, name)
				}
				i++
				value = args[i]
			} else if !hasValue && i+1 < len(args) && optionalValue(o, args[i+1]) {
				i++
				value = args[i]
			}
			if err := l.add(name, value, srcArgs); err != nil {
				return err
			}
		case len(a) > 1 && a[0] == '-':
			consumed, err := l.shortFlags(a[1:], args[i+1:])
			if err != nil {
				return err
			}
			i += consumed
		default:
			if err := l.positional(a); err != nil {
				return err
			}
		}
	}
	return nil
}

// flag resolves a long flag name; unlike ini keys, an unknown flag is an
// error, since its value cannot even be told from the next argument.
func (l *loader) flag(name string) (Option, error) {
	if o, ok := Lookup(name); ok {
		return o, nil
	}
	if o, ok := normalizeKey(name); ok {
		return o, nil
	}
	return Option{}, fmt.Errorf("%s: %w --%s", srcArgs, ErrUnknownOption, name)
}

// shortFlags reads one -XYZ group: letters of flags that take no value can
// be combined; the first letter that takes a value ends the group and uses
// the rest of it, or the next argument. It returns how many of rest it used.
func (l *loader) shortFlags(group string, rest []string) (int, error) {
	for j := 0; j < len(group); j++ {
		o, ok := lookupShort(group[j])
		if !ok {
			return 0, fmt.Errorf("%s: %w -%c", srcArgs, ErrUnknownOption, group[j])
		}
		name := string(group[j])
		if !o.takesValue() {
			value, used := "", 0
			switch {
			case o.Kind != KindBool && j+1 < len(group):
				// -C664: an optional value is attached.
				value, j = group[j+1:], len(group)
			case j+1 == len(group) && len(rest) > 0 && optionalValue(o, rest[0]):
				value, used = rest[0], 1
			}
			if err := l.add(o.Name, value, srcArgs); err != nil {
				return 0, err
			}
			if used > 0 {
				return used, nil
			}
			continue
		}
		if j+1 < len(group) {
			return 0, l.add(o.Name, group[j+1:], srcArgs)
		}
		if len(rest) == 0 {
			return 0, fmt.Errorf("%s: %w: option -%s (%s) needs a value", srcArgs, ErrBadValue, name, o.Name)
		}
		return 1, l.add(o.Name, rest[0], srcArgs)
	}
	return 0, nil
}

// optionalValue reports whether next is the value of o, a flag whose
// value is optional (--chmod-socket 664, --master false). getopt would
// leave it as a positional argument, but positional arguments can only be
// ini files, so anything else can only be meant as the value.
func optionalValue(o Option, next string) bool {
	if strings.HasPrefix(next, "-") || isINIArg(next) {
		return false
	}
	if o.Kind == KindBool {
		_, err := parseBool(next)
		return err == nil
	}
	return true
}

func isINIArg(a string) bool {
	path, _ := splitSection(a)
	return strings.HasSuffix(path, ".ini")
}

// positional handles a bare argument: `uwsgi app.ini` means --ini app.ini.
func (l *loader) positional(a string) error {
	if isINIArg(a) {
		return l.add("ini", a, srcArgs)
	}
	hint := ""
	if _, err := parseBool(a); err == nil && len(a) > 1 {
		hint = " (boolean flags take no separate value: write --flag=" + a + ")"
	}
	return fmt.Errorf("%s: %w: unexpected argument %q%s", srcArgs, ErrBadValue, a, hint)
}

// resolve finds the option key names, reading an underscore key as the
// dashed option (uWSGI would silently make it a placeholder).
func (l *loader) resolve(key, src string) (Option, bool) {
	if o, ok := Lookup(key); ok {
		return o, true
	}
	o, ok := normalizeKey(key)
	if ok && !l.underscored[key] {
		l.underscored[key] = true
		l.notice("%s read as %s (%s; uWSGI would ignore it)", key, o.Name, src)
	}
	return o, ok
}

// add records key = value, acting at once on what uWSGI acts on at once:
// ini includes, placeholders, set, and config logic.
func (l *loader) add(key, value, src string) error {
	if len(l.entries.list) >= maxEntries {
		return fmt.Errorf("%s: more than %d configuration entries", src, maxEntries)
	}
	if l.logic != nil {
		return l.logic.feed(l, key, value, src)
	}
	return l.addDirect(key, value, src)
}

// addDirect is add without config logic: block bodies go through it.
func (l *loader) addDirect(key, value, src string) error {
	o, ok := l.resolve(key, src)
	if !ok {
		l.entries.add(entry{key: key, value: value, src: src})
		return nil
	}
	switch {
	case o.refuse:
		return fmt.Errorf("%s: %s: %w (%s)", src, key, ErrUnsupportedOption, refusedNote)
	case o.Name == "ini" || o.Name == "include":
		l.entries.add(entry{key: key, opt: &o, value: value, src: src, raw: true})
		if path, _ := splitSection(value); o.Name == "include" && !strings.HasSuffix(path, ".ini") {
			return fmt.Errorf("%s: include %s: %w (gouwsgi reads only .ini files)", src, value, ErrUnsupportedOption)
		}
		return l.loadINI(value, src)
	case o.Name == "set-placeholder" || o.Name == "set":
		name, v, ok := strings.Cut(value, "=")
		if !ok || name == "" {
			return fmt.Errorf("%s: %w: %s wants name=value, got %q", src, ErrBadValue, key, value)
		}
		if _, isOpt := l.resolve(name, src); isOpt {
			if o.Name == "set-placeholder" {
				return fmt.Errorf("%s: %w: %s cannot be used as a placeholder, it is already an option", src, ErrBadValue, name)
			}
			return l.addDirect(name, v, src)
		}
		l.entries.add(entry{key: name, value: v, src: src, placeholder: true})
		return nil
	case o.Name == "endif" || o.Name == "endfor":
		return nil // closing a block that is not open, as uWSGI allows
	case isLogic(o.Name):
		l.logic = &logicBlock{name: o.Name, arg: value, src: src}
		return nil
	}
	l.entries.add(entry{key: key, opt: &o, value: value, src: src})
	return nil
}

// splitSection splits `file.ini:section` at the last colon.
func splitSection(spec string) (path, section string) {
	if i := strings.LastIndexByte(spec, ':'); i >= 0 {
		return spec[:i], spec[i+1:]
	}
	return spec, ""
}

// loadINI reads an ini file's section in place (uWSGI's uwsgi_ini_config).
func (l *loader) loadINI(spec, src string) error {
	if l.depth >= maxIncludeDepth {
		return fmt.Errorf("%s: ini %s: files include each other more than %d levels deep", src, spec, maxIncludeDepth)
	}
	path, section := splitSection(spec)
	if path == "" {
		if l.lastINI == "" {
			return fmt.Errorf("%s: ini %s: no previous ini file to take the section from", src, spec)
		}
		path = l.lastINI
	}
	data, err := readFileLimited(path)
	if err != nil {
		return fmt.Errorf("%s: ini: %w", src, err)
	}
	l.lastINI = path
	if l.magic == nil {
		l.magic = processMagic()
	}
	data, err = magicSub(data, fileMagic(l.magic, spec, path, section))
	if err != nil {
		return fmt.Errorf("%s: ini %s: %w", src, path, err)
	}
	asked := section
	if asked == "" {
		asked = "uwsgi"
	}
	lines, found := parseINI(data, asked)
	if !found {
		return fmt.Errorf("%s: ini file %s: %w: no section [%s]", src, path, ErrBadValue, asked)
	}
	l.depth++
	defer func() { l.depth-- }()
	for _, ln := range lines {
		if ln.key == "" {
			l.notice("line without a key ignored (%s:%d)", path, ln.line)
			continue
		}
		if err := l.add(ln.key, ln.value, fmt.Sprintf("%s:%d", path, ln.line)); err != nil {
			return err
		}
	}
	return nil
}

type iniLine struct {
	key, value string
	line       int
}

// iniSpace is what uWSGI strips around lines, keys and values.
const iniSpace = " \t\r"

// parseINI returns the key = value lines of section, in order, and whether
// the section exists. As in uWSGI: `;` and `#` start comment lines only, a
// line without `=` is a key with an empty value, there is no continuation
// and no quoting.
func parseINI(data []byte, section string) (lines []iniLine, found bool) {
	current := ""
	for n, raw := range bytes.Split(data, []byte("\n")) {
		line := strings.Trim(string(raw), iniSpace)
		switch {
		case line == "":
		case line[0] == '[':
			current = strings.TrimSuffix(line[1:], "]")
			if current == section {
				found = true
			}
		case line[0] == ';' || line[0] == '#':
		case current == section:
			k, v, _ := strings.Cut(line, "=")
			lines = append(lines, iniLine{key: strings.Trim(k, iniSpace), value: strings.Trim(v, iniSpace), line: n + 1})
		}
	}
	return lines, found
}
