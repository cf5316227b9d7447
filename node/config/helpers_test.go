package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeFile writes content to name under dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// mustLoad loads and fails the test on error.
func mustLoad(t *testing.T, args, env []string) *Config {
	t.Helper()
	c, err := Load(args, env)
	if err != nil {
		t.Fatalf("Load(%q): %v", args, err)
	}
	return c
}

// loadINI writes content as app.ini in a temp dir and loads it.
func loadINI(t *testing.T, content string, env ...string) (*Config, error) {
	t.Helper()
	p := writeFile(t, t.TempDir(), "app.ini", content)
	return Load([]string{"--ini", p}, env)
}

// want is a check on a loaded Config.
type want map[string]any

// check compares options: a string is Str, an int is Int, a bool is Bool,
// a []string is List.
func (w want) check(t *testing.T, c *Config) {
	t.Helper()
	for name, v := range w {
		switch v := v.(type) {
		case string:
			if got := c.Str(name); got != v {
				t.Errorf("Str(%q) = %q, want %q", name, got, v)
			}
		case int:
			if got := c.Int(name); got != v {
				t.Errorf("Int(%q) = %d, want %d", name, got, v)
			}
		case bool:
			if got := c.Bool(name); got != v {
				t.Errorf("Bool(%q) = %v, want %v", name, got, v)
			}
		case []string:
			if got := c.List(name); !slices.Equal(got, v) {
				t.Errorf("List(%q) = %q, want %q", name, got, v)
			}
		default:
			t.Fatalf("bad want type %T", v)
		}
	}
}

// hasNotice reports whether some notice contains every part.
func hasNotice(c *Config, parts ...string) bool {
	for _, n := range c.Notices() {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(n, p)
		}
		if ok {
			return true
		}
	}
	return false
}
