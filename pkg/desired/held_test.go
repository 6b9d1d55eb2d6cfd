package desired

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

// TestHeldRoutes: a configured route through a tunnel that is not up
// stands in its place as an unreachable route (its table, destination
// and metric, no gateway or device), so that a rule's table does not go
// empty and let lookups fall through to main and out by the WAN, as a
// tester saw: the routes were withdrawn and the rules kept. Up, the
// tunnel has its routes. A route with no dev whose gateway is in a
// tunnel's subnet goes through it too. A route the configuration backs
// up with another to the same destination and table, in place, is
// withdrawn (a failover); so are, while the tunnel waits for its
// remote's first DNS answer, those in the tables the box's own lookups
// go by.
func TestHeldRoutes(t *testing.T) {
	const head = `
[global]
firewall = false
[tables]
vpn = 100
all = 101
[tunnel.t1]
mode = "ipip"
local = "eth0"
remote = "%s"
address = "10.0.0.1/30"
[tunnel.six]
mode = "sit"
local = "eth0"
remote = "192.0.2.9"
address = "2001:db8:ff::1/64"
[[rule]]
iif = "eth1"
table = "vpn"
[[rule]]
table = "all"
priority = 20999
`
	unr := func(table uint32, dst string, metric uint32) model.Route {
		return model.Route{Table: table, Dst: pfx(dst), Metric: metric, Type: model.RouteUnreachable}
	}
	wanUp := map[string]model.Device{
		"eth0": {Name: "eth0", MTU: 1500, Up: true, Addrs: []netip.Prefix{pfx("192.0.2.7/24")}},
		"eth1": {Name: "eth1", MTU: 1500, Up: true},
	}
	wanBare := map[string]model.Device{"eth0": {Name: "eth0", MTU: 1500, Up: true}, "eth1": {Name: "eth1", MTU: 1500, Up: true}}
	tests := []struct {
		name      string
		remote    string // t1's
		routes    string
		devices   map[string]model.Device
		resolved  map[string][]netip.Addr // Inputs.Resolved
		want      []model.Route           // State.Routes
		held      []model.Route           // t1's status
		withdrawn []WithdrawnRoute
	}{
		{name: "the tester's: via peer in a policy table, the WAN without address: unreachable in vpn",
			remote: "198.51.100.2", devices: wanBare,
			routes: "[[route]]\nto = \"192.168.2.0/24\"\nvia = \"peer\"\ndev = \"t1\"\ntable = \"vpn\"\n",
			want:   []model.Route{unr(100, "192.168.2.0/24", 0)}, held: []model.Route{unr(100, "192.168.2.0/24", 0)}},
		{name: "up: the route itself",
			remote: "198.51.100.2", devices: wanUp,
			routes: "[[route]]\nto = \"192.168.2.0/24\"\nvia = \"peer\"\ndev = \"t1\"\ntable = \"vpn\"\n",
			want:   []model.Route{{Table: 100, Dst: pfx("192.168.2.0/24"), Via: ip("10.0.0.2"), Dev: "t1"}}},
		{name: "metric and main table kept",
			remote: "198.51.100.2", devices: wanBare,
			routes: "[[route]]\nto = \"default\"\ndev = \"t1\"\nmetric = 5\n",
			want:   []model.Route{unr(254, "0.0.0.0/0", 5)}, held: []model.Route{unr(254, "0.0.0.0/0", 5)}},
		{name: "a gateway in the tunnel's subnet, no dev: held too",
			remote: "198.51.100.2", devices: wanBare,
			routes: "[[route]]\nto = \"192.168.3.0/24\"\nvia = \"10.0.0.2\"\ntable = \"vpn\"\n",
			want:   []model.Route{unr(100, "192.168.3.0/24", 0)}, held: []model.Route{unr(100, "192.168.3.0/24", 0)}},
		{name: "a gateway in the tunnel's subnet, no dev, up: the route itself",
			remote: "198.51.100.2", devices: wanUp,
			routes: "[[route]]\nto = \"192.168.3.0/24\"\nvia = \"10.0.0.2\"\ntable = \"vpn\"\n",
			want:   []model.Route{{Table: 100, Dst: pfx("192.168.3.0/24"), Via: ip("10.0.0.2")}}},
		{name: "IPv6 through sit: metric 1024",
			remote: "198.51.100.2", devices: wanBare,
			routes: "[[route]]\nto = \"2001:db8:5::/48\"\ndev = \"six\"\ntable = \"vpn\"\n",
			want:   []model.Route{unr(100, "2001:db8:5::/48", 1024)}},
		{name: "a failover in the configuration, in place: withdrawn",
			remote: "198.51.100.2", devices: wanBare,
			routes:    "[[route]]\nto = \"default\"\ndev = \"t1\"\ntable = \"vpn\"\n[[route]]\nto = \"default\"\ndev = \"eth1\"\nmetric = 100\ntable = \"vpn\"\n",
			want:      []model.Route{{Table: 100, Dst: pfx("0.0.0.0/0"), Dev: "eth1", Metric: 100}},
			withdrawn: []WithdrawnRoute{{unr(100, "0.0.0.0/0", 0), WhyFallback}}},
		{name: "a failover through a device that is missing: held",
			remote: "198.51.100.2", devices: wanBare,
			routes: "[[route]]\nto = \"default\"\ndev = \"t1\"\ntable = \"vpn\"\n[[route]]\nto = \"default\"\ndev = \"lte0\"\nmetric = 100\ntable = \"vpn\"\n",
			want:   []model.Route{unr(100, "0.0.0.0/0", 0)}, held: []model.Route{unr(100, "0.0.0.0/0", 0)}},
		{name: "two routes to one destination, both through the tunnel: both held",
			remote: "198.51.100.2", devices: wanBare,
			routes: "[[route]]\nto = \"default\"\ndev = \"t1\"\ntable = \"vpn\"\n[[route]]\nto = \"default\"\nvia = \"10.0.0.2\"\nmetric = 100\ntable = \"vpn\"\n",
			want:   []model.Route{unr(100, "0.0.0.0/0", 0), unr(100, "0.0.0.0/0", 100)},
			held:   []model.Route{unr(100, "0.0.0.0/0", 0), unr(100, "0.0.0.0/0", 100)}},
		{name: "remote not resolved: held in a table only the LAN's rule reaches, withdrawn in main and in a table every lookup reaches",
			remote: "peer.example", devices: wanUp, // and no DNS answer
			routes: "[[route]]\nto = \"default\"\ndev = \"t1\"\ntable = \"vpn\"\n[[route]]\nto = \"10.9.0.0/16\"\ndev = \"t1\"\n[[route]]\nto = \"10.8.0.0/16\"\ndev = \"t1\"\ntable = \"all\"\n",
			want:   []model.Route{unr(100, "0.0.0.0/0", 0)}, held: []model.Route{unr(100, "0.0.0.0/0", 0)},
			withdrawn: []WithdrawnRoute{{unr(254, "10.9.0.0/16", 0), whyLookup("peer.example", "")}, {unr(101, "10.8.0.0/16", 0), whyLookup("peer.example", "")}}},
		{name: "remote answers only the other family: as not resolved (an unreachable route in main could block the DNS server)",
			remote: "peer.example", devices: wanUp, resolved: map[string][]netip.Addr{"peer.example": {ip("2001:db8::7")}},
			routes: "[[route]]\nto = \"default\"\ndev = \"t1\"\ntable = \"vpn\"\n[[route]]\nto = \"10.9.0.0/16\"\ndev = \"t1\"\n",
			want:   []model.Route{unr(100, "0.0.0.0/0", 0)}, held: []model.Route{unr(100, "0.0.0.0/0", 0)},
			withdrawn: []WithdrawnRoute{{unr(254, "10.9.0.0/16", 0), whyLookup("peer.example", "IPv4")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parse(t, fmt.Sprintf(head, tt.remote)+tt.routes)
			r := Build(c, model.Inputs{Devices: tt.devices, Resolved: tt.resolved}, model.State{})
			if diff := cmp.Diff(tt.want, r.State.Routes, opts); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			var t1 TunnelStatus
			for _, ts := range r.Tunnels {
				if ts.Name == "t1" {
					t1 = ts
				}
				if ts.Up && (len(ts.Held) > 0 || len(ts.Withdrawn) > 0) {
					t.Errorf("%s is up and holds %v, withdraws %v", ts.Name, ts.Held, ts.Withdrawn)
				}
			}
			if diff := cmp.Diff(tt.held, t1.Held, opts); diff != "" {
				t.Errorf("t1's held routes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.withdrawn, t1.Withdrawn, opts); diff != "" {
				t.Errorf("t1's withdrawn routes (-want +got):\n%s", diff)
			}
			if len(r.State.Rules) != 2 {
				t.Errorf("rules %v, want both kept", r.State.Rules)
			}
		})
	}
}

// TestHeldTunnelRoutes: a tunnel whose repairs the daemon holds back
// (model.Inputs.HeldTunnels) and that is missing or down in the kernel
// has the routes through it stand as unreachable routes; up in the
// kernel, or not held (tunneld creates it), the routes themselves.
func TestHeldTunnelRoutes(t *testing.T) {
	c := parse(t, "[global]\nfirewall = false\n[tunnel.t1]\nmode = \"ipip\"\nlocal = \"eth0\"\nremote = \"198.51.100.2\"\naddress = \"10.0.0.1/30\"\n"+
		"[[route]]\nto = \"192.168.2.0/24\"\ndev = \"t1\"\n")
	devices := map[string]model.Device{"eth0": {Name: "eth0", MTU: 1500, Up: true, Addrs: []netip.Prefix{pfx("192.0.2.7/24")}}}
	through := model.Route{Table: 254, Dst: pfx("192.168.2.0/24"), Dev: "t1"}
	unreachable := model.Route{Table: 254, Dst: pfx("192.168.2.0/24"), Type: model.RouteUnreachable}
	t1 := Build(c, model.Inputs{Devices: devices}, model.State{}).State.Links[0]
	t1Down := t1
	t1Down.Up = false
	held := map[string]bool{"t1": true}
	for _, tt := range []struct {
		name string
		have []model.Link
		held map[string]bool
		want model.Route
	}{
		{"held, deleted", nil, held, unreachable},
		{"held, set down", []model.Link{t1Down}, held, unreachable},
		{"held, up (changed by someone else)", []model.Link{t1}, held, through},
		{"not held, missing: tunneld creates it", nil, nil, through},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(c, model.Inputs{Devices: devices, HeldTunnels: tt.held}, model.State{Links: tt.have})
			if diff := cmp.Diff([]model.Route{tt.want}, r.State.Routes, opts); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRefusedTunnelRoutes: a tunnel whose creation or setting up the
// kernel refused in this converge (model.Inputs.Refused) is not up, with
// the refusal as its reason, and the routes through it stand as
// unreachable routes, as for any tunnel that is not up. The tunnel stays
// in the desired state as it would be (the plan tries it again, and the
// filter, which names it, and its host route do not change with the
// refusal); one not refused has its routes.
func TestRefusedTunnelRoutes(t *testing.T) {
	c := parse(t, "[tunnel.t1]\nmode = \"gre\"\nlocal = \"eth0\"\nremote = \"198.51.100.2\"\naddress = \"10.0.0.1/30\"\n"+
		"[[route]]\nto = \"192.168.2.0/24\"\ndev = \"t1\"\n")
	devices := map[string]model.Device{"eth0": {Name: "eth0", MTU: 1500, Up: true, Addrs: []netip.Prefix{pfx("192.0.2.7/24")}}}
	through := model.Route{Table: 254, Dst: pfx("192.168.2.0/24"), Dev: "t1"}
	unreachable := model.Route{Table: 254, Dst: pfx("192.168.2.0/24"), Type: model.RouteUnreachable}
	const why = "creating it failed: file exists"
	plain := Build(c, model.Inputs{Devices: devices}, model.State{})
	for _, tt := range []struct {
		name    string
		refused map[string]string
		routes  []model.Route
		status  TunnelStatus
	}{
		{"refused", map[string]string{"t1": why}, []model.Route{unreachable},
			TunnelStatus{Name: "t1", Reason: why, Refused: true, Local: ip("192.0.2.7"), Remote: ip("198.51.100.2"), Held: []model.Route{unreachable}}},
		{"another tunnel refused", map[string]string{"t2": why}, []model.Route{through},
			TunnelStatus{Name: "t1", Up: true, Local: ip("192.0.2.7"), Remote: ip("198.51.100.2")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(c, model.Inputs{Devices: devices, Refused: tt.refused}, model.State{})
			if diff := cmp.Diff(tt.routes, r.State.Routes, opts); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]TunnelStatus{tt.status}, r.Tunnels, opts); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(plain.State.Links, r.State.Links, opts); diff != "" {
				t.Errorf("links (-not refused +refused):\n%s", diff)
			}
			if diff := cmp.Diff(plain.State.Filter, r.State.Filter, opts); diff != "" {
				t.Errorf("filter (-not refused +refused):\n%s", diff)
			}
		})
	}
}

// TestStandingRoutes: a tunnel up in the desired state but missing or
// down in the kernel has, in its status, the unreachable routes of
// tunneld's there that stand for the routes through it (left by a
// converge whose creation of it the kernel refused, or from while it
// waited): plan and status, which do not try to create it, say the
// routes are refused until it is up. None with the tunnel up in the
// kernel, without such routes there (a first creation), or held back by
// the daemon (its routes are then in Held).
func TestStandingRoutes(t *testing.T) {
	c := parse(t, "[global]\nfirewall = false\n[tunnel.t1]\nmode = \"ipip\"\nlocal = \"eth0\"\nremote = \"198.51.100.2\"\naddress = \"10.0.0.1/30\"\n"+
		"[[route]]\nto = \"192.168.2.0/24\"\ndev = \"t1\"\n[[route]]\nto = \"10.9.0.0/16\"\nvia = \"10.0.0.2\"\nmetric = 5\n[[route]]\nto = \"10.8.0.0/16\"\ndev = \"t1\"\n")
	devices := map[string]model.Device{"eth0": {Name: "eth0", MTU: 1500, Up: true, Addrs: []netip.Prefix{pfx("192.0.2.7/24")}}}
	unr := func(dst string, metric uint32) model.Route {
		return model.Route{Table: 254, Dst: pfx(dst), Metric: metric, Type: model.RouteUnreachable}
	}
	stand := []model.Route{unr("192.168.2.0/24", 0), unr("10.9.0.0/16", 5)} // not 10.8.0.0/16's
	t1 := Build(c, model.Inputs{Devices: devices}, model.State{}).State.Links[0]
	t1Down := t1
	t1Down.Up = false
	for _, tt := range []struct {
		name string
		have model.State
		held map[string]bool
		want []model.Route
	}{
		{"missing, routes refused", model.State{Routes: stand}, nil, stand},
		{"down, routes refused", model.State{Links: []model.Link{t1Down}, Routes: stand}, nil, stand},
		{"up", model.State{Links: []model.Link{t1}, Routes: stand}, nil, nil},
		{"missing, no unreachable routes", model.State{}, nil, nil},
		{"missing, held back (its routes are Held)", model.State{Routes: stand}, map[string]bool{"t1": true}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(c, model.Inputs{Devices: devices, HeldTunnels: tt.held}, tt.have)
			if diff := cmp.Diff(tt.want, r.Tunnels[0].Standing, opts); diff != "" {
				t.Errorf("standing (-want +got):\n%s", diff)
			}
		})
	}
}
