package bench

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestConverges reads the daemon's converge lines, those of builds before
// the phases were logged too (a baseline may be one), and its lines of the
// short way after an address hint.
func TestConverges(t *testing.T) {
	log := `time=2026-12-03T08:00:00.000Z level=DEBUG msg=converged reason=start ops=3 took=12.5ms
time=2026-12-03T08:00:01.000Z level=INFO msg=changed object="tunnel \"t0\"" cmd="ip link change t0" reason="event: address"
time=2026-12-03T08:00:01.000Z level=DEBUG msg=converged reason="event: address route" ops=1 took=20ms read=6ms apply=1.5ms waited=2.25ms
time=2026-12-03T08:00:01.500Z level=DEBUG msg="followed the address" reason="event: address (tunnel endpoints)" ops=1 took=2ms read=1.25ms apply=0.5ms
time=2026-12-03T08:00:02.000Z level=DEBUG msg=converged reason=resync ops=0 took=900µs read=900µs apply=0s
time=2026-12-03T08:00:03.000Z level=DEBUG msg=converged reason=resync ops=0 took=soon
`
	want := []convergeLog{
		{reason: "start", ops: 3, took: 12.5, read: -1, apply: -1, waited: -1},
		{reason: "event: address route", ops: 1, took: 20, read: 6, apply: 1.5, waited: 2.25},
		{short: true, reason: "event: address (tunnel endpoints)", ops: 1, took: 2, read: 1.25, apply: 0.5, waited: -1},
		{reason: "resync", took: 0.9, read: 0.9, apply: 0, waited: -1},
	}
	if diff := cmp.Diff(want, converges(log), cmp.AllowUnexported(convergeLog{})); diff != "" {
		t.Errorf("converges (-want +got):\n%s", diff)
	}
}
