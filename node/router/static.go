package router

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// staticOption records one static-file option.
func (c *Config) staticOption(name, value string) error {
	if value == "" {
		return errors.New("empty value")
	}
	switch name {
	case "static-map", "static-map2":
		mount, dir, ok := strings.Cut(value, "=")
		if !ok || mount == "" || dir == "" {
			return errors.New("expected <mountpoint>=<directory or file>")
		}
		real, err := realPath(dir)
		if err != nil {
			return err
		}
		fi, err := os.Stat(real)
		if err != nil {
			return fmt.Errorf("static directory: %w", err)
		}
		c.StaticMaps = append(c.StaticMaps, StaticMap{Mount: mount, Dir: real, Full: name == "static-map2", isFile: fi.Mode().IsRegular()})
	case "check-static":
		real, err := realPath(value)
		if err != nil {
			return err
		}
		c.CheckStatic = append(c.CheckStatic, real)
	case "static-index":
		c.StaticIndex = append(c.StaticIndex, value)
	case "static-skip-ext":
		c.StaticSkipExt = append(c.StaticSkipExt, value)
	}
	return nil
}

// realPath resolves a document root once at start-up, so the per-request
// containment check compares resolved paths.
func realPath(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("static path %q: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("static path %q: %w", dir, err)
	}
	return real, nil
}

func (c *Config) hasStatic() bool {
	return len(c.StaticMaps) > 0 || len(c.CheckStatic) > 0
}

// lookup is the outcome of mapping a request to a static file.
type lookup uint8

const (
	lookupMiss      lookup = iota // no file: the request goes on to the app
	lookupFound                   // serve the file
	lookupForbidden               // traversal attempt: 403
)

// staticLookup maps PATH_INFO through check-static, static-map and
// static-map2, in that order as uWSGI does. Only GET and HEAD are served.
func (h *handler) staticLookup(st *state) (string, os.FileInfo, lookup) {
	if m := st.r.Vars.Value("REQUEST_METHOD"); m != "GET" && m != "HEAD" {
		return "", nil, lookupMiss
	}
	pi := st.r.Vars.Value("PATH_INFO")
	if h.skipExt(pi) {
		return "", nil, lookupMiss
	}
	for _, root := range h.cfg.CheckStatic {
		if name, fi, res := h.resolve(root, pi); res != lookupMiss {
			return name, fi, res
		}
	}
	for _, m := range h.cfg.StaticMaps {
		rest, ok := strings.CutPrefix(pi, m.Mount)
		if !ok {
			continue
		}
		if m.isFile {
			if fi, err := os.Stat(m.Dir); err == nil {
				return m.Dir, fi, lookupFound
			}
			continue
		}
		if m.Full {
			rest = pi
		}
		if name, fi, res := h.resolve(m.Dir, rest); res != lookupMiss {
			return name, fi, res
		}
	}
	return "", nil, lookupMiss
}

func (h *handler) skipExt(name string) bool {
	for _, ext := range h.cfg.StaticSkipExt {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// resolve finds rel under root. ".." segments and symlinks leading out of
// root are refused rather than followed.
func (h *handler) resolve(root, rel string) (string, os.FileInfo, lookup) {
	for seg := range strings.SplitSeq(rel, "/") {
		if seg == ".." {
			return "", nil, lookupForbidden
		}
	}
	real, err := filepath.EvalSymlinks(filepath.Join(root, rel))
	if err != nil {
		return "", nil, lookupMiss
	}
	if real != root && !strings.HasPrefix(real, root+string(filepath.Separator)) {
		return "", nil, lookupForbidden
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", nil, lookupMiss
	}
	if fi.IsDir() {
		for _, idx := range h.cfg.StaticIndex {
			p := filepath.Join(real, idx)
			if ifi, err := os.Stat(p); err == nil && ifi.Mode().IsRegular() {
				return p, ifi, lookupFound
			}
		}
		return "", nil, lookupMiss
	}
	if !fi.Mode().IsRegular() || h.skipExt(real) {
		return "", nil, lookupMiss
	}
	return real, fi, lookupFound
}

// conditionalHeaders are the request headers http.ServeContent reads.
var conditionalHeaders = [...]struct{ header, varName string }{
	{"If-Modified-Since", "HTTP_IF_MODIFIED_SINCE"},
	{"If-Unmodified-Since", "HTTP_IF_UNMODIFIED_SINCE"},
	{"If-None-Match", "HTTP_IF_NONE_MATCH"},
	{"If-Match", "HTTP_IF_MATCH"},
	{"If-Range", "HTTP_IF_RANGE"},
	{"Range", "HTTP_RANGE"},
}

// serveFile sends a file with http.ServeContent: Content-Type from the
// extension (or sniffed), Last-Modified, If-Modified-Since (304) and
// ranges. The body goes through respWriter.ReadFrom, so net/http can use
// sendfile.
func serveFile(st *state, name string, fi os.FileInfo) {
	f, err := os.Open(name)
	if err != nil {
		http.Error(&st.rw, "Not Found", http.StatusNotFound)
		return
	}
	defer f.Close()
	req := &http.Request{Method: st.r.Vars.Value("REQUEST_METHOD"), Header: http.Header{}}
	for _, ch := range conditionalHeaders {
		if v, ok := st.r.Vars.Get(ch.varName); ok {
			req.Header[ch.header] = []string{v}
		}
	}
	http.ServeContent(&st.rw, req, name, fi.ModTime(), f)
}

// buildStatic: "static:<file>" serves that file (404 if it is missing) and
// stops the chain.
func buildStatic(p *parser, args string) (actionFunc, error) {
	if strings.TrimSpace(args) == "" {
		return nil, errors.New("missing file name")
	}
	t, err := p.tmpl(args)
	if err != nil {
		return nil, err
	}
	return func(st *state) verdict {
		name := t.str(st)
		fi, err := os.Stat(name)
		if err != nil || !fi.Mode().IsRegular() {
			http.Error(&st.rw, "Not Found", http.StatusNotFound)
			return vBreak
		}
		serveFile(st, name, fi)
		return vBreak
	}, nil
}

// buildFile: "file:filename=<f>[,status=N][,content_type=T][,mime=1][,no_cl=1]"
// sends a file with fixed headers (text/html unless told otherwise), as
// uWSGI's router_static does. file-next goes on when the file cannot be
// opened.
func buildFile(onMissing verdict) func(*parser, string) (actionFunc, error) {
	return func(p *parser, args string) (actionFunc, error) {
		kv, err := parseKV(args, "filename", "status", "content_type", "mime", "no_cl", "nocl", "no_content_length")
		if err != nil {
			return nil, err
		}
		if kv["filename"] == "" {
			return nil, errors.New("filename= is required")
		}
		fname, err := p.tmpl(kv["filename"])
		if err != nil {
			return nil, err
		}
		status := http.StatusOK
		if s, ok := kv["status"]; ok {
			if status, err = parseStatus(s); err != nil {
				return nil, err
			}
		}
		ct := kv["content_type"]
		if ct == "" {
			ct = "text/html"
		}
		useMime := isTrue(kv["mime"])
		noCL := isTrue(kv["no_cl"]) || isTrue(kv["nocl"]) || isTrue(kv["no_content_length"])
		return func(st *state) verdict {
			name := fname.str(st)
			f, err := os.Open(name)
			if err != nil {
				return onMissing
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return vBreak
			}
			h := st.rw.Header()
			ctype := ct
			if useMime {
				if m := mime.TypeByExtension(filepath.Ext(name)); m != "" {
					ctype = m
				}
			}
			h.Set("Content-Type", ctype)
			if !noCL {
				h.Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
			}
			st.rw.WriteHeader(status)
			if _, err := io.Copy(&st.rw, f); err != nil {
				st.h.log.Debug("file route: sending failed", "file", name, "error", err)
			}
			return vBreak
		}, nil
	}
}
