package daemon

import (
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tunneld/tunneld/pkg/watch"
)

// TestKeepBeforeConverges: the state directory is kept (Deps.Keep)
// before the convergences after the first, an event's and a reload's
// among them (a tester's reload after a wipe left the directory gone
// until the resync); when another tunneld has taken it, the loop stops
// at once, without the teardown, which would remove what that one keeps
// (a tester's first daemon tore down under the second).
func TestKeepBeforeConverges(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	var lost error
	keep := func() error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return lost
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return calls
	}
	h := startOpts(t, baseConfig, opts{keep: keep})
	defer h.stop()
	if n := count(); n != 0 {
		t.Errorf("kept %d times before the first convergence's end, want 0 (the start makes the directory)", n)
	}
	h.event(watch.Link)
	if n := count(); n != 1 {
		t.Errorf("kept %d times after an event's convergence, want 1", n)
	}
	h.reload <- syscall.SIGHUP
	h.next()
	if n := count(); n != 2 {
		t.Errorf("kept %d times after a reload, want 2", n)
	}
	held := errors.New("state directory /run/tunneld: in use by tunneld run (pid 42)")
	mu.Lock()
	lost = held
	mu.Unlock()
	writes := h.writes()
	h.events <- watch.Event{Kind: watch.Link}
	var err error
	select {
	case err = <-h.done:
		h.stopped, h.err = true, err
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not stop when the directory was lost")
	}
	var le *LostError
	if !errors.As(err, &le) || !errors.Is(err, held) {
		t.Errorf("Run: %v, want a *LostError of the keep's error", err)
	}
	if w := h.writes() - writes; w != 0 || h.link().Name != "moe" {
		t.Errorf("the lost daemon wrote %d times (moe %+v): no teardown wanted", w, h.link())
	}
}

// TestKeepBeforeTeardown: a daemon stopped (SIGTERM) after another
// tunneld took its wiped state directory, before a convergence found
// that, stops without the teardown (a tester's stop removed what the
// other kept); one whose directory is its own tears down as ever.
func TestKeepBeforeTeardown(t *testing.T) {
	for _, tt := range []struct {
		name     string
		lost     bool
		teardown bool
	}{{"lost", true, false}, {"its own", false, true}} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var lost error
			h := startOpts(t, baseConfig, opts{keep: func() error {
				mu.Lock()
				defer mu.Unlock()
				return lost
			}})
			if tt.lost {
				mu.Lock()
				lost = errors.New("state directory /run/tunneld: in use by tunneld run (pid 42)")
				mu.Unlock()
			}
			err := h.stop()
			var le *LostError
			if got := errors.As(err, &le); got != tt.lost {
				t.Errorf("Run: %v; lost %v, want %v", err, got, tt.lost)
			}
			if gone := h.link().Name == ""; gone != tt.teardown {
				t.Errorf("moe removed: %v, want %v", gone, tt.teardown)
			}
		})
	}
}
