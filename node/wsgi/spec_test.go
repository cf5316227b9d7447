package wsgi

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestMergeEnv(t *testing.T) {
	tests := []struct {
		name  string
		lists [][]string
		want  []string
	}{
		{"later list wins in place", [][]string{{"A=1", "B=2"}, {"A=3"}}, []string{"A=3", "B=2"}},
		{"duplicates inside one list", [][]string{{"A=1", "A=2"}}, []string{"A=2"}},
		{"new keys appended", [][]string{{"A=1"}, {"C=3"}, {"B="}}, []string{"A=1", "C=3", "B="}},
		{"value with equals", [][]string{{"A=x=y"}, {"A=z=w"}}, []string{"A=z=w"}},
		{"nothing", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mergeEnv(tc.lists...); !slices.Equal(got, tc.want) {
				t.Errorf("mergeEnv = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSpawnAfterClose checks that a closed spawner refuses to spawn.
func TestSpawnAfterClose(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			spec, _ := appSpec(t, m.lazy, 1)
			sp, err := NewSpawner(context.Background(), spec, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := sp.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := sp.Spawn(context.Background(), 1); !errors.Is(err, ErrClosed) {
				t.Errorf("Spawn after Close: %v, want ErrClosed", err)
			}
			if err := sp.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}
