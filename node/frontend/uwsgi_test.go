package frontend

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gouwsgi/gouwsgi/node/request"
	"github.com/gouwsgi/gouwsgi/node/wire"
)

func TestUWSGISocket(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := New(DefaultConfig(), request.HandlerFunc(echoHandler), nil, log)
	addr, err := s.AddUWSGI("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, 2*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	packet := func(mod1 uint8, pairs ...string) []byte {
		var vs wire.Vars
		for i := 0; i < len(pairs); i += 2 {
			vs = append(vs, wire.Var{Key: pairs[i], Value: pairs[i+1]})
		}
		b, err := wire.AppendPacket(nil, mod1, 0, vs)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		raw  []byte
		want []string
	}{
		{"request", packet(0, "REQUEST_METHOD", "GET", "PATH_INFO", "/x", "SERVER_PROTOCOL", "HTTP/1.1", "HTTP_X_CUSTOM", "yes"),
			[]string{"HTTP/1.1 200 OK\r\n", "HTTP_X_CUSTOM=yes\n", "PATH_INFO=/x\n"}},
		{"body", append(packet(0, "REQUEST_METHOD", "POST", "PATH_INFO", "/", "CONTENT_LENGTH", "4"), "data"...),
			[]string{"HTTP/1.0 200 OK\r\n", "body=data"}},
		{"modifier 30 strips SCRIPT_NAME", packet(30, "SCRIPT_NAME", "/app", "PATH_INFO", "/app/page", "SERVER_PROTOCOL", "HTTP/1.1"),
			[]string{"PATH_INFO=/page\n"}},
		{"truncated packet closed", packet(0, "REQUEST_METHOD", "GET")[:7], nil},
		{"unknown modifier closed", packet(5, "REQUEST_METHOD", "GET"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(tc.raw); err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				_ = c.(*net.TCPConn).CloseWrite()
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			b, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			out := string(b)
			if tc.want == nil && out != "" {
				t.Fatalf("got %q, want the connection closed without a response", out)
			}
			rest := out
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (in order); got:\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}
