package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/logfmt"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
	"github.com/tunneld/tunneld/pkg/resolve"
	"github.com/tunneld/tunneld/pkg/watch"
)

const baseConfig = `
[global]
ip_forward = true
resolve_interval = "1s"

[tables]
moe = 42

[tunnel.moe]
mode = "ipip"
local = "wan"
remote = "peer.example"
address = "10.0.0.1/30"

[[route]]
to = "10.9.0.0/16"
dev = "moe"

[[route]]
to = "default"
via = "peer"
dev = "moe"
table = "moe"

[[route]]
to = "172.16.0.0/12"
via = "192.168.1.254"
dev = "lan"

[[rule]]
from = "10.0.0.1"
table = "moe"
`

// resolver is a scripted DNS.
type resolver struct {
	mu    sync.Mutex
	addrs []netip.Addr
	err   error
	calls int
}

func (r *resolver) Resolve(ctx context.Context, name string) ([]netip.Addr, time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	return slices.Clone(r.addrs), 0, r.err
}

func (r *resolver) set(err error, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err, r.addrs = err, nil
	for _, a := range addrs {
		r.addrs = append(r.addrs, netip.MustParseAddr(a))
	}
}

type harness struct {
	t      *testing.T
	k      *fakekernel.Kernel
	res    *resolver
	events chan watch.Event
	reload chan os.Signal
	// pause holds the loop after a convergence: a channel sent on it
	// is waited on (closed) before the convergence's facts are sent;
	// paused says the loop waits.
	pause    chan chan struct{}
	paused   chan struct{}
	facts    chan Facts
	cfg      string
	mu       sync.Mutex
	notified []string
	cancel   context.CancelFunc
	done     chan error
	stopped  bool
	err      error
	d        *Daemon
}

func start(t *testing.T, cfg string) *harness {
	t.Helper()
	return startLogging(t, cfg, nil)
}

// startLogging is start with the daemon's log going to log.
func startLogging(t *testing.T, cfg string, log *logfmt.Logger) *harness {
	t.Helper()
	return startWith(t, cfg, log, time.Millisecond)
}

// startWith is startLogging with the given debounce.
func startWith(t *testing.T, cfg string, log *logfmt.Logger, debounce time.Duration) *harness {
	t.Helper()
	return startOpts(t, cfg, opts{log: log, debounce: debounce})
}

// opts are a harness's options beyond its configuration.
type opts struct {
	log      *logfmt.Logger
	debounce time.Duration
	// resolver replaces the scripted h.res (nil: h.res).
	resolver resolve.Resolver
	watchdog time.Duration
	// now is the daemon's clock (nil: time.Now).
	now func() time.Time
	// hookRetry is Deps.HookRetry.
	hookRetry time.Duration
	// holdOff is Deps.HoldOff.
	holdOff time.Duration
	// backlog is the room of the events channel (0: 1).
	backlog int
	// keep is Deps.Keep.
	keep func() error
	// reloadRoom is the room of the reload channel (0: none; 1, as
	// signal.Notify's in tunneld run).
	reloadRoom int
}

// startOpts starts a daemon on cfg and waits for its first convergence.
func startOpts(t *testing.T, cfg string, o opts) *harness {
	t.Helper()
	log, debounce := o.log, o.debounce
	if debounce == 0 {
		debounce = time.Millisecond
	}
	k := fakekernel.New()
	k.AddDevice(model.Device{Name: "wan", MTU: 1500, Up: true, Running: true, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.7/24")}})
	k.AddDevice(model.Device{Name: "lan", MTU: 1500, Up: true, Running: true, Addrs: []netip.Prefix{netip.MustParsePrefix("192.168.1.1/24")}})
	// The IPv6 address the DS-Lite tests' tunnels pin, on a device of
	// its own that no tunnel follows.
	k.AddDevice(model.Device{Name: "wan6", MTU: 1500, Up: true, Running: true, Addrs: []netip.Prefix{netip.MustParsePrefix("2001:db8:a::7/64")}})
	k.AddForeignRoute(model.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.1"), Dev: "wan"}, 3)
	backlog := 1
	if o.backlog > 0 {
		backlog = o.backlog
	}
	h := &harness{t: t, k: k, res: &resolver{}, events: make(chan watch.Event, backlog), reload: make(chan os.Signal, o.reloadRoom), pause: make(chan chan struct{}, 1), paused: make(chan struct{}, 1),
		facts: make(chan Facts, 100), cfg: cfg, done: make(chan error, 1)}
	h.res.set(nil, "198.51.100.2")
	var r resolve.Resolver = h.res
	if o.resolver != nil {
		r = o.resolver
	}
	h.d = New(Deps{
		Kernel: k, Resolver: r, Events: h.events, Reload: h.reload, Watchdog: o.watchdog,
		Load: func() (*config.Config, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			return config.Parse("t.toml", []byte(h.cfg))
		},
		Notify: func(s string) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.notified = append(h.notified, s)
		},
		Log:          log,
		Debounce:     debounce,
		ResolveFloor: time.Millisecond,
		OnConverge: func(f Facts) {
			select {
			case wait := <-h.pause:
				h.paused <- struct{}{}
				<-wait
			default:
			}
			h.facts <- f
		},
		Now:       o.now,
		HookRetry: o.hookRetry,
		// Short: the moves' hooks wait it (HookSettle).
		HookSettle: 20 * time.Millisecond,
		HoldOff:    o.holdOff,
		Keep:       o.keep,
	})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.d.Run(ctx) }()
	h.next()
	return h
}

// waitNotified waits until the daemon has sent the notification want, and
// returns all sent so far.
func (h *harness) waitNotified(want string) []string {
	h.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		h.mu.Lock()
		notified := slices.Clone(h.notified)
		h.mu.Unlock()
		if slices.Contains(notified, want) {
			return notified
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no %q notification within 10s: %q", want, notified)
		}
	}
}

// next waits for the next convergence.
func (h *harness) next() Facts {
	h.t.Helper()
	select {
	case f := <-h.facts:
		return f
	case err := <-h.done:
		h.t.Fatalf("daemon stopped: %v", err)
	case <-time.After(10 * time.Second):
		h.t.Fatal("no convergence within 10s")
	}
	return Facts{}
}

// event sends a hint and waits for the convergence it causes; it returns
// the number of kernel writes that convergence made.
func (h *harness) event(k watch.Kind) int {
	h.t.Helper()
	before := h.writes()
	h.events <- watch.Event{Kind: k}
	h.next()
	return h.writes() - before
}

func (h *harness) writes() int {
	h.k.Observe(context.Background(), model.Scope{}) // take the lock: the loop may be applying
	return h.k.Writes
}

func (h *harness) link() model.Link { return h.k.Tunnels["moe"] }

// stop stops the daemon (once) and returns what Run returned.
func (h *harness) stop() error {
	h.cancel()
	if !h.stopped {
		h.stopped, h.err = true, <-h.done
	}
	return h.err
}

func (h *harness) routes() []string {
	var out []string
	for _, r := range h.k.Routes {
		if r.Proto == model.RouteProtocol {
			out = append(out, r.ID())
		}
	}
	slices.Sort(out)
	return out
}

// unreachable lists tunneld's unreachable routes as routes does.
func (h *harness) unreachable() []string {
	var out []string
	for _, r := range h.k.Routes {
		if r.Proto == model.RouteProtocol && r.Type == model.RouteUnreachable {
			out = append(out, r.ID())
		}
	}
	slices.Sort(out)
	return out
}

// heldRoutes are baseConfig's routes through moe, which stand as
// unreachable routes while it is down.
var heldRoutes = []string{"route 0.0.0.0/0 table 42", "route 10.9.0.0/16 table main"}

var allRoutes = []string{"route 0.0.0.0/0 table 42", "route 10.9.0.0/16 table main", "route 172.16.0.0/12 table main"}

func TestStartsConvergedAndReady(t *testing.T) {
	h := start(t, baseConfig)
	if l := h.link(); l.Local != netip.MustParseAddr("192.0.2.7") || l.Remote != netip.MustParseAddr("198.51.100.2") {
		t.Fatalf("tunnel = %+v", l)
	}
	if got := h.routes(); !slices.Equal(got, allRoutes) || len(h.unreachable()) != 0 {
		t.Fatalf("routes = %v (unreachable: %v)", got, h.unreachable())
	}
	// READY=1 follows the first convergence, which start waited for.
	if notified := h.waitNotified("READY=1"); !slices.Contains(notified, "STATUS=1/1 tunnels up") {
		t.Errorf("notifications = %q", notified)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if len(h.k.Tunnels) != 0 || len(h.routes()) != 0 || h.k.Sysctls["net/ipv4/ip_forward"] != "0" || h.k.Filter() != nil {
		t.Fatalf("stop left state behind: tunnels %v routes %v forward %s", h.k.Tunnels, h.routes(), h.k.Sysctls["net/ipv4/ip_forward"])
	}
}

func TestWANAddressChangeInPlace(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	index := h.k.Devices["moe"].Index
	h.k.SetAddrs("wan", netip.MustParsePrefix("192.0.2.99/24"))
	// The link changes in place and the filter follows the new local
	// address; routes and rules are not touched.
	if w := h.event(watch.Addr); w != 2 {
		t.Errorf("writes = %d, want 2 (link change, filter)", w)
	}
	if h.link().Local != netip.MustParseAddr("192.0.2.99") || h.k.Devices["moe"].Index != index {
		t.Fatalf("tunnel not changed in place: %+v index %d (was %d)", h.link(), h.k.Devices["moe"].Index, index)
	}
	if got := h.routes(); !slices.Equal(got, allRoutes) {
		t.Fatalf("routes = %v", got)
	}
}

// TestAddressHintTakesTheShortWay: an address hint on the device a tunnel
// takes its local address from moves the tunnel before the debounce ends
// (an hour here, so the batch is cut off only MaxDebounce after its first
// hint: until then only the short way can move it), moves the filter's
// rules for its local address with it, and does nothing else; a hint on another device, or about a secondary address, does not even
// read the addresses.
func TestAddressHintTakesTheShortWay(t *testing.T) {
	var log syncbuf.Buffer
	h := startWith(t, baseConfig, logfmt.New(&log, logfmt.Debug), time.Hour)
	defer h.stop()
	filter, writes := h.k.Filter().String(), h.writes()
	h.k.SetAddrs("lan", netip.MustParsePrefix("192.168.7.1/24"))
	h.events <- watch.Event{Kind: watch.Addr, Index: h.k.Devices["lan"].Index}
	h.events <- watch.Event{Kind: watch.Addr, Index: h.k.Devices["wan"].Index, Secondary: true}
	// The loop takes one hint at a time (the channel holds one): once
	// the second route hint is in, it is done with the address hints.
	h.events <- watch.Event{Kind: watch.Route}
	h.events <- watch.Event{Kind: watch.Route}
	if h.writes(); h.k.AddrReads != 0 {
		t.Errorf("lan's address hint, or wan's secondary one, read the addresses")
	}
	h.k.SetAddrs("wan", netip.MustParsePrefix("192.0.2.99/24"))
	h.events <- watch.Event{Kind: watch.Addr, Index: h.k.Devices["wan"].Index}
	// The change is logged once it is made.
	const changed = `msg=changed object="tunnel \"moe\"" cmd="ip link change moe mtu 1480 type ipip local 192.0.2.99 remote 198.51.100.2 ttl 64 pmtudisc" reason="event: address (tunnel endpoints)"`
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(log.String(), changed); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the tunnel did not follow the address within 10s:\n%s", log.String())
		}
	}
	if w := h.writes() - writes; w != 2 || h.k.AddrReads != 1 {
		t.Errorf("%d writes and %d address reads, want 2 and 1 (the link change and the filter after wan's hint)", w, h.k.AddrReads)
	}
	if l := h.link(); l.Local != netip.MustParseAddr("192.0.2.99") {
		t.Errorf("tunnel = %+v", l)
	}
	if f := h.k.Filter().String(); f != strings.ReplaceAll(filter, "192.0.2.7 ", "192.0.2.99 ") || f == filter {
		t.Errorf("the filter does not name the new address instead of the old one:\n%s", f)
	}
	if got := h.routes(); !slices.Equal(got, allRoutes) {
		t.Errorf("routes = %v", got)
	}
}

func TestWANDeviceGoneAndBack(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	h.k.DelDevice("wan")
	h.event(watch.Link)
	f := h.d.Facts()
	if h.k.Devices["moe"].Up || !slices.Equal(h.routes(), allRoutes) || !slices.Equal(h.unreachable(), heldRoutes) || f.Tunnels[0].Reason != "local device wan does not exist" {
		t.Fatalf("while wan is gone: up %v routes %v (unreachable: %v) status %+v", h.k.Devices["moe"].Up, h.routes(), h.unreachable(), f.Tunnels)
	}
	// pppoe-wan style: back with a new index and a new address.
	h.k.AddDevice(model.Device{Name: "wan", MTU: 1492, Up: true, Running: true, Addrs: []netip.Prefix{netip.MustParsePrefix("203.0.113.5/32")}})
	h.k.AddForeignRoute(model.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("0.0.0.0/0"), Dev: "wan"}, 3)
	h.event(watch.Link)
	if l := h.link(); !h.k.Devices["moe"].Up || l.Local != netip.MustParseAddr("203.0.113.5") || l.MTU != 1472 {
		t.Fatalf("after wan returned: %+v up %v", l, h.k.Devices["moe"].Up)
	}
	if got := h.routes(); !slices.Equal(got, allRoutes) {
		t.Fatalf("routes = %v", got)
	}
}

func TestLinkFlapRestoresFlushedRoutes(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	h.k.SetUp("lan", false) // the kernel flushes the route through lan
	if w := h.event(watch.Link); w != 0 {
		t.Errorf("writes while lan is down = %d, want 0", w)
	}
	h.k.SetUp("lan", true)
	if w := h.event(watch.Link); w != 1 || !slices.Equal(h.routes(), allRoutes) {
		t.Errorf("after lan came back: writes %d, routes %v", w, h.routes())
	}
	h.k.SetUp("moe", false) // someone set the tunnel down
	if w := h.event(watch.Link); w != 3 || !h.k.Devices["moe"].Up || !slices.Equal(h.routes(), allRoutes) {
		t.Errorf("after the tunnel was set down: writes %d (want link up + 2 routes), up %v, routes %v", w, h.k.Devices["moe"].Up, h.routes())
	}
}

func TestDNSChangeAndFailure(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	h.res.set(nil, "198.51.100.77")
	h.next() // the answer expires after resolve_interval (1s)
	if h.link().Remote != netip.MustParseAddr("198.51.100.77") {
		t.Fatalf("remote = %v after the answer changed", h.link().Remote)
	}
	h.res.set(errors.New("no such host"))
	before := h.writes()
	deadline := time.Now().Add(5 * time.Second)
	for h.d.Facts().LastError == "" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if f := h.d.Facts(); !strings.Contains(f.LastError, "no such host") || h.link().Remote != netip.MustParseAddr("198.51.100.77") || h.writes() != before {
		t.Fatalf("after a failed lookup: error %q remote %v writes %d", f.LastError, h.link().Remote, h.writes()-before)
	}
}

func TestExternalDeletionsRepaired(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(k *fakekernel.Kernel)
		kind   watch.Kind
		writes int
	}{
		{"link", func(k *fakekernel.Kernel) { k.DelDevice("moe") }, watch.Link, 5}, // link, address, up and its 2 routes; the rule stays
		{"address", func(k *fakekernel.Kernel) { k.Addrs = nil }, watch.Addr, 1},
		{"route", func(k *fakekernel.Kernel) { k.Routes = k.Routes[:len(k.Routes)-1] }, watch.Route, 1},
		{"rule", func(k *fakekernel.Kernel) {
			k.Rules = slices.DeleteFunc(k.Rules, func(r fakekernel.Rule) bool { return r.Proto == model.RuleProtocol })
		}, watch.Rule, 1},
		{"sysctl", func(k *fakekernel.Kernel) { k.Sysctls["net/ipv4/ip_forward"] = "0" }, watch.Netconf, 1},
		{"nft table", func(k *fakekernel.Kernel) { k.SetFilter(nil) }, watch.Filter, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, baseConfig)
			defer h.stop()
			want := dumpState(h.k)
			h.k.Observe(context.Background(), model.Scope{})
			tt.break_(h.k)
			w := h.event(tt.kind)
			if got := dumpState(h.k); got != want {
				t.Errorf("not restored:\nwant %s\ngot  %s", want, got)
			}
			if w != tt.writes {
				t.Errorf("writes = %d, want %d", w, tt.writes)
			}
		})
	}
}

// dumpState summarises what tunneld owns in the fake kernel.
func dumpState(k *fakekernel.Kernel) string {
	s, _, _ := k.Observe(context.Background(), model.Scope{Links: map[string]model.Mode{"moe": model.ModeIPIP}, Band: model.RuleBand{Min: 20000, Max: 20999}, Sysctls: []string{"net/ipv4/ip_forward"}})
	var b strings.Builder
	for _, l := range s.Links {
		b.WriteString(l.ID() + " ")
	}
	for _, a := range s.Addrs {
		b.WriteString(a.ID() + " ")
	}
	for _, r := range s.Routes {
		b.WriteString(r.ID() + " ")
	}
	for _, r := range s.Rules {
		b.WriteString(r.ID() + " ")
	}
	for _, x := range s.Sysctls {
		b.WriteString(x.ID() + "=" + x.Value + " ")
	}
	if s.Filter != nil {
		b.WriteString("filter")
	}
	return b.String()
}

func TestEventStormCoalesces(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	before := h.writes()
	h.d.mu.Lock()
	converges := h.d.facts.Converges
	h.d.mu.Unlock()
	for range 2000 {
		select {
		case h.events <- watch.Event{Kind: watch.Route}:
		case f := <-h.facts:
			_ = f
		}
	}
	time.Sleep(100 * time.Millisecond)
	for len(h.facts) > 0 {
		<-h.facts
	}
	h.d.mu.Lock()
	n := h.d.facts.Converges - converges
	h.d.mu.Unlock()
	if h.writes() != before {
		t.Errorf("an event storm without changes wrote %d times", h.writes()-before)
	}
	if n > 200 {
		t.Errorf("2000 events caused %d convergences; the debounce does not coalesce", n)
	}
	t.Logf("2000 events → %d convergences", n)
}

func TestReload(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	index := h.k.Devices["moe"].Index
	// Unchanged configuration: nothing written.
	before := h.writes()
	h.reload <- syscall.SIGHUP
	h.next()
	if h.writes() != before {
		t.Errorf("reloading an unchanged configuration wrote %d times", h.writes()-before)
	}
	// Invalid configuration: refused, the old one keeps running.
	h.mu.Lock()
	h.cfg = strings.Replace(baseConfig, `mode = "ipip"`, `mode = "ipip"`+"\nttl = 999", 1)
	h.mu.Unlock()
	h.reload <- syscall.SIGHUP
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(h.d.Facts().LastError, "t.toml:11:7: tunnel.moe.ttl: 999 is out of range 1–255") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if e := h.d.Facts().LastError; !strings.Contains(e, "t.toml:11:7: tunnel.moe.ttl") {
		t.Fatalf("invalid reload: last error %q", e)
	}
	if h.writes() != before {
		t.Errorf("an invalid reload wrote %d times", h.writes()-before)
	}
	// A route change: only the route changes; the tunnel is not recreated.
	h.mu.Lock()
	h.cfg = strings.Replace(baseConfig, `to = "10.9.0.0/16"`, `to = "10.8.0.0/16"`, 1)
	h.mu.Unlock()
	h.reload <- syscall.SIGHUP
	h.next()
	if w := h.writes() - before; w != 2 { // add the new route, delete the old
		t.Errorf("route change: %d writes, want 2", w)
	}
	if h.k.Devices["moe"].Index != index {
		t.Error("a route change recreated the tunnel")
	}
	if e := h.d.Facts().LastError; e != "" {
		t.Errorf("after the fixed file was taken, the last error is still %q", e)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !slices.ContainsFunc(h.notified, func(s string) bool { return strings.HasPrefix(s, "RELOADING=1\nMONOTONIC_USEC=") }) {
		t.Errorf("no RELOADING notification: %q", h.notified)
	}
}

// TestReloadMovesRuleBand: a reload that moves the rule priority band
// moves tunneld's rules into it; the ones in the old band are not left
// behind, and stopping removes them all.
func TestReloadMovesRuleBand(t *testing.T) {
	h := start(t, baseConfig)
	rules := func() []string {
		h.writes() // take the lock
		var out []string
		for _, r := range h.k.Rules {
			out = append(out, fmt.Sprintf("%d/%d", r.Priority, r.Proto))
		}
		return out
	}
	if diff := cmp.Diff([]string{"20000/116"}, rules()); diff != "" {
		t.Fatalf("rules at start (-want +got):\n%s", diff)
	}
	h.mu.Lock()
	h.cfg = strings.Replace(baseConfig, "[global]\n", "[global]\nrule_priority_min = 21000\nrule_priority_max = 21999\n", 1)
	h.mu.Unlock()
	h.reload <- syscall.SIGHUP
	h.next()
	if diff := cmp.Diff([]string{"21000/116"}, rules()); diff != "" {
		t.Errorf("rules after the reload (-want +got):\n%s", diff)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string(nil), rules()); diff != "" {
		t.Errorf("rules after stopping (-want +got):\n%s", diff)
	}
}

// TestFightIsHeldBack: a route that something else keeps deleting is
// repaired FightLimit+1 times, then held back; the facts name it, with
// the tunnel it goes through and when the hold ends, for status to show
// in that tunnel's block (a tester saw the tunnel "up" and only the
// daemon's last line say that its route was no longer repaired).
func TestFightIsHeldBack(t *testing.T) {
	now := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	h := startOpts(t, baseConfig, opts{now: func() time.Time { return now }})
	defer h.stop()
	del := func() {
		h.k.Observe(context.Background(), model.Scope{})
		h.k.Routes = slices.DeleteFunc(h.k.Routes, func(r fakekernel.Route) bool { return r.Dst == netip.MustParsePrefix("10.9.0.0/16") })
	}
	for i := range FightLimit + 1 {
		del()
		if w := h.event(watch.Route); w != 1 {
			t.Fatalf("repair %d: %d writes", i, w)
		}
	}
	del()
	if w := h.event(watch.Route); w != 0 {
		t.Fatalf("repairs continue after %d fights: %d writes", FightLimit+1, w)
	}
	f := h.d.Facts()
	if !slices.Equal(f.Held, []string{"route 10.9.0.0/16 table main"}) {
		t.Fatalf("held = %v", f.Held)
	}
	want := []Hold{{Object: "route 10.9.0.0/16 table main", Tunnel: "moe", Until: now.Add(HoldOff)}}
	if diff := cmp.Diff(want, f.Holds); diff != "" {
		t.Errorf("holds (-want +got):\n%s", diff)
	}
}

// TestTunnelOf: a held object is shown in the block of the tunnel it
// belongs to: the tunnel, its addresses and sysctls, the routes through
// it (a route that names no device by its [[route]] section); others
// belong to none.
func TestTunnelOf(t *testing.T) {
	c, err := config.Parse("f.toml", []byte(baseConfig+"[[route]]\nto = \"10.8.0.0/16\"\ndev = \"moe\"\ntable = \"moe\"\n"+
		"[[route]]\nto = \"10.7.0.0/16\"\nvia = \"10.0.0.2\"\ntable = \"moe\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix
	for _, tt := range []struct {
		name string
		op   plan.Op
		want string
	}{
		{"tunnel", plan.Op{Kind: plan.LinkAdd, Link: &model.Link{Name: "moe"}}, "moe"},
		{"another link", plan.Op{Kind: plan.LinkAdd, Link: &model.Link{Name: "larry"}}, ""},
		{"address", plan.Op{Kind: plan.AddrAdd, Addr: &model.Addr{Link: "moe", Prefix: p("10.0.0.1/30")}}, "moe"},
		{"route through it", plan.Op{Kind: plan.RouteAdd, Route: &model.Route{Table: model.TableMain, Dst: p("10.9.0.0/16"), Dev: "moe"}}, "moe"},
		{"its route, no device", plan.Op{Kind: plan.RouteAdd, Route: &model.Route{Table: 42, Dst: p("10.8.0.0/16"), Type: model.RouteUnreachable}}, "moe"},
		{"its route by a gateway in its subnet, no device", plan.Op{Kind: plan.RouteAdd, Route: &model.Route{Table: 42, Dst: p("10.7.0.0/16"), Type: model.RouteUnreachable}}, "moe"},
		{"route through lan", plan.Op{Kind: plan.RouteAdd, Route: &model.Route{Table: model.TableMain, Dst: p("172.16.0.0/12"), Dev: "lan"}}, ""},
		{"its sysctl", plan.Op{Kind: plan.SysctlSet, Sysctl: &model.Sysctl{Path: "net/ipv4/conf/moe/rp_filter"}}, "moe"},
		{"ip_forward", plan.Op{Kind: plan.SysctlSet, Sysctl: &model.Sysctl{Path: "net/ipv4/ip_forward"}}, ""},
		{"rule", plan.Op{Kind: plan.RuleAdd, Rule: &model.Rule{Priority: 20000}}, ""},
	} {
		dm := New(Deps{})
		dm.cfg = c
		if got := dm.tunnelOf(tt.op); got != tt.want {
			t.Errorf("%s: tunnelOf = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestReloadReleasesHeld: a reload (the admin's word, after the other
// manager is gone or with a configuration that wants something else)
// tries again what was held back as a fight, whether the configuration
// changed or not.
func TestReloadReleasesHeld(t *testing.T) {
	for _, tc := range []struct {
		name, cfg string
		// undone: the other manager has deleted the route again.
		undone bool
		want   []string
	}{
		{"same configuration", baseConfig, true, []string{"10.9.0.0/16 dev moe"}},
		{"route changed", strings.Replace(baseConfig, "to = \"10.9.0.0/16\"\ndev = \"moe\"", "to = \"10.9.0.0/16\"\ndev = \"lan\"", 1), true, []string{"10.9.0.0/16 dev lan"}},
		{"route removed", strings.Replace(baseConfig, "[[route]]\nto = \"10.9.0.0/16\"\ndev = \"moe\"\n", "", 1), false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, baseConfig)
			defer h.stop()
			del := func() {
				h.k.Observe(context.Background(), model.Scope{})
				h.k.Routes = slices.DeleteFunc(h.k.Routes, func(r fakekernel.Route) bool { return r.Dst == netip.MustParsePrefix("10.9.0.0/16") })
			}
			for range FightLimit + 1 {
				del()
				h.event(watch.Route)
			}
			if f := h.d.Facts(); len(f.Held) != 1 {
				t.Fatalf("held before the reload = %v, want the route", f.Held)
			}
			if tc.undone {
				del()
			}
			h.mu.Lock()
			h.cfg = tc.cfg
			h.mu.Unlock()
			h.reload <- syscall.SIGHUP
			f := h.next()
			h.writes() // take the lock
			var got []string
			for _, r := range h.k.Routes {
				if r.Proto == model.RouteProtocol && r.Dst == netip.MustParsePrefix("10.9.0.0/16") {
					got = append(got, r.Dst.String()+" dev "+r.Dev)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("route 10.9.0.0/16 after the reload (-want +got):\n%s", diff)
			}
			if len(f.Held) != 0 {
				t.Errorf("held after the reload = %v, want none", f.Held)
			}
		})
	}
}

// TestWANFlipsAreNotAFight: the WAN address changing again and again is
// followed every time; only the same repair repeated counts as a fight.
func TestWANFlipsAreNotAFight(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	for i := range 3 * FightLimit {
		a := netip.MustParsePrefix([]string{"192.0.2.8/24", "192.0.2.9/24"}[i%2])
		h.k.SetAddrs("wan", a)
		h.event(watch.Addr)
		if h.link().Local != a.Addr() {
			t.Fatalf("flip %d: local %v, want %v (held: %v)", i, h.link().Local, a.Addr(), h.d.Facts().Held)
		}
	}
}

// TestLinkFlapsAreNotAFight: a device going down and up again and again
// loses its routes every time (the kernel flushes them); they are put
// back every time, never held back as a fight, whether the hint that
// puts them back is the link's or, when the notifications of the flushed
// routes trail the link's into a batch of their own, a route's.
func TestLinkFlapsAreNotAFight(t *testing.T) {
	for _, back := range []watch.Kind{watch.Link, watch.Route} {
		t.Run(back.String(), func(t *testing.T) {
			h := start(t, baseConfig)
			defer h.stop()
			for i := range 3 * FightLimit {
				h.k.SetUp("lan", false)
				h.event(watch.Link)
				h.k.SetUp("lan", true)
				if w := h.event(back); w != 1 || !slices.Equal(h.routes(), allRoutes) {
					t.Fatalf("flap %d: writes %d, routes %v (held: %v)", i, w, h.routes(), h.d.Facts().Held)
				}
			}
		})
	}
}

func TestKeepOnExit(t *testing.T) {
	h := start(t, strings.Replace(baseConfig, "ip_forward = true", "ip_forward = true\nkeep_on_exit = true", 1))
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if len(h.k.Tunnels) != 1 || !slices.Equal(h.routes(), allRoutes) {
		t.Fatal("keep_on_exit: state was removed")
	}
}

// TestReloadWithStop: a SIGHUP and a SIGTERM that a busy daemon finds
// both waiting (a tester's "keep_on_exit = true, reload, stop" removed
// everything, the reload lost): the reload's file decides what the stop
// keeps, whichever of the two the loop takes first. Twenty times: the
// loop's select picks at random.
func TestReloadWithStop(t *testing.T) {
	for i := range 20 {
		h := startOpts(t, baseConfig, opts{reloadRoom: 1})
		wait := make(chan struct{})
		h.pause <- wait
		h.events <- watch.Event{Kind: watch.Link} // a convergence, held in its facts
		<-h.paused
		h.mu.Lock()
		h.cfg = strings.Replace(baseConfig, "ip_forward = true", "ip_forward = true\nkeep_on_exit = true", 1)
		h.mu.Unlock()
		h.reload <- syscall.SIGHUP
		h.cancel()
		close(wait)
		if err := h.stop(); err != nil {
			t.Fatal(err)
		}
		if len(h.k.Tunnels) != 1 || !slices.Equal(h.routes(), allRoutes) {
			t.Fatalf("try %d: the stop removed what the reloaded file keeps (keep_on_exit): tunnels %v, routes %v", i, h.k.Tunnels, h.routes())
		}
	}
}

func TestNoGoroutineGrowth(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	g0 := runtime.NumGoroutine()
	for range 1000 {
		h.k.SetUp("moe", false)
		h.event(watch.Link)
	}
	if g := runtime.NumGoroutine(); g > g0+2 {
		t.Errorf("goroutines grew from %d to %d over 1000 link flaps", g0, g)
	}
}

// TestFollows: only an address hint on the local device of a tunnel that
// exists takes the short way.
func TestFollows(t *testing.T) {
	c, err := config.Parse("f.toml", []byte(baseConfig))
	if err != nil {
		t.Fatal(err)
	}
	devices := map[string]model.Device{"wan": {Name: "wan", Index: 2}, "lan": {Name: "lan", Index: 3}}
	for _, tt := range []struct {
		name  string
		links []model.Link
		index int
		want  bool
	}{
		{"wan, tunnel there", []model.Link{{Name: "moe"}}, 2, true},
		{"lan", []model.Link{{Name: "moe"}}, 3, false},
		{"no device named", []model.Link{{Name: "moe"}}, 0, false},
		{"wan, tunnel not created", nil, 2, false},
		{"wan, another tunnel", []model.Link{{Name: "larry"}}, 2, false},
	} {
		dm := New(Deps{})
		dm.cfg = c
		dm.last.Inputs.Devices = devices
		dm.last.Have.Links = tt.links
		if got := dm.follows(tt.index); got != tt.want {
			t.Errorf("%s: follows(%d) = %v, want %v", tt.name, tt.index, got, tt.want)
		}
	}
}

// TestFailingTunnelIsNotUp: when the tunnel cannot be created (here: the
// kernel lost its ipip driver after someone deleted the tunnel), the
// daemon's facts and systemd's STATUS count it down, with the reason (the
// creation's failure, which status shows), not up as wanted; and the same failure after every hint is logged at error
// level once, until it changes or ends.
func TestFailingTunnelIsNotUp(t *testing.T) {
	var log syncbuf.Buffer
	h := startLogging(t, baseConfig, logfmt.New(&log, logfmt.Info))
	h.k.SetFail(func(op plan.Op) error {
		if op.Kind == plan.LinkAdd {
			return &kernel.NoDriverError{Mode: op.Link.Mode}
		}
		return nil
	})
	h.k.DelDevice("moe")
	h.event(watch.Link)
	for range 3 {
		h.event(watch.Route)
	}
	f := h.d.Facts()
	if len(f.Tunnels) != 1 || f.Tunnels[0].Up || f.Tunnels[0].Reason != "creating it failed: kernel has no ipip support (load module ipip; on OpenWrt install kmod-ipip)" {
		t.Errorf("tunnels = %+v, want moe down, its creation failed for want of the driver", f.Tunnels)
	}
	h.waitNotified("STATUS=0/1 tunnels up")
	if n := strings.Count(log.String(), `msg="converge failed"`); n != 1 {
		t.Errorf("%d error lines for the same failure, want 1:\n%s", n, log.String())
	}
	h.k.SetFail(nil)
	h.event(watch.Link)
	if f := h.d.Facts(); !f.Tunnels[0].Up {
		t.Errorf("after the driver came back: %+v", f.Tunnels)
	}
	h.waitNotified("STATUS=1/1 tunnels up")
}

// TestInKernelReason: a tunnel wanted up that a converge left out of the
// kernel, or down, is down with the failure of its creation, or of
// setting it up, when the converge's error holds it; else with a
// pointer to the last error. One whose repairs are held back is down
// because of the hold, whatever the error; held and in the kernel up, it
// is up.
func TestInKernelReason(t *testing.T) {
	until := time.Date(2026, 1, 2, 5, 26, 3, 0, time.UTC)
	heldMoe := map[string]time.Time{"moe": until}
	heldLarry := map[string]time.Time{"larry": until}
	moe := model.Link{Name: "moe", Mode: model.ModeIPIP}
	add := plan.Op{Kind: plan.LinkAdd, Link: &moe}
	up := plan.Op{Kind: plan.LinkUp, Link: &moe, Name: "moe"}
	noDriver := &kernel.NoDriverError{Mode: model.ModeIPIP}
	failed := func(op plan.Op, err error) error {
		return &kernel.ApplyError{Failed: []*kernel.OpError{{Op: op, Err: err}}}
	}
	larry := model.Link{Name: "larry", Mode: model.ModeIPIP}
	for _, tt := range []struct {
		name  string
		links []model.Link
		err   error
		held  map[string]time.Time
		want  string
	}{
		{"created and up", []model.Link{{Name: "moe", Up: true}}, nil, nil, ""},
		{"creation failed", nil, failed(add, noDriver), nil, "creating it failed: kernel has no ipip support (load module ipip; on OpenWrt install kmod-ipip)"},
		{"another tunnel's creation failed", nil, failed(plan.Op{Kind: plan.LinkAdd, Link: &larry}, noDriver), nil, "not in the kernel (see the last error)"},
		{"no apply error", nil, engine.ErrNotConverged, nil, "not in the kernel (see the last error)"},
		{"setting it up failed", []model.Link{{Name: "moe"}}, failed(up, syscall.EPERM), nil, "setting it up failed: operation not permitted"},
		{"down, its creation's error", []model.Link{{Name: "moe"}}, failed(add, noDriver), nil, "down in the kernel (see the last error)"},
		{"held missing", nil, nil, heldMoe, "held back until 2026-01-02 05:26:03: something else keeps deleting or changing it"},
		{"held down", []model.Link{{Name: "moe"}}, nil, heldMoe, "held back until 2026-01-02 05:26:03: something else keeps deleting or changing it"},
		{"held up", []model.Link{{Name: "moe", Up: true}}, nil, heldMoe, ""},
		{"another tunnel held", nil, nil, heldLarry, "not in the kernel (see the last error)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := engine.Snapshot{Have: model.State{Links: tt.links}, Want: desired.Result{Tunnels: []desired.TunnelStatus{{Name: "moe", Up: true}}}}
			want := []desired.TunnelStatus{{Name: "moe", Up: tt.want == "", Reason: tt.want}}
			if diff := cmp.Diff(want, inKernel(s, tt.err, tt.held), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestHoldEnds: a hold lasts HoldOff; when it is over the object is
// repaired again, and the log says so (the hold's start was logged).
func TestHoldEnds(t *testing.T) {
	var log syncbuf.Buffer
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	dm := New(Deps{Log: logfmt.New(&log, logfmt.Info), Now: func() time.Time { return now }})
	op := plan.Op{Kind: plan.RouteAdd, Route: &model.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("10.9.0.0/16"), Dev: "moe"}}
	dm.held[op.Object()] = holding{until: now.Add(HoldOff)}
	now = now.Add(HoldOff - time.Second)
	if !dm.hold(op) {
		t.Fatal("released before HoldOff")
	}
	now = now.Add(2 * time.Second)
	if dm.hold(op) {
		t.Fatal("still held after HoldOff")
	}
	want := `level=INFO msg="repairing again: the hold is over" object="route 10.9.0.0/16 table main"`
	if !strings.Contains(log.String(), want) {
		t.Errorf("log %q lacks %q", log.String(), want)
	}
}

// TestFactsConfigSum: the facts carry the sum of the configuration the
// daemon runs (for status to tell a file edited and not reloaded): the
// one it started with, a reload's once taken, not a refused one's.
func TestFactsConfigSum(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	sum := func() []string {
		f := h.d.Facts()
		return []string{f.ConfigFile, f.ConfigSum}
	}
	if diff := cmp.Diff([]string{"t.toml", config.Sum([]byte(baseConfig))}, sum()); diff != "" {
		t.Errorf("at start (-want +got):\n%s", diff)
	}
	changed := strings.Replace(baseConfig, `to = "10.9.0.0/16"`, `to = "10.8.0.0/16"`, 1)
	h.reloadWith(changed)
	h.next()
	if diff := cmp.Diff([]string{"t.toml", config.Sum([]byte(changed))}, sum()); diff != "" {
		t.Errorf("after a reload (-want +got):\n%s", diff)
	}
	h.reloadWith(baseConfig + "[oops\n")
	for deadline := time.Now().Add(5 * time.Second); !strings.HasPrefix(h.d.Facts().LastError, "reload refused"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the reload was not refused: last error %q", h.d.Facts().LastError)
		}
	}
	if diff := cmp.Diff([]string{"t.toml", config.Sum([]byte(changed))}, sum()); diff != "" {
		t.Errorf("after a refused reload (-want +got):\n%s", diff)
	}
}

// TestLastChangeForgetsDroppedTunnels: a tunnel the configuration no
// longer has, removed or renamed, leaves the facts' LastChange at the
// reload: a tester renamed t1 to t2 and `status --json` kept "t1" in
// Daemon.LastChange forever.
func TestLastChangeForgetsDroppedTunnels(t *testing.T) {
	for _, tt := range []struct {
		name, cfg string
		want      []string
	}{
		{"renamed", strings.ReplaceAll(baseConfig, "moe", "curly"), []string{"curly"}},
		{"removed", strings.NewReplacer("[tunnel.moe]\nmode = \"ipip\"\nlocal = \"wan\"\nremote = \"peer.example\"\naddress = \"10.0.0.1/30\"\n", "",
			"[[route]]\nto = \"10.9.0.0/16\"\ndev = \"moe\"\n", "", "[[route]]\nto = \"default\"\nvia = \"peer\"\ndev = \"moe\"\ntable = \"moe\"\n", "").Replace(baseConfig), []string{}},
		{"kept", baseConfig, []string{"moe"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, baseConfig)
			defer h.stop()
			if _, ok := h.d.Facts().LastChange["moe"]; !ok {
				t.Fatalf("no last change of moe at start: %v", h.d.Facts().LastChange)
			}
			h.reloadWith(tt.cfg)
			h.next()
			got := slices.Sorted(maps.Keys(h.d.Facts().LastChange))
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("LastChange's tunnels (-want +got):\n%s", diff)
			}
		})
	}
}

// tunnelLocal is moe's local address in the kernel, read under the
// kernel's lock (the loop may be changing it).
func (h *harness) tunnelLocal() netip.Addr {
	s, _, err := h.k.Observe(context.Background(), model.Scope{Links: map[string]model.Mode{"moe": model.ModeIPIP}})
	if err != nil {
		h.t.Fatal(err)
	}
	i, ok := model.LinkNamed(s.Links, "moe")
	if !ok {
		return netip.Addr{}
	}
	return s.Links[i].Local
}
