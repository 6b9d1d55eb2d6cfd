package desired

import (
	"testing"

	"github.com/google/go-cmp/cmp"

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
`, []string{jump, est, inTCP, `iifname "Larry" counter drop`, `oifname "Larry" counter drop`}},
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
