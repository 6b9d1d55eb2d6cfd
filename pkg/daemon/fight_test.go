package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/logfmt"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
	"github.com/tunneld/tunneld/pkg/watch"
)

// throughMoe are baseConfig's routes through moe.
var throughMoe = []string{"route 0.0.0.0/0 table 42", "route 10.9.0.0/16 table main"}

// TestTunnelFightIsHeldBack: a tunnel that something else keeps deleting,
// changing or setting down, or one time deleting and the next changing
// (each a link hint), is repaired FightLimit+1 times, then held back with
// the line a route in a fight gets, and left as the other manager made
// it; its addresses and routes, which the kernel takes with it and
// tunneld puts back each time, are not held. While it is held missing or
// down, the routes through it stand as unreachable routes.
func TestTunnelFightIsHeldBack(t *testing.T) {
	deleted := func(k *fakekernel.Kernel) { k.DelDevice("moe") }
	changed := func(k *fakekernel.Kernel) {
		l := k.Tunnels["moe"]
		l.TTL = 9 // ip tunnel change moe ttl 9
		k.Tunnels["moe"] = l
	}
	for _, tt := range []struct {
		name string
		// undo is the other manager's change, the i-th time.
		undo func(k *fakekernel.Kernel, i int)
		// left says whether the tunnel is as the other manager left it.
		left func(k *fakekernel.Kernel) bool
		// unreachable are tunneld's unreachable routes while it is held:
		// those through it stand so while it is missing or down.
		unreachable []string
		// unmarked: the daemon keeps it without its alias, and its
		// facts say so (Facts.Unmarked), for status.
		unmarked bool
	}{
		{"deleted", func(k *fakekernel.Kernel, _ int) { deleted(k) },
			func(k *fakekernel.Kernel) bool { _, ok := k.Tunnels["moe"]; return !ok }, throughMoe, false},
		{"changed", func(k *fakekernel.Kernel, _ int) { changed(k) },
			func(k *fakekernel.Kernel) bool { return k.Tunnels["moe"].TTL == 9 }, nil, false},
		{"set down", func(k *fakekernel.Kernel, _ int) { k.SetUp("moe", false) },
			func(k *fakekernel.Kernel) bool { return !k.Devices["moe"].Up }, throughMoe, false},
		// Deleted, then changed: tunneld creates it one time and changes
		// it the next, back to the same tunnel each time.
		{"deleted or changed", func(k *fakekernel.Kernel, i int) {
			if i%2 == 0 {
				deleted(k)
			} else {
				changed(k)
			}
		}, func(k *fakekernel.Kernel) bool { _, ok := k.Tunnels["moe"]; return !ok }, throughMoe, false},
		// Its alias changed, again and again (ip link set moe alias
		// LABEL): still tunneld's, and routed through, unmarked.
		{"relabeled", func(k *fakekernel.Kernel, i int) { k.Aliases["moe"] = fmt.Sprintf("to-branch-%d", i) },
			func(k *fakekernel.Kernel) bool { return k.Aliases["moe"] != model.LinkAlias }, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var log syncbuf.Buffer
			h := startLogging(t, baseConfig, logfmt.New(&log, logfmt.Info))
			defer h.stop()
			undo := func(i int) {
				h.k.Observe(context.Background(), model.Scope{}) // take the lock: the loop may be applying
				tt.undo(h.k, i)
			}
			for i := range FightLimit + 1 {
				undo(i)
				if w := h.event(watch.Link); w == 0 || tt.left(h.k) {
					t.Fatalf("repair %d: %d writes, tunnel %s (held: %v)", i, w, tunnel(h.k), h.d.Facts().Held)
				}
			}
			undo(FightLimit + 1)
			h.event(watch.Link)
			h.writes() // take the lock
			if !tt.left(h.k) {
				t.Errorf("repaired after %d repairs: %s", FightLimit+1, tunnel(h.k))
			}
			if diff := cmp.Diff([]string{`tunnel "moe"`}, h.d.Facts().Held); diff != "" {
				t.Errorf("held (-want +got):\n%s", diff)
			}
			line := fmt.Sprintf(`level=WARN msg="giving up on tunnel \"moe\" for %s: something else keeps changing it (%d repairs in %s)" object="tunnel \"moe\""`, HoldOff, FightLimit+1, FightWindow)
			if n := strings.Count(log.String(), line); n != 1 {
				t.Errorf("%d lines %s, want 1; the log:\n%s", n, line, log.String())
			}
			// What needs the held tunnel (its address, its routes) waits
			// with it rather than failing every converge.
			h.event(watch.Route)
			if f := h.d.Facts(); strings.Contains(log.String(), "converge failed") || f.LastError != "" {
				t.Errorf("converges failed while the tunnel is held (last error %q); the log:\n%s", f.LastError, log.String())
			}
			h.writes() // take the lock
			if diff := cmp.Diff(tt.unreachable, h.unreachable()); diff != "" {
				t.Errorf("unreachable routes while held (-want +got):\n%s", diff)
			}
			var unmarked map[string]int
			if tt.unmarked {
				unmarked = map[string]int{"moe": h.k.Devices["moe"].Index}
			}
			if diff := cmp.Diff(unmarked, h.d.Facts().Unmarked); diff != "" {
				t.Errorf("unmarked tunnels in the facts (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHoldEndIsActedOn: when the hold of a tunnel that something else
// deleted (or set down) ends, the loop converges by itself and puts the
// tunnel and its routes back, with no hint and long before the resync;
// the facts list the hold until then and no longer after. A tunnel
// held missing cuts its routes off: waiting for the next hint or resync
// kept them so for up to a resync interval more.
func TestHoldEndIsActedOn(t *testing.T) {
	cfg := strings.Replace(baseConfig, "[global]\n", "[global]\nresync_interval = \"1h\"\n", 1)
	for _, tt := range []struct {
		name string
		undo func(k *fakekernel.Kernel)
	}{
		{"deleted", func(k *fakekernel.Kernel) { k.DelDevice("moe") }},
		{"set down", func(k *fakekernel.Kernel) { k.SetUp("moe", false) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var log syncbuf.Buffer
			const holdOff = 300 * time.Millisecond
			h := startOpts(t, cfg, opts{log: logfmt.New(&log, logfmt.Info), holdOff: holdOff})
			defer h.stop()
			for range FightLimit + 2 {
				h.k.Observe(context.Background(), model.Scope{}) // take the lock: the loop may be applying
				tt.undo(h.k)
				h.event(watch.Link)
			}
			f := h.d.Facts()
			if diff := cmp.Diff([]string{`tunnel "moe"`}, f.Held); diff != "" {
				t.Fatalf("held (-want +got):\n%s", diff)
			}
			// The kernel is not read here: the hold may be ending.
			var reason string
			var unreachable []string
			for _, ts := range f.Tunnels {
				if ts.Name == "moe" {
					reason = ts.Reason
					for _, r := range ts.Held {
						unreachable = append(unreachable, r.ID())
					}
				}
			}
			slices.Sort(unreachable)
			if want := HeldReason(f.Holds[0].Until); reason != want {
				t.Errorf("while held: reason %q, want %q", reason, want)
			}
			if diff := cmp.Diff(throughMoe, unreachable); diff != "" {
				t.Errorf("unreachable routes while held (-want +got):\n%s", diff)
			}
			// No hint, no resync within the hour: the hold's end alone.
			after := h.next()
			h.writes() // take the lock
			if d, ok := h.k.Devices["moe"]; !ok || !d.Up || len(h.unreachable()) != 0 || !slices.Equal(h.routes(), allRoutes) {
				t.Errorf("after the hold: tunnel %s, routes %v, unreachable %v", tunnel(h.k), h.routes(), h.unreachable())
			}
			if len(after.Held) != 0 || len(h.d.Facts().Holds) != 0 {
				t.Errorf("holds listed after their end: %v, %v", after.Held, h.d.Facts().Holds)
			}
			for _, line := range []string{
				`level=INFO msg="repairing again: the hold is over" object="tunnel \"moe\""`,
				`reason="hold over"`,
			} {
				if !strings.Contains(log.String(), line) {
					t.Errorf("the log lacks %s:\n%s", line, log.String())
				}
			}
		})
	}
}

// TestFactsDropEndedHolds: the facts read after a hold's end do not list
// it, even before the converge at its end has run; nor does the reason
// of a tunnel held back, which the last converge gave it: it says the
// hold is over, and the tunnel being repaired.
func TestFactsDropEndedHolds(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := start
	dm := New(Deps{Now: func() time.Time { return now }})
	dm.held[`tunnel "moe"`] = holding{until: now.Add(time.Minute), tunnel: "moe"}
	dm.held[`tunnel "larry"`] = holding{until: now.Add(2 * time.Minute), tunnel: "larry"}
	dm.held["route 10.9.0.0/16 table main"] = holding{until: now.Add(time.Minute), tunnel: "curly"}
	dm.showHolds(now)
	held := []string{HeldReason(now.Add(2 * time.Minute)), HeldReason(now.Add(time.Minute)), "waiting for wan"}
	dm.facts.Tunnels = []desired.TunnelStatus{{Name: "larry", Reason: held[0]}, {Name: "moe", Reason: held[1]}, {Name: "curly", Reason: held[2]}}
	for _, tt := range []struct {
		name  string
		after time.Duration
		want  []string
		// reasons are larry's, moe's and curly's.
		reasons []string
	}{
		{"all", 0, []string{`route 10.9.0.0/16 table main`, `tunnel "larry"`, `tunnel "moe"`}, held},
		{"moe's and the route's ended", time.Minute, []string{`tunnel "larry"`},
			[]string{held[0], "the hold ended at 2026-01-02 03:05:05: being repaired", held[2]}},
		{"all ended", 3 * time.Minute, nil,
			[]string{"the hold ended at 2026-01-02 03:06:05: being repaired", "the hold ended at 2026-01-02 03:05:05: being repaired", held[2]}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			now = start.Add(tt.after)
			f := dm.Facts()
			if diff := cmp.Diff(tt.want, f.Held); diff != "" {
				t.Errorf("held (-want +got):\n%s", diff)
			}
			if len(f.Holds) != len(tt.want) {
				t.Errorf("holds %v, want %d", f.Holds, len(tt.want))
			}
			var reasons []string
			for _, ts := range f.Tunnels {
				reasons = append(reasons, ts.Reason)
			}
			if diff := cmp.Diff(tt.reasons, reasons); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
			if dm.facts.Tunnels[0].Reason != held[0] || dm.facts.Tunnels[1].Reason != held[1] {
				t.Errorf("the daemon's own facts changed: %+v", dm.facts.Tunnels)
			}
		})
	}
}

// TestTunnelFlapsAreNotAFight: the tunnel set down and up again by
// someone else, again and again, loses its routes to the kernel each
// time; tunneld puts them back each time and holds nothing back.
func TestTunnelFlapsAreNotAFight(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	for i := range 3 * FightLimit {
		h.k.SetUp("moe", false)
		h.k.SetUp("moe", true)
		if w := h.event(watch.Link); w != 2 || !slices.Equal(h.routes(), allRoutes) {
			t.Fatalf("flap %d: writes %d (want the 2 routes through moe), routes %v (held: %v)", i, w, h.routes(), h.d.Facts().Held)
		}
	}
	if held := h.d.Facts().Held; len(held) != 0 {
		t.Errorf("held = %v, want none", held)
	}
}

// TestWANDeviceFlapsAreNotAFight: the device the tunnel takes its local
// address from going away and coming back, again and again, sets the
// tunnel down and up again each time, which is no repair: it is never
// held back, nor are its routes, each replaced in place by an
// unreachable route while the tunnel is down and by itself when it is
// up again (two forms by turns: no repair either).
func TestWANDeviceFlapsAreNotAFight(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	for i := range 3 * FightLimit {
		h.k.DelDevice("wan")
		h.event(watch.Link)
		if h.k.Devices["moe"].Up || !slices.Equal(h.routes(), allRoutes) || !slices.Equal(h.unreachable(), heldRoutes) {
			t.Fatalf("flap %d: while wan is gone: tunnel %s, routes %v, unreachable %v (held: %v)", i, tunnel(h.k), h.routes(), h.unreachable(), h.d.Facts().Held)
		}
		h.k.AddDevice(model.Device{Name: "wan", MTU: 1500, Up: true, Running: true, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.7/24")}})
		h.k.AddForeignRoute(model.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.1"), Dev: "wan"}, 3)
		h.event(watch.Link)
		if !h.k.Devices["moe"].Up || !slices.Equal(h.routes(), allRoutes) || len(h.unreachable()) != 0 {
			t.Fatalf("flap %d: after wan came back: tunnel %s, routes %v (held: %v)", i, tunnel(h.k), h.routes(), h.d.Facts().Held)
		}
	}
	if held := h.d.Facts().Held; len(held) != 0 {
		t.Errorf("held = %v, want none", held)
	}
}

// TestForm: a tunnel created (and set up), changed while up or set up is
// left in one form, set down or changed while down in another, one with other parameters in a third;
// a route added or replaced in one form.
func TestForm(t *testing.T) {
	moe := model.Link{Name: "moe", Mode: model.ModeIPIP, Local: netip.MustParseAddr("192.0.2.7"), Remote: netip.MustParseAddr("198.51.100.2"), TTL: 64, PMTUDisc: true, MTU: 1480, Up: true}
	down := moe
	down.Up = false
	moved := moe
	moved.Local = netip.MustParseAddr("192.0.2.8")
	route := &model.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("10.9.0.0/16"), Dev: "moe"}
	up := "ip link add moe mtu 1480 type ipip local 192.0.2.7 remote 198.51.100.2 ttl 64 pmtudisc (up)"
	for _, tt := range []struct {
		name string
		op   plan.Op
		want string
	}{
		{"tunnel created", plan.Op{Kind: plan.LinkAdd, Link: &moe}, up},
		{"tunnel changed", plan.Op{Kind: plan.LinkChange, Link: &moe, Old: &moved}, up},
		{"tunnel set up", plan.Op{Kind: plan.LinkUp, Link: &moe, Name: "moe"}, up},
		{"tunnel set down", plan.Op{Kind: plan.LinkDown, Link: &down, Name: "moe"}, "ip link add moe mtu 1480 type ipip local 192.0.2.7 remote 198.51.100.2 ttl 64 pmtudisc (down)"},
		{"tunnel moved", plan.Op{Kind: plan.LinkChange, Link: &moved, Old: &moe}, "ip link add moe mtu 1480 type ipip local 192.0.2.8 remote 198.51.100.2 ttl 64 pmtudisc (up)"},
		{"tunnel moved while down", plan.Op{Kind: plan.LinkChange, Link: &moved, Old: &down}, "ip link add moe mtu 1480 type ipip local 192.0.2.8 remote 198.51.100.2 ttl 64 pmtudisc (down)"},
		{"tunnel deleted", plan.Op{Kind: plan.LinkDel, Link: &moe}, "ip link del moe"},
		{"fallback device set down", plan.Op{Kind: plan.LinkDown, Name: "tunl0"}, "ip link set tunl0 down"},
		{"route added", plan.Op{Kind: plan.RouteAdd, Route: route}, "ip route add 10.9.0.0/16 dev moe table main proto 116"},
		{"route replaced", plan.Op{Kind: plan.RouteReplace, Route: route}, "ip route add 10.9.0.0/16 dev moe table main proto 116"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, form(tt.op)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// tunnel describes moe in k, for messages.
func tunnel(k *fakekernel.Kernel) string {
	d, ok := k.Devices["moe"]
	if !ok {
		return "none"
	}
	return fmt.Sprintf("%+v, up %v", k.Tunnels["moe"], d.Up)
}

// TestCounting: within FlushTrail of a link hint, only the repairs of
// what a device that went down or away takes with it are no fight.
func TestCounting(t *testing.T) {
	moe := model.Link{Name: "moe", Mode: model.ModeIPIP, Local: netip.MustParseAddr("192.0.2.7"), Remote: netip.MustParseAddr("198.51.100.2"), Dev: "wan", TTL: 64, MTU: 1480, Up: true}
	stale := moe // bound to a wan that went away: no device has its index
	stale.Dev, stale.Up = "", false
	unbound := moe
	unbound.Dev = ""
	other := stale
	other.TTL = 9
	sysctl := func(path string) *model.Sysctl { return &model.Sysctl{Path: path, Value: "1"} }
	for _, tt := range []struct {
		name string
		op   plan.Op
		// flushed: a link hint explains it.
		flushed bool
	}{
		{"route added", plan.Op{Kind: plan.RouteAdd, Route: &model.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("10.9.0.0/16"), Dev: "moe"}}, true},
		{"address added", plan.Op{Kind: plan.AddrAdd, Addr: &model.Addr{Link: "moe", Prefix: netip.MustParsePrefix("10.0.0.1/30")}}, true},
		{"a device's sysctl", plan.Op{Kind: plan.SysctlSet, Sysctl: sysctl("net/ipv4/conf/eth0/proxy_arp")}, true},
		{"tunnel bound again", plan.Op{Kind: plan.LinkChange, Link: &moe, Old: &stale}, true},
		{"tunnel created", plan.Op{Kind: plan.LinkAdd, Link: &moe}, false},
		{"tunnel set up", plan.Op{Kind: plan.LinkUp, Link: &moe, Name: "moe"}, false},
		{"tunnel changed", plan.Op{Kind: plan.LinkChange, Link: &moe, Old: &other}, false},
		{"tunnel bound to another device", plan.Op{Kind: plan.LinkChange, Link: &unbound, Old: &moe}, false},
		{"fallback device set down", plan.Op{Kind: plan.LinkDown, Name: "tunl0"}, false},
		{"rule added", plan.Op{Kind: plan.RuleAdd, Rule: &model.Rule{Priority: 20000, Table: 42}}, false},
		{"ip_forward", plan.Op{Kind: plan.SysctlSet, Sysctl: sysctl(model.IPForward)}, false},
		{"all devices' sysctl", plan.Op{Kind: plan.SysctlSet, Sysctl: sysctl("net/ipv4/conf/all/forwarding")}, false},
		{"default sysctl", plan.Op{Kind: plan.SysctlSet, Sysctl: sysctl("net/ipv6/conf/default/forwarding")}, false},
		{"nftables table", plan.Op{Kind: plan.FilterReplace, Filter: &model.Filter{}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := map[counting]bool{countNone: countNone.counts(tt.op), countAll: countAll.counts(tt.op), countUnflushed: countUnflushed.counts(tt.op)}
			want := map[counting]bool{countNone: false, countAll: true, countUnflushed: !tt.flushed}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
		})
	}
}

// holdRoute deletes a route of tunneld's by del, each time with a hint,
// until the daemon holds it back (FightLimit+1 repairs), and checks that
// its facts name the hold by route; with gone, it deletes the route once
// more and checks that the hold leaves it so (no write).
func (h *harness) holdRoute(del func(), route string, gone bool) {
	h.t.Helper()
	for range FightLimit + 1 {
		del()
		h.event(watch.Route)
	}
	if gone {
		del()
		if w := h.event(watch.Route); w != 0 {
			h.t.Fatalf("the route is repaired after %d repairs: %d writes", FightLimit+1, w)
		}
	}
	if diff := cmp.Diff([]string{route}, h.d.Facts().Held); diff != "" {
		h.t.Fatalf("held before the outage (-want +got):\n%s", diff)
	}
}

// TestWANReconnectsAreNotAFight: the WAN losing its address and getting
// a new one, again and again (a DHCP lease lost, an LTE or PPPoE
// reconnect), sets the tunnel down, moves it the short way while it is
// still down, and sets it up again in the converge after: no repair, and
// the tunnel follows every new address. The short way's change was noted
// as leaving the tunnel up, so the converge's setting up counted as one
// (a tester's: held for 5 minutes after 6 reconnects in a minute, on an
// address the WAN no longer had).
func TestWANReconnectsAreNotAFight(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	wan := h.k.Devices["wan"].Index
	for i := range 3 * FightLimit {
		h.k.SetAddrs("wan")
		h.events <- watch.Event{Kind: watch.Addr, Index: wan}
		h.next()
		if h.k.Devices["moe"].Up {
			t.Fatalf("reconnect %d: the tunnel is up while wan has no address: %s", i, tunnel(h.k))
		}
		addr := netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)})
		h.k.SetAddrs("wan", netip.PrefixFrom(addr, 24))
		h.events <- watch.Event{Kind: watch.Addr, Index: wan}
		h.next()
		h.writes() // take the lock
		if l := h.link(); !h.k.Devices["moe"].Up || l.Local != addr {
			t.Fatalf("reconnect %d: tunnel %s, want up from %s (held: %v)", i, tunnel(h.k), addr, h.d.Facts().Held)
		}
	}
	if held := h.d.Facts().Held; len(held) != 0 {
		t.Errorf("held = %v, want none", held)
	}
}

// TestFilterFightIsNotHeldBack: the nftables table deleted by something
// else again and again (`nft flush ruleset` in a firewall script) is
// put back every time, never held back: held, the tunnels stayed up
// without the table that guards them. The fight is said once.
func TestFilterFightIsNotHeldBack(t *testing.T) {
	var log syncbuf.Buffer
	h := startLogging(t, baseConfig, logfmt.New(&log, logfmt.Info))
	defer h.stop()
	for i := range 3 * FightLimit {
		h.writes() // take the lock
		h.k.SetFilter(nil)
		if w := h.event(watch.Filter); w == 0 || h.k.Filter() == nil {
			t.Fatalf("deletion %d: %d writes, table %v (held: %v)", i, w, h.k.Filter(), h.d.Facts().Held)
		}
	}
	if held := h.d.Facts().Held; len(held) != 0 {
		t.Errorf("held = %v, want none", held)
	}
	if strings.Contains(log.String(), "giving up") {
		t.Errorf("the log gives up on something:\n%s", log.String())
	}
	const said = `level=WARN msg="something else keeps changing nftables table inet tunneld (6 repairs in 1m0s): tunneld keeps putting it back`
	if n := strings.Count(log.String(), said); n != 1 {
		t.Errorf("%d lines %s…, want 1; the log:\n%s", n, said, log.String())
	}
}

// TestRouteHintsOfOtherTables: a route hint of a table tunneld neither
// writes nor reads (a routing daemon's table 77, protocol bird) starts
// no convergence; one of the main table, of a table the configuration's
// routes go in, of tunneld's own protocol in any table, or one that does
// not say its table, does.
func TestRouteHintsOfOtherTables(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	const bird = 12
	quiet := func() bool {
		select {
		case <-h.facts:
			return false
		case <-time.After(300 * time.Millisecond):
			return true
		}
	}
	for _, tt := range []struct {
		name     string
		ev       watch.Event
		converge bool
	}{
		{"a routing daemon's table", watch.Event{Kind: watch.Route, Table: 77, Proto: bird}, false},
		{"the main table", watch.Event{Kind: watch.Route, Table: model.TableMain, Proto: bird}, true},
		{"the configuration's table", watch.Event{Kind: watch.Route, Table: 42, Proto: bird}, true},
		{"tunneld's protocol in another table", watch.Event{Kind: watch.Route, Table: 77, Proto: model.RouteProtocol}, true},
		{"no table said", watch.Event{Kind: watch.Route}, true},
	} {
		h.events <- tt.ev
		if converged := !quiet(); converged != tt.converge {
			t.Errorf("%s: converged %v, want %v", tt.name, converged, tt.converge)
		}
	}
}

// TestReloadRefusesEmptyFile: a reload of a file emptied (or holding
// white space and comments alone) is refused, the running configuration
// kept and nothing removed; one with its [global] section alone is
// taken, and removes everything.
func TestReloadRefusesEmptyFile(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	before := h.writes()
	h.mu.Lock()
	h.cfg = " \n# [tunnel.moe]\n\n"
	h.mu.Unlock()
	h.reload <- syscall.SIGHUP
	want := "reload refused: t.toml:1:1: " + config.EmptyMessage
	deadline := time.Now().Add(5 * time.Second)
	for h.d.Facts().LastError != want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if e := h.d.Facts().LastError; e != want {
		t.Fatalf("last error %q, want the empty file refused", e)
	}
	if w := h.writes() - before; w != 0 || h.link().Name != "moe" {
		t.Errorf("the refused reload wrote %d times; moe %+v", w, h.link())
	}
	h.mu.Lock()
	h.cfg = "[global]\n"
	h.mu.Unlock()
	h.reload <- syscall.SIGHUP
	h.next()
	h.writes() // take the lock
	if _, ok := h.k.Tunnels["moe"]; ok || len(h.routes()) != 0 {
		t.Errorf("a file with [global] alone left moe %v, routes %v", ok, h.routes())
	}
}

// TestShortWayAfterIgnoredRouteHint: an address hint of the WAN device
// read with more hints queued behind it waits for them, and the short way
// runs at the last; when that last is a route hint of a table tunneld
// neither writes nor reads (the local table's route the new address
// brings), the short way still runs then, not at the debounced converge.
// Skipping such a hint skipped the short way too, and a WAN address
// change waited for the converge (3× the reaction in the amd64 VM).
func TestShortWayAfterIgnoredRouteHint(t *testing.T) {
	var log syncbuf.Buffer
	h := startOpts(t, baseConfig, opts{debounce: 10 * time.Second, backlog: 4, log: logfmt.New(&log, logfmt.Info)})
	defer h.stop()
	wan := h.k.Devices["wan"].Index
	wait := make(chan struct{})
	h.pause <- wait
	h.reload <- syscall.SIGHUP // a convergence, held in its facts
	<-h.paused
	moved := netip.MustParseAddr("192.0.2.8")
	h.k.SetAddrs("wan", netip.PrefixFrom(moved, 24))
	h.events <- watch.Event{Kind: watch.Addr, Index: wan}
	h.events <- watch.Event{Kind: watch.Route, Table: 255, Proto: 2}
	close(wait)
	h.next()
	// The move is logged after the kernel has it: wait for the line
	// (waiting for the kernel alone read the log too early, now and
	// then, under a loaded run).
	const moveLine = `cmd="ip link change moe mtu 1480 type ipip local 192.0.2.8 remote 198.51.100.2 ttl 64 pmtudisc"`
	for deadline := time.Now().Add(2 * time.Second); !strings.Contains(log.String(), moveLine); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the tunnel (from %s) was not moved within 2 s of the hints (the debounce is 10 s); the log:\n%s", h.tunnelLocal(), log.String())
		}
	}
	if h.tunnelLocal() != moved {
		t.Errorf("the tunnel is from %s after its move was logged, want %s", h.tunnelLocal(), moved)
	}
	const shortWay = moveLine + ` reason="event: address (tunnel endpoints)"`
	if !strings.Contains(log.String(), shortWay) {
		t.Errorf("the tunnel was not moved the short way; the log:\n%s", log.String())
	}
}

// TestEndedWarningLogged: a rule someone put into tunneld's table is
// named in the log when the converge replaces the table, though the
// converge's last round no longer sees it (engine.Report.Ended).
func TestEndedWarningLogged(t *testing.T) {
	var log syncbuf.Buffer
	h := startLogging(t, baseConfig, logfmt.New(&log, logfmt.Info))
	defer h.stop()
	h.writes() // take the lock
	h.k.SetFilter(&model.Filter{Observed: "chain input type filter hook input priority 0\n\t?untagged handle 6\n"})
	h.event(watch.Filter)
	if !strings.Contains(log.String(), `level=WARN msg="nftables table inet tunneld holds a rule this version of tunneld did not write`) {
		t.Errorf("no warning about the rule; the log:\n%s", log.String())
	}
}
