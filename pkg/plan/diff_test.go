package plan

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

func link(name string, mode model.Mode, local, remote string) model.Link {
	return model.Link{Name: name, Mode: mode, Local: netip.MustParseAddr(local), Remote: netip.MustParseAddr(remote),
		TTL: 64, PMTUDisc: true, MTU: 1480, Up: true}
}

func addr(dev, p string) model.Addr { return model.Addr{Link: dev, Prefix: netip.MustParsePrefix(p)} }

func route(table uint32, dst, dev string) model.Route {
	return model.Route{Table: table, Dst: netip.MustParsePrefix(dst), Dev: dev}
}

func gw(dev, via string) model.Route {
	return model.Route{Table: 42, Dst: netip.MustParsePrefix("10.80.0.0/16"), Via: netip.MustParseAddr(via), Dev: dev}
}

func TestDiff(t *testing.T) {
	moe := link("moe", model.ModeIPIP, "192.0.2.1", "192.0.2.2")
	moeNewLocal := moe
	moeNewLocal.Local = netip.MustParseAddr("192.0.2.9")
	moeGRE := moe
	moeGRE.Mode, moeGRE.MTU = model.ModeGRE, 1476
	moeDown := moe
	moeDown.Up = false
	gre := link("gre", model.ModeGRE, "192.0.2.1", "192.0.2.2")
	greIgnoreDF := gre // ip link set gre type gre nopmtudisc ignore-df
	greIgnoreDF.PMTUDisc, greIgnoreDF.Others.IgnoreDF = false, true
	greNoPMTUDisc := gre
	greNoPMTUDisc.PMTUDisc = false
	full := model.State{
		Links:   []model.Link{moe},
		Addrs:   []model.Addr{addr("moe", "10.0.0.1/30")},
		Routes:  []model.Route{route(42, "0.0.0.0/0", "moe")},
		Rules:   []model.Rule{{Family: 4, Priority: 20000, Src: netip.MustParsePrefix("10.0.0.1/32"), Table: 42}},
		Sysctls: []model.Sysctl{{Path: "net/ipv4/ip_forward", Value: "1"}},
	}
	withOriginal := full
	unreach := model.Route{Table: 42, Dst: netip.MustParsePrefix("2001:db8:100::/48"), Metric: 1024, Type: model.RouteUnreachable}
	blackhole := unreach
	blackhole.Type = model.RouteBlackhole
	v6dev := unreach
	v6dev.Type, v6dev.Dev = model.RouteUnicast, "eth0"
	withOriginal.Sysctls = []model.Sysctl{{Path: "net/ipv4/ip_forward", Value: "1", Original: "0"}}
	moeUnmarked := withOriginal
	moeUnmarked.Links = []model.Link{moe}
	moeUnmarked.Links[0].Unmarked = true
	moeUnmarkedOld := moeUnmarked
	moeUnmarkedOld.Links = []model.Link{moeNewLocal}
	moeUnmarkedOld.Links[0].Unmarked = true
	narrowed := withOriginal
	narrowed.Rules = []model.Rule{full.Rules[0]}
	narrowed.Rules[0].Extra, narrowed.Rules[0].Wire = "ipproto 6", "\x00\x00\x00\x00\x00\x05\x00\x16\x00\x06\x00\x00\x00"
	inverted := withOriginal
	inverted.Rules = []model.Rule{full.Rules[0]}
	inverted.Rules[0].Extra, inverted.Rules[0].Wire = "not tos 0x10", "\x10\x02\x00\x00\x00"
	narrowedBeside := withOriginal
	narrowedBeside.Rules = []model.Rule{narrowed.Rules[0], full.Rules[0]}
	narrowedBeside.Rules[0].Extra = "uidrange 0-0"
	tests := []struct {
		name       string
		have, want model.State
		fallbacks  []string
		out        string
	}{
		{"from empty", model.State{}, full, nil, `
ip link add moe mtu 1480 type ipip local 192.0.2.1 remote 192.0.2.2 ttl 64 pmtudisc
ip link set moe alias tunneld
ip address add 10.0.0.1/30 dev moe
ip link set moe up
ip route add default dev moe table 42 proto 116
ip rule add from 10.0.0.1 lookup 42 priority 20000 protocol 116
sysctl -w net.ipv4.ip_forward=1`},
		{"converged", withOriginal, full, nil, ``},
		{"to empty", withOriginal, model.State{}, nil, `
sysctl -w net.ipv4.ip_forward=0  # original value
ip rule del from 10.0.0.1 lookup 42 priority 20000 protocol 116
ip link del moe`},
		{"a tunnel held by its name only is marked", moeUnmarked, full, nil, `
ip link set moe alias tunneld`},
		{"and marked beside a change", moeUnmarkedOld, full, nil, `
ip link change moe mtu 1480 type ipip local 192.0.2.1 remote 192.0.2.2 ttl 64 pmtudisc
ip link set moe alias tunneld`},
		{"gre ignore-df by hand is cleared before pmtudisc", model.State{Links: []model.Link{greIgnoreDF}}, model.State{Links: []model.Link{gre}}, nil, `
ip link change gre mtu 1480 type gre local 192.0.2.1 remote 192.0.2.2 ttl 64 nopmtudisc noignore-df
ip link change gre mtu 1480 type gre local 192.0.2.1 remote 192.0.2.2 ttl 64 pmtudisc`},
		{"gre ignore-df by hand without pmtudisc: one change", model.State{Links: []model.Link{greIgnoreDF}}, model.State{Links: []model.Link{greNoPMTUDisc}}, nil, `
ip link change gre mtu 1480 type gre local 192.0.2.1 remote 192.0.2.2 ttl 64 nopmtudisc noignore-df`},
		{"local changes in place", full, model.State{Links: []model.Link{moeNewLocal}, Addrs: full.Addrs, Routes: full.Routes, Rules: full.Rules, Sysctls: full.Sysctls}, nil, `
ip link change moe mtu 1480 type ipip local 192.0.2.9 remote 192.0.2.2 ttl 64 pmtudisc`},
		{"mode change recreates and re-adds what the deletion takes", full, model.State{Links: []model.Link{moeGRE}, Addrs: full.Addrs, Routes: full.Routes, Rules: full.Rules, Sysctls: full.Sysctls}, nil, `
ip link del moe
ip link add moe mtu 1476 type gre local 192.0.2.1 remote 192.0.2.2 ttl 64 pmtudisc
ip link set moe alias tunneld
ip address add 10.0.0.1/30 dev moe
ip link set moe up
ip route add default dev moe table 42 proto 116`},
		{"down withdraws routes first", full, model.State{Links: []model.Link{moeDown}, Addrs: full.Addrs, Rules: full.Rules, Sysctls: full.Sysctls}, nil, `
ip route del default dev moe table 42 proto 116
ip link set moe down`},
		{"route change replaces", full, model.State{Links: full.Links, Addrs: full.Addrs, Rules: full.Rules, Sysctls: full.Sysctls,
			Routes: []model.Route{{Table: 42, Dst: netip.MustParsePrefix("0.0.0.0/0"), Dev: "moe", Via: netip.MustParseAddr("10.0.0.2")}}}, nil, `
ip route replace default via 10.0.0.2 dev moe table 42 proto 116`},
		{"rule change adds before it deletes", full, model.State{Links: full.Links, Addrs: full.Addrs, Routes: full.Routes, Sysctls: full.Sysctls,
			Rules: []model.Rule{{Family: 4, Priority: 20000, Src: netip.MustParsePrefix("10.0.0.0/30"), Table: 42}}}, nil, `
ip rule add from 10.0.0.0/30 lookup 42 priority 20000 protocol 116
ip rule del from 10.0.0.1 lookup 42 priority 20000 protocol 116`},
		{"a rule someone narrowed is replaced: tunneld's added, then the narrowed one deleted by its selectors", narrowed, full, nil, `
ip rule add from 10.0.0.1 lookup 42 priority 20000 protocol 116
ip rule del from 10.0.0.1 ipproto 6 lookup 42 priority 20000 protocol 116`},
		{"a rule narrowed as the kernel's duplicate check ignores (not, tos): deleted first, or tunneld's add is refused", inverted, full, nil, `
ip rule del from 10.0.0.1 not tos 0x10 lookup 42 priority 20000 protocol 116
ip rule add from 10.0.0.1 lookup 42 priority 20000 protocol 116`},
		{"a narrowed rule beside tunneld's: deleted alone", narrowedBeside, full, nil, `
ip rule del from 10.0.0.1 uidrange 0-0 lookup 42 priority 20000 protocol 116`},
		{"rules deleted with a narrowed one behind: the narrowed one first", model.State{Rules: []model.Rule{full.Rules[0], narrowed.Rules[0]}}, model.State{}, nil, `
ip rule del from 10.0.0.1 ipproto 6 lookup 42 priority 20000 protocol 116
ip rule del from 10.0.0.1 lookup 42 priority 20000 protocol 116`},
		{"same address, new prefix: delete first", full, model.State{Links: full.Links, Routes: full.Routes, Rules: full.Rules, Sysctls: full.Sysctls,
			Addrs: []model.Addr{addr("moe", "10.0.0.1/24")}}, nil, `
ip address del 10.0.0.1/30 dev moe
ip address add 10.0.0.1/24 dev moe`},
		{"a route without a device takes the one the kernel chose", model.State{Routes: []model.Route{gw("eth0", "192.0.2.1")}},
			model.State{Routes: []model.Route{gw("", "192.0.2.1")}}, nil, ``},
		{"a route without a device, new gateway", model.State{Routes: []model.Route{gw("eth0", "192.0.2.1")}},
			model.State{Routes: []model.Route{gw("", "192.0.2.9")}}, nil, `
ip route replace 10.80.0.0/16 via 192.0.2.9 table 42 proto 116`},
		{"a route with a device, another one in the kernel", model.State{Routes: []model.Route{gw("eth0", "192.0.2.1")}},
			model.State{Routes: []model.Route{gw("eth1", "192.0.2.1")}}, nil, `
ip route replace 10.80.0.0/16 via 192.0.2.1 dev eth1 table 42 proto 116`},
		{"two of tunneld's with one key, one as wanted (a crash in a replace's add and delete): replaced, leaving one",
			model.State{Routes: []model.Route{gw("eth0", "192.0.2.1"), gw("eth0", "192.0.2.9")}},
			model.State{Routes: []model.Route{gw("eth0", "192.0.2.9")}}, nil, `
ip route replace 10.80.0.0/16 via 192.0.2.9 dev eth0 table 42 proto 116`},
		{"unreachable route from empty", model.State{}, model.State{Routes: []model.Route{unreach}}, nil, `
ip route add unreachable 2001:db8:100::/48 metric 1024 table 42 proto 116`},
		{"unreachable route converged", model.State{Routes: []model.Route{unreach}}, model.State{Routes: []model.Route{unreach}}, nil, ``},
		{"unicast route becomes unreachable: replaced", model.State{Routes: []model.Route{v6dev}}, model.State{Routes: []model.Route{unreach}}, nil, `
ip route replace unreachable 2001:db8:100::/48 metric 1024 table 42 proto 116`},
		{"unreachable becomes blackhole: replaced", model.State{Routes: []model.Route{unreach}}, model.State{Routes: []model.Route{blackhole}}, nil, `
ip route replace blackhole 2001:db8:100::/48 metric 1024 table 42 proto 116`},
		{"unreachable route dropped", model.State{Routes: []model.Route{unreach}}, model.State{}, nil, `
ip route del unreachable 2001:db8:100::/48 metric 1024 table 42 proto 116`},
		{"fwmark 0 is printed with its mask", model.State{}, model.State{Rules: []model.Rule{
			{Family: 4, Priority: 20000, HasMark: true, Mask: 0xffffffff, Table: 42}}}, nil, `
ip rule add fwmark 0x0/0xffffffff lookup 42 priority 20000 protocol 116`},
		{"fallback devices are set down", full, full, []string{"tunl0"}, `
ip link set tunl0 down`},
		{"filter", model.State{Filter: &model.Filter{Chains: []model.Chain{{Name: "input", Type: "filter", Hook: "input",
			Rules: []model.FRule{{Counter: true, Verdict: model.Verdict{Kind: model.Drop}}}}}}}, model.State{}, nil, `
nft delete table inet tunneld`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(tt.have, tt.want, tt.fallbacks...).String()
			want := strings.TrimPrefix(tt.out, "\n")
			if want != "" {
				want += "\n"
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFilterDeletedLast: taking everything down deletes the nftables
// table after the tunnels it guards (its anti-spoofing and input drops
// hold until no tunnel is left), not before them.
func TestFilterDeletedLast(t *testing.T) {
	moe := link("moe", model.ModeIPIP, "192.0.2.1", "192.0.2.2")
	have := model.State{Links: []model.Link{moe}, Addrs: []model.Addr{addr("moe", "10.0.0.1/30")},
		Routes: []model.Route{route(42, "0.0.0.0/0", "moe")},
		Filter: &model.Filter{Chains: []model.Chain{{Name: "input", Hook: "input", Rules: []model.FRule{{IIF: "moe", Verdict: model.Verdict{Kind: model.Drop}}}}}}}
	var kinds []Kind
	for _, op := range Diff(have, model.State{}).Ops {
		kinds = append(kinds, op.Kind)
	}
	if diff := cmp.Diff([]Kind{LinkDel, FilterDel}, kinds); diff != "" {
		t.Errorf("operations (-want +got):\n%s", diff)
	}
}

// TestRenameDeletesFirst: a tunnel that goes while another is created or
// changed to take its endpoints goes first, as a tunnel whose mode
// changed does: the kernel holds one tunnel per endpoints and refuses
// the second (EEXIST). A tester's apply of a renamed gre tunnel exited 1,
// the old one deleted last; the next converge made it. Other deletions
// stay last, after what they make room for is up.
func TestRenameDeletesFirst(t *testing.T) {
	t2 := link("t2", model.ModeGRE, "192.0.2.1", "192.0.2.2")
	t2x := t2
	t2x.Name = "t2x"
	keyed := t2x
	keyed.HasIKey, keyed.IKey, keyed.HasOKey, keyed.OKey = true, 5, true, 5
	other := link("other", model.ModeGRE, "192.0.2.1", "192.0.2.3")
	otherMoved := other
	otherMoved.Remote = t2.Remote
	ipip := link("t2x", model.ModeIPIP, "192.0.2.1", "192.0.2.2")
	ds := link("ds", model.ModeIPIP6, "2001:db8::1", "2001:db8::2")
	ds.Dev = "wan"
	dsx := ds
	dsx.Name, dsx.Dev = "dsx", "lan" // ip6tnl looks at the addresses only
	for _, tt := range []struct {
		name       string
		have, want []model.Link
		ops        []string
	}{
		{"renamed", []model.Link{t2}, []model.Link{t2x}, []string{"del t2", "add t2x", "up t2x"}},
		{"another changed to its endpoints", []model.Link{t2, other}, []model.Link{otherMoved}, []string{"del t2", "change other"}},
		{"renamed, ip6tnl over another device", []model.Link{ds}, []model.Link{dsx}, []string{"del ds", "add dsx", "up dsx"}},
		{"another key: both may be", []model.Link{t2}, []model.Link{keyed}, []string{"add t2x", "up t2x", "del t2"}},
		{"another kind: both may be", []model.Link{t2}, []model.Link{ipip}, []string{"add t2x", "up t2x", "del t2"}},
		{"other endpoints: deleted last", []model.Link{t2, other}, []model.Link{t2x}, []string{"del t2", "add t2x", "up t2x", "del other"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, op := range Diff(model.State{Links: tt.have}, model.State{Links: tt.want}).Ops {
				verb := map[Kind]string{LinkAdd: "add", LinkDel: "del", LinkChange: "change", LinkUp: "up"}[op.Kind]
				got = append(got, verb+" "+op.Link.Name)
			}
			if diff := cmp.Diff(tt.ops, got); diff != "" {
				t.Errorf("operations (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFilterFirst: the nftables table is replaced before anything it
// guards is made: a tunnel created, set up and routed after it is never
// up without it, whenever a crash stops the plan. It came after the
// sysctls, and a tester's kill -9 of apply left a tunnel forwarding what
// its forward = "drop" refused.
func TestFilterFirst(t *testing.T) {
	moe := link("moe", model.ModeIPIP, "192.0.2.1", "192.0.2.2")
	want := model.State{Links: []model.Link{moe}, Addrs: []model.Addr{addr("moe", "10.0.0.1/30")},
		Routes:  []model.Route{route(42, "0.0.0.0/0", "moe")},
		Rules:   []model.Rule{{Family: 4, Priority: 20000, Src: netip.MustParsePrefix("10.0.0.1/32"), Table: 42}},
		Sysctls: []model.Sysctl{{Path: "net/ipv4/ip_forward", Value: "1"}},
		Filter:  &model.Filter{Chains: []model.Chain{{Name: "forward", Hook: "forward", Rules: []model.FRule{{IIF: "moe", Verdict: model.Verdict{Kind: model.Drop}}}}}}}
	var kinds []Kind
	for _, op := range Diff(model.State{}, want).Ops {
		kinds = append(kinds, op.Kind)
	}
	if diff := cmp.Diff([]Kind{FilterReplace, LinkAdd, AddrAdd, LinkUp, RouteAdd, RuleAdd, SysctlSet}, kinds); diff != "" {
		t.Errorf("operations (-want +got):\n%s", diff)
	}
}

// TestSwapConverges: tunnels that trade endpoints (two that swap remotes,
// as two DNS names whose answers swap, three in a rotation) never
// converged: the kernel refused each change with EEXIST while another
// still held the endpoints (a tester's apply exited 1 every time). A
// chain is ordered so that the tunnel leaving the endpoints goes first,
// whatever the names; a cycle is broken by deleting its first tunnel by
// name first and creating it again after the others' changes, with its
// address and route. Other operations stay as they were.
func TestSwapConverges(t *testing.T) {
	tun := func(name, remote string) model.Link {
		return link(name, model.ModeIPIP, "192.0.2.1", remote)
	}
	state := func(links ...model.Link) model.State {
		s := model.State{Links: links}
		for _, l := range links {
			s.Addrs = append(s.Addrs, addr(l.Name, fmt.Sprintf("10.0.%s.1/30", l.Name[1:])))
			s.Routes = append(s.Routes, route(42, fmt.Sprintf("10.9.%s.0/24", l.Name[1:]), l.Name))
		}
		return s
	}
	mtu := tun("t0", "198.51.100.9")
	mtu.MTU = 1400
	clears := tun("t1", "198.51.100.1")
	clears.Others.IgnoreDF, clears.PMTUDisc = true, false
	down := tun("t1", "198.51.100.2")
	down.Up = false
	keyed := func(l model.Link, key uint32) model.Link {
		l.Mode, l.HasIKey, l.IKey, l.HasOKey, l.OKey = model.ModeGRE, true, key, true, key
		return l
	}
	for _, tt := range []struct {
		name       string
		have, want model.State
		ops        []string
	}{
		{"swap", state(tun("t1", "198.51.100.1"), tun("t2", "198.51.100.2")),
			state(tun("t1", "198.51.100.2"), tun("t2", "198.51.100.1")),
			[]string{"del t1", "change t2", "add t1", "addr t1", "up t1", "route t1"}},
		{"rotation of three", state(tun("t1", "198.51.100.1"), tun("t2", "198.51.100.2"), tun("t3", "198.51.100.3")),
			state(tun("t1", "198.51.100.2"), tun("t2", "198.51.100.3"), tun("t3", "198.51.100.1")),
			[]string{"del t1", "change t3", "change t2", "add t1", "addr t1", "up t1", "route t1"}},
		{"chain, the one leaving first by name", state(tun("t1", "198.51.100.1"), tun("t2", "198.51.100.2")),
			state(tun("t1", "198.51.100.3"), tun("t2", "198.51.100.1")),
			[]string{"change t1", "change t2"}},
		{"chain, the one leaving last by name", state(tun("t1", "198.51.100.1"), tun("t2", "198.51.100.2")),
			state(tun("t1", "198.51.100.2"), tun("t2", "198.51.100.3")),
			[]string{"change t2", "change t1"}},
		{"chain onto a new tunnel", state(tun("t2", "198.51.100.2")),
			state(tun("t1", "198.51.100.2"), tun("t2", "198.51.100.3")),
			[]string{"change t2", "add t1", "addr t1", "up t1", "route t1"}},
		{"swap among others", state(tun("t0", "198.51.100.9"), tun("t1", "198.51.100.1"), tun("t2", "198.51.100.2"), tun("t4", "198.51.100.4")),
			state(mtu, tun("t1", "198.51.100.2"), tun("t2", "198.51.100.1"), tun("t3", "198.51.100.3"), tun("t4", "198.51.100.5")),
			[]string{"del t1", "change t0", "add t3", "change t4", "change t2", "add t1", "addr t1", "addr t3", "up t3", "up t1", "route t1", "route t3"}},
		{"swap, the first clearing ignore-df", state(clears, tun("t2", "198.51.100.2")),
			state(tun("t1", "198.51.100.2"), tun("t2", "198.51.100.1")),
			[]string{"del t1", "change t2", "add t1", "addr t1", "up t1", "route t1"}},
		{"swap, the first wanted down", state(tun("t1", "198.51.100.1"), tun("t2", "198.51.100.2")),
			state(down, tun("t2", "198.51.100.1")),
			[]string{"del t1", "change t2", "add t1", "addr t1", "route t1"}},
		{"swap of gre tunnels with other keys: name order", state(keyed(tun("t1", "198.51.100.1"), 1), keyed(tun("t2", "198.51.100.2"), 2)),
			state(keyed(tun("t1", "198.51.100.2"), 1), keyed(tun("t2", "198.51.100.1"), 2)),
			[]string{"change t1", "change t2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := Diff(tt.have, tt.want)
			var got []string
			for _, op := range p.Ops {
				verb := map[Kind]string{LinkAdd: "add", LinkDel: "del", LinkChange: "change", LinkUp: "up", LinkDown: "down",
					AddrAdd: "addr", AddrDel: "addr del", RouteAdd: "route", RouteReplace: "route replace", RouteDel: "route del"}[op.Kind]
				switch {
				case op.Addr != nil:
					got = append(got, verb+" "+op.Addr.Link)
				case op.Route != nil:
					got = append(got, verb+" "+op.Route.Dev)
				default:
					got = append(got, verb+" "+op.Link.Name)
				}
			}
			if diff := cmp.Diff(tt.ops, got); diff != "" {
				t.Errorf("operations (-want +got):\n%s", diff)
			}
			// Run as the kernel would: one tunnel per endpoints.
			tunnels := map[string]model.Link{}
			for _, l := range tt.have.Links {
				tunnels[l.Name] = l.Params()
			}
			for _, op := range p.Ops {
				switch op.Kind {
				case LinkDel:
					delete(tunnels, op.Link.Name)
				case LinkAdd, LinkChange:
					for name, o := range tunnels {
						if name != op.Link.Name && o.SameTunnel(*op.Link) {
							t.Errorf("%v of %s: EEXIST, %s has its endpoints", op.Kind, op.Link.Name, name)
						}
					}
					tunnels[op.Link.Name] = op.Link.Params()
				}
			}
			for _, w := range tt.want.Links {
				if tunnels[w.Name] != w.Params() {
					t.Errorf("%s ends as %+v, want %+v", w.Name, tunnels[w.Name], w.Params())
				}
			}
		})
	}
}

// TestRestoreOnDeviceGone: a device's sysctl no longer wanted is written
// back before the device is deleted last, but a renamed tunnel goes
// first (it is in the way of its new name): its sysctls go with it, and
// the plan says there is nothing to put back (a tester's log said
// net.ipv4.conf.t1.proxy_arp was written back on a t1 the same
// convergence had deleted).
func TestRestoreOnDeviceGone(t *testing.T) {
	t1 := link("t1", model.ModeIPIP, "192.0.2.1", "192.0.2.2")
	t9 := t1
	t9.Name = "t9"
	other := link("t9", model.ModeIPIP, "192.0.2.1", "192.0.2.3")
	arp := func(dev string) model.Sysctl {
		return model.Sysctl{Path: "net/ipv4/conf/" + dev + "/proxy_arp", Value: "1", Original: "0", Ours: []string{"1"}}
	}
	for _, tt := range []struct {
		name string
		want model.State
		cmds []string
	}{
		{"renamed", model.State{Links: []model.Link{t9}, Sysctls: []model.Sysctl{{Path: "net/ipv4/conf/t9/proxy_arp", Value: "1"}}},
			[]string{"ip link del t1", "# net.ipv4.conf.t1.proxy_arp went with t1: nothing to put back"}},
		{"removed, another created", model.State{Links: []model.Link{other}},
			[]string{"sysctl -w net.ipv4.conf.t1.proxy_arp=0  # original value", "ip link del t1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, op := range Diff(model.State{Links: []model.Link{t1}, Sysctls: []model.Sysctl{arp("t1")}}, tt.want).Ops {
				if op.Kind == LinkDel || op.Kind == SysctlRestore {
					got = append(got, op.Command(nil))
				}
			}
			if diff := cmp.Diff(tt.cmds, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
