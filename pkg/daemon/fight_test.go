package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/logfmt"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
	"github.com/tunneld/tunneld/pkg/watch"
)

// TestTunnelFightIsHeldBack: a tunnel that something else keeps setting
// down (a link hint each time) is repaired FightLimit+1 times, then held
// back with the line a route in a fight gets, and left as the other
// manager made it; its routes, which the kernel takes with it and
// tunneld puts back each time, are not held.
func TestTunnelFightIsHeldBack(t *testing.T) {
	for _, tt := range []struct {
		name string
		// undo is the other manager's change, the i-th time.
		undo func(k *fakekernel.Kernel, i int)
		// left says whether the tunnel is as the other manager left it.
		left func(k *fakekernel.Kernel) bool
	}{
		{"set down", func(k *fakekernel.Kernel, _ int) { k.SetUp("moe", false) },
			func(k *fakekernel.Kernel) bool { return !k.Devices["moe"].Up }},
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
