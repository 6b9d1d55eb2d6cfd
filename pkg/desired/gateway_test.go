package desired

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

// tun0 is an ipip tunnel from the WAN's 192.0.2.1 to a remote off its
// subnet, with a peer address to route via.
const tun0 = `
[tunnel.tun0]
mode = "ipip"
local = "192.0.2.1"
remote = "198.51.100.2"
address = "10.255.0.1 peer 10.255.0.2"`

// TestGatewayOnlyRoutes: a route that names a gateway in a tunnel's own
// subnet and no dev goes through the tunnel (config.Route.Through), as
// one that names the tunnel does: the host route to
// the remote keeps the tunnel's own packets out of it, and the spoof
// chain takes replies from its destination. A tester's default route in
// two halves "via" the peer got no host route (the tunnel's packets went
// into the tunnel, status up, drift none), and a route to 10.9.0.0/24
// "via" the peer had its replies dropped as spoofed.
func TestGatewayOnlyRoutes(t *testing.T) {
	c := parse(t, tun0+`
[[route]]
to = "0.0.0.0/1"
via = "10.255.0.2"
[[route]]
to = "128.0.0.0/1"
via = "10.255.0.2"
[[route]]
to = "10.9.0.0/24"
via = "10.255.0.2"
`)
	in := model.Inputs{
		Devices: map[string]model.Device{"wan0": {Name: "wan0", MTU: 1500, Up: true, Addrs: []netip.Prefix{pfx("192.0.2.1/24")}}},
		Routes:  []model.UnderlayRoute{{Dst: pfx("0.0.0.0/0"), Via: ip("192.0.2.2"), Dev: "wan0"}},
	}
	r := Build(c, in, model.State{})
	want := model.Route{Table: model.TableMain, Dst: pfx("198.51.100.2/32"), Via: ip("192.0.2.2"), Dev: "wan0"}
	if !slices.Contains(r.State.Routes, want) {
		t.Errorf("no host route %s among %v", want.ID(), r.State.Routes)
	}
	for _, rt := range r.State.Routes {
		// Written as configured, without dev: the kernel picks the
		// device that holds the gateway, which may be narrower than
		// the tunnel's subnet (a tester's LAN inside it).
		if rt.Via == ip("10.255.0.2") && rt.Dev != "" {
			t.Errorf("route %s: dev %q, want none", rt.ID(), rt.Dev)
		}
	}
	var spoof []string
	for _, ch := range r.State.Filter.Chains {
		if ch.Name == "spoof_tun0" {
			for _, ru := range ch.Rules {
				spoof = append(spoof, ru.String())
			}
		}
	}
	if !slices.Contains(spoof, "ip saddr 10.9.0.0/24 return") {
		t.Errorf("spoof chain takes nothing from 10.9.0.0/24:\n%s", cmp.Diff([]string{"ip saddr 10.9.0.0/24 return"}, spoof))
	}
}

// TestHostRouteLeftToForeign: a host route to the remote in main that
// tunneld does not own (the how-to's `ip route add REMOTE via GW`)
// keeps the tunnel's packets out of it already, and the kernel refuses a
// second route of its key: tunneld adds none, and says so in a note (a
// tester's apply failed with "file exists" every time, and the daemon
// kept failing). One of another metric leaves tunneld's in place.
func TestHostRouteLeftToForeign(t *testing.T) {
	c := parse(t, tun0+`
[[route]]
to = "default"
dev = "tun0"
`)
	wan := map[string]model.Device{"wan0": {Name: "wan0", MTU: 1500, Up: true, Addrs: []netip.Prefix{pfx("192.0.2.1/24")}}}
	def := model.UnderlayRoute{Dst: pfx("0.0.0.0/0"), Via: ip("192.0.2.2"), Dev: "wan0", Proto: 3}
	ours := model.Route{Table: model.TableMain, Dst: pfx("198.51.100.2/32"), Via: ip("192.0.2.2"), Dev: "wan0"}
	for _, tt := range []struct {
		name  string
		host  model.UnderlayRoute
		ours  bool
		notes []string
		warn  string
	}{
		{"same key: left to it", model.UnderlayRoute{Dst: pfx("198.51.100.2/32"), Via: ip("192.0.2.2"), Dev: "wan0", Proto: 3}, false,
			[]string{`tunnel "tun0": host route to 198.51.100.2: table main has one tunneld does not own (198.51.100.2/32 via 192.0.2.2 dev wan0 proto boot metric 0), which it leaves to do the job`}, ""},
		{"a blackhole of the same key: warned about", model.UnderlayRoute{Dst: pfx("198.51.100.2/32"), Proto: 3, Type: model.RouteBlackhole}, false,
			nil, `tunnel "tun0": host route to 198.51.100.2: table main has a blackhole route to it that tunneld does not own (blackhole 198.51.100.2/32 proto boot metric 0): the tunnel's packets to its remote are dropped, and the kernel refuses tunneld's host route beside it; delete it: ip route del blackhole 198.51.100.2/32 metric 0`},
		{"a route into the tunnel itself: warned about", model.UnderlayRoute{Dst: pfx("198.51.100.2/32"), Dev: "tun0", Proto: 3}, false,
			nil, `tunnel "tun0": host route to 198.51.100.2: table main has one tunneld does not own (198.51.100.2/32 dev tun0 proto boot metric 0), which sends the tunnel's packets to its remote into tunnel "tun0", and the kernel refuses tunneld's host route beside it; delete it: ip route del 198.51.100.2/32 dev tun0 metric 0`},
		{"a blackhole of another metric: tunneld's too", model.UnderlayRoute{Dst: pfx("198.51.100.2/32"), Proto: 3, Type: model.RouteBlackhole, Metric: 5}, true, nil, ""},
		{"another metric: tunneld's too", model.UnderlayRoute{Dst: pfx("198.51.100.2/32"), Via: ip("192.0.2.2"), Dev: "wan0", Proto: 3, Metric: 100}, true, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(c, model.Inputs{Devices: wan, Routes: []model.UnderlayRoute{def, tt.host}}, model.State{})
			if got := slices.Contains(r.State.Routes, ours); got != tt.ours {
				t.Errorf("tunneld's host route wanted: %v, want %v (routes %v)", got, tt.ours, r.State.Routes)
			}
			if diff := cmp.Diff(tt.notes, r.Notes); diff != "" {
				t.Errorf("notes (-want +got):\n%s", diff)
			}
			var warns []string
			for _, w := range r.Warnings {
				if strings.Contains(w, "host route") {
					warns = append(warns, w)
				}
			}
			var want []string
			if tt.warn != "" {
				want = []string{tt.warn}
			}
			if diff := cmp.Diff(want, warns); diff != "" {
				t.Errorf("host route warnings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRemoteNoPeer: a remote name that resolves to 0.0.0.0, :: or a
// loopback address (a DNS blocker's answer), or an endpoint pair whose
// local and remote are one address (a name resolving to the local one,
// a followed device holding the remote), leaves the tunnel down with
// the reason, as check refuses the same written literally: taken, the
// kernel kept any, apply failed every time and the daemon held the
// tunnel as fought over (a tester's).
func TestRemoteNoPeer(t *testing.T) {
	wan := map[string]model.Device{"wan0": {Name: "wan0", MTU: 1500, Up: true, Addrs: []netip.Prefix{pfx("192.0.2.1/24")}},
		"lan0": {Name: "lan0", MTU: 1500, Up: true, Addrs: []netip.Prefix{pfx("10.1.1.1/24")}}}
	for _, tt := range []struct {
		name, local, remote string
		answers             []netip.Addr
		reason              string
	}{
		{"sinkholed", "192.0.2.1", "peer.example", []netip.Addr{ip("0.0.0.0")}, "remote peer.example resolves to 0.0.0.0, which is no peer's address (a DNS blocker's answer?)"},
		{"loopback", "192.0.2.1", "peer.example", []netip.Addr{ip("127.0.0.1")}, "remote peer.example resolves to 127.0.0.1, which is no peer's address (a DNS blocker's answer?)"},
		{"sinkholed beside a real one", "192.0.2.1", "peer.example", []netip.Addr{ip("0.0.0.0"), ip("198.51.100.9")}, ""},
		{"the local address", "192.0.2.1", "peer.example", []netip.Addr{ip("192.0.2.1")}, "local and remote are both 192.0.2.1: the remote is the other end"},
		{"a followed device's", "wan0", "192.0.2.1", nil, "local and remote are both 192.0.2.1: the remote is the other end"},
		{"another of the box's", "any", "peer.example", []netip.Addr{ip("10.1.1.1")}, "remote peer.example resolves to 10.1.1.1, an address of this box's (lan0): the remote is the other end"},
		{"a subnet's broadcast", "any", "peer.example", []netip.Addr{ip("10.1.1.255")}, "remote peer.example resolves to 10.1.1.255, an address of this box's (lan0's subnet's broadcast): the remote is the other end"},
		{"the broadcast", "192.0.2.1", "peer.example", []netip.Addr{ip("255.255.255.255")}, "remote peer.example resolves to 255.255.255.255, which is no peer's address (a DNS blocker's answer?)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := parse(t, "[tunnel.t1]\nmode = \"ipip\"\nlocal = \""+tt.local+"\"\nremote = \""+tt.remote+"\"\n")
			r := Build(c, model.Inputs{Devices: wan, Resolved: map[string][]netip.Addr{"peer.example": tt.answers}}, model.State{})
			if got := r.Tunnels[0].Reason; got != tt.reason {
				t.Errorf("reason %q, want %q", got, tt.reason)
			}
			if up := r.Tunnels[0].Up; up != (tt.reason == "") {
				t.Errorf("up %v", up)
			}
		})
	}
}

// TestGatewayOnALANInside: a route with a gateway and no dev, where the
// gateway is in a tunnel's wide subnet but on a LAN device's narrower
// one, goes by the LAN, as the kernel takes it: no unreachable route
// stands in for it while the tunnel is down (a tester's 10.1.1.9 on
// lan0 inside tunnel t0's 10.0.0.0/8).
func TestGatewayOnALANInside(t *testing.T) {
	c := parse(t, "[tunnel.t0]\nmode = \"ipip\"\nlocal = \"wan0\"\nremote = \"198.51.100.2\"\naddress = \"10.0.0.1/8\"\n[[route]]\nto = \"172.16.0.0/16\"\nvia = \"10.1.1.9\"\n[[route]]\nto = \"172.17.0.0/16\"\nvia = \"10.2.0.9\"\n")
	devs := map[string]model.Device{
		"wan0": {Name: "wan0", MTU: 1500, Up: true}, // no address: t0 is down
		"lan0": {Name: "lan0", MTU: 1500, Up: true, Addrs: []netip.Prefix{pfx("10.1.1.1/24")}},
	}
	r := Build(c, model.Inputs{Devices: devs}, model.State{})
	var got []string
	for _, rt := range r.State.Routes {
		got = append(got, rt.ID()+" "+rt.Type.String())
	}
	want := []string{"route 172.16.0.0/16 table main unicast", "route 172.17.0.0/16 table main unreachable"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
}

// TestHostRouteKeptWithoutUnderlay: with main's default route gone (a
// DHCP lease without its router option), the host route tunneld has to
// the remote stays while its gateway is on its device's subnet, which is
// up: deleting it sent the tunnel's packets to its remote into the
// tunnel itself (a tester's). Once the gateway is off every subnet of
// the device, or the device is down, it goes, and the status says the
// tunnel loops.
func TestHostRouteKeptWithoutUnderlay(t *testing.T) {
	c := parse(t, `
[tunnel.tun0]
mode = "ipip"
local = "192.0.2.1"
remote = "198.51.100.2"
address = "10.255.0.1 peer 10.255.0.2"
[[route]]
to = "default"
dev = "tun0"
`)
	hr := model.Route{Table: model.TableMain, Dst: pfx("198.51.100.2/32"), Via: ip("192.0.2.2"), Dev: "wan0"}
	cur := model.State{Routes: []model.Route{hr}}
	for _, tt := range []struct {
		name   string
		wan    model.Device
		kept   bool
		looped bool
	}{
		{"gateway on the subnet", model.Device{Name: "wan0", MTU: 1500, Up: true, Addrs: []netip.Prefix{pfx("192.0.2.1/24")}}, true, false},
		{"gateway off the subnets", model.Device{Name: "wan0", MTU: 1500, Up: true, Addrs: []netip.Prefix{pfx("192.0.2.1/32")}}, false, true},
		{"device down", model.Device{Name: "wan0", MTU: 1500, Addrs: []netip.Prefix{pfx("192.0.2.1/24")}}, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(c, model.Inputs{Devices: map[string]model.Device{"wan0": tt.wan}}, cur)
			if got := slices.Contains(r.State.Routes, hr); got != tt.kept {
				t.Errorf("host route kept: %v, want %v (routes %v)", got, tt.kept, r.State.Routes)
			}
			if got := r.Tunnels[0].Looped != ""; got != tt.looped {
				t.Errorf("looped %q, want it set: %v", r.Tunnels[0].Looped, tt.looped)
			}
		})
	}
}

// TestHostRouteOffLoops: a tunnel with host_route = false whose remote a
// configured route through a tunnel holds, more specifically than main's
// underlay route to it, is looped on its status (a tester's status said
// up while `ip route get REMOTE` gave dev tun0); a host route of the
// admin's in main, or no route holding the remote, is none.
func TestHostRouteOffLoops(t *testing.T) {
	const conf = `
[tunnel.tun0]
mode = "ipip"
local = "192.0.2.1"
remote = "198.51.100.2"
host_route = false
[[route]]
to = "128.0.0.0/1"
dev = "tun0"
`
	wan := map[string]model.Device{"wan0": {Name: "wan0", MTU: 1500, Up: true, Addrs: []netip.Prefix{pfx("192.0.2.1/24")}}}
	def := model.UnderlayRoute{Dst: pfx("0.0.0.0/0"), Via: ip("192.0.2.2"), Dev: "wan0", Proto: 3}
	hostByHand := model.UnderlayRoute{Dst: pfx("198.51.100.2/32"), Via: ip("192.0.2.2"), Dev: "wan0", Proto: 3}
	for _, tt := range []struct {
		name   string
		conf   string
		routes []model.UnderlayRoute
		want   string
	}{
		{"the /1 holds the remote", conf, []model.UnderlayRoute{def},
			"its packets to 198.51.100.2 go into a tunnel: host_route = false, and the route to 128.0.0.0/1 in table main through a tunnel holds it"},
		{"the admin's host route", conf, []model.UnderlayRoute{def, hostByHand}, ""},
		{"no route holds it", strings.Replace(conf, "128.0.0.0/1", "10.0.0.0/8", 1), []model.UnderlayRoute{def}, ""},
		{"host_route auto adds one instead", strings.Replace(conf, "host_route = false\n", "", 1), []model.UnderlayRoute{def}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(parse(t, tt.conf), model.Inputs{Devices: wan, Routes: tt.routes}, model.State{})
			if got := r.Tunnels[0].Looped; got != tt.want {
				t.Errorf("looped %q, want %q", got, tt.want)
			}
		})
	}
}

// TestGatewayDevice: a route with a gateway and no dev is written with
// the device of main's most specific route to the gateway, when that one
// is direct and its device up: the kernel would look the gateway up in
// the route's own table first, where a tester's edit found the default
// route it replaced (the route stayed on that device), and IPv6 by the
// policy rules, where a default route through another gateway refused
// it. Main's route is the box's own way to the gateway: a host route (a
// /32 cloud address's) or a peer's beats a wider subnet (a tester's
// Docker bridge /16 took a first version's route, which went by
// addresses alone). Reached only by a gateway, on a down device, or not
// at all: no dev, the kernel decides.
func TestGatewayDevice(t *testing.T) {
	type route struct{ dst, via, dev string }
	for _, tt := range []struct {
		name   string
		via    string
		routes []route
		down   string // a device that is down
		want   string
	}{
		{"on a subnet", "192.168.5.9", []route{{"10.9.0.0/24", "", "v0"}, {"192.168.5.0/24", "", "br0"}, {"0.0.0.0/0", "10.9.0.254", "v0"}}, "", "br0"},
		{"the most specific route", "10.1.2.3", []route{{"10.0.0.0/8", "", "wide"}, {"10.1.2.0/24", "", "narrow"}}, "", "narrow"},
		{"a host route beats a subnet", "172.31.1.1", []route{{"172.31.0.0/16", "", "br-docker"}, {"172.31.1.1/32", "", "eth0"}}, "", "eth0"},
		{"a peer", "10.0.0.1", []route{{"10.0.0.0/8", "", "d2"}, {"10.0.0.1/32", "", "d1"}}, "", "d1"},
		{"IPv6", "fd05::9", []route{{"fd09::/64", "", "v0"}, {"fd05::/64", "", "br0"}, {"::/0", "fd09::2", "v0"}}, "", "br0"},
		{"reached by a gateway only", "203.0.113.9", []route{{"192.168.5.0/24", "", "br0"}, {"0.0.0.0/0", "192.168.5.254", "br0"}}, "", ""},
		{"a down device", "192.168.5.9", []route{{"192.168.5.0/24", "", "br0"}}, "br0", ""},
		{"no route", "192.168.5.9", nil, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			to, given := "198.51.100.0/24", "198.51.101.0/24"
			if strings.Contains(tt.via, ":") {
				to, given = "2001:db8:100::/48", "2001:db8:101::/48"
			}
			c := parse(t, "[global]\nfirewall = false\n[[route]]\nto = \""+to+"\"\nvia = \""+tt.via+"\"\ntable = 100\n"+
				"[[route]]\nto = \""+given+"\"\nvia = \""+tt.via+"\"\ndev = \"given\"\ntable = 100\n")
			in := model.Inputs{Devices: map[string]model.Device{"given": {Name: "given", MTU: 1500, Up: true}}}
			for _, r := range tt.routes {
				u := model.UnderlayRoute{Dst: pfx(r.dst), Dev: r.dev}
				if r.via != "" {
					u.Via = ip(r.via)
				}
				in.Routes = append(in.Routes, u)
				in.Devices[r.dev] = model.Device{Name: r.dev, MTU: 1500, Up: r.dev != tt.down}
			}
			r := Build(c, in, model.State{})
			got := map[string]string{}
			for _, rt := range r.State.Routes {
				got[rt.Dst.String()] = rt.Dev
			}
			if diff := cmp.Diff(map[string]string{to: tt.want, given: "given"}, got); diff != "" {
				t.Errorf("routes' devices (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGatewayOnDownDevice: a route with a gateway and no dev whose
// gateway is on the subnet of a device that is down is left out with a
// note, as one that names that device is: a tester's LAN went down, the
// kernel removed its subnet route, and the route, added again without a
// device, went into a tunnel by its table's default route, with no note
// and no drift. Up again, the route is back on the LAN.
func TestGatewayOnDownDevice(t *testing.T) {
	const conf = "[global]\nfirewall = false\n[[route]]\nto = \"172.16.0.0/16\"\nvia = \"192.168.1.254\"\ntable = 100\n"
	lan := func(up bool) model.Device {
		return model.Device{Name: "lan0", MTU: 1500, Up: up, Running: up, Addrs: []netip.Prefix{pfx("192.168.1.1/24")}}
	}
	wide := model.Device{Name: "wide", MTU: 1500, Up: true, Running: true, Addrs: []netip.Prefix{pfx("192.168.0.1/16")}}
	connected := model.UnderlayRoute{Dst: pfx("192.168.1.0/24"), Dev: "lan0"}
	note := "route 172.16.0.0/16 table 100: its gateway 192.168.1.254 is on the subnet of lan0, which is down"
	for _, tt := range []struct {
		name    string
		devices []model.Device
		routes  []model.UnderlayRoute
		dev     string // the route's device, "" for none
		note    string
	}{
		{"up", []model.Device{lan(true)}, []model.UnderlayRoute{connected}, "lan0", ""},
		{"down", []model.Device{lan(false)}, nil, "", note},
		{"down, a wider subnet up", []model.Device{lan(false), wide}, nil, "", note},
		{"down, a direct route up", []model.Device{lan(false), wide}, []model.UnderlayRoute{{Dst: pfx("192.168.0.0/16"), Dev: "wide"}}, "wide", ""},
		{"another subnet down", []model.Device{{Name: "lan1", MTU: 1500, Addrs: []netip.Prefix{pfx("192.168.2.1/24")}}}, nil, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := model.Inputs{Devices: map[string]model.Device{}, Routes: tt.routes}
			for _, d := range tt.devices {
				in.Devices[d.Name] = d
			}
			r := Build(parse(t, conf), in, model.State{})
			var got []string
			for _, rt := range r.State.Routes {
				got = append(got, rt.Dst.String()+" dev "+rt.Dev)
			}
			var want []string
			if tt.note == "" {
				want = []string{"172.16.0.0/16 dev " + tt.dev}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			var notes []string
			if tt.note != "" {
				notes = []string{tt.note}
			}
			if diff := cmp.Diff(notes, r.Notes); diff != "" {
				t.Errorf("notes (-want +got):\n%s", diff)
			}
		})
	}
}
