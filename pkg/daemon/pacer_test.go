package daemon

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPacer replays hints and converges at given milliseconds and checks
// when each new batch is due.
func TestPacer(t *testing.T) {
	type step struct {
		// hint at ms; or, with took > 0, a converge ending at ms.
		at, took int
		waiting  bool
	}
	hint := func(at int) step { return step{at: at} }
	conv := func(end, took int, waiting bool) step { return step{at: end, took: took, waiting: waiting} }
	for _, tc := range []struct {
		name  string
		steps []step
		// due lists, per hint, when its batch is due (ms), or -1 when
		// the hint joined a batch already pending.
		due []int
	}{{
		name:  "a lone hint waits the debounce",
		steps: []step{conv(0, 5, false), hint(100)},
		due:   []int{102},
	}, {
		name:  "later hints join the batch and do not postpone it",
		steps: []step{hint(100), hint(101), hint(101), hint(102)},
		due:   []int{102, -1, -1, -1},
	}, {
		name:  "a converge ends the batch; the next hint starts another",
		steps: []step{hint(100), conv(110, 8, false), hint(111)},
		due:   []int{102, 113},
	}, {
		name:  "hints during one converge: the next batch is not held back",
		steps: []step{hint(100), conv(110, 8, true), hint(110)},
		due:   []int{102, 112},
	}, {
		name:  "hints during two converges in a row: the loop rests as long as the last took",
		steps: []step{hint(100), conv(110, 8, true), hint(110), conv(122, 10, true), hint(122)},
		due:   []int{102, 112, 132},
	}, {
		name:  "the rest never exceeds MaxRest",
		steps: []step{conv(3000, 3000, true), conv(6000, 3000, true), hint(6000)},
		due:   []int{7000},
	}, {
		name:  "a quiet converge ends the storm",
		steps: []step{conv(100, 50, true), conv(200, 50, true), conv(300, 50, false), hint(300)},
		due:   []int{302},
	}, {
		name:  "a storm's rest already over: the debounce alone",
		steps: []step{conv(100, 50, true), conv(200, 50, true), hint(400)},
		due:   []int{402},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p := &pacer{debounce: 2 * time.Millisecond, maxRest: time.Second}
			at := func(ms int) time.Time { return time.Unix(1000, 0).Add(time.Duration(ms) * time.Millisecond) }
			var got []int
			for _, s := range tc.steps {
				if s.took > 0 {
					p.converged(at(s.at-s.took), at(s.at), s.waiting)
					continue
				}
				due, armed := p.hint(at(s.at))
				if !armed {
					got = append(got, -1)
					continue
				}
				got = append(got, int(due.Sub(at(0))/time.Millisecond))
			}
			if diff := cmp.Diff(tc.due, got); diff != "" {
				t.Errorf("due (-want +got):\n%s", diff)
			}
		})
	}
}
