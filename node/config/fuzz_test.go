package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseINI feeds arbitrary bytes through the whole reading pipeline
// (ini parsing, magic variables, config logic, $ @ % passes, checks): it may
// fail, never panic or hang. Seeds: testdata/fuzz/FuzzParseINI.
func FuzzParseINI(f *testing.F) {
	for _, name := range []string{"seed-route-cache.ini", "seed-standard.ini"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	dir := f.TempDir()
	path := filepath.Join(dir, "fuzz.ini")
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, _ := parseINI(data, "uwsgi")
		for _, ln := range lines {
			if ln.line < 1 {
				t.Fatalf("line number %d", ln.line)
			}
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load([]string{"--ini", path}, []string{"HOME=/root", "UWSGI_LISTEN=5"})
		if err != nil {
			return
		}
		// A loaded config answers every accessor without panicking.
		for _, o := range table {
			c.Str(o.Name)
			c.List(o.Name)
			c.Bool(o.Name)
			c.Int(o.Name)
		}
		_ = c.Notices()
	})
}
