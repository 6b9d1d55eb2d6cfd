package daemon

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/watch"
)

// TestPacer replays hints and converges at given milliseconds and checks
// when the pending batch is due after each hint.
func TestPacer(t *testing.T) {
	type step struct {
		// hint at ms (followed: of a device tunnels follow); or, with
		// took > 0, a converge ending at ms.
		at, took int
		waiting  bool
		followed bool
	}
	hint := func(at int) step { return step{at: at} }
	followed := func(at int) step { return step{at: at, followed: true} }
	conv := func(end, took int, waiting bool) step { return step{at: end, took: took, waiting: waiting} }
	for _, tc := range []struct {
		name string
		// debounce in ms (default 2)
		debounce int
		// coming: converges keep coming (busyLog said so)
		coming bool
		steps  []step
		// due lists, per hint, when the pending batch is due (ms).
		due []int
	}{{
		name:  "a lone hint waits the debounce",
		steps: []step{conv(0, 5, false), hint(100)},
		due:   []int{102},
	}, {
		name:  "each hint postpones the batch by the debounce",
		steps: []step{hint(100), hint(101), hint(101), hint(103)},
		due:   []int{102, 103, 103, 105},
	}, {
		name:  "but never past MaxDebounce after its first hint",
		steps: []step{hint(100), hint(130), hint(149), hint(150), hint(160)},
		due:   []int{102, 132, 150, 150, 150},
	}, {
		name:  "a converge ends the batch; the next hint starts another",
		steps: []step{hint(100), hint(140), conv(160, 8, false), hint(161), hint(200)},
		due:   []int{102, 142, 163, 202},
	}, {
		name:  "hints during one converge: the next batch is not held back",
		steps: []step{hint(100), conv(110, 8, true), hint(110)},
		due:   []int{102, 112},
	}, {
		name:  "hints during two converges in a row: the loop rests as long as the last took",
		steps: []step{hint(100), conv(110, 8, true), hint(110), conv(122, 10, true), hint(122), hint(131)},
		due:   []int{102, 112, 132, 133},
	}, {
		name:  "the rest never exceeds MaxRest",
		steps: []step{conv(3000, 3000, true), conv(6000, 3000, true), hint(6000)},
		due:   []int{7000},
	}, {
		name:  "a quiet converge ends the storm",
		steps: []step{conv(100, 50, true), conv(200, 50, true), conv(300, 50, false), hint(300)},
		due:   []int{302},
	}, {
		name:  "a batch with a followed address waits the longer quiet, to the same cut-off",
		steps: []step{hint(100), followed(101), hint(110), hint(140), conv(160, 8, false), hint(200)},
		due:   []int{102, 121, 130, 150, 202},
	}, {
		name:     "the longer quiet never shortens a debounce longer still",
		debounce: 30,
		steps:    []step{followed(100), hint(101)},
		due:      []int{130, 131},
	}, {
		name:  "a storm's rest already over: the debounce alone",
		steps: []step{conv(100, 50, true), conv(200, 50, true), hint(400)},
		due:   []int{402},
	}, {
		name:   "converges that keep coming: the loop rests BusyRest times as long as the last took, storm or not",
		coming: true,
		steps:  []step{conv(100, 10, false), hint(101), hint(150), conv(200, 10, false), hint(250)},
		due:    []int{190, 190, 290},
	}, {
		name:   "converges that keep coming: the rest never exceeds MaxRest",
		coming: true,
		steps:  []step{conv(1000, 200, false), hint(1000)},
		due:    []int{2000},
	}, {
		name:   "converges that keep coming: a rest already over leaves the debounce",
		coming: true,
		steps:  []step{conv(100, 10, false), hint(300)},
		due:    []int{302},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			debounce := 2 * time.Millisecond
			if tc.debounce > 0 {
				debounce = time.Duration(tc.debounce) * time.Millisecond
			}
			p := &pacer{debounce: debounce, followDebounce: 20 * time.Millisecond, maxDebounce: 50 * time.Millisecond, maxRest: time.Second, coming: tc.coming}
			at := func(ms int) time.Time { return time.Unix(1000, 0).Add(time.Duration(ms) * time.Millisecond) }
			var got []int
			for _, s := range tc.steps {
				if s.took > 0 {
					p.converged(at(s.at-s.took), at(s.at), s.waiting)
					continue
				}
				got = append(got, int(p.hint(at(s.at), s.followed).Sub(at(0))/time.Millisecond))
			}
			if diff := cmp.Diff(tc.due, got); diff != "" {
				t.Errorf("due (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStorming: the loop is in a storm from the second converge in a row
// that found hints waiting until the rest after it is over, however long
// the count of such converges lasts.
func TestStorming(t *testing.T) {
	p := &pacer{debounce: 2 * time.Millisecond, maxDebounce: 50 * time.Millisecond, maxRest: time.Second}
	at := func(ms int) time.Time { return time.Unix(1000, 0).Add(time.Duration(ms) * time.Millisecond) }
	p.converged(at(90), at(100), true)
	if p.storming(at(101)) {
		t.Error("storming after one busy converge")
	}
	p.converged(at(100), at(110), true)
	for _, tt := range []struct {
		at   int
		want bool
	}{{110, true}, {119, true}, {120, false}, {500, false}} {
		if got := p.storming(at(tt.at)); got != tt.want {
			t.Errorf("storming at %d ms = %v, want %v (rest until 120)", tt.at, got, tt.want)
		}
	}
	p.converged(at(500), at(510), false)
	if p.storming(at(511)) {
		t.Error("storming after a quiet converge")
	}
	// Converges that keep coming rest the batches, not the short way.
	p.coming = true
	if p.storming(at(511)) {
		t.Error("storming after a quiet converge while converges keep coming")
	}
}

// slowKernel makes every observation take delay, and notes when each
// began.
type slowKernel struct {
	kernel.Kernel
	delay    time.Duration
	mu       sync.Mutex
	observed []time.Time
}

func (k *slowKernel) Observe(ctx context.Context, scope model.Scope) (model.State, model.Inputs, error) {
	k.mu.Lock()
	k.observed = append(k.observed, time.Now())
	k.mu.Unlock()
	time.Sleep(k.delay)
	return k.Kernel.Observe(ctx, scope)
}

// TestStormIsPaced floods the loop with hints while each converge (one
// read with nothing to do) takes twice MaxDebounce: from the third
// converge of the storm on, each starts no sooner after the end of the one
// before than that one took (without the rest, the debounce would start
// it at most MaxDebounce after). Only lower bounds are checked, which a
// slow machine cannot break: the loop's timers never fire early.
func TestStormIsPaced(t *testing.T) {
	starts, ends := flood(t, 2*MaxDebounce, 200*time.Microsecond)
	if len(ends) < 4 {
		t.Fatalf("a storm of 2 s gave %d converges; too few to check", len(ends))
	}
	for i := 2; i < len(ends); i++ {
		took, gap := ends[i-1].Sub(starts[i-1]), starts[i].Sub(ends[i-1])
		if gap < took {
			t.Errorf("storm converge %d started %s after the one before ended, which took %s", i+1, gap, took)
		}
	}
}

// TestBusyRest sends the loop a hint every 5 ms while each converge takes
// 4 ms: once converges keep coming (the BusyConverges-th), each starts no
// sooner after the end of the one before than BusyRest times as long as
// that one took. Without the rest, the debounce would start it 1 ms after
// the next hint, about 5 ms after. Only lower bounds are checked.
func TestBusyRest(t *testing.T) {
	starts, ends := flood(t, 4*time.Millisecond, 5*time.Millisecond)
	if len(ends) < BusyConverges+5 {
		t.Fatalf("hints for 2 s gave %d converges; too few to check", len(ends))
	}
	for i := BusyConverges; i < len(ends); i++ {
		took, gap := ends[i-1].Sub(starts[i-1]), starts[i].Sub(ends[i-1])
		if gap < BusyRest*took {
			t.Errorf("converge %d started %s after the one before ended, which took %s", i+1, gap, took)
		}
	}
}

// flood runs a daemon whose every observation takes delay and sends it
// a hint every every (when the channel has room) for 2 s; it returns when
// each converge after the first began its last observation and ended.
// Every converge of the flood has one observation (nothing to do).
func flood(t *testing.T, delay, every time.Duration) (starts, ends []time.Time) {
	fk := fakekernel.New()
	fk.AddDevice(model.Device{Name: "wan", MTU: 1500, Up: true, Running: true, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.7/24")}})
	k := &slowKernel{Kernel: fk, delay: delay}
	events := make(chan watch.Event, 1)
	var mu sync.Mutex
	d := New(Deps{
		Kernel: k, Events: events, Debounce: time.Millisecond,
		Load: func() (*config.Config, error) {
			return config.Parse("t.toml", []byte("[tunnel.moe]\nmode = \"ipip\"\nlocal = \"wan\"\nremote = \"198.51.100.2\"\n"))
		},
		OnConverge: func(Facts) {
			mu.Lock()
			defer mu.Unlock()
			ends = append(ends, time.Now())
			k.mu.Lock()
			defer k.mu.Unlock()
			starts = append(starts, k.observed[len(k.observed)-1])
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	converges := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(ends)
	}
	for converges() < 1 {
		time.Sleep(time.Millisecond)
	}
	for stop := time.Now().Add(2 * time.Second); time.Now().Before(stop); time.Sleep(every) {
		select {
		case events <- watch.Event{Kind: watch.Route}:
		default:
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("hints for 2 s, converges of %s: %d converges", delay, len(ends)-1)
	return starts[1:], ends[1:]
}
