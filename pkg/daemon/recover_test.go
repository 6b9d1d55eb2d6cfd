package daemon

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/logfmt"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
	"github.com/tunneld/tunneld/pkg/watch"
)

// TestHeldRouteFreedWhenTunnelRecovers: a route held back in a fight
// (something kept deleting it) is put back at once when the tunnel it
// goes through comes back up after an outage that is not the fight's
// (its WAN address or device gone and back, or the tunnel deleted once):
// tunneld set the tunnel up again, the route is what that outage took,
// and it was left absent until the hold's end. The hold and its count
// are over: the other manager deleting the route again is repaired, and
// a new count begins.
func TestHeldRouteFreedWhenTunnelRecovers(t *testing.T) {
	wan := model.Device{Name: "wan", MTU: 1500, Up: true, Running: true, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.7/24")}}
	for _, tt := range []struct {
		name string
		// out is the outage and its hint; back its end and its hint
		// (nil: tunneld recovers the tunnel from the outage's hint).
		out, back func(k *fakekernel.Kernel) watch.Kind
	}{
		{"wan address gone",
			func(k *fakekernel.Kernel) watch.Kind { k.SetAddrs("wan"); return watch.Addr },
			func(k *fakekernel.Kernel) watch.Kind { k.SetAddrs("wan", wan.Addrs...); return watch.Addr }},
		{"wan device gone",
			func(k *fakekernel.Kernel) watch.Kind { k.DelDevice("wan"); return watch.Link },
			func(k *fakekernel.Kernel) watch.Kind {
				k.AddDevice(wan)
				k.AddForeignRoute(model.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.1"), Dev: "wan"}, 3)
				return watch.Link
			}},
		{"tunnel deleted once",
			func(k *fakekernel.Kernel) watch.Kind { k.DelDevice("moe"); return watch.Link },
			nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var log syncbuf.Buffer
			h := startLogging(t, baseConfig, logfmt.New(&log, logfmt.Info))
			defer h.stop()
			const route = "route 10.9.0.0/16 table main"
			del := func() {
				h.k.Observe(context.Background(), model.Scope{}) // take the lock: the loop may be applying
				h.k.Routes = slices.DeleteFunc(h.k.Routes, func(r fakekernel.Route) bool { return r.Dst == netip.MustParsePrefix("10.9.0.0/16") })
			}
			h.holdRoute(del, route, true)
			h.writes() // take the lock
			kind := tt.out(h.k)
			h.event(kind)
			if tt.back != nil {
				h.writes() // take the lock
				if h.k.Devices["moe"].Up {
					t.Fatalf("during the outage: tunnel %s", tunnel(h.k))
				}
				kind = tt.back(h.k)
				h.event(kind)
			}
			h.writes() // take the lock
			if !h.k.Devices["moe"].Up || !slices.Equal(h.routes(), allRoutes) || len(h.unreachable()) != 0 {
				t.Errorf("after the outage: tunnel %s, routes %v, unreachable %v", tunnel(h.k), h.routes(), h.unreachable())
			}
			if held := h.d.Facts().Held; len(held) != 0 {
				t.Errorf("held after the outage = %v, want none", held)
			}
			line := `level=INFO msg="repairing again: its tunnel is up again" object="route 10.9.0.0/16 table main"`
			if n := strings.Count(log.String(), line); n != 1 {
				t.Errorf("%d lines %s, want 1; the log:\n%s", n, line, log.String())
			}
			// A new count: the other manager deleting it again is
			// repaired.
			del()
			if w := h.event(watch.Route); w != 1 || !slices.Equal(h.routes(), allRoutes) {
				t.Errorf("deleted again: %d writes, routes %v (held: %v)", w, h.routes(), h.d.Facts().Held)
			}
		})
	}
}

// TestFreeRecovered: a tunnel set up by tunneld ends the holds of its
// routes (and of the unreachable routes standing in for them, with the
// last form of the object the two share), addresses and sysctls, with
// their counts, not its own (a fight over the tunnel itself goes on) nor
// another tunnel's; a tunnel created and left down, or changed, ends
// none.
func TestFreeRecovered(t *testing.T) {
	c, err := config.Parse("f.toml", []byte(baseConfig+"[tunnel.larry]\nmode = \"ipip\"\nlocal = \"wan\"\nremote = \"192.0.2.99\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	moe, larry := &model.Link{Name: "moe", Up: true}, &model.Link{Name: "larry", Up: true}
	held := map[string]string{
		`tunnel "moe"`:                           "moe",
		"route 10.9.0.0/16 table main":           "moe",
		"route 0.0.0.0/0 table 42":               "moe",
		"unreachable route 0.0.0.0/0 table 42":   "moe",
		"address 10.0.0.1/30 dev moe":            "moe",
		"sysctl net.ipv4.conf.moe.rp_filter":     "moe",
		"route 10.8.0.0/16 table main":           "larry",
		"route 172.16.0.0/12 table main":         "",
		"rule priority 20000":                    "",
		`tunnel "larry"`:                         "larry",
		"nftables table inet " + model.TableName: "",
	}
	for _, tt := range []struct {
		name    string
		applied []plan.Op
		// freed are the objects no longer held.
		freed []string
	}{
		{"moe set up", []plan.Op{{Kind: plan.LinkUp, Link: moe, Name: "moe"}},
			[]string{"address 10.0.0.1/30 dev moe", "route 0.0.0.0/0 table 42", "route 10.9.0.0/16 table main", "sysctl net.ipv4.conf.moe.rp_filter", "unreachable route 0.0.0.0/0 table 42"}},
		{"moe created and set up", []plan.Op{{Kind: plan.LinkAdd, Link: moe}, {Kind: plan.LinkUp, Link: moe, Name: "moe"}},
			[]string{"address 10.0.0.1/30 dev moe", "route 0.0.0.0/0 table 42", "route 10.9.0.0/16 table main", "sysctl net.ipv4.conf.moe.rp_filter", "unreachable route 0.0.0.0/0 table 42"}},
		{"larry set up", []plan.Op{{Kind: plan.LinkUp, Link: larry, Name: "larry"}}, []string{"route 10.8.0.0/16 table main"}},
		{"moe created down", []plan.Op{{Kind: plan.LinkAdd, Link: &model.Link{Name: "moe"}}}, nil},
		{"moe changed", []plan.Op{{Kind: plan.LinkChange, Link: moe, Old: &model.Link{Name: "moe", TTL: 9, Up: true}}}, nil},
		{"a route added", []plan.Op{{Kind: plan.RouteAdd, Route: &model.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("172.16.0.0/12"), Dev: "lan"}}}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dm := New(Deps{Now: func() time.Time { return now }})
			dm.cfg = c
			for obj, tunnel := range held {
				dm.held[obj] = holding{until: now.Add(time.Minute), tunnel: tunnel}
				dm.repairs[obj] = []time.Time{now}
				dm.lastForm[heldObject(obj)] = "form of " + heldObject(obj)
			}
			if got := dm.freeRecovered(tt.applied); got != (len(tt.freed) > 0) {
				t.Errorf("freeRecovered = %v, want %v", got, len(tt.freed) > 0)
			}
			var freed []string
			for obj := range held {
				_, isHeld := dm.held[obj]
				_, counted := dm.repairs[obj]
				_, formed := dm.lastForm[heldObject(obj)]
				if isHeld != counted || isHeld != formed {
					t.Errorf("%s: held %v, repairs kept %v, form kept %v: want all or none", obj, isHeld, counted, formed)
				}
				if !isHeld {
					freed = append(freed, obj)
				}
			}
			slices.Sort(freed)
			if diff := cmp.Diff(tt.freed, freed); diff != "" {
				t.Errorf("freed (-want +got):\n%s", diff)
			}
		})
	}
}
