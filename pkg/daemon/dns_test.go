package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/logfmt"
	"github.com/tunneld/tunneld/pkg/watch"
)

// stallingResolver answers a lookup only once n lookups are under way at
// the same time (or fails when its context ends).
type stallingResolver struct {
	n     int
	mu    sync.Mutex
	in    int
	calls map[string]int
	all   chan struct{}
}

func (r *stallingResolver) Resolve(ctx context.Context, name string) ([]netip.Addr, time.Duration, error) {
	r.mu.Lock()
	r.in++
	r.calls[name]++
	if r.in == r.n {
		close(r.all)
	}
	r.mu.Unlock()
	select {
	case <-r.all:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	return []netip.Addr{netip.MustParseAddr("192.0.2.2")}, time.Minute, nil
}

// TestStartDueLooksUpAtOnce: the names due are looked up at the same time,
// each once: a name being looked up is not looked up again until its
// answer is in, however often the lookups due are started.
func TestStartDueLooksUpAtOnce(t *testing.T) {
	for _, names := range []int{1, 3, 8} {
		t.Run(fmt.Sprint(names), func(t *testing.T) {
			var b strings.Builder
			b.WriteString("[global]\nfirewall = false\n")
			for i := range names {
				fmt.Fprintf(&b, "[tunnel.t%d]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"peer%d.example\"\n", i, i)
			}
			c, err := config.Parse("t.toml", []byte(b.String()))
			if err != nil {
				t.Fatal(err)
			}
			r := &stallingResolver{n: names, calls: map[string]int{}, all: make(chan struct{})}
			dm := New(Deps{Resolver: r})
			dm.cfg = c
			dm.newGeneration(context.Background())
			dm.startDue(true)
			dm.startDue(true)
			dm.startDue(false)
			want := map[string]int{}
			got := map[string]int{}
			for i := range names {
				want[fmt.Sprintf("peer%d.example", i)] = 1
				select {
				case a := <-dm.answers:
					if dm.answered(a) {
						got[a.name]++
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%d answers within 10s, want %d", i, names)
				}
			}
			dm.endLookups()
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("names answered (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, r.calls); diff != "" {
				t.Errorf("lookups per name (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAnswered: when the next lookup of a name is due after an answer (or
// a failure), counted from when it came, and whether it changed the
// name's answer; a result of an earlier generation, or for a name the
// configuration no longer has, is not taken.
func TestAnswered(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	took := 5 * time.Second
	for _, tc := range []struct {
		name     string
		interval string
		// had is the name's answer before.
		had string
		a   answer
		// wantDue is when the next lookup is due, after the start;
		// wantAddrs the answer after.
		wantChanged bool
		wantDue     time.Duration
		wantAddrs   []string
		wantError   string
	}{
		{"first answer", "5m", "", answer{addrs: addrs("192.0.2.2"), ttl: time.Minute}, true, took + time.Minute, []string{"192.0.2.2"}, ""},
		{"same answer", "5m", "192.0.2.2", answer{addrs: addrs("192.0.2.2"), ttl: time.Minute}, false, took + time.Minute, []string{"192.0.2.2"}, ""},
		{"same answer, other order", "5m", "192.0.2.2 192.0.2.3", answer{addrs: addrs("192.0.2.3", "192.0.2.2"), ttl: time.Minute}, false, took + time.Minute, []string{"192.0.2.2", "192.0.2.3"}, ""},
		{"changed answer", "5m", "192.0.2.2", answer{addrs: addrs("192.0.2.9"), ttl: time.Minute}, true, took + time.Minute, []string{"192.0.2.9"}, ""},
		{"TTL unknown", "5m", "", answer{addrs: addrs("192.0.2.2")}, true, took + 5*time.Minute, []string{"192.0.2.2"}, ""},
		{"TTL above the interval", "5m", "", answer{addrs: addrs("192.0.2.2"), ttl: time.Hour}, true, took + 5*time.Minute, []string{"192.0.2.2"}, ""},
		{"TTL 0 (zeroTTL), held to the floor", "5m", "", answer{addrs: addrs("192.0.2.2"), ttl: time.Second}, true, took + MinResolve, []string{"192.0.2.2"}, ""},
		{"TTL below the floor, interval below it too", "2s", "", answer{addrs: addrs("192.0.2.2"), ttl: time.Second}, true, took + 2*time.Second, []string{"192.0.2.2"}, ""},
		{"failure", "5m", "192.0.2.2", answer{err: errors.New("i/o timeout")}, false, took + RetryResolve, []string{"192.0.2.2"}, "i/o timeout"},
		{"failure, interval below the retry", "10s", "", answer{err: errors.New("i/o timeout")}, false, took + 10*time.Second, nil, "i/o timeout"},
		{"earlier generation", "5m", "192.0.2.2", answer{gen: 1, addrs: addrs("192.0.2.9"), ttl: time.Minute}, false, 0, []string{"192.0.2.2"}, ""},
		{"earlier generation, failed", "5m", "192.0.2.2", answer{gen: 1, err: errors.New("i/o timeout")}, false, 0, []string{"192.0.2.2"}, ""},
		{"name not configured", "5m", "", answer{name: "gone.example", addrs: addrs("192.0.2.9")}, false, 0, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse("t.toml", []byte("[global]\nfirewall = false\nresolve_interval = \""+tc.interval+"\"\n[tunnel.t]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"peer.example\"\n"))
			if err != nil {
				t.Fatal(err)
			}
			now := start
			dm := New(Deps{Now: func() time.Time { return now }})
			dm.cfg = c
			dm.gen = 2
			st := &nameState{pending: true, addrs: addrs(strings.Fields(tc.had)...)}
			dm.names["peer.example"] = st
			a := tc.a
			if a.gen == 0 {
				a.gen = dm.gen
			}
			if a.name == "" {
				a.name = "peer.example"
			}
			now = now.Add(took)
			if got := dm.answered(a); got != tc.wantChanged {
				t.Errorf("changed = %v, want %v", got, tc.wantChanged)
			}
			var due time.Duration
			if !st.due.IsZero() {
				due = st.due.Sub(start)
			}
			f := dm.Facts()
			got := struct {
				Due     time.Duration
				Pending bool
				Addrs   []string
				Error   string
			}{due, st.pending, f.Resolved["peer.example"], f.LastError}
			want := got
			want.Due, want.Pending, want.Addrs, want.Error = tc.wantDue, tc.wantDue == 0, tc.wantAddrs, tc.wantError
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("after the answer (-want +got):\n%s", diff)
			}
		})
	}
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// hangingResolver answers lookups at once with addr until hang is called;
// from then on a lookup hangs until the test releases it: a DNS server
// that does not answer, behind a resolver that does not give up at its
// deadline either (a loop that waits for lookups waits for good). Only a
// cancellation ends a hanging lookup early, unless stubborn, which
// ignores that too and answers late.
type hangingResolver struct {
	mu       sync.Mutex
	addr     string
	hanging  bool
	stubborn bool
	calls    chan *hangingCall
	// quit ends every lookup (the test's cleanup).
	quit chan struct{}
	once sync.Once
	// stash holds calls taken from calls while waiting for another name
	// (the test goroutine's alone).
	stash []*hangingCall
}

// hangingCall is one hanging lookup.
type hangingCall struct {
	name string
	// release answers it with the address sent.
	release chan string
	// returned receives what it returned: nil for an answer, else the
	// error (its context's when cancelled).
	returned chan error
}

func newHangingResolver(t *testing.T, addr string) *hangingResolver {
	r := &hangingResolver{addr: addr, calls: make(chan *hangingCall, 100), quit: make(chan struct{})}
	return r
}

// close ends every lookup, the ones to come too.
func (r *hangingResolver) close() { r.once.Do(func() { close(r.quit) }) }

func (r *hangingResolver) Resolve(ctx context.Context, name string) ([]netip.Addr, time.Duration, error) {
	r.mu.Lock()
	if !r.hanging {
		defer r.mu.Unlock()
		return []netip.Addr{netip.MustParseAddr(r.addr)}, 0, nil
	}
	c := &hangingCall{name: name, release: make(chan string, 1), returned: make(chan error, 1)}
	stubborn := r.stubborn
	r.mu.Unlock()
	r.calls <- c
	done := ctx.Done()
	for {
		select {
		case a := <-c.release:
			c.returned <- nil
			return []netip.Addr{netip.MustParseAddr(a)}, 0, nil
		case <-r.quit:
			c.returned <- errors.New("test over")
			return nil, 0, errors.New("test over")
		case <-done:
			if errors.Is(ctx.Err(), context.Canceled) && !stubborn {
				c.returned <- ctx.Err()
				return nil, 0, ctx.Err()
			}
			done = nil // its deadline, or stubborn: hang on
		}
	}
}

// hang makes the lookups from now on hang; stubborn ones ignore a
// cancellation too.
func (r *hangingResolver) hang(stubborn bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hanging, r.stubborn = true, stubborn
}

// wait returns the next hanging lookup of name, failing the test when
// none begins within 10s.
func (r *hangingResolver) wait(t *testing.T, name string) *hangingCall {
	t.Helper()
	for i, c := range r.stash {
		if c.name == name {
			r.stash = append(r.stash[:i], r.stash[i+1:]...)
			return c
		}
	}
	guard := time.After(10 * time.Second)
	for {
		select {
		case c := <-r.calls:
			if c.name == name {
				return c
			}
			r.stash = append(r.stash, c)
		case <-guard:
			t.Fatalf("no lookup of %s began within 10s", name)
		}
	}
}

// result waits for what c returned, failing the test after 10s.
func (c *hangingCall) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.returned:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("the lookup of %s did not return within 10s", c.name)
		return nil
	}
}

// guarded runs send, failing the test when it does not return within
// 10s (the daemon does not take what is sent).
func guarded(t *testing.T, what string, send func(guard <-chan time.Time) bool) {
	t.Helper()
	if !send(time.After(10 * time.Second)) {
		t.Fatalf("the daemon did not take %s within 10s", what)
	}
}

// reloadWith asks h's daemon to reload cfg, failing the test when it does not
// take the request within 10s.
func (h *harness) reloadWith(cfg string) {
	h.t.Helper()
	h.mu.Lock()
	h.cfg = cfg
	h.mu.Unlock()
	guarded(h.t, "a reload", func(guard <-chan time.Time) bool {
		select {
		case h.reload <- syscall.SIGHUP:
			return true
		case <-guard:
			return false
		}
	})
}

// stopGuarded stops h's daemon, failing the test when it has not stopped
// within 10s.
func (h *harness) stopGuarded() error {
	h.t.Helper()
	h.cancel()
	select {
	case h.err = <-h.done:
		h.stopped = true
		return h.err
	case <-time.After(10 * time.Second):
		h.t.Fatal("the daemon did not stop within 10s")
		return nil
	}
}

// TestLoopWhileLookupHangs: while a lookup hangs, the loop still repairs
// after a netlink event, reloads, pings the watchdog and stops; a stop
// cancels the lookup and waits for it, and neither a stop nor a reload
// counts the lookup it cancels as a failure. The old loop waited for the
// lookups it started.
func TestLoopWhileLookupHangs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		watchdog time.Duration
		do       func(t *testing.T, h *harness, c *hangingCall)
	}{
		{"netlink event", 0, func(t *testing.T, h *harness, c *hangingCall) {
			h.writes() // take the lock
			h.k.Routes = slices.DeleteFunc(h.k.Routes, func(r fakekernel.Route) bool { return r.Dst == netip.MustParsePrefix("10.9.0.0/16") })
			h.events <- watch.Event{Kind: watch.Route}
			h.next()
			if diff := cmp.Diff(allRoutes, h.routes()); diff != "" {
				t.Errorf("routes after the event (-want +got):\n%s", diff)
			}
		}},
		{"reload", 0, func(t *testing.T, h *harness, c *hangingCall) {
			h.reloadWith(strings.Replace(baseConfig, `to = "10.9.0.0/16"`, `to = "10.8.0.0/16"`, 1))
			h.next()
			want := []string{"route 0.0.0.0/0 table 42", "route 10.8.0.0/16 table main", "route 172.16.0.0/12 table main"}
			if diff := cmp.Diff(want, h.routes()); diff != "" {
				t.Errorf("routes after the reload (-want +got):\n%s", diff)
			}
			// The reload cancelled the lookup and started another.
			if err := c.result(t); !errors.Is(err, context.Canceled) {
				t.Errorf("the lookup the reload found under way returned %v, want it cancelled", err)
			}
		}},
		{"watchdog", time.Millisecond, func(t *testing.T, h *harness, c *hangingCall) {
			pings := func() int {
				h.mu.Lock()
				defer h.mu.Unlock()
				n := 0
				for _, s := range h.notified {
					if s == "WATCHDOG=1" {
						n++
					}
				}
				return n
			}
			before := pings()
			for deadline := time.Now().Add(10 * time.Second); pings() == before; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("no watchdog ping within 10s")
				}
			}
		}},
		{"stop", 0, func(t *testing.T, h *harness, c *hangingCall) {
			if err := h.stopGuarded(); err != nil {
				t.Fatal(err)
			}
			// Run returned: the lookup it cancelled has returned.
			select {
			case err := <-c.returned:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("the lookup under way at the stop returned %v, want it cancelled", err)
				}
			default:
				t.Error("the daemon stopped with a lookup still under way")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log syncbuf.Buffer
			r := newHangingResolver(t, "198.51.100.2")
			h := startOpts(t, baseConfig, opts{log: logfmt.New(&log, logfmt.Debug), resolver: r, watchdog: tc.watchdog})
			t.Cleanup(func() {
				r.close()
				h.stop()
			})
			r.hang(false)
			// resolve_interval is 1s: the next lookup begins then.
			c := r.wait(t, "peer.example")
			tc.do(t, h, c)
			if strings.Contains(log.String(), "resolve failed") || h.d.Facts().LastError != "" {
				t.Errorf("a cancelled lookup was taken for a failure: last error %q, log:\n%s", h.d.Facts().LastError, log.String())
			}
		})
	}
}

// TestLateAnswerIgnored: an answer that comes after a reload, to a lookup
// begun before it, is not applied, whether the name is still configured
// or not; the lookups the reload began are.
func TestLateAnswerIgnored(t *testing.T) {
	for _, tc := range []struct {
		name, cfg string
		// name is the one the reloaded configuration looks up.
		lookup       string
		wantResolved map[string][]string
	}{
		{"same name", baseConfig, "peer.example", map[string][]string{"peer.example": {"198.51.100.3"}}},
		{"name removed", strings.Replace(baseConfig, `remote = "peer.example"`, `remote = "peer2.example"`, 1), "peer2.example", map[string][]string{"peer2.example": {"198.51.100.3"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newHangingResolver(t, "198.51.100.2")
			h := startOpts(t, baseConfig, opts{resolver: r})
			t.Cleanup(func() {
				r.close()
				h.stop()
			})
			r.hang(true)
			late := r.wait(t, "peer.example")
			r.hang(false)
			h.reloadWith(tc.cfg)
			h.next()
			c := r.wait(t, tc.lookup)
			c.release <- "198.51.100.3"
			if f := h.next(); f.Tunnels[0].Remote != netip.MustParseAddr("198.51.100.3") {
				t.Errorf("after the answer to the reload's lookup: %+v", f.Tunnels)
			}
			late.release <- "198.51.100.99"
			if err := late.result(t); err != nil {
				t.Fatal(err)
			}
			// Run waits for its lookups when it stops: the late answer
			// has come and gone.
			if err := h.stopGuarded(); err != nil {
				t.Fatal(err)
			}
			for len(h.facts) > 0 {
				if f := <-h.facts; f.Tunnels[0].Remote == netip.MustParseAddr("198.51.100.99") {
					t.Errorf("converged with the late answer: %+v", f.Tunnels)
				}
			}
			if diff := cmp.Diff(tc.wantResolved, h.d.Facts().Resolved); diff != "" {
				t.Errorf("answers (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAnswerConverges: an answer that is the one the daemon has causes no
// converge; a changed one causes one, with the new address.
func TestAnswerConverges(t *testing.T) {
	for _, tc := range []struct {
		name, answer  string
		wantConverges int
	}{
		{"unchanged", "198.51.100.2", 0},
		{"changed", "198.51.100.77", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newHangingResolver(t, "198.51.100.2")
			h := startOpts(t, baseConfig, opts{resolver: r})
			t.Cleanup(func() {
				r.close()
				h.stop()
			})
			r.hang(false)
			before := h.d.Facts().Converges
			r.wait(t, "peer.example").release <- tc.answer
			// The next lookup begins once the daemon took the answer
			// (and converged if it did).
			r.wait(t, "peer.example")
			f := h.d.Facts()
			if got := f.Converges - before; got != tc.wantConverges {
				t.Errorf("%d converges after the answer, want %d", got, tc.wantConverges)
			}
			if h.link().Remote != netip.MustParseAddr(tc.answer) {
				t.Errorf("remote %v, want %s", h.link().Remote, tc.answer)
			}
		})
	}
}

// TestFirstAnswerAfterReload: a reload that brings a new name converges
// without waiting for its answer (the tunnel is down meanwhile, and says
// why); the first answer, when it comes, converges with it.
func TestFirstAnswerAfterReload(t *testing.T) {
	r := newHangingResolver(t, "198.51.100.2")
	h := startOpts(t, baseConfig, opts{resolver: r})
	t.Cleanup(func() {
		r.close()
		h.stop()
	})
	r.hang(false)
	h.reloadWith(baseConfig + "\n[tunnel.larry]\nmode = \"gre\"\nlocal = \"wan\"\nremote = \"peer2.example\"\n")
	f := h.next()
	type status struct {
		Name, Reason string
		Up           bool
		Remote       string
	}
	got := func(f Facts) []status {
		var out []status
		for _, t := range f.Tunnels {
			out = append(out, status{t.Name, t.Reason, t.Up, t.Remote.String()})
		}
		return out
	}
	want := []status{
		{"larry", "remote peer2.example has no IPv4 address (not resolved yet)", false, "invalid IP"},
		{"moe", "", true, "198.51.100.2"},
	}
	if diff := cmp.Diff(want, got(f)); diff != "" {
		t.Errorf("tunnels while peer2.example is looked up (-want +got):\n%s", diff)
	}
	if _, ok := h.d.Facts().Resolved["peer2.example"]; ok {
		t.Errorf("answers while peer2.example is looked up: %v", h.d.Facts().Resolved)
	}
	r.wait(t, "peer2.example").release <- "198.51.100.9"
	want[0] = status{"larry", "", true, "198.51.100.9"}
	if diff := cmp.Diff(want, got(h.next())); diff != "" {
		t.Errorf("tunnels after the answer (-want +got):\n%s", diff)
	}
	h.waitNotified("STATUS=1/2 tunnels up")
	h.waitNotified("STATUS=2/2 tunnels up")
}

// TestResolveFailureLoggedOnce: a lookup that fails as the one before did
// is logged at debug level; one that fails otherwise, or after an answer,
// at warn level again. Before any answer, the line says there is none to
// keep (it said "keeping the last answer … kept=[]").
func TestResolveFailureLoggedOnce(t *testing.T) {
	c, err := config.Parse("t.toml", []byte("[global]\nfirewall = false\n[tunnel.t]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"peer.example\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	dm := New(Deps{Log: logfmt.New(&log, logfmt.Debug)})
	dm.cfg = c
	dm.names["peer.example"] = &nameState{}
	timeout, refused := errors.New("i/o timeout"), errors.New("connection refused")
	for _, a := range []answer{
		{err: timeout}, {err: timeout}, {err: refused}, {err: refused},
		{addrs: addrs("192.0.2.2")}, {err: refused},
	} {
		a.name = "peer.example"
		dm.answered(a)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		got = append(got, line[strings.Index(line, " level=")+1:])
	}
	want := []string{
		`level=WARN msg="resolve failed; no earlier answer to keep" name=peer.example err="i/o timeout"`,
		`level=DEBUG msg="resolve failed as before" name=peer.example`,
		`level=WARN msg="resolve failed; no earlier answer to keep" name=peer.example err="connection refused"`,
		`level=DEBUG msg="resolve failed as before" name=peer.example`,
		`level=WARN msg="resolve failed; keeping the last answer" name=peer.example err="connection refused" kept=[192.0.2.2]`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

// TestFactsFailing: the facts carry a name's lookup error while its
// lookups fail, whether or not an earlier answer is kept, and none once
// it answers again: what status shows on the line of an up tunnel whose
// name stopped resolving (a tester found the failure only on the last
// error's line).
func TestFactsFailing(t *testing.T) {
	c, err := config.Parse("t.toml", []byte("[global]\nfirewall = false\n[tunnel.t]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"peer.example\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	dm := New(Deps{Log: logfmt.New(io.Discard, logfmt.Debug)})
	dm.cfg = c
	dm.names["peer.example"] = &nameState{}
	timeout := errors.New("i/o timeout")
	var got []string
	for _, a := range []answer{{err: timeout}, {addrs: addrs("192.0.2.2")}, {err: timeout}, {addrs: addrs("2001:db8::2")}, {addrs: addrs("192.0.2.3")}} {
		a.name = "peer.example"
		dm.answered(a)
		got = append(got, dm.Facts().Failing["peer.example"])
	}
	want := []string{"i/o timeout", "", "i/o timeout",
		"peer.example has no IPv4 address (it resolves to 2001:db8::2 only): keeping the last good answer 192.0.2.2", ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("failing, answer by answer (-want +got):\n%s", diff)
	}
}

// TestAnswerOfTheOtherFamily: an answer that has no address of a family
// one of the name's tunnels needs keeps the name's last good addresses of
// that family, as a failed lookup keeps all of them, and holds as a
// failure that says so; the rest of the answer is taken. A first answer
// has nothing to keep, and is taken as it is.
func TestAnswerOfTheOtherFamily(t *testing.T) {
	const (
		ds     = "[tunnel.ds]\nmode = \"ipip6\"\nlocal = \"2001:db8:a::7\"\nremote = \"aftr.example\"\n"
		moe    = "[tunnel.moe]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"aftr.example\"\n"
		larry  = "[tunnel.larry]\nmode = \"sit\"\nlocal = \"192.0.2.1\"\nremote = \"aftr.example\"\n"
		curly6 = "[tunnel.curly]\nmode = \"ip6ip6\"\nlocal = \"2001:db8:a::7\"\nremote = \"aftr.example\"\n"
	)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	took := 5 * time.Second
	for _, tc := range []struct {
		name, tunnels string
		// had is the name's answer before, and failing its last
		// failure.
		had, failing string
		answer       []string
		wantChanged  bool
		wantAddrs    []string
		wantKept     []string
		wantDue      time.Duration
		wantError    string
	}{
		{"ipip6, A only", ds, "2001:db8:b::3", "", []string{"203.0.113.1"}, true,
			[]string{"203.0.113.1", "2001:db8:b::3"}, []string{"2001:db8:b::3"}, took + RetryResolve,
			"aftr.example has no IPv6 address (it resolves to 203.0.113.1 only): keeping the last good answer 2001:db8:b::3"},
		{"ipip6, A only again", ds, "203.0.113.1 2001:db8:b::3", "aftr.example has no IPv6 address (it resolves to 203.0.113.1 only): keeping the last good answer 2001:db8:b::3",
			[]string{"203.0.113.1"}, false,
			[]string{"203.0.113.1", "2001:db8:b::3"}, []string{"2001:db8:b::3"}, took + RetryResolve,
			"aftr.example has no IPv6 address (it resolves to 203.0.113.1 only): keeping the last good answer 2001:db8:b::3"},
		{"ipip6, several kept", ds + curly6, "2001:db8:b::3 2001:db8:b::4", "", []string{"203.0.113.1", "203.0.113.2"}, true,
			[]string{"203.0.113.1", "203.0.113.2", "2001:db8:b::3", "2001:db8:b::4"}, []string{"2001:db8:b::3", "2001:db8:b::4"}, took + RetryResolve,
			"aftr.example has no IPv6 address (it resolves to 203.0.113.1, 203.0.113.2 only): keeping the last good answer 2001:db8:b::3, 2001:db8:b::4"},
		{"ipip6, no address at all", ds, "2001:db8:b::3", "", nil, false,
			[]string{"2001:db8:b::3"}, []string{"2001:db8:b::3"}, took + RetryResolve,
			"aftr.example has no IPv6 address (it answered with no address): keeping the last good answer 2001:db8:b::3"},
		{"ipip6, AAAA again", ds, "203.0.113.1 2001:db8:b::3", "aftr.example has no IPv6 address (it resolves to 203.0.113.1 only): keeping the last good answer 2001:db8:b::3",
			[]string{"203.0.113.1", "2001:db8:b::4"}, true,
			[]string{"203.0.113.1", "2001:db8:b::4"}, nil, took + time.Minute, ""},
		// Nothing to keep: the tunnel waits for the name, which is
		// asked again as soon as after a failure, not after the TTL.
		{"ipip6, first answer A only", ds, "", "", []string{"203.0.113.1"}, true,
			[]string{"203.0.113.1"}, nil, took + RetryResolve, ""},
		{"ipip, AAAA only", moe, "198.51.100.2", "", []string{"2001:db8:b::3"}, true,
			[]string{"198.51.100.2", "2001:db8:b::3"}, []string{"198.51.100.2"}, took + RetryResolve,
			"aftr.example has no IPv4 address (it resolves to 2001:db8:b::3 only): keeping the last good answer 198.51.100.2"},
		{"sit, AAAA only", larry, "198.51.100.2", "", []string{"2001:db8:b::3"}, true,
			[]string{"198.51.100.2", "2001:db8:b::3"}, []string{"198.51.100.2"}, took + RetryResolve,
			"aftr.example has no IPv4 address (it resolves to 2001:db8:b::3 only): keeping the last good answer 198.51.100.2"},
		{"both families, A only: the A taken", ds + moe, "198.51.100.2 2001:db8:b::3", "", []string{"198.51.100.9"}, true,
			[]string{"198.51.100.9", "2001:db8:b::3"}, []string{"2001:db8:b::3"}, took + RetryResolve,
			"aftr.example has no IPv6 address (it resolves to 198.51.100.9 only): keeping the last good answer 2001:db8:b::3"},
		{"both families, AAAA only: the AAAA taken", ds + moe, "198.51.100.2 2001:db8:b::3", "", []string{"2001:db8:b::9"}, true,
			[]string{"198.51.100.2", "2001:db8:b::9"}, []string{"198.51.100.2"}, took + RetryResolve,
			"aftr.example has no IPv4 address (it resolves to 2001:db8:b::9 only): keeping the last good answer 198.51.100.2"},
		{"both families, no address at all", ds + moe, "198.51.100.2 2001:db8:b::3", "", nil, false,
			[]string{"198.51.100.2", "2001:db8:b::3"}, []string{"198.51.100.2", "2001:db8:b::3"}, took + RetryResolve,
			"aftr.example has no IPv4 or IPv6 address (it answered with no address): keeping the last good answer 198.51.100.2, 2001:db8:b::3"},
		{"both families, both answered", ds + moe, "198.51.100.2 2001:db8:b::3", "", []string{"2001:db8:b::9", "198.51.100.9"}, true,
			[]string{"198.51.100.9", "2001:db8:b::9"}, nil, took + time.Minute, ""},
		{"ipip, the AAAA gone: nothing needs it", moe, "198.51.100.2 2001:db8:b::3", "", []string{"198.51.100.2"}, true,
			[]string{"198.51.100.2"}, nil, took + time.Minute, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse("t.toml", []byte("[global]\nfirewall = false\n"+tc.tunnels))
			if err != nil {
				t.Fatal(err)
			}
			now := start
			var log strings.Builder
			dm := New(Deps{Now: func() time.Time { return now }, Log: logfmt.New(&log, logfmt.Debug)})
			dm.cfg = c
			st := &nameState{pending: true, addrs: addrs(strings.Fields(tc.had)...), failing: tc.failing}
			if tc.failing != "" {
				st.kept = slices.DeleteFunc(slices.Clone(st.addrs), func(a netip.Addr) bool { return a.Is4() })
				dm.failed(failedLookup+"aftr.example", tc.failing, start)
			}
			dm.names["aftr.example"] = st
			now = now.Add(took)
			if got := dm.answered(answer{name: "aftr.example", addrs: addrs(tc.answer...), ttl: time.Minute}); got != tc.wantChanged {
				t.Errorf("changed = %v, want %v", got, tc.wantChanged)
			}
			f := dm.Facts()
			got := struct {
				Due          time.Duration
				Addrs, Kept  []string
				Error, Level string
			}{st.due.Sub(start), f.Resolved["aftr.example"], f.Kept["aftr.example"], f.LastError, ""}
			want := got
			want.Due, want.Addrs, want.Kept, want.Error = tc.wantDue, tc.wantAddrs, tc.wantKept, tc.wantError
			// A failure is logged at warn level when it begins or
			// changes, else at debug level; an answer that is no
			// failure says nothing but a change.
			for _, l := range []string{"WARN", "DEBUG", "INFO"} {
				if strings.Contains(log.String(), "level="+l) {
					got.Level += l + " "
				}
			}
			switch {
			case tc.wantError == "":
				want.Level = "INFO "
				if tc.had == "" || !tc.wantChanged {
					want.Level = ""
				}
			case tc.wantError == tc.failing:
				want.Level = "DEBUG "
			default:
				want.Level = "WARN "
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("after the answer (-want +got):\n%s\nlog:\n%s", diff, log.String())
			}
		})
	}
}

// dsLite is a DS-Lite B4 whose AFTR is given by name, and a route through
// it in its own table.
const dsLite = `
[global]
firewall = false
resolve_interval = "1s"

[tables]
ds = 42

[tunnel.ds-wan]
mode = "ipip6"
local = "2001:db8:a::7"
remote = "aftr.example.net"
address = "192.0.0.2 peer 192.0.0.1"

[[route]]
to = "0.0.0.0/0"
dev = "ds-wan"
table = "ds"
`

// dsMoe is an ipip tunnel to the same name as dsLite's AFTR.
const dsMoe = `
[tunnel.moe]
mode = "ipip"
local = "wan"
remote = "aftr.example.net"
`

// tunnelView is what the tests of a name's answers look at of a tunnel:
// whether it is up, the remote desired gives it, the kernel's, and
// whether its device is up.
type tunnelView struct {
	Name, Reason   string
	Up             bool
	Remote, Kernel string
	DeviceUp       bool
}

func (h *harness) view(f Facts) []tunnelView {
	var out []tunnelView
	for _, ts := range f.Tunnels {
		v := tunnelView{Name: ts.Name, Reason: ts.Reason, Up: ts.Up, Remote: ts.Remote.String()}
		if l, ok := h.k.Tunnels[ts.Name]; ok {
			v.Kernel = l.Remote.String()
		}
		if d, ok := h.k.Devices[ts.Name]; ok {
			v.DeviceUp = d.Up
		}
		out = append(out, v)
	}
	return out
}

// warnings are the warn-level lines of log, from their message on.
func warnings(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, " level=WARN ") {
			out = append(out, line[strings.Index(line, " msg=")+1:])
		}
	}
	return out
}

// waitLookups waits until r has been asked n more times than it had
// when the test called calls, failing the test after 10s.
func waitLookups(t *testing.T, r *resolver, before, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		r.mu.Lock()
		calls := r.calls
		r.mu.Unlock()
		if calls >= before+n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lookups within 10s, want %d", calls-before, n)
		}
	}
}

func (r *resolver) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// TestOtherFamilyAnswerKeepsTunnel is the tester's DS-Lite B4: the AFTR's
// name answered with an A record and no AAAA, which took the tunnel down
// (its remote gone, its route unreachable) where a timeout or NXDOMAIN
// keep the last good answer. Now it keeps it too: the tunnel stays up to
// the same AFTR, a warning is logged once however often the answer
// comes, the daemon's last error and Kept say so, a reload keeps it, and
// an answer with an AAAA again ends it.
func TestOtherFamilyAnswerKeepsTunnel(t *testing.T) {
	var log syncbuf.Buffer
	r := &resolver{}
	r.set(nil, "2001:db8:b::3")
	h := startOpts(t, dsLite, opts{log: logfmt.New(&log, logfmt.Debug), resolver: r})
	defer h.stop()
	up := []tunnelView{{Name: "ds-wan", Up: true, Remote: "2001:db8:b::3", Kernel: "2001:db8:b::3", DeviceUp: true}}
	if diff := cmp.Diff(up, h.view(h.d.Facts())); diff != "" {
		t.Fatalf("at start (-want +got):\n%s", diff)
	}
	r.set(nil, "203.0.113.1")
	h.next()
	f := h.d.Facts()
	const why = "aftr.example.net has no IPv6 address (it resolves to 203.0.113.1 only): keeping the last good answer 2001:db8:b::3"
	check := func(when string, f Facts) {
		t.Helper()
		if diff := cmp.Diff(up, h.view(f)); diff != "" {
			t.Errorf("tunnels %s (-want +got):\n%s", when, diff)
		}
		if diff := cmp.Diff([]string{"route 0.0.0.0/0 table 42"}, h.routes()); diff != "" || len(h.unreachable()) > 0 {
			t.Errorf("routes %s (-want +got):\n%s(unreachable: %v)", when, diff, h.unreachable())
		}
		got := struct {
			Error          string
			Resolved, Kept map[string][]string
		}{f.LastError, f.Resolved, f.Kept}
		want := got
		want.Error = why
		want.Resolved = map[string][]string{"aftr.example.net": {"203.0.113.1", "2001:db8:b::3"}}
		want.Kept = map[string][]string{"aftr.example.net": {"2001:db8:b::3"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("facts %s (-want +got):\n%s", when, diff)
		}
	}
	check("after the A-only answer", f)
	// The same answer again, after RetryResolve (resolve_interval here):
	// no converge, no second warning.
	waitLookups(t, r, r.callCount(), 2)
	check("after the same answer again", h.d.Facts())
	wantWarn := []string{`msg="resolve gave no address of the family a tunnel needs; keeping the last answer of it" name=aftr.example.net family=IPv6 answer=[203.0.113.1] kept=[2001:db8:b::3]`}
	if diff := cmp.Diff(wantWarn, warnings(log.String())); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if strings.Contains(log.String(), "peer address changed") {
		t.Errorf("logged as a change of the peer's address:\n%s", log.String())
	}
	// A reload looks the name up again, and keeps the answer meanwhile
	// and after.
	h.reloadWith(dsLite + "\n# edited\n")
	h.next()
	check("after a reload", h.d.Facts())
	waitLookups(t, r, r.callCount(), 1)
	check("after the reload's lookup", h.d.Facts())
	// An AAAA again: the tunnel takes it (not the one it had), and the
	// failure is over.
	r.set(nil, "203.0.113.1", "2001:db8:b::4")
	h.next()
	f = h.d.Facts()
	up[0].Remote, up[0].Kernel = "2001:db8:b::4", "2001:db8:b::4"
	if diff := cmp.Diff(up, h.view(f)); diff != "" {
		t.Errorf("tunnels after the AAAA came back (-want +got):\n%s", diff)
	}
	if f.LastError != "" || f.Kept != nil || f.Cleared == nil || f.Cleared.By != "an answer for aftr.example.net" || f.Cleared.Err != why {
		t.Errorf("after the AAAA came back: last error %q, kept %v, cleared %+v", f.LastError, f.Kept, f.Cleared)
	}
}

// TestOtherFamilyAnswerSharedName: one name, an ipip and an ipip6 tunnel
// to it. An answer of one family is taken by the tunnel of that family,
// and the other keeps its last good address; a reload that takes away
// the tunnel whose family was kept ends the failure, and the name's
// answer is the last one as it came.
func TestOtherFamilyAnswerSharedName(t *testing.T) {
	r := &resolver{}
	r.set(nil, "198.51.100.2", "2001:db8:b::3")
	h := startOpts(t, dsLite+dsMoe, opts{resolver: r})
	defer h.stop()
	ds := tunnelView{Name: "ds-wan", Up: true, Remote: "2001:db8:b::3", Kernel: "2001:db8:b::3", DeviceUp: true}
	moe := tunnelView{Name: "moe", Up: true, Remote: "198.51.100.2", Kernel: "198.51.100.2", DeviceUp: true}
	if diff := cmp.Diff([]tunnelView{ds, moe}, h.view(h.d.Facts())); diff != "" {
		t.Fatalf("at start (-want +got):\n%s", diff)
	}
	for _, step := range []struct {
		answer  []string
		ds, moe string
		kept    []string
		err     string
	}{
		{[]string{"198.51.100.9"}, "2001:db8:b::3", "198.51.100.9", []string{"2001:db8:b::3"},
			"aftr.example.net has no IPv6 address (it resolves to 198.51.100.9 only): keeping the last good answer 2001:db8:b::3"},
		{[]string{"2001:db8:b::5"}, "2001:db8:b::5", "198.51.100.9", []string{"198.51.100.9"},
			"aftr.example.net has no IPv4 address (it resolves to 2001:db8:b::5 only): keeping the last good answer 198.51.100.9"},
	} {
		r.set(nil, step.answer...)
		h.next()
		f := h.d.Facts()
		ds.Remote, ds.Kernel, moe.Remote, moe.Kernel = step.ds, step.ds, step.moe, step.moe
		if diff := cmp.Diff([]tunnelView{ds, moe}, h.view(f)); diff != "" {
			t.Errorf("tunnels after %v (-want +got):\n%s", step.answer, diff)
		}
		if diff := cmp.Diff(map[string][]string{"aftr.example.net": step.kept}, f.Kept); diff != "" || f.LastError != step.err {
			t.Errorf("after %v: last error %q, want %q; kept (-want +got):\n%s", step.answer, f.LastError, step.err, diff)
		}
	}
	// moe goes: nothing needs the IPv4 address kept for it.
	h.reloadWith(dsLite)
	h.next()
	f := h.d.Facts()
	if diff := cmp.Diff([]tunnelView{ds}, h.view(f)); diff != "" {
		t.Errorf("tunnels after the reload (-want +got):\n%s", diff)
	}
	got := struct {
		Error          string
		Resolved, Kept map[string][]string
		By             string
	}{f.LastError, f.Resolved, f.Kept, ""}
	if f.Cleared != nil {
		got.By = f.Cleared.By
	}
	want := got
	want.Error, want.Resolved, want.Kept, want.By = "", map[string][]string{"aftr.example.net": {"2001:db8:b::5"}}, nil, "a reload"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after the reload (-want +got):\n%s", diff)
	}
}

// TestOtherFamilyFirstAnswer: a first answer of the other family only has
// no last good answer to keep: the tunnel is down, saying what the name
// resolves to, with no failure (status says it), until an answer of its
// family comes.
func TestOtherFamilyFirstAnswer(t *testing.T) {
	r := &resolver{}
	r.set(nil, "203.0.113.1")
	h := startOpts(t, dsLite, opts{resolver: r})
	defer h.stop()
	f := h.d.Facts()
	down := []tunnelView{{Name: "ds-wan", Reason: "remote aftr.example.net has no IPv6 address (it resolves to 203.0.113.1 only)", Remote: "invalid IP"}}
	if diff := cmp.Diff(down, h.view(f)); diff != "" {
		t.Errorf("at start (-want +got):\n%s", diff)
	}
	if f.LastError != "" || f.Kept != nil || !slices.Equal(h.unreachable(), []string{"route 0.0.0.0/0 table 42"}) {
		t.Errorf("at start: last error %q, kept %v, unreachable routes %v", f.LastError, f.Kept, h.unreachable())
	}
	r.set(nil, "203.0.113.1", "2001:db8:b::3")
	up := []tunnelView{{Name: "ds-wan", Up: true, Remote: "2001:db8:b::3", Kernel: "2001:db8:b::3", DeviceUp: true}}
	h.next()
	if diff := cmp.Diff(up, h.view(h.d.Facts())); diff != "" {
		t.Errorf("after an AAAA (-want +got):\n%s", diff)
	}
}
