package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/kernel"
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
			h.reload <- syscall.SIGHUP
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

// renewRace makes the fake kernel lose n times the race that a storm of
// WAN renews runs against the converges: each time an operation moves
// moe's local endpoint, wan's address has been renewed again between
// the converge's read and its write, and the kernel refuses the address
// read, gone by then (EADDRNOTAVAIL). wan's addresses are 192.0.2.101/24,
// 192.0.2.102/24, … in turn.
func renewRace(k *fakekernel.Kernel, n int) {
	i := 0
	k.SetFail(func(op plan.Op) error {
		if op.Kind != plan.LinkChange || op.Link.Name != "moe" || i == n {
			return nil
		}
		i++
		// Fail runs inside the kernel's call, which holds its lock.
		k.Devices["wan"].Addrs = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}), 24)}
		return fmt.Errorf("local %s: %w", op.Link.Local, syscall.EADDRNOTAVAIL)
	})
}

// TestRenewRaceIsCleared: a converge that lost the race against a storm
// of WAN renews (every round of it found the address it read gone when
// it wrote) fails, and its failure is the daemon's last error; the next
// converge works, and that error is cleared: no longer the last error
// (a tester saw status show it as current long after), but the cleared
// one, with when it came and when a convergence cleared it.
func TestRenewRaceIsCleared(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	renewRace(h.k, engine.MaxRounds)
	h.k.SetAddrs("wan", netip.MustParsePrefix("192.0.2.8/24"))
	h.events <- watch.Event{Kind: watch.Addr}
	failed := h.next()
	const lost = `tunnel "moe": local 192.0.2.102: cannot assign requested address`
	if diff := cmp.Diff(lost, failed.LastError); diff != "" {
		t.Fatalf("last error after the race was lost (-want +got):\n%s", diff)
	}
	h.event(watch.Addr)
	f := h.d.Facts()
	if f.LastError != "" || !f.LastErrorAt.IsZero() {
		t.Errorf("after a convergence worked, the last error is still %q (at %s)", f.LastError, f.LastErrorAt)
	}
	want := &ClearedError{Err: lost, At: failed.LastErrorAt, Cleared: f.LastConverge, By: "a convergence"}
	if diff := cmp.Diff(want, f.Cleared); diff != "" {
		t.Errorf("cleared error (-want +got):\n%s", diff)
	}
	if l := h.link(); l.Local != netip.MustParseAddr("192.0.2.103") {
		t.Errorf("tunnel %+v, want it at wan's last address, 192.0.2.103", l)
	}
}

// TestLookupFailureIsCleared: a failed lookup of a peer's name is the
// last error while the name gives no answer; its next answer clears it.
func TestLookupFailureIsCleared(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	h.res.set(errors.New("no such host"))
	waitFacts := func(what string, ok func(Facts) bool) Facts {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if f := h.d.Facts(); ok(f) {
				return f
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s: %+v", what, h.d.Facts())
			}
		}
	}
	failed := waitFacts("the failed lookup", func(f Facts) bool { return f.LastError == "no such host" })
	h.res.set(nil, "198.51.100.2")
	f := waitFacts("the answer", func(f Facts) bool { return f.LastError == "" })
	if c := f.Cleared; c == nil || c.Err != "no such host" || c.By != "an answer for peer.example" || c.At.Before(failed.LastErrorAt) || c.Cleared.Before(c.At) {
		t.Errorf("cleared error %+v, want the lookup's (at or after %s), cleared by an answer for peer.example after it", c, failed.LastErrorAt)
	}
}

// TestFailureFacts: the last error is the latest failure that still
// holds, whatever it is of; a failure ends when what failed works again
// (a convergence, a reload, an answer for its name), and only then; the
// one last over is shown while none holds.
func TestFailureFacts(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2026, 12, 3, 17, 0, s, 0, time.UTC) }
	type step struct {
		// fail: what failed with err; else what worked, by.
		fail     bool
		what, by string
	}
	fail := func(what string) step { return step{fail: true, what: what} }
	work := func(what, by string) step { return step{what: what, by: by} }
	lookup := failedLookup + "peer.example"
	for _, tc := range []struct {
		name  string
		steps []step
		// want: LastError, LastErrorAt (seconds), Cleared.
		want    string
		wantAt  int
		cleared *ClearedError
	}{
		{"converge failed", []step{fail(failedConverge)}, "converge failed at 0", 0, nil},
		{"converge worked again", []step{fail(failedConverge), work(failedConverge, "a convergence")}, "", -1,
			&ClearedError{Err: "converge failed at 0", At: at(0), Cleared: at(1), By: "a convergence"}},
		{"converge failed twice, then worked", []step{fail(failedConverge), fail(failedConverge), work(failedConverge, "a convergence")}, "", -1,
			&ClearedError{Err: "converge failed at 1", At: at(1), Cleared: at(2), By: "a convergence"}},
		{"worked, nothing failed", []step{work(failedConverge, "a convergence")}, "", -1, nil},
		{"reload refused, then taken", []step{fail(failedReload), work(failedReload, "a reload")}, "", -1,
			&ClearedError{Err: "reload failed at 0", At: at(0), Cleared: at(1), By: "a reload"}},
		{"a convergence does not end a refused reload", []step{fail(failedReload), work(failedConverge, "a convergence")}, "reload failed at 0", 0, nil},
		{"lookup failing, converge failed and worked again", []step{fail(lookup), fail(failedConverge), work(failedConverge, "a convergence")}, "lookup peer.example failed at 0", 0, nil},
		{"converge failing, lookup failed and answered", []step{fail(failedConverge), fail(lookup), work(lookup, "an answer for peer.example")}, "converge failed at 0", 0, nil},
		{"both over: the last cleared", []step{fail(lookup), fail(failedConverge), work(failedConverge, "a convergence"), work(lookup, "an answer for peer.example")}, "", -1,
			&ClearedError{Err: "lookup peer.example failed at 0", At: at(0), Cleared: at(3), By: "an answer for peer.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dm := New(Deps{})
			dm.mu.Lock()
			defer dm.mu.Unlock()
			for i, s := range tc.steps {
				if s.fail {
					dm.failed(s.what, fmt.Sprintf("%s failed at %d", strings.TrimSpace(s.what), i), at(i))
				} else {
					dm.worked(s.what, s.by, at(i))
				}
			}
			var wantAt time.Time
			if tc.wantAt >= 0 {
				wantAt = at(tc.wantAt)
			}
			f := dm.facts
			if diff := cmp.Diff(tc.want, f.LastError); diff != "" {
				t.Errorf("last error (-want +got):\n%s", diff)
			}
			if !f.LastErrorAt.Equal(wantAt) {
				t.Errorf("last error at %s, want %s", f.LastErrorAt, wantAt)
			}
			if diff := cmp.Diff(tc.cleared, f.Cleared); diff != "" {
				t.Errorf("cleared (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFailedConvergeIsRetried: a converge that fails is tried again
// RetryConverge later, with no hint asking for it (the last converge of a
// storm of WAN renews may lose the race, and no further hint need come).
// Its failure is logged at warn level, not error: when the retry works
// (the race lost once) an info line says so and nothing is logged at
// error level; when the retry fails too (a failure that lasts) it is.
func TestFailedConvergeIsRetried(t *testing.T) {
	const (
		lost   = `tunnel \"moe\": local 192.0.2.102: cannot assign requested address`
		denied = `tunnel \"moe\": operation not permitted`
	)
	for _, tc := range []struct {
		name string
		fail func(k *fakekernel.Kernel)
		// want: the log's lines about converges, at info level and
		// above; last: the last error after the retry.
		want []string
		last string
	}{
		{"race lost once", func(k *fakekernel.Kernel) { renewRace(k, engine.MaxRounds) }, []string{
			`level=WARN msg="converge failed; trying again" reason="event: address" err="` + lost + `"`,
			`level=INFO msg="converged again after a failure" reason=retry`,
		}, ""},
		{"failure lasts", func(k *fakekernel.Kernel) {
			k.SetFail(func(op plan.Op) error {
				if op.Kind == plan.LinkChange {
					return syscall.EPERM
				}
				return nil
			})
		}, []string{
			`level=WARN msg="converge failed; trying again" reason="event: address" err="` + denied + `"`,
			`level=ERROR msg="converge failed" reason=retry err="` + denied + `"`,
		}, strings.ReplaceAll(denied, `\"`, `"`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log syncbuf.Buffer
			h := startLogging(t, baseConfig, logfmt.New(&log, logfmt.Info))
			defer h.stop()
			tc.fail(h.k)
			h.k.SetAddrs("wan", netip.MustParsePrefix("192.0.2.8/24"))
			h.events <- watch.Event{Kind: watch.Addr}
			failed := h.next()
			if failed.LastError == "" {
				t.Fatal("the converge after the hint did not fail")
			}
			// No hint: only the retry converges again.
			f := h.next()
			if d := f.LastConverge.Sub(failed.LastConverge); d < RetryConverge {
				t.Errorf("retried %s after the failure, want %s", d, RetryConverge)
			}
			if diff := cmp.Diff(tc.last, f.LastError); diff != "" {
				t.Errorf("last error after the retry (-want +got):\n%s", diff)
			}
			var got []string
			for _, l := range levelLines(log.String(), "INFO") {
				if strings.Contains(l, "converge") {
					got = append(got, l)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("log lines about converges (-want +got):\n%s\nthe log:\n%s", diff, log.String())
			}
		})
	}
}

// TestRetryAfter: a failure is tried again a second after it, then after
// twice as long for each further failure in a row, up to a minute, and
// not at all where that would come no sooner than the resync. A tester's
// daemon, nf_tables loaded after a long outage, waited for the resync:
// the doubling had reached 256 s and then stopped.
func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		resync string
		want   []time.Duration // by failures in a row: 0, 1, 2, …
	}{
		{"5m", []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute, time.Minute, time.Minute, time.Minute}},
		{"45s", []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, 0, 0}},
		{"3s", []time.Duration{0, time.Second, 2 * time.Second, 0, 0}},
		{"1s", []time.Duration{0, 0, 0}},
	} {
		t.Run(tc.resync, func(t *testing.T) {
			c, err := config.Parse("t.toml", []byte("[global]\nresync_interval = \""+tc.resync+"\"\n"))
			if err != nil {
				t.Fatal(err)
			}
			dm := New(Deps{})
			dm.cfg = c
			var got []time.Duration
			for dm.fails = range len(tc.want) {
				got = append(got, dm.retryAfter())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("retry after n failures (-want +got):\n%s", diff)
			}
		})
	}
	dm := New(Deps{})
	dm.cfg = &config.Config{}
	dm.cfg.Global.ResyncInterval = 1 << 62
	dm.fails = 1000
	if d := dm.retryAfter(); d != RetryConvergeMax {
		t.Errorf("after 1000 failures in a row: retry after %s, want %s", d, RetryConvergeMax)
	}
}

// TestStopRecordLags: a stop whose teardown the kernel took whole, and
// whose only failures are a state record's update (kernel.RecordError: a
// full state directory), is said as that, at warn level, and the stop
// works (exit 0); a failure in the kernel is still a teardown
// incomplete. A tester's full directory logged "teardown incomplete"
// and exited 1, the sysctls put back.
func TestStopRecordLags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		want    []string // the warn and error lines, from the message on
		stopErr bool
	}{
		{"record", &kernel.RecordError{Err: errors.New("the state record could not be updated: no space left on device")},
			[]string{`WARN msg="stopped; everything tunneld owned is removed from the kernel, but a state record could not be updated" err="sysctl net.ipv4.ip_forward: the state record could not be updated: no space left on device"`}, false},
		{"kernel", errors.New("permission denied"),
			[]string{`ERROR msg="teardown incomplete" err="sysctl net.ipv4.ip_forward: permission denied"`}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log syncbuf.Buffer
			h := startLogging(t, baseConfig, logfmt.New(&log, logfmt.Info))
			h.k.SetFail(func(op plan.Op) error {
				if op.Kind == plan.SysctlRestore {
					return tc.err
				}
				return nil
			})
			h.cancel()
			if err := h.stop(); (err != nil) != tc.stopErr {
				t.Errorf("Run returned %v, want an error: %v", err, tc.stopErr)
			}
			var got []string
			for _, l := range levelLines(log.String(), "WARN") {
				got = append(got, strings.TrimPrefix(l, "level="))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("warn and error lines (-want +got):\n%s\nthe log:\n%s", diff, log.String())
			}
		})
	}
}

// TestStopSaysSysctlsLeft: a stop that leaves sysctls the configuration
// sets as they are, with no record of their values before tunneld (here
// the record lost), names them, at warn level, instead of saying that
// everything is removed (a tester's stop after a wiped state directory
// said so, ip_forward and proxy_arp left on).
func TestStopSaysSysctlsLeft(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose bool
		want []string // the warn and error lines, from the level on
	}{
		{"recorded", false, nil},
		{"record lost", true, []string{`WARN msg="stopped; everything tunneld owned is removed, but sysctls are left as they are, tunneld having no record of their values before it (found so at its start, or the record lost): net.ipv4.ip_forward = 1; check them (sysctl NAME) and set by hand those tunneld had set"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log syncbuf.Buffer
			h := startLogging(t, baseConfig, logfmt.New(&log, logfmt.Info))
			if tc.lose {
				h.writes() // take the lock
				h.k.Originals = kernel.SysctlRecord{}
			}
			if err := h.stop(); err != nil {
				t.Errorf("Run returned %v", err)
			}
			var got []string
			for _, l := range levelLines(log.String(), "WARN") {
				got = append(got, strings.TrimPrefix(l, "level="))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("warn and error lines (-want +got):\n%s\nthe log:\n%s", diff, log.String())
			}
		})
	}
}
