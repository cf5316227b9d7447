package router

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/node/request"
)

// staticTree lays out a document root, a second root for static-map2, a
// check-static root and a secret outside all of them.
func staticTree(t *testing.T) (root, root2, docroot, outside string) {
	t.Helper()
	base := t.TempDir()
	root, root2, docroot, outside = filepath.Join(base, "root"), filepath.Join(base, "root2"), filepath.Join(base, "docroot"), filepath.Join(base, "outside")
	for _, d := range []string{root, filepath.Join(root, "sub"), filepath.Join(root, "emptydir"), filepath.Join(root2, "files"), docroot, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, root, "style.css", "body{}")
	writeFile(t, root, "sub/index.html", "<h1>idx</h1>")
	writeFile(t, root, "script.php", "<?php")
	writeFile(t, root2, "files/x.txt", "x2")
	writeFile(t, docroot, "robots.txt", "User-agent: *")
	writeFile(t, outside, "secret.txt", "secret")
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "style.css"), filepath.Join(root, "inner-link.css")); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(root, "style.css"), old, old); err != nil {
		t.Fatal(err)
	}
	return root, root2, docroot, outside
}

func TestStaticFiles(t *testing.T) {
	root, root2, docroot, _ := staticTree(t)
	lines := []string{
		"static-map = /static=" + root,
		"static-map2 = /files=" + root2,
		"check-static = " + docroot,
		"static-map = /favicon.ico=" + filepath.Join(root, "style.css"),
		"static-index = index.html",
		"static-skip-ext = .php",
	}
	modTime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).Format(http.TimeFormat)
	runActionCases(t, []actionCase{
		{name: "file", lines: lines, req: newReq("GET", "/static/style.css"), status: 200, body: str("body{}"),
			header: map[string]string{"Content-Type": "text/css; charset=utf-8", "Last-Modified": modTime, "Content-Length": "6"}},
		{name: "HEAD", lines: lines, req: newReq("HEAD", "/static/style.css"), status: 200,
			header: map[string]string{"Content-Length": "6"}},
		{name: "if-modified-since", lines: lines, req: newReq("GET", "/static/style.css", "HTTP_IF_MODIFIED_SINCE", modTime),
			status: 304, body: str("")},
		{name: "modified since an older date", lines: lines,
			req:    newReq("GET", "/static/style.css", "HTTP_IF_MODIFIED_SINCE", "Mon, 01 Jan 2024 00:00:00 GMT"),
			status: 200, body: str("body{}")},
		{name: "range", lines: lines, req: newReq("GET", "/static/style.css", "HTTP_RANGE", "bytes=0-1"), status: 206, body: str("bo")},
		{name: "index", lines: lines, req: newReq("GET", "/static/sub/"), status: 200, body: str("<h1>idx</h1>"),
			header: map[string]string{"Content-Type": "text/html; charset=utf-8"}},
		{name: "directory without index goes to the app", lines: lines, req: newReq("GET", "/static/emptydir/"), app: true},
		{name: "missing file goes to the app", lines: lines, req: newReq("GET", "/static/nope.css"), app: true},
		{name: "skipped extension goes to the app", lines: lines, req: newReq("GET", "/static/script.php"), app: true},
		{name: "POST goes to the app", lines: lines, req: newReq("POST", "/static/style.css"), app: true},
		{name: "dotdot is forbidden", lines: lines, req: newReq("GET", "/static/../outside/secret.txt"), status: 403},
		{name: "nested dotdot is forbidden", lines: lines, req: newReq("GET", "/static/sub/../../outside/secret.txt"), status: 403},
		{name: "symlink out of the root is forbidden", lines: lines, req: newReq("GET", "/static/escape"), status: 403},
		{name: "symlink inside the root is served", lines: lines, req: newReq("GET", "/static/inner-link.css"), status: 200, body: str("body{}")},
		{name: "static-map2 appends the full path", lines: lines, req: newReq("GET", "/files/x.txt"), status: 200, body: str("x2")},
		{name: "check-static", lines: lines, req: newReq("GET", "/robots.txt"), status: 200, body: str("User-agent: *")},
		{name: "mount on a file", lines: lines, req: newReq("GET", "/favicon.ico"), status: 200, body: str("body{}")},
		{name: "routes run before a static file", lines: append([]string{"route = ^/static/style return:403"}, lines...),
			req: newReq("GET", "/static/style.css"), status: 403},
		{name: "route headers apply to a static file", lines: append([]string{"route = ^/static addheader:X-R: 1"}, lines...),
			req: newReq("GET", "/static/style.css"), status: 200, header: map[string]string{"X-R": "1"}},
	})
}

// readFromRecorder records whether the body came through ReadFrom, the
// path on which net/http's ResponseWriter uses sendfile.
type readFromRecorder struct {
	*httptest.ResponseRecorder
	readFrom bool
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.readFrom = true
	return io.Copy(r.ResponseRecorder, src)
}

func TestStaticUsesReadFrom(t *testing.T) {
	root, _, _, _ := staticTree(t)
	r, err := Parse(opts("static-map = /static=" + root))
	if err != nil {
		t.Fatal(err)
	}
	h := r.Handler(request.HandlerFunc(func(http.ResponseWriter, *request.Request) {}), nil, nil)
	rec := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
	h.ServeRequest(rec, newReq("GET", "/static/style.css"))
	if !rec.readFrom || rec.Body.String() != "body{}" {
		t.Fatalf("readFrom %v body %q", rec.readFrom, rec.Body)
	}
}

// TestStaticOverHTTP serves through a real net/http server, where the
// ReadFrom path ends in sendfile.
func TestStaticOverHTTP(t *testing.T) {
	root, _, _, _ := staticTree(t)
	r, err := Parse(opts("static-map = /static=" + root))
	if err != nil {
		t.Fatal(err)
	}
	h := r.Handler(request.HandlerFunc(func(w http.ResponseWriter, _ *request.Request) { w.WriteHeader(404) }), nil, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		h.ServeRequest(w, newReq(hr.Method, hr.URL.RequestURI()))
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/static/style.css")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "body{}" || resp.Header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Fatalf("status %d body %q type %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
}
