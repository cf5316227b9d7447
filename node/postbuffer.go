package node

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/gouwsgi/gouwsgi/node/request"
)

// postBuffer implements post-buffering: the whole request body is read
// before a worker is involved, so a slow upload never holds a worker;
// bodies up to limit stay in memory, larger ones are spooled to a
// temporary file. A chunked body's length is then known and set as
// CONTENT_LENGTH, which frameworks that ignore wsgi.input_terminated
// (Django) need.
type postBuffer struct {
	next  request.Handler
	limit int64
	dir   string
}

func (p postBuffer) ServeRequest(w http.ResponseWriter, r *request.Request) {
	if r.Body == nil {
		p.next.ServeRequest(w, r)
		return
	}
	var buf bytes.Buffer
	n, err := io.CopyN(&buf, r.Body, p.limit+1)
	if err != nil && err != io.EOF {
		http.Error(w, "400 Bad Request: request body cut short", http.StatusBadRequest)
		return
	}
	if n <= p.limit {
		r.Body = &buf
		r.Vars.Set("CONTENT_LENGTH", strconv.Itoa(buf.Len()))
		p.next.ServeRequest(w, r)
		return
	}
	f, err := os.CreateTemp(p.dir, "gouwsgi-body-")
	if err != nil {
		http.Error(w, "500 Internal Server Error: cannot spool the request body", http.StatusInternalServerError)
		return
	}
	defer os.Remove(f.Name())
	defer f.Close()
	total, err := io.Copy(f, io.MultiReader(&buf, r.Body))
	if err != nil {
		http.Error(w, fmt.Sprintf("400 Bad Request: request body cut short after %d bytes", total), http.StatusBadRequest)
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		http.Error(w, "500 Internal Server Error: cannot read the spooled request body", http.StatusInternalServerError)
		return
	}
	r.Body = f
	r.Vars.Set("CONTENT_LENGTH", strconv.FormatInt(total, 10))
	p.next.ServeRequest(w, r)
}
