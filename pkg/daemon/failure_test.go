package daemon

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/logfmt"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
	"github.com/tunneld/tunneld/pkg/watch"
)

// levelLines are the lines of log at level or above (of DEBUG, INFO,
// WARN, ERROR), from their level on: without their times.
func levelLines(log, level string) []string {
	levels := []string{"DEBUG", "INFO", "WARN", "ERROR"}
	var out []string
	for _, line := range strings.Split(log, "\n") {
		i := strings.Index(line, " level=")
		if i < 0 {
			continue
		}
		line = line[i+1:]
		l, _, _ := strings.Cut(strings.TrimPrefix(line, "level="), " ")
		if slices.Index(levels, l) >= slices.Index(levels, level) {
			out = append(out, line)
		}
	}
	return out
}

// gate holds the kernel's first operation that match accepts until the
// test lets it go: entered is closed when it comes, release lets it be
// applied. Only that one is held.
type gate struct {
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}), release: make(chan struct{})}
}

// fail is a fakekernel Fail function holding the first operation match
// accepts.
func (g *gate) fail(match func(plan.Op) bool) func(plan.Op) error {
	return func(op plan.Op) error {
		if match(op) {
			g.once.Do(func() {
				close(g.entered)
				<-g.release
			})
		}
		return nil
	}
}

// routeAdd matches the addition of tunneld's route to dst.
func routeAdd(dst string) func(plan.Op) bool {
	return func(op plan.Op) bool {
		return op.Kind == plan.RouteAdd && op.Route.Dst == netip.MustParsePrefix(dst)
	}
}

// TestStopCutsAConvergeShort: a stop (SIGTERM) while a converge is
// applying, a reload's (SIGHUP just before) or a hint's, cancels it; that
// is no failure and is not logged as one (a tester saw `level=ERROR
// msg="converge failed" reason=reload err="context canceled"`), and the
// teardown follows as after any stop.
func TestStopCutsAConvergeShort(t *testing.T) {
	for _, tc := range []struct {
		name string
		// start begins a converge that adds the route to dst.
		start func(h *harness)
		dst   string
	}{
		{"reload", func(h *harness) {
			h.mu.Lock()
			h.cfg = strings.Replace(baseConfig, `to = "10.9.0.0/16"`, `to = "10.8.0.0/16"`, 1)
			h.mu.Unlock()
			h.reload <- struct{}{}
		}, "10.8.0.0/16"},
		{"hint", func(h *harness) {
			h.writes() // take the lock
			h.k.Routes = slices.DeleteFunc(h.k.Routes, func(r fakekernel.Route) bool { return r.Dst == netip.MustParsePrefix("10.9.0.0/16") })
			h.events <- watch.Event{Kind: watch.Route}
		}, "10.9.0.0/16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log syncbuf.Buffer
			h := startLogging(t, baseConfig, logfmt.New(&log, logfmt.Info))
			g := newGate()
			h.k.SetFail(g.fail(routeAdd(tc.dst)))
			tc.start(h)
			select {
			case <-g.entered:
			case <-time.After(10 * time.Second):
				t.Fatal("the converge did not come to the route within 10s")
			}
			h.cancel()
			close(g.release)
			if err := h.stop(); err != nil {
				t.Errorf("Run returned %v", err)
			}
			got := levelLines(log.String(), "WARN")
			if diff := cmp.Diff([]string(nil), got); diff != "" {
				t.Errorf("warn and error lines (-want +got):\n%s\nthe log:\n%s", diff, log.String())
			}
			for _, want := range []string{
				`level=INFO msg="convergence cut short: tunneld is stopping" reason=`,
				`level=INFO msg="stopped; everything tunneld owned is removed"`,
			} {
				if !strings.Contains(log.String(), want) {
					t.Errorf("no %q in the log:\n%s", want, log.String())
				}
			}
			if len(h.k.Tunnels) != 0 || len(h.routes()) != 0 || h.k.Sysctls[model.IPForward] != "0" || h.k.Filter() != nil {
				t.Errorf("the stop left state behind: tunnels %v routes %v forward %s filter %v", h.k.Tunnels, h.routes(), h.k.Sysctls[model.IPForward], h.k.Filter())
			}
		})
	}
}
