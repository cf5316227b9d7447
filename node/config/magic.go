package config

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Version is what the %V magic variable expands to; cmd/gouwsgi may set it
// at build time with -ldflags "-X ...config.Version=...".
var Version = "dev"

// processMagic computes the magic variables that do not depend on the file
// being read (%v %h %t %T %V %k %u %U %g %G %b %[), once per Load.
func processMagic() map[byte]string {
	m := map[byte]string{
		'%': "%",
		// "%(" is left for the placeholder pass.
		'(': "%(",
		'[': "\033",
		'V': Version,
		'k': strconv.Itoa(runtime.NumCPU()),
	}
	if cwd, err := os.Getwd(); err == nil {
		m['v'] = cwd
	}
	if h, err := os.Hostname(); err == nil {
		m['h'] = h
	}
	now := time.Now()
	m['t'] = strconv.FormatInt(now.Unix(), 10)
	m['T'] = strconv.FormatInt(now.UnixMicro(), 10)
	uid, gid := strconv.Itoa(os.Getuid()), strconv.Itoa(os.Getgid())
	m['u'], m['U'] = uid, uid
	if u, err := user.LookupId(uid); err == nil {
		m['U'] = u.Username
	}
	m['g'], m['G'] = gid, gid
	if g, err := user.LookupGroupId(gid); err == nil {
		m['G'] = g.Name
	}
	if exe, err := os.Executable(); err == nil {
		m['b'] = exe
	}
	return m
}

// fileMagic adds the variables of one config file to a copy of base, as
// uWSGI's config_magic_table_fill does: spec is the file as given
// (`path[:section]`), path the file part, section the section asked for
// ("" if none was given).
func fileMagic(base map[byte]string, spec, path, section string) map[byte]string {
	m := make(map[byte]string, len(base)+32)
	for k, v := range base {
		m[k] = v
	}
	m['o'] = spec
	m['x'] = section
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	m['p'] = path
	slash := strings.LastIndexByte(path, '/')
	m['s'] = path[slash+1:]
	m['d'] = path[:slash+1] // with the trailing slash, as in uWSGI
	dir := strings.TrimSuffix(m['d'], "/")
	if i := strings.LastIndexByte(dir, '/'); i >= 0 {
		m['c'] = dir[i+1:]
	}
	n := 0
	for _, part := range strings.Split(dir, "/") {
		if part != "" && n < 10 {
			m[byte('0'+n)] = part
			n++
		}
	}
	m['n'] = m['s']
	if dot := strings.LastIndexByte(m['s'], '.'); dot >= 0 {
		m['e'] = m['s'][dot+1:]
		m['n'] = m['s'][:dot]
	}
	m['j'] = djb33xHex(path)
	if st, err := os.Lstat(path); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			m['i'] = strconv.FormatUint(sys.Ino, 10)
		}
	}
	// Uppercase variants name the first config of an Emperor vassal in
	// uWSGI; without an Emperor they are the same as lowercase.
	for _, c := range "opsdencxij" {
		m[byte(c)-'a'+'A'] = m[byte(c)]
	}
	return m
}

// djb33xHex is uWSGI's %j: the djb33x hash of the path, as the hex of its
// four bytes in memory (little-endian) order.
func djb33xHex(s string) string {
	h := uint32(5381)
	for i := 0; i < len(s); i++ {
		// uWSGI hashes C chars, which are signed on x86.
		h = ((h << 5) + h) ^ uint32(int32(int8(s[i])))
	}
	return fmt.Sprintf("%02X%02X%02X%02X", byte(h), byte(h>>8), byte(h>>16), byte(h>>24))
}

// magicSub replaces every %X of data with table[X]. As in uWSGI an unknown
// printable ASCII X expands to nothing; unlike uWSGI a '%' before a space,
// a line end, a non-ASCII byte or the end of the file is kept, so that
// UTF-8 text survives and lines are never joined.
func magicSub(data []byte, table map[byte]string) ([]byte, error) {
	var b strings.Builder
	b.Grow(len(data))
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c != '%' || i+1 >= len(data) || data[i+1] <= ' ' || data[i+1] > '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteString(table[data[i+1]])
		i++
		if b.Len() > maxExpandedSize {
			return nil, fmt.Errorf("magic variables expand to more than %d bytes", maxExpandedSize)
		}
	}
	return []byte(b.String()), nil
}
