package desired

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/model"
)

var opts = cmp.Options{cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}), cmpopts.EquateEmpty()}

func parse(t *testing.T, src string) *config.Config {
	t.Helper()
	c, err := config.Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

const wan = `
[global]
firewall = false
[tunnel.moe]
mode = "ipip"
local = "wan"
remote = "peer.example"
address = "10.0.0.1/30"
[[route]]
to = "10.1.0.0/16"
dev = "moe"
[[route]]
to = "default"
via = "peer"
dev = "moe"
`

func TestFollowsDeviceAndName(t *testing.T) {
	c := parse(t, wan)
	wanDev := model.Device{Name: "wan", MTU: 1492, Up: true, Addrs: []netip.Prefix{pfx("192.0.2.7/24")}}
	resolved := map[string][]netip.Addr{"peer.example": {ip("2001:db8::1"), ip("198.51.100.2")}}
	link := model.Link{Name: "moe", Mode: model.ModeIPIP, Local: ip("192.0.2.7"), Remote: ip("198.51.100.2"),
		TTL: 64, PMTUDisc: true, MTU: 1472, Up: true}
	routes := []model.Route{
		{Table: 254, Dst: pfx("0.0.0.0/0"), Via: ip("10.0.0.2"), Dev: "moe"},
		{Table: 254, Dst: pfx("10.1.0.0/16"), Dev: "moe"},
	}
	hostRoute := model.Route{Table: 254, Dst: pfx("198.51.100.2/32"), Via: ip("192.0.2.1"), Dev: "wan"}
	underlay := []model.UnderlayRoute{{Dst: pfx("0.0.0.0/0"), Via: ip("192.0.2.1"), Dev: "wan"}}
	// While moe is not up, its routes stand as unreachable routes with
	// their table, destination and metric (State's order; the status
	// lists them in the file's).
	held := []model.Route{
		{Table: 254, Dst: pfx("0.0.0.0/0"), Type: model.RouteUnreachable},
		{Table: 254, Dst: pfx("10.1.0.0/16"), Type: model.RouteUnreachable},
	}
	heldInFileOrder := []model.Route{held[1], held[0]}
	tests := []struct {
		name     string
		in       model.Inputs
		cur      model.State
		links    []model.Link
		routes   []model.Route
		status   TunnelStatus
		notes    []string
		addrsSet bool
	}{
		{name: "up, MTU from the WAN device, host route since default goes into the tunnel",
			in:    model.Inputs{Devices: map[string]model.Device{"wan": wanDev}, Resolved: resolved, Routes: underlay},
			links: []model.Link{link}, routes: append([]model.Route{routes[0]}, routes[1], hostRoute), addrsSet: true,
			status: TunnelStatus{Name: "moe", Up: true, Local: ip("192.0.2.7"), Remote: ip("198.51.100.2")}},
		{name: "no underlay route: no host route, a note, and the status says the tunnel loops",
			in:    model.Inputs{Devices: map[string]model.Device{"wan": wanDev}, Resolved: resolved},
			links: []model.Link{link}, routes: routes, addrsSet: true,
			status: TunnelStatus{Name: "moe", Up: true, Local: ip("192.0.2.7"), Remote: ip("198.51.100.2"),
				Looped: "its packets to 198.51.100.2 go into itself: table main has no route to it by the underlay"},
			notes: []string{`tunnel "moe": host route to 198.51.100.2: no underlay route to it in table main`}},
		{name: "WAN without address, tunnel not created yet: routes held as unreachable",
			in:     model.Inputs{Devices: map[string]model.Device{"wan": {Name: "wan", Up: true}}, Resolved: resolved},
			routes: held,
			status: TunnelStatus{Name: "moe", Remote: ip("198.51.100.2"), Reason: "local device wan has no IPv4 address", Held: heldInFileOrder}},
		{name: "WAN without address, tunnel exists: kept, down, routes held as unreachable",
			in:    model.Inputs{Devices: map[string]model.Device{"wan": {Name: "wan", Up: true}}, Resolved: resolved},
			cur:   model.State{Links: []model.Link{link}},
			links: []model.Link{func() model.Link { l := link; l.Up = false; return l }()}, addrsSet: true,
			routes: held,
			status: TunnelStatus{Name: "moe", Remote: ip("198.51.100.2"), Reason: "local device wan has no IPv4 address", Held: heldInFileOrder}},
		{name: "name not resolved: routes in main withdrawn, the lookup may need them",
			in: model.Inputs{Devices: map[string]model.Device{"wan": wanDev}},
			status: TunnelStatus{Name: "moe", Local: ip("192.0.2.7"), Reason: "remote peer.example has no IPv4 address (not resolved yet)",
				Withdrawn: []WithdrawnRoute{{heldInFileOrder[0], whyLookup("peer.example", "")}, {heldInFileOrder[1], whyLookup("peer.example", "")}}}},
		{name: "WAN device missing: routes held as unreachable",
			in:     model.Inputs{Resolved: resolved},
			routes: held,
			status: TunnelStatus{Name: "moe", Remote: ip("198.51.100.2"), Reason: "local device wan does not exist", Held: heldInFileOrder}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(c, tt.in, tt.cur)
			if diff := cmp.Diff(tt.links, r.State.Links, opts); diff != "" {
				t.Errorf("links (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.routes, r.State.Routes, opts); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]TunnelStatus{tt.status}, r.Tunnels, opts); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.notes, r.Notes, opts); diff != "" {
				t.Errorf("notes (-want +got):\n%s", diff)
			}
			if got := len(r.State.Addrs) > 0; got != tt.addrsSet {
				t.Errorf("addresses present = %v, want %v", got, tt.addrsSet)
			}
		})
	}
}

func TestMTUAndOverhead(t *testing.T) {
	tests := []struct {
		mode, extra string
		mtu         int
	}{
		{"ipip", "", 1480},
		{"sit", "", 1480},
		{"gre", "", 1476},
		{"gre", "key = 7\n", 1472},
		{"ip6ip6", "", 1452},
		{"ipip6", "encaplimit = \"none\"\n", 1460},
	}
	for _, tt := range tests {
		t.Run(tt.mode+" "+tt.extra, func(t *testing.T) {
			local, remote := "192.0.2.1", "192.0.2.2"
			if tt.mode == "ip6ip6" || tt.mode == "ipip6" {
				local, remote = "2001:db8::1", "2001:db8::2"
			}
			c := parse(t, "[tunnel.t]\nmode = \""+tt.mode+"\"\nlocal = \""+local+"\"\nremote = \""+remote+"\"\n"+tt.extra)
			r := Build(c, model.Inputs{}, model.State{})
			if len(r.State.Links) != 1 || r.State.Links[0].MTU != tt.mtu {
				t.Fatalf("links = %+v, want MTU %d", r.State.Links, tt.mtu)
			}
		})
	}
}

// TestIPv6MinimumMTU: a computed MTU below 1280 (a small underlay) is
// raised to 1280 on a tunnel that carries IPv6, with a warning (not a
// note: nothing waits), since the kernel turns IPv6 off on a device with
// a smaller MTU; an IPv4-only tunnel and an explicit mtu keep theirs.
// An ip6ip6 tunnel does not fragment its outer packets, so there the
// warning says that IPv6 packets over underlay minus overhead are
// dropped and what to do, also with an explicit mtu, and the tunnel's
// status says so (Dropping): a tester saw ping6 -s 1232 lose all over a
// 1300 underlay with a warning that read like a fix, status up. A gre
// tunnel with pmtudisc (DF on its outer packets) drops them too, and its
// forwarded IPv4 packets without DF; one without pmtudisc, and sit, fragment.
func TestIPv6MinimumMTU(t *testing.T) {
	const gre6 = "[[route]]\nto = \"2001:db8:100::/48\"\ndev = \"t\"\n"
	tests := []struct {
		// extra follows the tunnel's options: more of them, or sections.
		name, mode, extra string
		underlay          int
		mtu               int
		warnings          []string
		dropping          string
	}{
		{"sit over 1280", "sit", "", 1280, 1280,
			[]string{`tunnel "t": computed mtu 1260 (underlay 1280 minus overhead 20) is below IPv6's minimum 1280: using 1280`}, ""},
		{"sit over PPPoE 1492 stays", "sit", "", 1492, 1472, nil, ""},
		{"sit over 1300 is exactly 1280", "sit", "", 1300, 1280, nil, ""},
		{"ip6ip6 over 1280", "ip6ip6", "", 1280, 1280,
			[]string{`tunnel "t": computed mtu 1232 (underlay 1280 minus overhead 48) is below IPv6's minimum 1280: using 1280, but ip6ip6 does not fragment its outer packets: IPv6 packets over 1232 bytes through it are dropped; raise the underlay wan's mtu to at least 1328`},
			"IPv6 packets over 1232 bytes are dropped: the underlay wan's mtu 1280 is too small (1328 needed)"},
		{"ip6ip6 over 1300, the tester's", "ip6ip6", "", 1300, 1280,
			[]string{`tunnel "t": computed mtu 1252 (underlay 1300 minus overhead 48) is below IPv6's minimum 1280: using 1280, but ip6ip6 does not fragment its outer packets: IPv6 packets over 1252 bytes through it are dropped; raise the underlay wan's mtu to at least 1328`},
			"IPv6 packets over 1252 bytes are dropped: the underlay wan's mtu 1300 is too small (1328 needed)"},
		{"ip6ip6 over 1325: encaplimit none would do", "ip6ip6", "", 1325, 1280,
			[]string{`tunnel "t": computed mtu 1277 (underlay 1325 minus overhead 48) is below IPv6's minimum 1280: using 1280, but ip6ip6 does not fragment its outer packets: IPv6 packets over 1277 bytes through it are dropped; raise the underlay wan's mtu to at least 1328, or set encaplimit = "none" (8 bytes less overhead)`},
			"IPv6 packets over 1277 bytes are dropped: the underlay wan's mtu 1325 is too small (1328 needed)"},
		{"ip6ip6 without encaplimit over 1300", "ip6ip6", "encaplimit = \"none\"\n", 1300, 1280,
			[]string{`tunnel "t": computed mtu 1260 (underlay 1300 minus overhead 40) is below IPv6's minimum 1280: using 1280, but ip6ip6 does not fragment its outer packets: IPv6 packets over 1260 bytes through it are dropped; raise the underlay wan's mtu to at least 1320`},
			"IPv6 packets over 1260 bytes are dropped: the underlay wan's mtu 1300 is too small (1320 needed)"},
		{"ip6ip6 over 1328 is exactly 1280", "ip6ip6", "", 1328, 1280, nil, ""},
		{"ip6ip6 with an explicit mtu over 1300", "ip6ip6", "mtu = 1280\n", 1300, 1280,
			[]string{`tunnel "t": mtu 1280 is above what the underlay carries (1300 minus overhead 48: 1252), but ip6ip6 does not fragment its outer packets: IPv6 packets over 1252 bytes through it are dropped; raise the underlay wan's mtu to at least 1328`},
			"IPv6 packets over 1252 bytes are dropped: the underlay wan's mtu 1300 is too small (1328 needed)"},
		// Above 1280 after the overhead, the Packet Too Big ip6tnl
		// sends is one hosts take: path MTU discovery works.
		{"ip6ip6 with an explicit mtu over 1400 is no shortfall", "ip6ip6", "mtu = 1452\n", 1400, 1452, nil, ""},
		{"ipip6 (IPv4 inside) over 1280 keeps 1232", "ipip6", "", 1280, 1232, nil, ""},
		{"ipip over 1280 keeps 1260", "ipip", "", 1280, 1260, nil, ""},
		{"IPv4-only gre over 1280 keeps 1256", "gre", "address = \"10.0.0.1/30\"\n", 1280, 1256, nil, ""},
		// gre with pmtudisc (the default) sets DF on its outer packets
		// (ip_tunnel_xmit), and sends no Packet Too Big below 1280
		// (tnl_update_pmtu): what the underlay cannot take is dropped.
		{"gre with an IPv6 route through it over 1280", "gre", gre6, 1280, 1280,
			[]string{`tunnel "t": computed mtu 1256 (underlay 1280 minus overhead 24) is below IPv6's minimum 1280: using 1280, but gre sets DF on its outer packets (pmtudisc = true), so the kernel does not fragment them: IPv6 packets over 1256 bytes through it are dropped, and forwarded IPv4 ones without DF; raise the underlay wan's mtu to at least 1304, or set pmtudisc = false (the kernel then fragments the outer packets)`},
			"IPv6 packets over 1256 bytes are dropped, and forwarded IPv4 ones without DF: the underlay wan's mtu 1280 is too small (1304 needed)"},
		{"gre with a key over 1300", "gre", "key = 5\n" + gre6, 1300, 1280,
			[]string{`tunnel "t": computed mtu 1272 (underlay 1300 minus overhead 28) is below IPv6's minimum 1280: using 1280, but gre sets DF on its outer packets (pmtudisc = true), so the kernel does not fragment them: IPv6 packets over 1272 bytes through it are dropped, and forwarded IPv4 ones without DF; raise the underlay wan's mtu to at least 1308, or set pmtudisc = false (the kernel then fragments the outer packets)`},
			"IPv6 packets over 1272 bytes are dropped, and forwarded IPv4 ones without DF: the underlay wan's mtu 1300 is too small (1308 needed)"},
		{"gre with an explicit mtu over 1280", "gre", "mtu = 1400\n" + gre6, 1280, 1400,
			[]string{`tunnel "t": mtu 1400 is above what the underlay carries (1280 minus overhead 24: 1256), but gre sets DF on its outer packets (pmtudisc = true), so the kernel does not fragment them: IPv6 packets over 1256 bytes through it are dropped, and forwarded IPv4 ones without DF; raise the underlay wan's mtu to at least 1304, or set pmtudisc = false (the kernel then fragments the outer packets)`},
			"IPv6 packets over 1256 bytes are dropped, and forwarded IPv4 ones without DF: the underlay wan's mtu 1280 is too small (1304 needed)"},
		// Without DF the kernel fragments the outer IPv4 packets.
		{"gre without pmtudisc over 1280 fragments", "gre", "pmtudisc = false\n" + gre6, 1280, 1280,
			[]string{`tunnel "t": computed mtu 1256 (underlay 1280 minus overhead 24) is below IPv6's minimum 1280: using 1280`}, ""},
		{"gre over 1304 is exactly 1280", "gre", gre6, 1304, 1280, nil, ""},
		// With fits of 1280 or more, tnl_update_pmtu sends a Packet Too
		// Big hosts take.
		{"gre with an explicit mtu over 1400 is no shortfall", "gre", "mtu = 1476\n" + gre6, 1400, 1476, nil, ""},
		// sit clears DF below 1280 (ipip6_tunnel_xmit), pmtudisc or not.
		{"sit with pmtudisc over 1280 fragments", "sit", "pmtudisc = true\n", 1280, 1280,
			[]string{`tunnel "t": computed mtu 1260 (underlay 1280 minus overhead 20) is below IPv6's minimum 1280: using 1280`}, ""},
		{"sit with an explicit mtu keeps it", "sit", "mtu = 1400\n", 1280, 1400, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			local, remote := "192.0.2.1", "192.0.2.2"
			if model.Mode(tt.mode).OuterIPv6() {
				local, remote = "2001:db8::1", "2001:db8::2"
			}
			c := parse(t, "[global]\nfirewall = false\n[tunnel.t]\nmode = \""+tt.mode+"\"\nlocal = \""+local+"\"\nremote = \""+remote+"\"\ndev = \"wan\"\n"+tt.extra)
			in := model.Inputs{Devices: map[string]model.Device{"wan": {Name: "wan", MTU: tt.underlay, Up: true, Running: true}}}
			r := Build(c, in, model.State{})
			if len(r.State.Links) != 1 || r.State.Links[0].MTU != tt.mtu {
				t.Fatalf("links = %+v, want MTU %d", r.State.Links, tt.mtu)
			}
			if diff := cmp.Diff(tt.warnings, r.Warnings, opts); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if len(r.Notes) > 0 {
				t.Errorf("notes: %q, want none", r.Notes)
			}
			if len(r.Tunnels) != 1 || !r.Tunnels[0].Up {
				t.Fatalf("tunnels = %+v, want t up", r.Tunnels)
			}
			if diff := cmp.Diff(tt.dropping, r.Tunnels[0].Dropping); diff != "" {
				t.Errorf("dropping (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRulePriorities(t *testing.T) {
	c := parse(t, `
[tables]
a = 10
[[rule]]
from = "10.0.0.1"
table = "a"
[[rule]]
from = "10.0.0.2"
table = "a"
priority = 20000
[[rule]]
to = "fd00::/8"
table = "a"
`)
	r := Build(c, model.Inputs{}, model.State{})
	var got []uint32
	for _, ru := range r.State.Rules {
		got = append(got, ru.Priority)
	}
	if diff := cmp.Diff([]uint32{20000, 20001, 20002}, got); diff != "" {
		t.Errorf("priorities (-want +got):\n%s", diff)
	}
	if r.State.Rules[0].Src != pfx("10.0.0.2/32") || r.State.Rules[2].Family != 6 {
		t.Errorf("explicit priority not kept or family wrong: %+v", r.State.Rules)
	}
}

// TestRulePrioritiesFillTheBand: a file whose rules just fit the band
// (config refuses one more, see its rulesFit) has every rule placed,
// with no note: config's count and Build's assignment agree.
func TestRulePrioritiesFillTheBand(t *testing.T) {
	const band = "[global]\nrule_priority_min = 32000\nrule_priority_max = 32001\n"
	rule := func(from, extra string) string {
		return "[[rule]]\nfrom = \"" + from + "\"\ntable = \"main\"\n" + extra
	}
	for _, tt := range []struct {
		name, src string
		want      []uint32
	}{
		{"two without a priority", band + rule("10.0.0.1", "") + rule("10.0.0.2", ""), []uint32{32000, 32001}},
		{"one at the top, one without", band + rule("10.0.0.1", "priority = 32000\n") + rule("10.0.0.2", ""), []uint32{32000, 32001}},
		{"two at one priority, one without", band + rule("10.0.0.1", "priority = 32001\n") + rule("10.0.0.2", "") + rule("10.0.0.3", "priority = 32001\n"),
			[]uint32{32000, 32001, 32001}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(parse(t, tt.src), model.Inputs{}, model.State{})
			var got []uint32
			for _, ru := range r.State.Rules {
				got = append(got, ru.Priority)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("priorities (-want +got):\n%s", diff)
			}
			if len(r.Notes) != 0 {
				t.Errorf("notes: %q", r.Notes)
			}
		})
	}
}

func TestFallbacksAndAntiSpoof(t *testing.T) {
	c := parse(t, `
[tunnel.t]
mode = "gre"
local = "192.0.2.1"
remote = "192.0.2.2"
address = ["10.0.0.1 peer 10.0.0.2", "fd00::1/64"]
[[route]]
to = "10.5.0.0/16"
dev = "t"
`)
	in := model.Inputs{Devices: map[string]model.Device{
		"gre0": {Name: "gre0", Kind: "gre", Up: true}, "tunl0": {Name: "tunl0", Kind: "ipip"},
	}}
	r := Build(c, in, model.State{})
	if diff := cmp.Diff([]string{"gre0"}, r.Fallbacks); diff != "" {
		t.Errorf("fallbacks (-want +got):\n%s", diff)
	}
	var spoof []string
	for _, ch := range r.State.Filter.Chains {
		if ch.Name == "spoof_t" {
			for _, ru := range ch.Rules {
				spoof = append(spoof, ru.String())
			}
		}
	}
	want := []string{"ip6 saddr fe80::/10 return", "ip saddr 10.0.0.2 return", "ip6 saddr fd00::/64 return", "ip saddr 10.5.0.0/16 return", "counter drop"}
	if diff := cmp.Diff(want, spoof); diff != "" {
		t.Errorf("spoof chain (-want +got):\n%s", diff)
	}
}

// TestNameTakenByForeignDevice: a device tunneld does not own that holds a
// tunnel's name gets none of the tunnel's addresses, up state or routes.
func TestNameTakenByForeignDevice(t *testing.T) {
	c := parse(t, `
[global]
firewall = false
[tunnel.moe]
mode = "ipip"
local = "192.0.2.1"
remote = "192.0.2.2"
address = "10.0.0.1/30"
[[route]]
to = "10.1.0.0/16"
dev = "moe"
`)
	link := model.Link{Name: "moe", Mode: model.ModeIPIP, Local: ip("192.0.2.1"), Remote: ip("192.0.2.2"),
		TTL: 64, PMTUDisc: true, MTU: 1480, Up: true}
	owned := model.State{
		Links:  []model.Link{link},
		Addrs:  []model.Addr{{Link: "moe", Prefix: pfx("10.0.0.1/30")}},
		Routes: []model.Route{{Table: 254, Dst: pfx("10.1.0.0/16"), Dev: "moe"}},
	}
	// Its route stands as an unreachable route, on no device: nothing
	// lands on the device holding the name.
	held := model.State{Routes: []model.Route{{Table: 254, Dst: pfx("10.1.0.0/16"), Type: model.RouteUnreachable}}}
	tests := []struct {
		name   string
		dev    *model.Device
		cur    model.State
		want   model.State
		reason string
	}{
		{"no device", nil, model.State{}, owned, ""},
		{"tunneld's own link", &model.Device{Name: "moe", Kind: "ipip", Up: true}, model.State{Links: []model.Link{link}}, owned, ""},
		{"a foreign device without a kind", &model.Device{Name: "moe"}, model.State{}, held,
			"the name moe is taken by a device tunneld does not own: give the tunnel another name"},
		{"a foreign veth", &model.Device{Name: "moe", Kind: "veth"}, model.State{}, held,
			"the name moe is taken by a veth device tunneld does not own: give the tunnel another name"},
		{"a foreign tunnel of another kind", &model.Device{Name: "moe", Kind: "gre", Up: true}, model.State{}, held,
			"the name moe is taken by a gre device tunneld does not own: give the tunnel another name"},
		{"a foreign tunnel of the same kind", &model.Device{Name: "moe", Kind: "ipip"}, model.State{}, held,
			"the name moe is taken by an ipip device without tunneld's alias, which tunneld does not own: give the tunnel another name, or delete that device (ip link del moe); if it is tunneld's own and someone changed its alias, give it back: ip link set moe alias tunneld (busybox ip: echo tunneld > /sys/class/net/moe/ifalias)"},
		{"a foreign tunnel of the same kind, relabeled", &model.Device{Name: "moe", Kind: "ipip", Alias: "to-branch-office"}, model.State{}, held,
			"the name moe is taken by an ipip device with the alias \"to-branch-office\", not tunneld's, which tunneld does not own: give the tunnel another name, or delete that device (ip link del moe); if it is tunneld's own and someone changed its alias, give it back: ip link set moe alias tunneld (busybox ip: echo tunneld > /sys/class/net/moe/ifalias)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := model.Inputs{Devices: map[string]model.Device{}}
			if tt.dev != nil {
				in.Devices["moe"] = *tt.dev
			}
			r := Build(c, in, tt.cur)
			if diff := cmp.Diff(tt.want, r.State, opts); diff != "" {
				t.Errorf("state (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.reason, r.Tunnels[0].Reason); diff != "" {
				t.Errorf("reason (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRuleSelectorsAsTheKernelKeepsThem: a from or to of length 0 and a
// mark 0/0 match everything; the kernel keeps (and reads back) them as no
// selector at all, and so does the desired state.
func TestRuleSelectorsAsTheKernelKeepsThem(t *testing.T) {
	tests := []struct {
		name, rule string
		want       model.Rule
	}{
		{"from 0.0.0.0/0", `from = "0.0.0.0/0"`, model.Rule{Family: 4, Priority: 20000, Table: 42}},
		{"to ::/0", `to = "::/0"`, model.Rule{Family: 6, Priority: 20000, Table: 42}},
		{"from a prefix", `from = "10.0.0.0/8"`, model.Rule{Family: 4, Priority: 20000, Src: pfx("10.0.0.0/8"), Table: 42}},
		{"fwmark 0x0/0x0", `fwmark = "0x0/0x0"`, model.Rule{Family: 4, Priority: 20000, Table: 42}},
		{"fwmark 0", `fwmark = 0`, model.Rule{Family: 4, Priority: 20000, HasMark: true, Mask: 0xffffffff, Table: 42}},
		{"fwmark 0x0/0xff", `fwmark = "0x0/0xff"`, model.Rule{Family: 4, Priority: 20000, HasMark: true, Mask: 0xff, Table: 42}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parse(t, "[[rule]]\n"+tt.rule+"\ntable = 42\n")
			r := Build(c, model.Inputs{}, model.State{})
			if diff := cmp.Diff([]model.Rule{tt.want}, r.State.Rules, opts); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFallbacksOfTheKindsInUse: only the fallback devices of the kinds the
// configuration's tunnels use are set down; the others are foreign.
func TestFallbacksOfTheKindsInUse(t *testing.T) {
	tunnel := func(mode string) string {
		return "[tunnel.t]\nmode = \"" + mode + "\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\n"
	}
	up := model.Inputs{Devices: map[string]model.Device{
		"tunl0": {Name: "tunl0", Kind: "ipip", Up: true}, "gre0": {Name: "gre0", Kind: "gre", Up: true},
		"sit0": {Name: "sit0", Kind: "sit", Up: true},
	}}
	tests := []struct {
		name, conf string
		want       []string
	}{
		{"routes only", "[[route]]\nto = \"10.5.0.0/16\"\ndev = \"eth0\"\n", nil},
		{"ipip", tunnel("ipip"), []string{"tunl0"}},
		{"gre", tunnel("gre"), []string{"gre0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(parse(t, "[global]\nfirewall = false\n"+tt.conf), up, model.State{})
			if diff := cmp.Diff(tt.want, r.Fallbacks, opts); diff != "" {
				t.Errorf("fallbacks (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFallbacksInNameOrder: with tunnels of every kind, every fallback
// device up is set down, in name order whatever the map's order, as
// when the map's keys were sorted first.
func TestFallbacksInNameOrder(t *testing.T) {
	conf := "[global]\nfirewall = false\n"
	for i, m := range []string{"ipip", "gre", "sit", "ip6ip6"} {
		local, remote := "192.0.2.1", fmt.Sprintf("192.0.2.%d", 10+i)
		if m == "ip6ip6" {
			local, remote = "2001:db8::1", "2001:db8::2"
		}
		conf += fmt.Sprintf("[tunnel.t%d]\nmode = %q\nlocal = %q\nremote = %q\n", i, m, local, remote)
	}
	in := model.Inputs{Devices: map[string]model.Device{}}
	for name, kind := range model.FallbackDevices {
		in.Devices[name] = model.Device{Name: name, Kind: kind, Up: true}
	}
	c := parse(t, conf)
	for range 20 {
		r := Build(c, in, model.State{})
		if diff := cmp.Diff([]string{"gre0", "ip6tnl0", "sit0", "tunl0"}, r.Fallbacks); diff != "" {
			t.Fatalf("fallbacks (-want +got):\n%s", diff)
		}
	}
}

// TestNameTakenNoFilterRules: with the filter on, a tunnel named like a
// device tunneld does not own (a typo for the LAN port) gets no filter
// rules either, whose "iifname NAME jump spoof_NAME … drop" would cut
// that device's traffic. A tunnel tunneld owns under that name, whose
// mode changed, is replaced as usual. Either way the status keeps the
// configured endpoints.
func TestNameTakenNoFilterRules(t *testing.T) {
	c := parse(t, `
[tunnel.eth0]
mode = "ipip"
local = "192.0.2.1"
remote = "192.0.2.2"
address = "10.0.0.1/30"
forward = "drop"
[[route]]
to = "10.5.0.0/16"
dev = "eth0"
`)
	owned := model.Link{Name: "eth0", Mode: model.ModeGRE, Local: ip("192.0.2.1"), Remote: ip("192.0.2.2"), MTU: 1476, Up: true}
	held := []model.Route{{Table: 254, Dst: pfx("10.5.0.0/16"), Type: model.RouteUnreachable}}
	tests := []struct {
		name   string
		dev    model.Device
		cur    model.State
		reason string
	}{
		{"physical device", model.Device{Name: "eth0", Up: true}, model.State{},
			"the name eth0 is taken by a device tunneld does not own: give the tunnel another name"},
		{"veth", model.Device{Name: "eth0", Kind: "veth", Up: true}, model.State{},
			"the name eth0 is taken by a veth device tunneld does not own: give the tunnel another name"},
		{"foreign gre tunnel", model.Device{Name: "eth0", Kind: "gre", Up: true}, model.State{},
			"the name eth0 is taken by a gre device tunneld does not own: give the tunnel another name"},
		{"foreign ipip tunnel", model.Device{Name: "eth0", Kind: "ipip", Up: true}, model.State{},
			"the name eth0 is taken by an ipip device without tunneld's alias, which tunneld does not own: give the tunnel another name, or delete that device (ip link del eth0); if it is tunneld's own and someone changed its alias, give it back: ip link set eth0 alias tunneld (busybox ip: echo tunneld > /sys/class/net/eth0/ifalias)"},
		{"own gre tunnel, mode changed to ipip", model.Device{Name: "eth0", Kind: "gre", Up: true}, model.State{Links: []model.Link{owned}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wan := model.Device{Name: "wan", Up: true, Running: true, Addrs: []netip.Prefix{pfx("192.0.2.1/24")}}
			r := Build(c, model.Inputs{Devices: map[string]model.Device{"eth0": tt.dev, "wan": wan}}, tt.cur)
			// The endpoints are the configured ones whoever holds the
			// name: status shows them. Only the admin can free the name.
			want := TunnelStatus{Name: "eth0", Up: tt.reason == "", Reason: tt.reason, Blocked: tt.reason != "", Local: ip("192.0.2.1"), Remote: ip("192.0.2.2")}
			if !want.Up {
				want.Held = held
			}
			if diff := cmp.Diff([]TunnelStatus{want}, r.Tunnels, opts); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if tt.reason == "" {
				if len(r.State.Links) != 1 || r.State.Filter == nil {
					t.Errorf("an owned name must be used: links %+v, filter %v", r.State.Links, r.State.Filter)
				}
				return
			}
			// Its route stands as an unreachable one, on no device.
			if len(r.State.Links) != 0 || len(r.State.Addrs) != 0 || !cmp.Equal(held, r.State.Routes, opts) {
				t.Errorf("built on a taken name: links %+v, addrs %+v, routes %+v", r.State.Links, r.State.Addrs, r.State.Routes)
			}
			if r.State.Filter != nil {
				for _, ch := range r.State.Filter.Chains {
					for _, ru := range ch.Rules {
						if ru.IIF == "eth0" || ru.OIF == "eth0" {
							t.Errorf("filter rule on a device tunneld does not own: %s: %s", ch.Name, ru)
						}
					}
				}
			}
		})
	}
}

// TestUnderlayDeviceMissing: a tunnel bound to a device (dev) that does
// not exist is down with that reason, as one whose local device is
// missing: the kernel would refuse the link, and its addresses and routes
// would fail one by one after it. An existing tunnel is kept, down. A dev
// naming another configured tunnel is created in the same round. A
// device that is down or has no carrier takes the tunnel down with it
// (made so, or set so), the route through it standing unreachable: a
// tester's stayed up, its routes with it, and the LAN's packets died in
// it.
func TestUnderlayDeviceMissing(t *testing.T) {
	conf := `
[tunnel.moe]
mode = "ipip"
local = "192.0.2.7"
remote = "198.51.100.2"
dev = "%s"
address = "10.0.0.1/30"
[tunnel.lower]
mode = "ipip"
local = "192.0.2.7"
remote = "198.51.100.9"
[[route]]
to = "10.1.0.0/16"
dev = "moe"
`
	link := model.Link{Name: "moe", Mode: model.ModeIPIP, Local: ip("192.0.2.7"), Remote: ip("198.51.100.2"), Dev: "eth0",
		TTL: 64, PMTUDisc: true, MTU: 1480, Up: true}
	down := link
	down.Up = false
	eth0 := map[string]model.Device{"eth0": {Name: "eth0", MTU: 1500, Up: true, Running: true}}
	tests := []struct {
		name   string
		dev    string
		in     model.Inputs
		cur    model.State
		moe    []model.Link // moe's link, if any
		routes int
		reason string
	}{
		{"present", "eth0", model.Inputs{Devices: eth0}, model.State{}, []model.Link{link}, 1, ""},
		{"missing, not created", "eth0", model.Inputs{}, model.State{}, nil, 1, "device eth0 (dev) does not exist"},
		{"missing, tunnel exists: kept down", "eth0", model.Inputs{}, model.State{Links: []model.Link{link}}, []model.Link{down}, 1, "device eth0 (dev) does not exist"},
		{"another configured tunnel", "lower", model.Inputs{}, model.State{}, []model.Link{func() model.Link { l := link; l.Dev = "lower"; return l }()}, 1, ""},
		{"down: made down", "eth0", model.Inputs{Devices: map[string]model.Device{"eth0": {Name: "eth0", MTU: 1500}}}, model.State{}, []model.Link{down}, 1, "device eth0 (dev) is down"},
		{"no carrier: set down", "eth0", model.Inputs{Devices: map[string]model.Device{"eth0": {Name: "eth0", MTU: 1500, Up: true}}}, model.State{Links: []model.Link{link}}, []model.Link{down}, 1, "device eth0 (dev) has no carrier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(parse(t, fmt.Sprintf(conf, tt.dev)), tt.in, tt.cur)
			var moe []model.Link
			for _, l := range r.State.Links {
				if l.Name == "moe" {
					moe = append(moe, l)
				}
			}
			if diff := cmp.Diff(tt.moe, moe, opts); diff != "" {
				t.Errorf("link (-want +got):\n%s", diff)
			}
			if got := len(r.State.Routes); got != tt.routes {
				t.Errorf("%d routes, want %d: %+v", got, tt.routes, r.State.Routes)
			}
			var reason string
			for _, st := range r.Tunnels {
				if st.Name == "moe" {
					reason = st.Reason
				}
			}
			if diff := cmp.Diff(tt.reason, reason); diff != "" {
				t.Errorf("reason (-want +got):\n%s", diff)
			}
		})
	}
}

const dslite = `
[global]
firewall = false
[tunnel.ds]
mode = "ipip6"
local = "wan"
remote = "aftr.example"
address = "192.0.0.2/29"
encaplimit = "none"
`

// TestDNSPeerKeptWhileNamed: a tunnel to a name that gives several
// addresses keeps the one it has while the name still gives it. The
// first of the answer was taken: an AFTR added to the name re-pointed a
// DS-Lite tunnel that worked, and the AFTR's NAT state (every connection
// of the LAN) was lost with it. A new tunnel takes the lowest address of
// its family, in whatever order the answer lists them.
func TestDNSPeerKeptWhileNamed(t *testing.T) {
	c := parse(t, dslite)
	in := model.Inputs{Devices: map[string]model.Device{
		"wan": {Name: "wan", MTU: 1500, Up: true, Addrs: []netip.Prefix{pfx("2001:db8:a::2/64")}},
	}}
	cur := model.State{Links: []model.Link{{Name: "ds", Mode: model.ModeIPIP6, Local: ip("2001:db8:a::2"), Remote: ip("2001:db8:b::2"),
		TTL: 64, EncapLimit: -1, MTU: 1460, Up: true}}}
	for _, tt := range []struct {
		name    string
		answers []netip.Addr
		cur     model.State
		want    netip.Addr
	}{
		{"new tunnel: the lowest of the family", []netip.Addr{ip("192.0.2.1"), ip("2001:db8:b::1"), ip("2001:db8:b::2")}, model.State{}, ip("2001:db8:b::1")},
		{"new tunnel, answer out of order: the lowest", []netip.Addr{ip("2001:db8:b::9"), ip("192.0.2.1"), ip("2001:db8:b::4")}, model.State{}, ip("2001:db8:b::4")},
		{"still named: kept", []netip.Addr{ip("2001:db8:b::1"), ip("2001:db8:b::2")}, cur, ip("2001:db8:b::2")},
		{"no longer named: the lowest", []netip.Addr{ip("2001:db8:b::3"), ip("2001:db8:b::1")}, cur, ip("2001:db8:b::1")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in.Resolved = map[string][]netip.Addr{"aftr.example": tt.answers}
			r := Build(c, in, tt.cur)
			if len(r.Tunnels) != 1 || !r.Tunnels[0].Up || r.Tunnels[0].Remote != tt.want {
				t.Errorf("tunnel: %+v, want up with remote %s", r.Tunnels, tt.want)
			}
		})
	}
}

// TestDNSPeerOfTheOtherFamily: a name that answers, but only with
// addresses of the other family than the tunnel's outer header, is not
// said to be "not resolved yet".
func TestDNSPeerOfTheOtherFamily(t *testing.T) {
	c := parse(t, dslite)
	in := model.Inputs{Devices: map[string]model.Device{
		"wan": {Name: "wan", MTU: 1500, Up: true, Addrs: []netip.Prefix{pfx("2001:db8:a::2/64")}},
	}, Resolved: map[string][]netip.Addr{"aftr.example": {ip("192.0.2.1")}}}
	r := Build(c, in, model.State{})
	want := "remote aftr.example has no IPv6 address (it resolves to 192.0.2.1 only)"
	if len(r.Tunnels) != 1 || r.Tunnels[0].Up || r.Tunnels[0].Reason != want {
		t.Errorf("tunnel: %+v, want down: %q", r.Tunnels, want)
	}
	delete(in.Resolved, "aftr.example")
	r = Build(c, in, model.State{})
	want = "remote aftr.example has no IPv6 address (not resolved yet)"
	if len(r.Tunnels) != 1 || r.Tunnels[0].Reason != want {
		t.Errorf("tunnel: %+v, want down: %q", r.Tunnels, want)
	}
}

// TestLocalDeviceUnusable: a tunnel whose local device's only addresses
// of its family are in duplicate address detection, or failed it, is
// down with a reason that names them and says which: "no IPv6 address"
// sent an admin looking for an address that was there, tentative for a
// second or dadfailed for good. Those of the other family are not named;
// a usable address is followed whatever else the device has.
func TestLocalDeviceUnusable(t *testing.T) {
	tentative := model.UnusableAddr{Prefix: pfx("2001:db8:a::6/64")}
	failed := model.UnusableAddr{Prefix: pfx("2001:db8:a::5/64"), Failed: true}
	tests := []struct {
		name     string
		conf     string
		addrs    []netip.Prefix
		unusable []model.UnusableAddr
		want     TunnelStatus
	}{
		{"no address at all", dslite, nil, nil,
			TunnelStatus{Name: "ds", Remote: ip("2001:db8:b::1"), Reason: "local device wan has no IPv6 address"}},
		{"in detection", dslite, nil, []model.UnusableAddr{tentative},
			TunnelStatus{Name: "ds", Remote: ip("2001:db8:b::1"),
				Reason: "local device wan has no usable IPv6 address yet (2001:db8:a::6 is in duplicate address detection)"}},
		{"failed", dslite, nil, []model.UnusableAddr{failed},
			TunnelStatus{Name: "ds", Remote: ip("2001:db8:b::1"),
				Reason: "local device wan has no usable IPv6 address (2001:db8:a::5 failed duplicate address detection)"}},
		{"one of each, in the kernel's order", dslite, []netip.Prefix{pfx("192.0.2.7/24")}, []model.UnusableAddr{tentative, failed},
			TunnelStatus{Name: "ds", Remote: ip("2001:db8:b::1"),
				Reason: "local device wan has no usable IPv6 address yet (2001:db8:a::6 is in duplicate address detection, 2001:db8:a::5 failed duplicate address detection)"}},
		{"a usable one beside", dslite, []netip.Prefix{pfx("2001:db8:a::2/64")}, []model.UnusableAddr{tentative, failed},
			TunnelStatus{Name: "ds", Up: true, Local: ip("2001:db8:a::2"), Remote: ip("2001:db8:b::1")}},
		{"the other family's are not named", wan, nil, []model.UnusableAddr{tentative},
			TunnelStatus{Name: "moe", Remote: ip("198.51.100.2"), Reason: "local device wan has no IPv4 address"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := model.Inputs{
				Devices:  map[string]model.Device{"wan": {Name: "wan", MTU: 1500, Up: true, Addrs: tt.addrs, Unusable: tt.unusable}},
				Resolved: map[string][]netip.Addr{"aftr.example": {ip("2001:db8:b::1")}, "peer.example": {ip("198.51.100.2")}},
			}
			r := Build(parse(t, tt.conf), in, model.State{})
			// The routes held while it is down are TestHeldRoutes'.
			if diff := cmp.Diff([]TunnelStatus{tt.want}, r.Tunnels, opts, cmpopts.IgnoreFields(TunnelStatus{}, "Held")); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLocalDeviceLinkLocalOnly: an IPv6 tunnel whose local device has
// only link-local addresses is down with a reason that says so and that
// they are never followed: "has no IPv6 address" sent a tester looking
// at the fe80::… that `ip addr` showed there. To a link-local remote the
// reason says how to name the address instead. An unusable global
// address is still the reason given first; an IPv4 tunnel is not told of
// IPv6 link-local addresses.
func TestLocalDeviceLinkLocalOnly(t *testing.T) {
	ll := ip("fe80::1")
	toLinkLocal := "[global]\nfirewall = false\n[tunnel.ll]\nmode = \"ip6ip6\"\nlocal = \"wan\"\nremote = \"fe80::2\"\ndev = \"wan\"\n"
	tests := []struct {
		name     string
		conf     string
		addrs    []netip.Prefix
		unusable []model.UnusableAddr
		want     TunnelStatus
	}{
		{"link-local only", dslite, nil, nil,
			TunnelStatus{Name: "ds", Remote: ip("2001:db8:b::1"),
				Reason: "local device wan has only a link-local IPv6 address (fe80::1), which is never followed"}},
		{"to a link-local remote", toLinkLocal, nil, nil,
			TunnelStatus{Name: "ll", Remote: ip("fe80::2"),
				Reason: `local device wan has only a link-local IPv6 address (fe80::1), which is never followed: for a tunnel between link-local addresses, write local = "fe80::1"`}},
		{"a global one in detection", dslite, nil, []model.UnusableAddr{{Prefix: pfx("2001:db8:a::6/64")}},
			TunnelStatus{Name: "ds", Remote: ip("2001:db8:b::1"),
				Reason: "local device wan has no usable IPv6 address yet (2001:db8:a::6 is in duplicate address detection)"}},
		{"a global one beside", dslite, []netip.Prefix{pfx("2001:db8:a::2/64")}, nil,
			TunnelStatus{Name: "ds", Up: true, Local: ip("2001:db8:a::2"), Remote: ip("2001:db8:b::1")}},
		{"an IPv4 tunnel", wan, nil, nil,
			TunnelStatus{Name: "moe", Remote: ip("198.51.100.2"), Reason: "local device wan has no IPv4 address"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := model.Inputs{
				Devices:  map[string]model.Device{"wan": {Name: "wan", MTU: 1500, Up: true, Addrs: tt.addrs, Unusable: tt.unusable, LinkLocal: ll}},
				Resolved: map[string][]netip.Addr{"aftr.example": {ip("2001:db8:b::1")}, "peer.example": {ip("198.51.100.2")}},
			}
			r := Build(parse(t, tt.conf), in, model.State{})
			if diff := cmp.Diff([]TunnelStatus{tt.want}, r.Tunnels, opts, cmpopts.IgnoreFields(TunnelStatus{}, "Held")); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAcceptRAWarning: with ipv6_forward = true, a device that an IPv6
// tunnel takes its local address from and whose accept_ra is 1 gets a
// warning with the remedy: forwarding makes the kernel ignore router
// advertisements there, and the address SLAAC gave it expires (a Debian
// WAN lost its address, and the tunnel with it). Only such devices are
// read: accept_ra is 1 on every device by default, and those an IPv4
// tunnel follows, or none does, need no IPv6 address of tunneld's
// concern. Nothing is changed: no sysctl is set for it.
func TestAcceptRAWarning(t *testing.T) {
	const wanRA = "net/ipv6/conf/wan/accept_ra"
	const warning = "net.ipv6.conf.wan.accept_ra is 1: with ipv6_forward on, the kernel ignores router advertisements there and the address from SLAAC expires; set it to 2"
	conf := func(global, tunnels string) string { return "[global]\nfirewall = false\n" + global + tunnels }
	ds := "[tunnel.ds]\nmode = \"ipip6\"\nlocal = \"wan\"\nremote = \"2001:db8:b::1\"\n"
	tests := []struct {
		name     string
		conf     string
		sysctls  map[string]string
		reads    []string
		warnings []string
	}{
		{"forwarding, accept_ra 1", conf("ipv6_forward = true\n", ds), map[string]string{wanRA: "1"}, []string{wanRA}, []string{warning}},
		{"forwarding, accept_ra 2", conf("ipv6_forward = true\n", ds), map[string]string{wanRA: "2"}, []string{wanRA}, nil},
		{"forwarding, accept_ra 0", conf("ipv6_forward = true\n", ds), map[string]string{wanRA: "0"}, []string{wanRA}, nil},
		{"forwarding, no such device", conf("ipv6_forward = true\n", ds), nil, []string{wanRA}, nil},
		{"forwarding off", conf("ipv6_forward = false\n", ds), map[string]string{wanRA: "1"}, nil, nil},
		{"forwarding not set", conf("", ds), map[string]string{wanRA: "1"}, nil, nil},
		{"two tunnels on one device: one warning", conf("ipv6_forward = true\n",
			ds+"[tunnel.six]\nmode = \"ip6ip6\"\nlocal = \"wan\"\nremote = \"2001:db8:c::1\"\n"),
			map[string]string{wanRA: "1"}, []string{wanRA}, []string{warning}},
		{"devices in name order", conf("ipv6_forward = true\n",
			ds+"[tunnel.six]\nmode = \"ip6ip6\"\nlocal = \"dsl\"\nremote = \"2001:db8:c::1\"\n"),
			map[string]string{wanRA: "1", "net/ipv6/conf/dsl/accept_ra": "1"},
			[]string{"net/ipv6/conf/dsl/accept_ra", wanRA},
			[]string{strings.ReplaceAll(warning, ".wan.", ".dsl."), warning}},
		{"an IPv4 tunnel follows the device", conf("ipv6_forward = true\n", "[tunnel.he]\nmode = \"sit\"\nlocal = \"wan\"\nremote = \"198.51.100.1\"\n"),
			map[string]string{wanRA: "1"}, nil, nil},
		{"the file's own warning first", conf("ipv6_forward = true\n", ds+"[[forward]]\ntunnel = \"ds\"\ndirection = \"in\"\n"),
			map[string]string{wanRA: "1"}, []string{wanRA},
			[]string{"t.toml:2:12: global.firewall: is false, so these are ignored (only tunneld's nftables table does them): [[forward]] (1 section)", warning}},
		{"a literal local address", conf("ipv6_forward = true\n", "[tunnel.ds]\nmode = \"ipip6\"\nlocal = \"2001:db8:a::2\"\nremote = \"2001:db8:b::1\"\n"),
			map[string]string{wanRA: "1"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parse(t, tt.conf)
			if diff := cmp.Diff(tt.reads, InputSysctls(c), opts); diff != "" {
				t.Errorf("sysctls read (-want +got):\n%s", diff)
			}
			in := model.Inputs{Devices: map[string]model.Device{"wan": {Name: "wan", MTU: 1500, Up: true,
				Addrs: []netip.Prefix{pfx("2001:db8:a::2/64")}}}, Sysctls: tt.sysctls}
			r := Build(c, in, model.State{})
			if diff := cmp.Diff(tt.warnings, r.Warnings, opts); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			for _, s := range r.State.Sysctls {
				if strings.HasSuffix(s.Path, "/accept_ra") {
					t.Errorf("accept_ra is set: %+v", s)
				}
			}
		})
	}
}

// TestForeignRouteSameKey: a configured route in table main with the
// destination and metric of a route tunneld does not own there gets a
// warning that names that route and what to do (the tester's 6in4 router
// with a router advertisement's default route never got its tunnel's
// default route, and plan showed an addition that apply refused). An IPv6
// route without a metric has 1024, as the RA route; an IPv4 one 0. Routes
// in other tables, at another metric or to another destination get none.
func TestForeignRouteSameKey(t *testing.T) {
	const he = `
[global]
firewall = false
[tunnel.he]
mode = "sit"
local = "wan"
remote = "198.51.100.1"
address = "2001:db8:1::2/64"
[tunnel.moe]
mode = "ipip"
local = "wan"
remote = "198.51.100.9"
address = "10.0.0.1 peer 10.0.0.2"
`
	raDefault := model.UnderlayRoute{Dst: pfx("::/0"), Via: ip("2001:db8:a::1"), Dev: "wan", Metric: 1024, Proto: model.RouteProtocolRA}
	byHand := raDefault
	byHand.Proto = 3
	v4Default := model.UnderlayRoute{Dst: pfx("0.0.0.0/0"), Via: ip("192.0.2.1"), Dev: "wan", Proto: 3}
	v4DHCP := model.UnderlayRoute{Dst: pfx("0.0.0.0/0"), Via: ip("192.0.2.1"), Dev: "wan", Metric: 100, Proto: 16}
	const ra = "route[0]: route ::/0 table main metric 1024 has the same table, destination and metric as default via 2001:db8:a::1 dev wan proto ra metric 1024, a route tunneld does not own: " +
		"the kernel refuses a second route of that key, and apply cannot add it; give route[0] a metric no route there has (lower to come first, higher to back the other up, not 0: an IPv6 route without one has 1024), " +
		"or delete that route: ip -6 route del default via 2001:db8:a::1 dev wan metric 1024, after setting net.ipv6.conf.wan.accept_ra_defrtr to 0, else the next router advertisement on wan adds it again"
	const v4 = "route[0]: route 0.0.0.0/0 table main has the same table, destination and metric as default via 192.0.2.1 dev wan proto boot metric 0, a route tunneld does not own: " +
		"the kernel refuses a second route of that key, and apply cannot add it; give route[0] a metric no route there has (higher to back the other up), " +
		"or delete that route: ip route del default via 192.0.2.1 dev wan metric 0"
	v6Route := "[[route]]\nto = \"::/0\"\ndev = \"he\"\n"
	tests := []struct {
		name     string
		routes   string
		foreign  []model.UnderlayRoute
		wanAddrs []netip.Prefix
		cur      []model.Route
		warnings []string
	}{
		{"IPv6 default, an RA default route", v6Route, []model.UnderlayRoute{raDefault}, nil, nil, []string{ra}},
		{"IPv6 default, metric 0 is 1024", strings.Replace(v6Route, "dev", "metric = 0\ndev", 1), []model.UnderlayRoute{raDefault}, nil, nil, []string{ra}},
		{"IPv6 default, one made by hand", v6Route, []model.UnderlayRoute{byHand}, nil, nil, []string{
			strings.Replace(strings.Replace(ra, "proto ra", "proto boot", 1), ", after setting net.ipv6.conf.wan.accept_ra_defrtr to 0, else the next router advertisement on wan adds it again", "", 1)}},
		{"IPv6 default, a metric of its own", strings.Replace(v6Route, "dev", "metric = 512\ndev", 1), []model.UnderlayRoute{raDefault}, nil, nil, nil},
		{"IPv6 default, the RA route at another metric", v6Route, []model.UnderlayRoute{{Dst: pfx("::/0"), Via: ip("fe80::1"), Dev: "wan", Metric: 100, Proto: model.RouteProtocolRA}}, nil, nil, nil},
		{"IPv6 default in another table", strings.Replace(v6Route, "dev", "table = 42\ndev", 1), []model.UnderlayRoute{raDefault}, nil, nil, nil},
		{"another destination", "[[route]]\nto = \"2000::/3\"\ndev = \"he\"\n", []model.UnderlayRoute{raDefault}, nil, nil, nil},
		{"IPv4 default, the WAN's", "[[route]]\nto = \"default\"\nvia = \"peer\"\ndev = \"moe\"\n", []model.UnderlayRoute{v4Default}, nil, nil, []string{v4}},
		{"IPv4 default, the WAN's at DHCP's metric", "[[route]]\nto = \"default\"\nvia = \"peer\"\ndev = \"moe\"\n", []model.UnderlayRoute{v4DHCP}, nil, nil, nil},
		// Below metric 100 there is room: lower comes first.
		{"IPv4 default, both at DHCP's metric", "[[route]]\nto = \"default\"\nvia = \"peer\"\ndev = \"moe\"\nmetric = 100\n", []model.UnderlayRoute{v4DHCP}, nil, nil, []string{
			"route[0]: route 0.0.0.0/0 table main metric 100 has the same table, destination and metric as default via 192.0.2.1 dev wan proto dhcp metric 100, a route tunneld does not own: " +
				"the kernel refuses a second route of that key, and apply cannot add it; give route[0] a metric no route there has (lower to come first, higher to back the other up), " +
				"or delete that route: ip route del default via 192.0.2.1 dev wan metric 100"}},
		{"IPv4 default, two of them", "[[route]]\nto = \"default\"\nvia = \"peer\"\ndev = \"moe\"\n",
			[]model.UnderlayRoute{v4Default, {Dst: pfx("0.0.0.0/0"), Via: ip("192.0.2.254"), Dev: "wan", Proto: 4}}, nil, nil, []string{
				strings.Replace(strings.Replace(v4, "proto boot metric 0, a route", "proto boot metric 0 and default via 192.0.2.254 dev wan proto static metric 0, routes", 1),
					"delete that route: ip route del default via 192.0.2.1 dev wan metric 0", "delete those routes: ip route del default via 192.0.2.1 dev wan metric 0; ip route del default via 192.0.2.254 dev wan metric 0", 1)}},
		{"a blackhole route", "[[route]]\ntype = \"blackhole\"\nto = \"::/0\"\n", []model.UnderlayRoute{raDefault}, nil, nil, []string{ra}},
		{"IPv4 default, an admin's unreachable default", "[[route]]\nto = \"default\"\nvia = \"peer\"\ndev = \"moe\"\n",
			[]model.UnderlayRoute{{Dst: pfx("0.0.0.0/0"), Proto: 3, Type: model.RouteUnreachable}}, nil, nil, []string{
				strings.Replace(strings.Replace(v4, "default via 192.0.2.1 dev wan proto boot", "unreachable default proto boot", 1),
					"ip route del default via 192.0.2.1 dev wan metric 0", "ip route del unreachable default metric 0", 1)}},
		{"the tunnel down: its unreachable stand-in is refused too", v6Route, []model.UnderlayRoute{raDefault}, []netip.Prefix{}, nil, []string{ra}},
		{"tunneld's route in place beside it", v6Route, []model.UnderlayRoute{raDefault}, nil,
			[]model.Route{{Table: model.TableMain, Dst: pfx("::/0"), Dev: "he", Metric: 1024}}, []string{
				strings.Replace(ra, "the kernel refuses a second route of that key, and apply cannot add it", "tunneld's route is in place beside it, but once removed (down, the daemon's stop) apply cannot add it again", 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parse(t, he+tt.routes)
			addrs := []netip.Prefix{pfx("192.0.2.7/24"), pfx("2001:db8:a::7/64")}
			if tt.wanAddrs != nil {
				addrs = tt.wanAddrs
			}
			in := model.Inputs{Devices: map[string]model.Device{"wan": {Name: "wan", MTU: 1500, Up: true, Addrs: addrs}}, Routes: tt.foreign}
			r := Build(c, in, model.State{Routes: tt.cur})
			if diff := cmp.Diff(tt.warnings, r.Warnings, opts); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if tt.wanAddrs != nil && (r.Tunnels[0].Up || len(r.Tunnels[0].Held) != 1) {
				t.Errorf("he is not down with its route held: %+v", r.Tunnels[0])
			}
		})
	}
}

// TestProxyARPNotOnForeignName: proxy_arp naming a tunnel of the file
// whose name a device tunneld does not own holds is not set there (a
// tester's veth t1 got proxy_arp 1): the tunnel gets it once it is in
// the kernel.
func TestProxyARPNotOnForeignName(t *testing.T) {
	c := parse(t, "[global]\nproxy_arp = [\"t1\"]\n[tunnel.t1]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\n")
	r := Build(c, model.Inputs{Devices: map[string]model.Device{"t1": {Name: "t1", Kind: "veth", Up: true}}}, model.State{})
	if len(r.State.Sysctls) != 0 {
		t.Errorf("sysctls %v, want none on the veth", r.State.Sysctls)
	}
	if want := "sysctl net.ipv4.conf.t1.proxy_arp: tunnel t1 is not in the kernel yet"; !slices.Contains(r.Notes, want) {
		t.Errorf("notes %q, want %q", r.Notes, want)
	}
}
