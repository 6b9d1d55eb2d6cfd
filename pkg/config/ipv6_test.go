package config

import "testing"

// TestCarriesIPv6: a tunnel carries IPv6 when its mode's inner packets
// are IPv6, or, for gre, when the configuration puts IPv6 on it, routes
// IPv6 into it or accepts IPv6 from it; IPv6 meant for another tunnel
// does not count.
func TestCarriesIPv6(t *testing.T) {
	const other = "[tunnel.u]\nmode = \"sit\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.9\"\n"
	tunnel := func(mode, extra string) string {
		local, remote := "192.0.2.1", "192.0.2.2"
		if mode == "ipip6" || mode == "ip6ip6" {
			local, remote = "2001:db8::1", "2001:db8::2"
		}
		return "[tunnel.t]\nmode = \"" + mode + "\"\nlocal = \"" + local + "\"\nremote = \"" + remote + "\"\n" + extra + other
	}
	gre := func(extra string) string { return tunnel("gre", extra) }
	tests := []struct {
		name, src string
		want      bool
	}{
		{"sit, nothing else", tunnel("sit", ""), true},
		{"ip6ip6, nothing else", tunnel("ip6ip6", ""), true},
		{"ipip with an IPv4 route", tunnel("ipip", "address = \"10.0.0.1/30\"\n") + "[[route]]\nto = \"default\"\ndev = \"t\"\n", false},
		{"ipip6 (DS-Lite) with an IPv4 default route", tunnel("ipip6", "") + "[[route]]\nto = \"default\"\ndev = \"t\"\n", false},
		{"gre, nothing else", gre(""), false},
		{"gre, IPv4 address and route", gre("address = \"10.0.0.1/30\"\n") + "[[route]]\nto = \"10.1.0.0/16\"\ndev = \"t\"\n", false},
		{"gre, IPv6 address", gre("address = [\"10.0.0.1/30\", \"fd00::1/64\"]\n"), true},
		{"gre, IPv6 route through it", gre("") + "[[route]]\nto = \"2001:db8:100::/48\"\ndev = \"t\"\n", true},
		{"gre, IPv6 route through it in another table", gre("") + "[tables]\nv6 = 100\n[[route]]\nto = \"::/0\"\ndev = \"t\"\ntable = \"v6\"\n", true},
		{"gre, IPv6 route through another tunnel", gre("") + "[[route]]\nto = \"2001:db8:100::/48\"\ndev = \"u\"\n", false},
		{"gre, IPv6 unreachable route", gre("") + "[[route]]\nto = \"2001:db8:100::/48\"\ntype = \"unreachable\"\n", false},
		{"gre, IPv6 rule iif", gre("") + "[[rule]]\niif = \"t\"\nfamily = \"ipv6\"\ntable = 100\n", true},
		{"gre, IPv6 rule oif", gre("") + "[[rule]]\nfrom = \"2001:db8:100::/48\"\noif = \"t\"\ntable = 100\n", true},
		{"gre, IPv4 rule iif", gre("") + "[[rule]]\niif = \"t\"\ntable = 100\n", false},
		{"gre, IPv6 rule iif another tunnel", gre("") + "[[rule]]\niif = \"u\"\nfamily = \"ipv6\"\ntable = 100\n", false},
		{"gre, IPv6 allowed source", gre("allowed_sources = [\"10.0.0.0/8\", \"2001:db8:100::/48\"]\n"), true},
		{"gre, IPv4 allowed sources", gre("allowed_sources = [\"10.0.0.0/8\"]\n"), false},
		{"gre, IPv6 forward", gre("") + "[[forward]]\ntunnel = \"t\"\ndirection = \"out\"\ndst = \"2001:db8:100::/48\"\n", true},
		{"gre, forward of any family", gre("") + "[[forward]]\ntunnel = \"t\"\ndirection = \"in\"\nproto = \"tcp\"\n", false},
		{"gre, IPv6 forward on another tunnel", gre("") + "[[forward]]\ntunnel = \"u\"\ndirection = \"in\"\nsrc = \"2001:db8:100::/48\"\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.toml", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.CarriesIPv6(c.TunnelByName("t")); got != tt.want {
				t.Errorf("CarriesIPv6 = %v, want %v", got, tt.want)
			}
		})
	}
}
