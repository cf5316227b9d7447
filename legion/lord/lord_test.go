package lord

import (
	"testing"
	"time"
)

func TestPick(t *testing.T) {
	tests := []struct {
		name   string
		cands  []Candidate
		pinned string
		want   string
		ok     bool
	}{
		{"highest valor", []Candidate{{"a", 1, true}, {"b", 9, true}, {"c", 5, true}}, "", "b", true},
		{"tie by lowest id", []Candidate{{"z", 5, true}, {"m", 5, true}, {"q", 1, true}}, "", "m", true},
		{"ineligible skipped", []Candidate{{"a", 1, true}, {"b", 9, false}}, "", "a", true},
		{"arbiter never lord", []Candidate{{"a", 0, true}}, "", "", false},
		{"arbiter pinned ignored", []Candidate{{"a", 0, true}, {"b", 1, true}}, "a", "b", true},
		{"pinned wins over valor", []Candidate{{"a", 1, true}, {"b", 9, true}}, "a", "a", true},
		{"pinned but dead", []Candidate{{"a", 1, false}, {"b", 9, true}}, "a", "b", true},
		{"nobody", nil, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Pick(tt.cands, tt.pinned)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("Pick = %q,%v want %q,%v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestFence(t *testing.T) {
	t0 := time.Unix(1000, 0)
	lease, margin := 300*time.Millisecond, 100*time.Millisecond
	f := NewFence(lease, margin, t0)

	if f.LeaseExpired("web", 1, t0.Add(399*time.Millisecond)) {
		t.Fatal("a new leader must wait lease+margin from taking office")
	}
	if !f.LeaseExpired("web", 1, t0.Add(400*time.Millisecond)) {
		t.Fatal("lease should be over")
	}
	g := t0.Add(time.Second)
	if !f.Grant("web", 1, g) {
		t.Fatal("grant refused")
	}
	if f.LeaseExpired("web", 1, g.Add(lease)) {
		t.Fatal("expired before lease+margin from the last grant")
	}
	at := f.Revoke("web", 1)
	if want := g.Add(lease + margin); !at.Equal(want) {
		t.Fatalf("successor at %v, want %v", at, want)
	}
	if f.Grant("web", 1, g.Add(time.Millisecond)) {
		t.Fatal("granted after revoke")
	}
	if !f.Revoked("web", 1) || f.Revoked("web", 2) {
		t.Fatal("revoked state wrong")
	}
	if !f.Grant("web", 2, g.Add(2*time.Millisecond)) {
		t.Fatal("a new epoch starts unrevoked")
	}
}
