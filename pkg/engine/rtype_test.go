package engine

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
)

// routeTypes has an unreachable, a blackhole and a prohibit route of each
// family, in main and in a table of its own.
const routeTypes = `
[tables]
t = 42
[[route]]
to = "10.60.0.0/16"
type = "unreachable"
[[route]]
to = "2001:db8:100::/48"
type = "unreachable"
[[route]]
to = "10.61.0.0/16"
type = "blackhole"
table = "t"
metric = 10
[[route]]
to = "::/0"
type = "blackhole"
table = "t"
[[route]]
to = "default"
type = "prohibit"
table = "t"
[[route]]
to = "2001:db8:200::/48"
type = "prohibit"
`

// TestRouteTypesConverge: unreachable, blackhole and prohibit routes are
// added as configured (an IPv6 one's metric 0 is 1024), a second pass has
// nothing to do, a foreign unreachable route is left alone by apply and
// down, and down removes tunneld's.
func TestRouteTypesConverge(t *testing.T) {
	c, err := config.Parse("t.toml", []byte(routeTypes))
	if err != nil {
		t.Fatal(err)
	}
	k := world()
	other := model.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("2001:db8:300::/48"), Metric: 1024, Type: model.RouteUnreachable}
	k.AddForeignRoute(other, 3)
	before := dumpOf(k)
	if _, err := Converge(ctx, k, c, nil); err != nil {
		t.Fatal(err)
	}
	var ours []model.Route
	for _, r := range dumpOf(k).Routes {
		if r.Proto == model.RouteProtocol {
			ours = append(ours, r.Route)
		}
	}
	p := netip.MustParsePrefix
	want := []model.Route{
		{Table: 42, Dst: p("0.0.0.0/0"), Type: model.RouteProhibit},
		{Table: 42, Dst: p("10.61.0.0/16"), Metric: 10, Type: model.RouteBlackhole},
		{Table: 42, Dst: p("::/0"), Metric: 1024, Type: model.RouteBlackhole},
		{Table: 254, Dst: p("10.60.0.0/16"), Type: model.RouteUnreachable},
		{Table: 254, Dst: p("2001:db8:100::/48"), Metric: 1024, Type: model.RouteUnreachable},
		{Table: 254, Dst: p("2001:db8:200::/48"), Metric: 1024, Type: model.RouteProhibit},
	}
	if diff := cmp.Diff(want, ours, dumpOpts); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	s, err := Look(ctx, k, c, nil)
	if err != nil || !s.Plan.Empty() {
		t.Fatalf("plan after converge (%v):\n%s", err, s.Plan)
	}
	if !slices.Contains(k.Routes, fakekernel.Route{Route: other, Proto: 3}) {
		t.Error("the foreign unreachable route is gone after apply")
	}
	if _, err := Down(ctx, k, c); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, dumpOf(k), dumpOpts); diff != "" {
		t.Errorf("after down (-before +after):\n%s", diff)
	}
}

// TestForeignUnreachableRouteInTheWay: a foreign unreachable route with
// the key of one of tunneld's is not taken over.
func TestForeignUnreachableRouteInTheWay(t *testing.T) {
	c, err := config.Parse("t.toml", []byte(routeTypes))
	if err != nil {
		t.Fatal(err)
	}
	k := world()
	theirs := fakekernel.Route{Route: model.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("2001:db8:100::/48"), Metric: 1024, Type: model.RouteUnreachable}, Proto: 3}
	k.AddForeignRoute(theirs.Route, theirs.Proto)
	if _, err := Converge(ctx, k, c, nil); !errors.Is(err, kernel.ErrForeign) {
		t.Fatalf("error = %v, want one for the foreign route", err)
	}
	if _, err := Down(ctx, k, c); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(k.Routes, theirs) || len(k.Routes) != len(world().Routes)+1 {
		t.Errorf("after down: %+v", k.Routes)
	}
}

// TestForeignRouteTwin: a foreign route an admin put beside one of
// tunneld's, with its table, destination and metric, stays as it is when
// tunneld changes its route and when down removes it; an IPv6 change the
// kernel could only make by joining tunneld's route to the foreign one
// (both with a gateway: one multipath route) is refused, and tunneld's
// route is left as it was.
func TestForeignRouteTwin(t *testing.T) {
	const conf = `
[[route]]
to = "10.70.0.0/16"
dev = "eth0"
metric = 5
[[route]]
to = "2001:db8:70::/48"
dev = "eth0"
metric = 5
`
	c, err := config.Parse("t.toml", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	k := world()
	if _, err := Converge(ctx, k, c, nil); err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix
	theirs := []fakekernel.Route{
		{Route: model.Route{Table: model.TableMain, Dst: p("10.70.0.0/16"), Via: netip.MustParseAddr("203.0.113.1"), Dev: "eth1", Metric: 5}, Proto: 4},
		{Route: model.Route{Table: model.TableMain, Dst: p("2001:db8:70::/48"), Via: netip.MustParseAddr("2001:db8:b::1"), Dev: "eth1", Metric: 5}, Proto: 4},
	}
	for _, r := range theirs {
		k.AddForeignRoute(r.Route, r.Proto)
	}
	if s, err := Look(ctx, k, c, nil); err != nil || !s.Plan.Empty() {
		t.Fatalf("plan with the foreign routes (%v):\n%s", err, s.Plan)
	}

	// Both tunneld's routes get a gateway.
	changed, err := config.Parse("t.toml", []byte(strings.NewReplacer(`to = "10.70.0.0/16"`, `to = "10.70.0.0/16"`+"\nvia = \"203.0.113.2\"",
		`to = "2001:db8:70::/48"`, `to = "2001:db8:70::/48"`+"\nvia = \"2001:db8:a::1\"").Replace(conf)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Converge(ctx, k, changed, nil)
	var ae *kernel.ApplyError
	if !errors.As(err, &ae) || len(ae.Failed) != 1 || ae.Failed[0].Op.Route.Dst != p("2001:db8:70::/48") || !errors.Is(err, kernel.ErrForeign) {
		t.Fatalf("error = %v, want the IPv6 change refused", err)
	}
	var ours []model.Route
	for _, r := range k.Routes {
		if r.Proto == model.RouteProtocol {
			ours = append(ours, r.Route)
		}
	}
	want := []model.Route{
		{Table: model.TableMain, Dst: p("10.70.0.0/16"), Via: netip.MustParseAddr("203.0.113.2"), Dev: "eth0", Metric: 5},
		{Table: model.TableMain, Dst: p("2001:db8:70::/48"), Dev: "eth0", Metric: 5},
	}
	if diff := cmp.Diff(want, ours, dumpOpts); diff != "" {
		t.Errorf("tunneld's routes (-want +got):\n%s", diff)
	}
	for _, r := range theirs {
		if !slices.Contains(k.Routes, r) {
			t.Errorf("the foreign route %+v is gone after the change", r)
		}
	}
	if _, err := Down(ctx, k, changed); err != nil {
		t.Fatal(err)
	}
	for _, r := range k.Routes {
		if r.Proto == model.RouteProtocol {
			t.Errorf("after down: tunneld's %+v", r)
		}
	}
	for _, r := range theirs {
		if !slices.Contains(k.Routes, r) {
			t.Errorf("the foreign route %+v is gone after down", r)
		}
	}
}

// TestOwnRouteTwins: two of tunneld's routes with one key (a restart
// after a crash between the add and the delete of a replace beside a
// foreign route) leave one, the configured one, on the next converge,
// whichever of them it is.
func TestOwnRouteTwins(t *testing.T) {
	c, err := config.Parse("t.toml", []byte("[[route]]\nto = \"10.71.0.0/16\"\nvia = \"203.0.113.2\"\ndev = \"eth0\"\nmetric = 5\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix
	want := model.Route{Table: model.TableMain, Dst: p("10.71.0.0/16"), Via: netip.MustParseAddr("203.0.113.2"), Dev: "eth0", Metric: 5}
	for _, other := range []string{"203.0.113.3", "203.0.113.4"} {
		for _, configuredFirst := range []bool{true, false} {
			k := world()
			old := want
			old.Via = netip.MustParseAddr(other)
			twins := []model.Route{old, want}
			if configuredFirst {
				twins = []model.Route{want, old}
			}
			if other == "203.0.113.4" {
				twins[slices.Index(twins, want)].Via = netip.MustParseAddr("203.0.113.5") // neither configured
			}
			for _, r := range twins {
				k.AddForeignRoute(r, model.RouteProtocol)
			}
			if _, err := Converge(ctx, k, c, nil); err != nil {
				t.Fatalf("%v: %v", twins, err)
			}
			var ours []model.Route
			for _, r := range k.Routes {
				if r.Proto == model.RouteProtocol && r.Dst == want.Dst {
					ours = append(ours, r.Route)
				}
			}
			if diff := cmp.Diff([]model.Route{want}, ours, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
				t.Errorf("from %v, tunneld's routes (-want +got):\n%s", twins, diff)
			}
			if s, err := Look(ctx, k, c, nil); err != nil || !s.Plan.Empty() {
				t.Errorf("from %v, then (%v):\n%s", twins, err, s.Plan)
			}
		}
	}
}
