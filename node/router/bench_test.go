package router

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/node/request"
)

// discardWriter is a reusable ResponseWriter, to measure the router alone.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkCacheHit measures the seed route-cache rules answering a hit:
// the path that must beat uWSGI by 3x.
func BenchmarkCacheHit(b *testing.B) {
	r, err := Parse(opts(seedConfig...))
	if err != nil {
		b.Fatal(err)
	}
	cache := newMapCache(&fakeClock{t: time.Unix(1_700_000_000, 0)})
	app := &recApp{body: "miss"}
	h := r.Handler(app, caches{"mycache": cache}, slog.New(slog.DiscardHandler))
	req := newReq("GET", "/feedback?page=1&lang=en", "HTTP_ACCEPT", "*/*", "HTTP_CONNECTION", "keep-alive",
		"SERVER_NAME", "localhost", "SERVER_PORT", "9090", "REMOTE_PORT", "50000", "CONTENT_LENGTH", "", "CONTENT_TYPE", "")
	key := "GET/feedback?page=1&lang=en" + "page=1&lang=en"
	_ = cache.Update(key, []byte(`{"feedback":[1,2,3],"ok":true}`), 10*time.Second)

	check := func(b *testing.B) {
		if app.Calls() != 0 {
			b.Fatalf("the app was called %d times: not a hit", app.Calls())
		}
	}
	b.Run("recorder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeRequest(rec, req)
			if rec.Code != 200 {
				b.Fatalf("status %d", rec.Code)
			}
		}
		check(b)
	})
	b.Run("discard", func(b *testing.B) {
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			h.ServeRequest(w, req)
		}
		check(b)
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			w := &discardWriter{h: http.Header{}}
			r := &request.Request{Vars: append(req.Vars[:0:0], req.Vars...)}
			for pb.Next() {
				clear(w.h)
				h.ServeRequest(w, r)
			}
		})
		check(b)
	})
}
