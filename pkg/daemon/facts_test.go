package daemon

import (
	"testing"
	"time"
)

// TestRebase: a time the daemon took is given in the wall clock of now
// by its monotonic reading, the same instant while the clock was not
// stepped (a stepped clock, which a test cannot make, was checked in the
// guest: a hold's end read 1970 after NTP's step to 2026); zero stays
// zero, and a time of another clock (no monotonic reading) stays.
func TestRebase(t *testing.T) {
	now := time.Now()
	later := now.Add(5 * time.Minute)
	wall := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		t    time.Time
	}{
		{"later", later},
		{"earlier", now.Add(-time.Hour)},
		{"another clock's", wall},
	} {
		if got := rebase(now, tt.t); !got.Equal(tt.t) {
			t.Errorf("%s: rebase gives %v, want %v", tt.name, got, tt.t)
		}
	}
	if got := rebase(now, time.Time{}); !got.IsZero() {
		t.Errorf("zero: rebase gives %v", got)
	}
}
