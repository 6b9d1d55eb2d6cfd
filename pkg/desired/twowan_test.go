package desired

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

// twoWANs are a router's fibre (wan0) and LTE (wan1) uplinks, each with a
// default route in main, wan0's of the lower metric, as mwan3's
// interfaces have them.
var twoWANs = model.Inputs{
	Devices: map[string]model.Device{
		"wan0": {Name: "wan0", MTU: 1500, Up: true, Running: true, Addrs: []netip.Prefix{pfx("192.0.2.1/24")}},
		"wan1": {Name: "wan1", MTU: 1400, Up: true, Running: true, Addrs: []netip.Prefix{pfx("198.51.100.1/24")}},
	},
	Routes: []model.UnderlayRoute{
		{Dst: pfx("0.0.0.0/0"), Via: ip("192.0.2.254"), Dev: "wan0", Proto: 4, Metric: 10},
		{Dst: pfx("0.0.0.0/0"), Via: ip("198.51.100.254"), Dev: "wan1", Proto: 4, Metric: 20},
	},
}

// overWAN1 is a gre tunnel bound to wan1, the failover's.
const overWAN1 = `[tunnel.tun1]
mode = "gre"
local = "wan1"
dev = "wan1"
remote = "203.0.113.3"
address = "10.255.1.1 peer 10.255.1.2"
`

// wan0As is twoWANs with wan0 changed by f.
func wan0As(f func(*model.Device)) model.Inputs {
	in := twoWANs
	in.Devices = maps.Clone(twoWANs.Devices)
	d := in.Devices["wan0"]
	f(&d)
	in.Devices["wan0"] = d
	return in
}

// TestFollowsTheOtherWAN: a tunnel that follows wan1's address with two
// WANs' default routes in main. A tester's host route went by wan0's
// default (main's best), and without one the tunnel's packets left by
// wan0 with wan1's source while status said up: the host route now goes
// by the followed device's route, the MTU is that device's, and a
// tunnel whose packets main sends by the other WAN gets a warning.
func TestFollowsTheOtherWAN(t *testing.T) {
	const conf = `
[tunnel.tun1]
mode = "gre"
local = "wan1"
remote = "203.0.113.3"
address = "10.255.1.1 peer 10.255.1.2"
`
	byWAN1 := model.Route{Table: model.TableMain, Dst: pfx("203.0.113.3/32"), Via: ip("198.51.100.254"), Dev: "wan1"}
	byWAN0 := model.Route{Table: model.TableMain, Dst: pfx("203.0.113.3/32"), Via: ip("192.0.2.254"), Dev: "wan0"}
	const warning = `tunnel "tun1": table main sends its packets to 203.0.113.3 by wan0 (default via 192.0.2.254 dev wan0 proto static metric 10), not by wan1, whose address 198.51.100.1 they carry (default via 198.51.100.254 dev wan1 proto static metric 20 is there too): unless a policy rule sends them by wan1, an ISP that filters sources drops them; bind the tunnel to it (dev = "wan1"), or set host_route = true`
	onlyWAN0 := twoWANs
	onlyWAN0.Routes = twoWANs.Routes[:1]
	for _, tt := range []struct {
		name      string
		conf      string
		in        model.Inputs
		hostRoute *model.Route
		mtu       int
		warn      bool
	}{
		{"no host route: warned", conf, twoWANs, nil, 1376, true},
		{"host_route = true goes by wan1", conf + "host_route = true\n", twoWANs, &byWAN1, 1376, false},
		{"bound to wan1", conf + "dev = \"wan1\"\n", twoWANs, nil, 1376, false},
		{"a route into it holds the remote: by wan1", conf + "[[route]]\nto = \"default\"\ndev = \"tun1\"\n", twoWANs, &byWAN1, 1376, false},
		{"main has no route by wan1: by wan0, no warning", conf + "host_route = true\n", onlyWAN0, &byWAN0, 1476, false},
		{"following wan0: nothing to say", strings.Replace(conf, `"wan1"`, `"wan0"`, 1), twoWANs, nil, 1476, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(parse(t, tt.conf), tt.in, model.State{})
			var hosts []model.Route
			for _, rt := range r.State.Routes {
				if rt.Dst == pfx("203.0.113.3/32") {
					hosts = append(hosts, rt)
				}
			}
			var want []model.Route
			if tt.hostRoute != nil {
				want = []model.Route{*tt.hostRoute}
			}
			if diff := cmp.Diff(want, hosts, opts); diff != "" {
				t.Errorf("host routes (-want +got):\n%s", diff)
			}
			if i := slices.IndexFunc(r.State.Links, func(l model.Link) bool { return l.Name == "tun1" }); i < 0 || r.State.Links[i].MTU != tt.mtu {
				t.Errorf("links %+v, want tun1 with mtu %d", r.State.Links, tt.mtu)
			}
			if got := slices.Contains(r.Warnings, warning); got != tt.warn {
				t.Errorf("warned: %v, want %v; warnings:\n%s", got, tt.warn, strings.Join(r.Warnings, "\n"))
			}
		})
	}
}

// TestHostRouteNoUnderlay: with no route to the remote in main,
// host_route = true alone sends nothing into a tunnel, and its status
// says nothing of a loop (a tester's said "go into itself" where the
// kernel had no route at all, which status asks it about); a route
// into the tunnel that holds the remote does loop it.
func TestHostRouteNoUnderlay(t *testing.T) {
	const conf = `
[tunnel.tun0]
mode = "ipip"
local = "192.0.2.1"
remote = "203.0.113.2"
address = "10.255.0.1 peer 10.255.0.2"
host_route = true
`
	in := model.Inputs{Devices: twoWANs.Devices}
	for _, tt := range []struct {
		name, conf, looped string
	}{
		{"host_route = true alone", conf, ""},
		{"a default route into it", conf + "[[route]]\nto = \"default\"\ndev = \"tun0\"\n",
			"its packets to 203.0.113.2 go into itself: table main has no route to it by the underlay"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(parse(t, tt.conf), in, model.State{})
			if got := r.Tunnels[0].Looped; got != tt.looped {
				t.Errorf("looped %q, want %q", got, tt.looped)
			}
			const note = `tunnel "tun0": host route to 203.0.113.2: no underlay route to it in table main`
			if !slices.Contains(r.Notes, note) {
				t.Errorf("notes %q, want %q among them", r.Notes, note)
			}
		})
	}
}

// TestBoundWANDownFailsOver: a tunnel bound to wan0 whose WAN goes down
// with its address kept (a static WAN's cable pulled, or ip link set
// down) is down, and the default route through it is withdrawn to the
// configured failover through the tunnel over wan1, as when wan0 loses
// its address. A tester's stayed up, its route in place, and the LAN's
// packets died in it (tx_carrier_errors) while the failover never took
// over.
func TestBoundWANDownFailsOver(t *testing.T) {
	c := parse(t, `
[tables]
t0 = 100
[tunnel.tun0]
mode = "ipip"
local = "wan0"
dev = "wan0"
remote = "203.0.113.2"
address = "10.255.0.1 peer 10.255.0.2"
`+overWAN1+`[[route]]
to = "default"
via = "peer"
dev = "tun0"
table = "t0"
[[route]]
to = "default"
via = "peer"
dev = "tun1"
table = "t0"
metric = 100
`)
	defaults := func(r Result) []string {
		var out []string
		for _, rt := range r.State.Routes {
			if rt.Table == 100 {
				out = append(out, fmt.Sprintf("%s %s metric %d", rt.Type, rt.Dev, rt.Metric))
			}
		}
		return out
	}
	for _, tt := range []struct {
		name   string
		wan0   func(*model.Device)
		want   []string
		reason string
	}{
		{"both up", func(*model.Device) {}, []string{"unicast tun0 metric 0", "unicast tun1 metric 100"}, ""},
		{"wan0 down, its address kept", func(d *model.Device) { d.Up, d.Running = false, false }, []string{"unicast tun1 metric 100"}, "device wan0 (dev) is down"},
		{"wan0 without carrier", func(d *model.Device) { d.Running = false }, []string{"unicast tun1 metric 100"}, "device wan0 (dev) has no carrier"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(c, wan0As(tt.wan0), model.State{})
			if diff := cmp.Diff(tt.want, defaults(r)); diff != "" {
				t.Errorf("table t0 (-want +got):\n%s", diff)
			}
			if r.Tunnels[0].Name != "tun0" || r.Tunnels[0].Up != (tt.reason == "") || r.Tunnels[0].Reason != tt.reason {
				t.Errorf("tun0's status %+v, want up %v, reason %q", r.Tunnels[0], tt.reason == "", tt.reason)
			}
		})
	}
}

// TestBoundToDownTunnel: a tunnel bound to a configured tunnel that is
// not up is down too, listed before it or after, and the route through
// it gives way to the failover: a tester's gre tunnel bound to an ipip
// tunnel whose WAN lost its carrier stayed up, and the LAN's packets
// died in it.
func TestBoundToDownTunnel(t *testing.T) {
	c := parse(t, `
[tunnel.inner]
mode = "gre"
local = "10.255.0.1"
remote = "10.255.0.2"
dev = "outer"
address = ["10.254.0.1/30", "fd07::1 peer fd07::2"]
[tunnel.outer]
mode = "ipip"
local = "wan0"
dev = "wan0"
remote = "203.0.113.2"
address = "10.255.0.1 peer 10.255.0.2"
`+overWAN1+`[[route]]
to = "10.9.0.0/24"
dev = "inner"
[[route]]
to = "10.9.0.0/24"
dev = "tun1"
metric = 100
`)
	for _, tt := range []struct {
		name    string
		carrier bool
		routes  []string
		inner   TunnelStatus
	}{
		{"wan0 up", true, []string{"unicast inner metric 0", "unicast tun1 metric 100"}, TunnelStatus{Up: true}},
		{"wan0 without carrier", false, []string{"unicast tun1 metric 100"}, TunnelStatus{Reason: "tunnel outer (dev) is not up"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(c, wan0As(func(d *model.Device) { d.Running = tt.carrier }), model.State{})
			var routes []string
			for _, rt := range r.State.Routes {
				if rt.Dst == pfx("10.9.0.0/24") {
					routes = append(routes, fmt.Sprintf("%s %s metric %d", rt.Type, rt.Dev, rt.Metric))
				}
			}
			if diff := cmp.Diff(tt.routes, routes); diff != "" {
				t.Errorf("routes to 10.9.0.0/24 (-want +got):\n%s", diff)
			}
			i := slices.IndexFunc(r.Tunnels, func(s TunnelStatus) bool { return s.Name == "inner" })
			if got := r.Tunnels[i]; got.Up != tt.inner.Up || got.Reason != tt.inner.Reason {
				t.Errorf("inner's status: up %v, reason %q; want up %v, reason %q", got.Up, got.Reason, tt.inner.Up, tt.inner.Reason)
			}
			l, _ := model.LinkNamed(r.State.Links, "inner")
			if r.State.Links[l].Up != tt.inner.Up {
				t.Errorf("inner's link up %v, want %v", r.State.Links[l].Up, tt.inner.Up)
			}
			peer6 := slices.ContainsFunc(r.State.Addrs, func(a model.Addr) bool { return a.Link == "inner" && a.Peer.Is6() })
			if peer6 != tt.inner.Up {
				t.Errorf("inner's IPv6 address with a peer in the desired state: %v, want %v", peer6, tt.inner.Up)
			}
		})
	}
}
