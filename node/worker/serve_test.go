package worker

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/gouwsgi/gouwsgi/node/wire"
)

func TestCopyHead(t *testing.T) {
	enc := func(pairs ...string) []byte {
		var vs wire.Vars
		for i := 0; i < len(pairs); i += 2 {
			vs = append(vs, wire.Var{Key: pairs[i], Value: pairs[i+1]})
		}
		b, err := vs.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name    string
		payload []byte
		code    int
		want    http.Header
		wantErr bool
	}{
		{"status only", enc(":status", "204 No Content"), 204, http.Header{}, false},
		{"headers", enc(":status", "200 OK", "Content-Type", "text/plain", "x-lower", "1"), 200,
			http.Header{"Content-Type": {"text/plain"}, "X-Lower": {"1"}}, false},
		{"repeated header keeps both", enc(":status", "200 OK", "Set-Cookie", "a=1", "X-A", "x", "Set-Cookie", "b=2"), 200,
			http.Header{"Set-Cookie": {"a=1", "b=2"}, "X-A": {"x"}}, false},
		{"empty", nil, 0, nil, true},
		{"no status first", enc("Content-Type", "text/plain", ":status", "200 OK"), 0, nil, true},
		{"bad status", enc(":status", "OK"), 0, nil, true},
		{"truncated", enc(":status", "200 OK", "X-A", "abc")[:20], 0, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := http.Header{}
			code, err := copyHead(hdr, tc.payload)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error, got code %d and %v", code, hdr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !reflect.DeepEqual(hdr, tc.want) {
				t.Errorf("got %d %v, want %d %v", code, hdr, tc.code, tc.want)
			}
		})
	}
	t.Run("appending to a header leaves the next one alone", func(t *testing.T) {
		hdr := http.Header{}
		if _, err := copyHead(hdr, enc(":status", "200 OK", "X-A", "1", "X-B", "2")); err != nil {
			t.Fatal(err)
		}
		hdr.Add("X-A", "added")
		if got := hdr["X-B"]; !reflect.DeepEqual(got, []string{"2"}) {
			t.Errorf("X-B = %q after adding to X-A", got)
		}
	})
}
