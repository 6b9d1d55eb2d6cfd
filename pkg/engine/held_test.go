package engine

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// heldConf is the tester's: an ipip tunnel following eth0, a route
// through it in a table only a rule for the LAN reaches, and one in main.
const heldConf = `
[tables]
vpn = 100
[tunnel.t1]
mode = "ipip"
local = "eth0"
remote = "198.51.100.2"
address = "10.0.0.1/30"
[[route]]
to = "192.168.2.0/24"
via = "peer"
dev = "t1"
table = "vpn"
[[route]]
to = "10.20.0.0/16"
dev = "t1"
metric = 7
[[rule]]
iif = "eth1"
table = "vpn"
`

// ownRoutes are tunneld's routes in the fake kernel, in its order.
func ownRoutes(k *fakekernel.Kernel) []model.Route {
	var out []model.Route
	for _, r := range k.Routes {
		if r.Proto == model.RouteProtocol {
			out = append(out, r.Route)
		}
	}
	return out
}

// TestHeldRoutesReplacedInPlace: while the tunnel waits for eth0's
// address, its routes stand as unreachable routes (the rule stays, and
// its table is not empty: a lookup does not fall through to main and
// out by the WAN); when it comes up each is replaced in place by the
// route itself, and the reverse when it goes down again; a pass after
// each has nothing to do; down removes them with the rest. Before,
// the routes were withdrawn while the rule stayed.
func TestHeldRoutesReplacedInPlace(t *testing.T) {
	c, err := config.Parse("t.toml", []byte(heldConf))
	if err != nil {
		t.Fatal(err)
	}
	held, routed := heldConfRoutes()
	k := world()
	k.SetAddrs("eth0") // the WAN has no address yet
	before := dumpOf(k)
	converge := func(stage string, want []model.Route, routeOps plan.Kind) {
		t.Helper()
		rep, err := Converge(ctx, k, c, nil)
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		if diff := cmp.Diff(want, ownRoutes(k), dumpOpts); diff != "" {
			t.Errorf("%s: tunneld's routes (-want +got):\n%s", stage, diff)
		}
		n := 0
		for _, op := range rep.Applied {
			if op.Route != nil {
				n++
				if op.Kind != routeOps {
					t.Errorf("%s: %s, want each route %v", stage, op.Command(nil), routeOps)
				}
			}
		}
		if n != len(want) {
			t.Errorf("%s: %d route operations, want %d:\n%v", stage, n, len(want), rep.Applied)
		}
		if len(k.Rules) != len(world().Rules)+1 {
			t.Errorf("%s: rules %v, want tunneld's one beside the others", stage, k.Rules)
		}
		if s, err := Look(ctx, k, c, nil); err != nil || !s.Plan.Empty() {
			t.Errorf("%s: then (%v):\n%s", stage, err, s.Plan)
		}
	}
	converge("waiting for eth0's address", held, plan.RouteAdd)
	if _, ok := k.Tunnels["t1"]; ok {
		t.Fatal("t1 created without a local address")
	}
	k.SetAddrs("eth0", netip.MustParsePrefix("203.0.113.10/24"))
	converge("up", routed, plan.RouteReplace)
	k.SetAddrs("eth0")
	converge("down again", held, plan.RouteReplace)
	if k.Devices["t1"].Up {
		t.Error("t1 is up without a local address")
	}
	k.SetAddrs("eth0", netip.MustParsePrefix("203.0.113.10/24"))
	converge("up again", routed, plan.RouteReplace)
	k.SetAddrs("eth0")
	converge("down once more", held, plan.RouteReplace)
	if _, err := Down(ctx, k, c); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, dumpOf(k), dumpOpts); diff != "" {
		t.Errorf("after down (-before +after):\n%s", diff)
	}
}

// TestHeldRoutesCrash: a process stopped after any operation of the
// switch between a held route and the route itself (the tunnel coming
// up, going down), and started again, ends where an uninterrupted run
// ends, with one route of each key.
func TestHeldRoutesCrash(t *testing.T) {
	c, err := config.Parse("t.toml", []byte(heldConf))
	if err != nil {
		t.Fatal(err)
	}
	wan := netip.MustParsePrefix("203.0.113.10/24")
	for _, tt := range []struct {
		name       string
		start, end []netip.Prefix // eth0's addresses
	}{
		{"coming up", nil, []netip.Prefix{wan}},
		{"going down", []netip.Prefix{wan}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prepare := func() *fakekernel.Kernel {
				k := world()
				k.SetAddrs("eth0", tt.start...)
				if _, err := Converge(ctx, k, c, nil); err != nil {
					t.Fatal(err)
				}
				k.SetAddrs("eth0", tt.end...)
				return k
			}
			ref := prepare()
			if _, err := Converge(ctx, ref, c, nil); err != nil {
				t.Fatal(err)
			}
			want := dumpOf(ref)
			for n := 0; ; n++ {
				k := prepare()
				crashAfter(k, n, false)
				_, err := Converge(ctx, k, c, nil)
				if err == nil {
					if n == 0 {
						t.Fatal("nothing to interrupt")
					}
					break
				}
				if !errors.Is(err, errCrashed) {
					t.Fatalf("crash after %d: %v", n, err)
				}
				k.Fail = nil
				if _, err := Converge(ctx, k, c, nil); err != nil {
					t.Fatalf("after a crash after %d: %v", n, err)
				}
				if diff := cmp.Diff(want, dumpOf(k), dumpOpts); diff != "" {
					t.Errorf("after a crash after %d operations (-want +got):\n%s", n, diff)
				}
				keys := map[model.RouteKey]int{}
				for _, r := range ownRoutes(k) {
					keys[r.Key()]++
				}
				if slices.ContainsFunc(ownRoutes(k), func(r model.Route) bool { return keys[r.Key()] > 1 }) {
					t.Errorf("after a crash after %d: two routes of one key: %v", n, ownRoutes(k))
				}
			}
		})
	}
}

// TestHeldTunnelNeedsNoRouteDropped: a converge with the tunnel held (as
// the daemon holds one that something else keeps deleting, setting down
// or changing) leaves it as it is and ends converged, with only what the
// hold leaves out left to do. Missing or down, its routes stand as
// unreachable routes (model.Inputs.HeldTunnels): no route through it is
// planned, which the kernel would refuse. Up in the kernel in another
// mode, which the plan would delete and create again (both held), the
// plan adds every route through it again, as after a creation: dropHeld
// leaves those out (else the converge never ends, ErrNotConverged each
// time), and a route through it that was deleted stays so.
func TestHeldTunnelNeedsNoRouteDropped(t *testing.T) {
	c, err := config.Parse("t.toml", []byte(heldConf))
	if err != nil {
		t.Fatal(err)
	}
	unreachable, routed := heldConfRoutes()
	for _, tt := range []struct {
		name string
		undo func(k *fakekernel.Kernel)
		want []model.Route
	}{
		{"deleted", func(k *fakekernel.Kernel) { k.DelDevice("t1") }, unreachable},
		{"set down", func(k *fakekernel.Kernel) { k.SetUp("t1", false) }, unreachable},
		{"another mode, a route deleted", func(k *fakekernel.Kernel) {
			l := k.Tunnels["t1"]
			l.Mode = model.ModeGRE
			k.Tunnels["t1"] = l
			k.Routes = slices.DeleteFunc(k.Routes, func(r fakekernel.Route) bool { return r.Dst == netip.MustParsePrefix("10.20.0.0/16") })
		}, routed[:1]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := world()
			if _, err := Converge(ctx, k, c, nil); err != nil {
				t.Fatal(err)
			}
			tt.undo(k)
			before := k.Tunnels["t1"]
			held := model.Link{Name: "t1"}.ID()
			hold := func(op plan.Op) bool { return op.Object() == held }
			if _, err := Converge(ctx, k, c, nil, hold); err != nil {
				t.Fatalf("converge with t1 held: %v", err)
			}
			if diff := cmp.Diff(tt.want, ownRoutes(k), dumpOpts); diff != "" {
				t.Errorf("tunneld's routes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, k.Tunnels["t1"], dumpOpts); diff != "" {
				t.Errorf("t1 not left as it was (-before +after):\n%s", diff)
			}
			s, err := Look(ctx, k, c, nil, hold)
			if err != nil {
				t.Fatal(err)
			}
			for i, heldBack := range HeldBack(s.Plan.Ops, hold) {
				if !heldBack {
					t.Errorf("left to do: %s", s.Plan.Ops[i].Command(nil))
				}
			}
		})
	}
}

// heldConfRoutes are heldConf's two routes through t1: as the
// unreachable routes that stand for them while t1 is not up, and as
// themselves.
func heldConfRoutes() (unreachable, routed []model.Route) {
	p := netip.MustParsePrefix
	unreachable = []model.Route{
		{Table: 100, Dst: p("192.168.2.0/24"), Type: model.RouteUnreachable},
		{Table: model.TableMain, Dst: p("10.20.0.0/16"), Metric: 7, Type: model.RouteUnreachable},
	}
	routed = []model.Route{
		{Table: 100, Dst: p("192.168.2.0/24"), Via: netip.MustParseAddr("10.0.0.2"), Dev: "t1"},
		{Table: model.TableMain, Dst: p("10.20.0.0/16"), Dev: "t1", Metric: 7},
	}
	return unreachable, routed
}
