package desired

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/model"
)

// chainRules returns the rules of one chain of the filter a configuration
// builds, as nft prints them (nil when there is no such chain).
func chainRules(t *testing.T, src, chain string) []string {
	t.Helper()
	r := Build(parse(t, src), model.Inputs{}, model.State{})
	if r.State.Filter == nil {
		return nil
	}
	var out []string
	for _, ch := range r.State.Filter.Chains {
		if ch.Name == chain {
			for _, ru := range ch.Rules {
				out = append(out, ru.String())
			}
		}
	}
	return out
}

// filterTunnel is a tunnel named Moe for the filter tests; its spoof chain
// allows the peer.
const filterTunnel = `
[tunnel.Moe]
mode = "ipip"
local = "192.0.2.1"
remote = "192.0.2.2"
address = "10.0.0.1 peer 10.0.0.2"
`

// TestForwardEstablishedBeforeDrops: established and related traffic is
// accepted before any rule of the forward chain that drops, whether a
// [[forward]] section or a tunnel's forward = "drop" drops: a [[forward]]
// drop must not cut the replies to a connection another tunnel's
// setting has nothing to do with. A chain with nothing that drops goes
// without it.
func TestForwardEstablishedBeforeDrops(t *testing.T) {
	const (
		jump  = `iifname "Moe" jump spoof_Moe`
		est   = "ct state established,related accept"
		inTCP = `iifname "Moe" meta l4proto tcp counter drop`
	)
	tests := []struct {
		name, conf string
		want       []string
	}{
		{"forward drop, tunnel accepts", filterTunnel + `
[[forward]]
tunnel = "Moe"
direction = "in"
proto = "tcp"
action = "drop"
`, []string{jump, est, inTCP}},
		{"forward accept only", filterTunnel + `
[[forward]]
tunnel = "Moe"
direction = "in"
proto = "tcp"
`, []string{jump, `iifname "Moe" meta l4proto tcp accept`}},
		{"no forward", filterTunnel, []string{jump}},
		{"tunnel drops", filterTunnel + `forward = "drop"
[[forward]]
tunnel = "Moe"
direction = "out"
proto = "udp"
`, []string{jump, est, `oifname "Moe" meta l4proto udp accept`, `iifname "Moe" counter drop`, `oifname "Moe" counter drop`}},
		{"forward drop and a tunnel that drops", filterTunnel + `
[tunnel.Larry]
mode = "ipip"
local = "192.0.2.1"
remote = "192.0.2.3"
allowed_sources = "0.0.0.0/0"
forward = "drop"
[[forward]]
tunnel = "Moe"
direction = "in"
proto = "tcp"
action = "drop"
`, []string{`iifname "Larry" jump spoof_Larry`, jump, est, inTCP, `iifname "Larry" counter drop`, `oifname "Larry" counter drop`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, chainRules(t, tt.conf, "forward")); diff != "" {
				t.Errorf("forward chain (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSpoofLinkLocal: a tunnel that carries IPv6 accepts link-local
// sources (the peer's fe80:: address: pings to it, OSPFv3, RIPng, BGP
// over link-local) whatever allowed_sources says; one that carries only
// IPv4 does not, and neither does a chain whose prefixes cover them.
func TestSpoofLinkLocal(t *testing.T) {
	const ll = "ip6 saddr fe80::/10 return"
	tunnel := func(mode, extra string) string {
		local, remote := "192.0.2.1", "192.0.2.2"
		if mode == "ip6ip6" || mode == "ipip6" {
			local, remote = "2001:db8::1", "2001:db8::2"
		}
		return "[tunnel.t]\nmode = \"" + mode + "\"\nlocal = \"" + local + "\"\nremote = \"" + remote + "\"\n" + extra
	}
	tests := []struct {
		name, conf string
		want       []string
	}{
		{"sit, derived sources", tunnel("sit", `address = "2001:db8:1::2/64"`+"\n"),
			[]string{ll, "ip6 saddr 2001:db8:1::/64 return", "counter drop"}},
		{"sit, allowed_sources", tunnel("sit", `allowed_sources = "2001:db8:9::/48"`+"\n"),
			[]string{ll, "ip6 saddr 2001:db8:9::/48 return", "counter drop"}},
		{"ip6ip6, nothing allowed", tunnel("ip6ip6", ""), []string{ll, "counter drop"}},
		{"gre with IPv6", tunnel("gre", `address = ["10.0.0.1 peer 10.0.0.2", "fd00::1/64"]`+"\n"),
			[]string{ll, "ip saddr 10.0.0.2 return", "ip6 saddr fd00::/64 return", "counter drop"}},
		{"gre, every IPv6 source allowed", tunnel("gre", `allowed_sources = ["10.0.0.0/8", "::/0"]`+"\n"),
			[]string{"ip saddr 10.0.0.0/8 return", "ip6 saddr ::/0 return", "counter drop"}},
		{"sit, link-local allowed", tunnel("sit", `allowed_sources = ["fe80::/10", "2001:db8:9::/48"]`+"\n"),
			[]string{"ip6 saddr fe80::/10 return", "ip6 saddr 2001:db8:9::/48 return", "counter drop"}},
		{"gre, IPv4 only", tunnel("gre", `address = "10.0.0.1 peer 10.0.0.2"`+"\n"),
			[]string{"ip saddr 10.0.0.2 return", "counter drop"}},
		{"ipip", tunnel("ipip", `address = "10.0.0.1 peer 10.0.0.2"`+"\n"),
			[]string{"ip saddr 10.0.0.2 return", "counter drop"}},
		{"ipip6", tunnel("ipip6", `address = "10.0.0.1 peer 10.0.0.2"`+"\n"),
			[]string{"ip saddr 10.0.0.2 return", "counter drop"}},
		{"sit, every source allowed", tunnel("sit", `allowed_sources = "::/0"`+"\n"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, chainRules(t, tt.conf, "spoof_t")); diff != "" {
				t.Errorf("spoof chain (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMasqueradeFamilies: a [[masquerade]] without src translates IPv4
// only, as iptables' MASQUERADE does (the table is inet: without the
// family match it would rewrite IPv6 sources too); with src, each prefix
// says its family.
func TestMasqueradeFamilies(t *testing.T) {
	tests := []struct {
		name, conf string
		want       []string
	}{
		{"no src", "[[masquerade]]\noif = \"eth0\"\n", []string{`meta nfproto ipv4 oifname "eth0" masquerade`}},
		{"IPv4 src", "[[masquerade]]\noif = \"eth0\"\nsrc = \"192.168.1.0/24\"\n", []string{`oifname "eth0" ip saddr 192.168.1.0/24 masquerade`}},
		{"IPv6 src", "[[masquerade]]\noif = \"eth0\"\nsrc = \"fd00::/64\"\n", []string{`oifname "eth0" ip6 saddr fd00::/64 masquerade`}},
		{"both", "[[masquerade]]\noif = \"eth0\"\nsrc = [\"192.168.1.0/24\", \"fd00::/64\"]\n",
			[]string{`oifname "eth0" ip saddr 192.168.1.0/24 masquerade`, `oifname "eth0" ip6 saddr fd00::/64 masquerade`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, chainRules(t, tt.conf, "postrouting")); diff != "" {
				t.Errorf("postrouting chain (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRedirectFamilies: a [[redirect]] without dst redirects IPv4 only, as
// iptables' REDIRECT does; with dst, each prefix says its family.
func TestRedirectFamilies(t *testing.T) {
	tests := []struct {
		name, conf string
		want       []string
	}{
		{"no dst", "[[redirect]]\niif = \"eth0\"\nport = 80\nto_port = 8080\n", []string{`meta nfproto ipv4 iifname "eth0" meta l4proto tcp th dport 80 redirect to :8080`}},
		{"IPv6 dst", "[[redirect]]\nport = 80\ndst = \"::/0\"\n", []string{`ip6 daddr ::/0 meta l4proto tcp th dport 80 redirect to :80`}},
		{"both", "[[redirect]]\nport = 53\nproto = \"udp\"\ndst = [\"192.0.2.1\", \"2001:db8::1\"]\n",
			[]string{`ip daddr 192.0.2.1 meta l4proto udp th dport 53 redirect to :53`, `ip6 daddr 2001:db8::1 meta l4proto udp th dport 53 redirect to :53`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, chainRules(t, tt.conf, "prerouting")); diff != "" {
				t.Errorf("prerouting chain (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSpoofOwnPrefixes: a tunnel's chain drops the sources whose most
// specific prefix in the configuration is routed elsewhere (another
// device, unreachable), also when its allowed sources cover everything:
// a tester's 6in4 tunnel to a broker, the default route through it, got
// no chain at all, and packets from the broker with a source in the
// router's own routed /48 reached the LAN (IPv6 has no rp_filter).
func TestSpoofOwnPrefixes(t *testing.T) {
	const sit = "[tunnel.t]\nmode = \"sit\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\naddress = \"2001:db8:1::2/64\"\n"
	const def = "[[route]]\nto = \"::/0\"\ndev = \"t\"\n"
	route := func(to, rest string) string { return "[[route]]\nto = \"" + to + "\"\n" + rest + "\n" }
	const ll = "ip6 saddr fe80::/10 return"
	tests := []struct {
		name, conf string
		want       []string
	}{
		{"6in4-he: default route in, routed /48 unreachable", sit + def + route("2001:db8:100::/48", `type = "unreachable"`),
			[]string{"ip6 saddr 2001:db8:100::/48 counter drop"}},
		{"default route in, nothing of its own: no chain", sit + def, nil},
		{"the /48 routed in, its LAN /64 routed elsewhere", sit + route("2001:db8:100::/48", `dev = "t"`) + route("2001:db8:100:1::/64", `dev = "br-lan"`),
			[]string{ll, "ip6 saddr 2001:db8:100:1::/64 counter drop", "ip6 saddr 2001:db8:1::/64 return", "ip6 saddr 2001:db8:100::/48 return", "counter drop"}},
		{"a /52 of the unreachable /48 routed in", sit + def + route("2001:db8:100::/48", `type = "unreachable"`) + route("2001:db8:100::/52", `dev = "t"`),
			[]string{"ip6 saddr 2001:db8:100:1000::/52 counter drop", "ip6 saddr 2001:db8:100:2000::/51 counter drop",
				"ip6 saddr 2001:db8:100:4000::/50 counter drop", "ip6 saddr 2001:db8:100:8000::/49 counter drop"}},
		{"a failover: routed through it and elsewhere", sit + def + route("2001:db8:100::/48", `dev = "t"`) + route("2001:db8:100::/48", "dev = \"wan\"\nmetric = 100"), nil},
		{"allowed_sources ::/0 still refuses the router's own", sit + `allowed_sources = "::/0"` + "\n" + route("2001:db8:100::/48", `type = "unreachable"`),
			[]string{"ip6 saddr 2001:db8:100::/48 counter drop"}},
		{"an allowed prefix as specific lets it in", sit + `allowed_sources = ["::/0", "2001:db8:100::/52"]` + "\n" + route("2001:db8:100::/48", `type = "unreachable"`),
			[]string{"ip6 saddr 2001:db8:100:1000::/52 counter drop", "ip6 saddr 2001:db8:100:2000::/51 counter drop",
				"ip6 saddr 2001:db8:100:4000::/50 counter drop", "ip6 saddr 2001:db8:100:8000::/49 counter drop"}},
		{"an IPv4 prefix is not sit's", sit + def + route("10.0.0.0/8", `type = "unreachable"`), nil},
		{"a route elsewhere in another table than the one into t counts", sit + "[tables]\nvpn = 100\n" + route("::/0", "dev = \"t\"\ntable = \"vpn\"") + route("2001:db8:100::/48", `type = "unreachable"`),
			[]string{"ip6 saddr 2001:db8:100::/48 counter drop"}},
		{"and one in a table of its own", sit + def + "[tables]\nlan = 100\n" + route("2001:db8:100::/48", "dev = \"br-lan\"\ntable = \"lan\""),
			[]string{"ip6 saddr 2001:db8:100::/48 counter drop"}},
		{"outside the allowed sources the last rule drops it", filterTunnel[1:] + route("10.9.0.0/16", `dev = "lan"`),
			[]string{"ip saddr 10.0.0.2 return", "counter drop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain := "spoof_t"
			if strings.Contains(tt.conf, "[tunnel.Moe]") {
				chain = "spoof_Moe"
			}
			if diff := cmp.Diff(tt.want, chainRules(t, tt.conf, chain)); diff != "" {
				t.Errorf("spoof chain (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSpoofOtherTunnels: another tunnel's own subnets and peers count as
// routed elsewhere, as a [[route]] into it would (the kernel's connected
// and peer routes send them through it): a tunnel whose allowed sources
// cover them refuses them, unless it routes or allows them as
// specifically itself. IPv6 link-local subnets are every link's (IPv4's
// are routed like any other), and a host address without a peer routes
// nothing.
func TestSpoofOtherTunnels(t *testing.T) {
	tunnel := func(name, mode, extra string) string {
		return "[tunnel." + name + "]\nmode = \"" + mode + "\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2." + map[string]string{"a": "2", "b": "3"}[name] + "\"\n" + extra
	}
	route := func(to, rest string) string { return "[[route]]\nto = \"" + to + "\"\n" + rest + "\n" }
	addr := func(a string) string { return "address = \"" + a + "\"\n" }
	a := tunnel("a", "ipip", "") + route("0.0.0.0/0", `dev = "a"`)
	a6 := tunnel("a", "sit", "") + route("::/0", `dev = "a"`)
	tests := []struct {
		name, conf string
		want       []string
	}{
		{"b's subnet", a + tunnel("b", "ipip", addr("10.9.0.1/30")),
			[]string{"ip saddr 10.9.0.0/30 counter drop"}},
		{"b's peer", a + tunnel("b", "ipip", addr("10.9.1.1 peer 10.9.1.2")),
			[]string{"ip saddr 10.9.1.2 counter drop"}},
		{"b's subnet allowed as specifically", tunnel("a", "ipip", `allowed_sources = ["0.0.0.0/0", "10.9.0.0/30"]`+"\n") + tunnel("b", "ipip", addr("10.9.0.1/30")), nil},
		{"b's subnet routed into a too (a failover)", a + route("10.9.0.0/30", "dev = \"a\"\nmetric = 100") + tunnel("b", "ipip", addr("10.9.0.1/30")), nil},
		{"b's subnet inside a prefix routed into a", tunnel("a", "ipip", addr("10.0.0.1 peer 10.0.0.2")) + route("10.0.0.0/8", `dev = "a"`) + tunnel("b", "ipip", addr("10.9.0.1/30")),
			[]string{"ip saddr 10.9.0.0/30 counter drop", "ip saddr 10.0.0.2 return", "ip saddr 10.0.0.0/8 return", "counter drop"}},
		{"half of b's subnet routed into a", a + route("10.9.0.128/25", `dev = "a"`) + tunnel("b", "ipip", addr("10.9.0.1/24")),
			[]string{"ip saddr 10.9.0.0/25 counter drop"}},
		{"the same subnet on both", tunnel("a", "ipip", addr("10.9.0.1/30")) + route("0.0.0.0/0", `dev = "a"`) + tunnel("b", "ipip", addr("10.9.0.2/30")), nil},
		{"b's subnet inside an unreachable route", a + route("10.9.0.0/16", `type = "unreachable"`) + tunnel("b", "ipip", addr("10.9.0.1/30")),
			[]string{"ip saddr 10.9.0.0/16 counter drop"}},
		{"b's host address routes nothing", a + tunnel("b", "ipip", addr("10.9.0.1/32")), nil},
		{"b's IPv4 link-local /30 is routed like any other", a + tunnel("b", "ipip", addr("169.254.10.1/30")),
			[]string{"ip saddr 169.254.10.0/30 counter drop"}},
		{"IPv6: b's subnet", a6 + tunnel("b", "sit", addr("2001:db8:2::1/64")),
			[]string{"ip6 saddr 2001:db8:2::/64 counter drop"}},
		{"IPv6: b's link-local subnet is every link's", a6 + tunnel("b", "sit", addr("fe80::1/64")), nil},
		{"an IPv4 subnet of b is not sit's", a6 + tunnel("b", "ipip", addr("10.9.0.1/30")), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, chainRules(t, tt.conf, "spoof_a")); diff != "" {
				t.Errorf("spoof chain (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSourceWarnings: a tunnel that lets any source of a family it
// carries out, because a default route goes through it and it has no
// allowed_sources, and that refuses none of the router's own either, is
// warned of (check, plan, apply, status and the daemon's log say it);
// when its spoof chain refuses other tunnels' subnets and peers, the
// warning says that only those are refused.
func TestSourceWarnings(t *testing.T) {
	const sit = "[tunnel.t]\nmode = \"sit\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\n"
	const def = "[[route]]\nto = \"::/0\"\ndev = \"t\"\n"
	const own = "[[route]]\nto = \"2001:db8:100::/48\"\ntype = \"unreachable\"\n"
	warn := func(name, fam, all string) string {
		return `tunnel "` + name + `": no source filtering for ` + fam + `: a default route goes through it, so any ` + fam + ` source may come out of it, even one of this router's own networks: give those their routes in the configuration (a routed prefix's unreachable route), which the tunnel then refuses, or set allowed_sources (["` + all + `"] to accept any, as now)`
	}
	others := func(name, fam, all string) string {
		return `tunnel "` + name + `": ` + fam + ` source filtering refuses only other tunnels' subnets and peers: a default route goes through it, so any other ` + fam + ` source may come out of it, even one of this router's own networks: give those their routes in the configuration (a routed prefix's unreachable route), which the tunnel then refuses, or set allowed_sources (["` + all + `"] to accept them all, as now)`
	}
	tests := []struct {
		name, conf string
		want       []string
	}{
		{"sit, default route in", sit + def, []string{warn("t", "IPv6", "::/0")}},
		{"sit, default route in, its own prefix unreachable", sit + def + own, nil},
		// Another tunnel's subnet or peer is refused, but it is not the
		// router's own prefixes: still warned, in words that say only
		// those are refused.
		{"sit, default route in, another tunnel's subnet refused: still warned", sit + def + "[tunnel.b]\nmode = \"sit\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.3\"\naddress = \"2001:db8:2::1/64\"\n",
			[]string{others("t", "IPv6", "::/0")}},
		{"ipip, default route in, another tunnel's peer refused: still warned", filterTunnel[1:] + "[[route]]\nto = \"default\"\ndev = \"Moe\"\n" + "[tunnel.b]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.9\"\naddress = \"10.9.0.1 peer 10.9.0.2\"\n",
			[]string{others("Moe", "IPv4", "0.0.0.0/0")}},
		// b's subnets are IPv4 and link-local IPv6: t refuses none of
		// the IPv6 sources.
		{"sit, default route in, another tunnel's subnets of no use to it", sit + def + "[tunnel.b]\nmode = \"gre\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.3\"\naddress = [\"10.9.0.1/30\", \"fe80::1/64\"]\n",
			[]string{warn("t", "IPv6", "::/0")}},
		{"sit, allowed_sources given", sit + `allowed_sources = "::/0"` + "\n" + def, nil},
		{"sit, no default route", sit + own, nil},
		{"firewall off", "[global]\nfirewall = false\n" + sit + def, nil},
		{"ipip, default route in table Moe", filterTunnel[1:] + "[tables]\nMoe = 42\n[[route]]\nto = \"default\"\nvia = \"peer\"\ndev = \"Moe\"\ntable = \"Moe\"\n",
			[]string{warn("Moe", "IPv4", "0.0.0.0/0")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parse(t, tt.conf)
			if diff := cmp.Diff(tt.want, SourceWarnings(c)); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, Build(c, model.Inputs{}, model.State{}).Warnings, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Build's warnings (-want +got):\n%s", diff)
			}
		})
	}
}

// BenchmarkSpoofSubnets1000 is the desired state of 1000 tunnels, each
// with a /30 of its own, a route in its own table and a source rule, and
// one more with the default route (allowed sources that cover every
// other tunnel's subnet and route): the source index must keep the spoof
// chains from weighing every subnet for every tunnel.
func BenchmarkSpoofSubnets1000(b *testing.B) {
	var s strings.Builder
	s.WriteString("[global]\nrule_priority_max = 29999\n[tables]\n")
	for i := range 1000 {
		fmt.Fprintf(&s, "tab%d = %d\n", i, 1000+i)
	}
	for i := range 1000 {
		hi, lo := (i+1)/256, (i+1)%256
		fmt.Fprintf(&s, "[tunnel.t%d]\nmode = \"ipip\"\nlocal = \"192.0.0.1\"\nremote = \"198.18.%d.%d\"\naddress = \"10.%d.%d.1/30\"\n", i, hi, lo, 100+i/64, i%64*4)
		fmt.Fprintf(&s, "[[route]]\nto = \"10.%d.%d.0/24\"\ndev = \"t%d\"\ntable = \"tab%d\"\n", 200+hi, lo, i, i)
		fmt.Fprintf(&s, "[[rule]]\nfrom = \"10.%d.%d.1\"\ntable = \"tab%d\"\n", 100+i/64, i%64*4, i)
	}
	s.WriteString("[tunnel.up]\nmode = \"ipip\"\nlocal = \"192.0.0.1\"\nremote = \"198.19.0.1\"\n[[route]]\nto = \"default\"\ndev = \"up\"\n")
	c, err := config.Parse("scale.toml", []byte(s.String()))
	if err != nil {
		b.Fatal(err)
	}
	r := Build(c, model.Inputs{}, model.State{})
	if r.State.Filter == nil || len(r.State.Filter.Chains) < 1000 {
		b.Fatal("too few chains")
	}
	b.ReportAllocs()
	for b.Loop() {
		Build(c, model.Inputs{}, model.State{})
	}
}

// TestOuterRulesLeaveOtherTunnels: the input chain's drop of a
// protocol to a tunnel's local address lets through what other tunnels
// on that address take: the remote of a tunnel tunneld does not own is
// accepted before the drop (a netifd gre or 6in4 tunnel), and a tunnel
// whose remote is any, tunneld's own (a hub) or another's, leaves the
// address and protocol without the drop. A fallback device (tunl0: any
// to any) changes nothing, nor does another's tunnel on another address
// or of another protocol. The drop cut them all off (a tester's).
func TestOuterRulesLeaveOtherTunnels(t *testing.T) {
	const (
		acceptMoe = "ip saddr 192.0.2.2 ip daddr 192.0.2.1 meta l4proto 4 accept"
		dropIPIP  = "ip daddr 192.0.2.1 meta l4proto 4 counter drop"
	)
	tunnel := func(mode, local, remote string) *model.Link {
		l := model.Link{Mode: model.Mode(mode)}
		if local != "" {
			l.Local = netip.MustParseAddr(local)
		}
		if remote != "" {
			l.Remote = netip.MustParseAddr(remote)
		}
		return &l
	}
	anyProto := func(l *model.Link) *model.Link { l.Others.AnyProto = true; return l }
	sitTunnel := strings.NewReplacer(`"ipip"`, `"sit"`, `"10.0.0.1 peer 10.0.0.2"`, `"2001:db8:1::1/64"`).Replace(filterTunnel)
	greTunnel := strings.Replace(filterTunnel, `"ipip"`, `"gre"`, 1)
	const (
		acceptGRE = "ip saddr 192.0.2.2 ip daddr 192.0.2.1 meta l4proto 47 accept"
		dropGREv0 = "ip daddr 192.0.2.1 @th,8,8 & 0x7 == 0x0 meta l4proto 47 counter drop"
	)
	ipip6Tunnel := strings.NewReplacer(`"ipip"`, `"ipip6"`, `"192.0.2.1"`, `"2001:db8::1"`, `"192.0.2.2"`, `"2001:db8::2"`).Replace(filterTunnel)
	hub := `
[tunnel.hub]
mode = "ipip"
local = "192.0.2.1"
remote = "any"
address = "10.1.0.1/24"
`
	for _, tt := range []struct {
		name    string
		conf    string
		devices map[string]model.Device
		want    []string
	}{
		{"alone", filterTunnel, nil, []string{acceptMoe, dropIPIP}},
		{"tunneld's own hub on the address", filterTunnel + hub, nil, []string{acceptMoe}},
		{"another's ipip tunnel on the address", filterTunnel, map[string]model.Device{
			"wan_ipip": {Name: "wan_ipip", Kind: "ipip", Tunnel: tunnel("ipip", "192.0.2.1", "203.0.113.9")}},
			[]string{acceptMoe, "ip saddr 203.0.113.9 ip daddr 192.0.2.1 meta l4proto 4 accept", dropIPIP}},
		{"another's ipip tunnel from any local", filterTunnel, map[string]model.Device{
			"x": {Name: "x", Kind: "ipip", Tunnel: tunnel("ipip", "", "203.0.113.9")}},
			[]string{acceptMoe, "ip saddr 203.0.113.9 meta l4proto 4 accept", dropIPIP}},
		{"another's hub on the address", filterTunnel, map[string]model.Device{
			"x": {Name: "x", Kind: "ipip", Tunnel: tunnel("ipip", "192.0.2.1", "")}},
			[]string{acceptMoe}},
		{"another's any-to-any tunnel", filterTunnel, map[string]model.Device{
			"x": {Name: "x", Kind: "ipip", Tunnel: tunnel("ipip", "", "")}},
			[]string{acceptMoe}},
		{"the fallback device", filterTunnel, map[string]model.Device{
			"tunl0": {Name: "tunl0", Kind: "ipip", Tunnel: tunnel("ipip", "", "")}},
			[]string{acceptMoe, dropIPIP}},
		{"another's gre tunnel on the address", filterTunnel, map[string]model.Device{
			"x": {Name: "x", Kind: "gre", Tunnel: tunnel("gre", "192.0.2.1", "203.0.113.9")}},
			[]string{acceptMoe, dropIPIP}},
		{"another's ipip tunnel on another address", filterTunnel, map[string]model.Device{
			"x": {Name: "x", Kind: "ipip", Tunnel: tunnel("ipip", "192.0.2.99", "203.0.113.9")}},
			[]string{acceptMoe, dropIPIP}},
		// GRE's drop is of version 0 alone: PPTP's version 1 to the
		// address goes to pptp, never a gre tunnel (a tester's PPTP
		// client was cut off). The remote is accepted whatever the
		// version.
		{"gre alone", greTunnel, nil, []string{acceptGRE, dropGREv0}},
		{"another's gre tunnel on the gre address", greTunnel, map[string]model.Device{
			"x": {Name: "x", Kind: "gre", Tunnel: tunnel("gre", "192.0.2.1", "203.0.113.9")}},
			[]string{acceptGRE, "ip saddr 203.0.113.9 ip daddr 192.0.2.1 meta l4proto 47 accept", dropGREv0}},
		{"gre and ipip on the address", greTunnel + strings.NewReplacer("Moe", "Larry", `"192.0.2.2"`, `"192.0.2.3"`).Replace(filterTunnel), nil,
			[]string{"ip saddr 192.0.2.3 ip daddr 192.0.2.1 meta l4proto 4 accept", acceptGRE, dropIPIP, dropGREv0}},
		// An IPv6 tunnel from any to any takes nothing of IPv4's: a
		// tester's ip6ip6 took 6in4's drop away (both protocol 41).
		{"another family's any-to-any tunnel", sitTunnel, map[string]model.Device{
			"x": {Name: "x", Kind: "ip6tnl", Tunnel: tunnel("ip6ip6", "", "")}},
			[]string{"ip saddr 192.0.2.2 ip daddr 192.0.2.1 meta l4proto 41 accept", "ip daddr 192.0.2.1 meta l4proto 41 counter drop"}},
		// So does iproute2's default sit (mode any).
		{"another's sit of any protocol on the ipip address", filterTunnel, map[string]model.Device{
			"x": {Name: "x", Kind: "sit", Tunnel: anyProto(tunnel("sit", "192.0.2.1", "203.0.113.9"))}},
			[]string{acceptMoe, "ip saddr 203.0.113.9 ip daddr 192.0.2.1 meta l4proto 4 accept", dropIPIP}},
		// iproute2's default ip6tnl (mode any) carries IPv4 too.
		{"another's ip6tnl of any protocol on the ipip6 address", ipip6Tunnel, map[string]model.Device{
			"x": {Name: "x", Kind: "ip6tnl", Tunnel: anyProto(tunnel("ip6ip6", "2001:db8::1", "2001:db8::9"))}},
			[]string{"ip6 saddr 2001:db8::2 ip6 daddr 2001:db8::1 meta l4proto 4 accept", "ip6 saddr 2001:db8::9 ip6 daddr 2001:db8::1 meta l4proto 4 accept",
				"ip6 daddr 2001:db8::1 meta l4proto 4 counter drop"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(parse(t, tt.conf), model.Inputs{Devices: tt.devices}, model.State{})
			var got []string
			for _, ch := range r.State.Filter.Chains {
				if ch.Name == "input" {
					for _, ru := range ch.Rules {
						if ru.L4Proto != 0 {
							got = append(got, ru.String())
						}
					}
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("input chain's outer-packet rules (-want +got):\n%s", diff)
			}
		})
	}
}

// TestForeignTableRulesWarned: rules in the kernel's table inet tunneld
// that tunneld did not write are named in a warning that says the
// table is replaced, or deleted with the filter off, and they with it.
func TestForeignTableRulesWarned(t *testing.T) {
	observed := "chain input type filter hook input priority 0\n\tip saddr 192.0.2.2 accept\n\t?untagged handle 6\n\t?comment \"x\\ny\" handle 7\n\t?edited \"admin rule\" handle 8\n"
	warned := func(conf string, f *model.Filter) []string {
		var out []string
		for _, w := range Build(parse(t, conf), model.Inputs{}, model.State{Filter: f}).Warnings {
			if strings.Contains(w, "did not write") {
				out = append(out, w)
			}
		}
		return out
	}
	for _, tt := range []struct {
		name string
		conf string
		f    *model.Filter
		want []string
	}{
		{"two foreign rules", filterTunnel, &model.Filter{Observed: observed}, []string{
			"nftables table inet tunneld holds 3 rules this version of tunneld did not write (an older version's, or written or edited by hand): the table is tunneld's by its name, and tunneld replaces the table, and the rules with it; keep your own rules in a table of your own"}},
		{"filter off", "[global]\nfirewall = false\n" + filterTunnel, &model.Filter{Observed: "chain x\n\t?untagged handle 2\n"}, []string{
			"nftables table inet tunneld holds a rule this version of tunneld did not write (an older version's, or written or edited by hand): the table is tunneld's by its name, and tunneld deletes (firewall = false) the table, and the rule with it; keep your own rules in a table of your own"}},
		{"tunneld's own", filterTunnel, &model.Filter{Observed: "chain input type filter hook input priority 0\n\tip saddr 192.0.2.2 accept\n"}, nil},
		{"no table", filterTunnel, nil, nil},
	} {
		if diff := cmp.Diff(tt.want, warned(tt.conf, tt.f)); diff != "" {
			t.Errorf("%s: warnings (-want +got):\n%s", tt.name, diff)
		}
	}
}
