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

// TestStandInDespiteHeldRoute: a route through moe held back in a fight
// (something kept deleting it) does not keep out the unreachable route
// that stands in for it once moe goes down (its WAN address gone): that
// is a change of the tunnel's state, not a repair, and without it the
// table is empty and what the rule sends there leaves by the WAN
// unencapsulated. So whether the route was missing when moe went down
// (the other manager deleted it once more) or still there (the kernel
// flushed it with the tunnel). The route's hold stays, and status can
// tell the two apart: the stand-in's add is not held back. Something
// that keeps deleting the stand-in in turn is fought FightLimit+1 times,
// then held back on its own, not in a storm. When moe comes up again,
// both holds end (freeRecovered) and the route itself is back.
func TestStandInDespiteHeldRoute(t *testing.T) {
	const (
		route   = "route 0.0.0.0/0 table 42"
		standIn = "unreachable route 0.0.0.0/0 table 42"
	)
	dflt := netip.MustParsePrefix("0.0.0.0/0")
	for _, tt := range []struct {
		name string
		// present: the route is in place when moe goes down.
		present bool
	}{
		{"route missing", false},
		{"route present", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var log syncbuf.Buffer
			h := startLogging(t, baseConfig, logfmt.New(&log, logfmt.Info))
			defer h.stop()
			// del deletes tunneld's route to default in table 42, the
			// route or its stand-in.
			del := func() {
				h.k.Observe(context.Background(), model.Scope{}) // take the lock: the loop may be applying
				h.k.Routes = slices.DeleteFunc(h.k.Routes, func(r fakekernel.Route) bool {
					return r.Proto == model.RouteProtocol && r.Table == 42 && r.Dst == dflt
				})
			}
			inTable := func() []string {
				h.writes() // take the lock
				var out []string
				for _, r := range h.k.Routes {
					if r.Table == 42 && r.Dst == dflt {
						out = append(out, r.Type.String())
					}
				}
				return out
			}
			h.holdRoute(del, route, !tt.present)

			h.writes() // take the lock
			h.k.SetAddrs("wan")
			h.event(watch.Addr)
			h.writes() // take the lock
			if h.k.Devices["moe"].Up || !slices.Equal(h.unreachable(), heldRoutes) {
				t.Fatalf("wan's address gone: tunnel %s, unreachable %v, want %v (held: %v); the log:\n%s",
					tunnel(h.k), h.unreachable(), heldRoutes, h.d.Facts().Held, log.String())
			}
			if got := inTable(); !slices.Equal(got, []string{model.RouteUnreachable.String()}) {
				t.Errorf("table 42 has %v, want the stand-in alone", got)
			}
			f := h.d.Facts()
			if diff := cmp.Diff([]string{route}, f.Held); diff != "" {
				t.Errorf("held while moe is down (-want +got):\n%s", diff)
			}
			// Status asks the holds by HoldKey: the stand-in's add is not
			// what the route's hold keeps out.
			for _, r := range f.Tunnels[0].Held {
				if key := HoldKey(plan.Op{Kind: plan.RouteAdd, Route: &r}); slices.Contains(f.Held, key) {
					t.Errorf("the stand-in %s is taken for the held %s", r.ID(), key)
				}
			}

			// The stand-in deleted again and again: repaired, then
			// held back on its own.
			for i := range FightLimit + 1 {
				del()
				if w := h.event(watch.Route); w != 1 {
					t.Fatalf("stand-in deleted, repair %d: %d writes (held: %v)", i, w, h.d.Facts().Held)
				}
			}
			del()
			if w := h.event(watch.Route); w != 0 {
				t.Fatalf("the stand-in is repaired after %d repairs: %d writes", FightLimit+1, w)
			}
			if diff := cmp.Diff([]string{route, standIn}, h.d.Facts().Held); diff != "" {
				t.Errorf("held in the stand-in's fight (-want +got):\n%s", diff)
			}
			line := fmt.Sprintf(`level=WARN msg="giving up on %s for %s: something else keeps changing it (%d repairs in %s)" object="%s"`,
				standIn, HoldOff, FightLimit+1, FightWindow, standIn)
			if n := strings.Count(log.String(), line); n != 1 {
				t.Errorf("%d lines %s, want 1; the log:\n%s", n, line, log.String())
			}

			// moe up again: both holds end, the route is back.
			h.writes() // take the lock
			h.k.SetAddrs("wan", netip.MustParsePrefix("192.0.2.7/24"))
			h.event(watch.Addr)
			h.writes() // take the lock
			if !h.k.Devices["moe"].Up || !slices.Equal(h.routes(), allRoutes) || len(h.unreachable()) != 0 {
				t.Errorf("wan's address back: tunnel %s, routes %v, unreachable %v", tunnel(h.k), h.routes(), h.unreachable())
			}
			if held := h.d.Facts().Held; len(held) != 0 {
				t.Errorf("held after moe came back = %v, want none", held)
			}
		})
	}
}

// TestHoldKey: a route's hold key is its object; an unreachable route's
// (the stand-in of a route through a tunnel that is not up), or another
// type's, is its object with the type first, whatever the operation on
// it; anything else's is its object. heldObject gives the object back.
func TestHoldKey(t *testing.T) {
	dst := netip.MustParsePrefix("0.0.0.0/0")
	route := &model.Route{Table: 42, Dst: dst, Via: netip.MustParseAddr("10.0.0.2"), Dev: "moe"}
	standIn := &model.Route{Table: 42, Dst: dst, Type: model.RouteUnreachable}
	blackhole := &model.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("10.8.0.0/16"), Metric: 5, Type: model.RouteBlackhole}
	for _, tt := range []struct {
		name string
		op   plan.Op
		want string
	}{
		{"route added", plan.Op{Kind: plan.RouteAdd, Route: route}, "route 0.0.0.0/0 table 42"},
		{"route replacing its stand-in", plan.Op{Kind: plan.RouteReplace, Route: route}, "route 0.0.0.0/0 table 42"},
		{"stand-in added", plan.Op{Kind: plan.RouteAdd, Route: standIn}, "unreachable route 0.0.0.0/0 table 42"},
		{"stand-in replacing the route", plan.Op{Kind: plan.RouteReplace, Route: standIn}, "unreachable route 0.0.0.0/0 table 42"},
		{"stand-in deleted", plan.Op{Kind: plan.RouteDel, Route: standIn}, "unreachable route 0.0.0.0/0 table 42"},
		{"blackhole route", plan.Op{Kind: plan.RouteAdd, Route: blackhole}, "blackhole route 10.8.0.0/16 table main metric 5"},
		{"tunnel", plan.Op{Kind: plan.LinkAdd, Link: &model.Link{Name: "moe"}}, `tunnel "moe"`},
		{"rule", plan.Op{Kind: plan.RuleAdd, Rule: &model.Rule{Priority: 20000}}, "rule priority 20000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := HoldKey(tt.op)
			if key != tt.want {
				t.Errorf("HoldKey = %q, want %q", key, tt.want)
			}
			if obj := heldObject(key); obj != tt.op.Object() {
				t.Errorf("heldObject(%q) = %q, want %q", key, obj, tt.op.Object())
			}
		})
	}
}
