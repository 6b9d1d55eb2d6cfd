// Package scaletest writes the configuration the scale tests and
// benchmarks of several packages share: n IPIP tunnels, the shape of
// the VM benchmarks' converge. Only tests import it.
package scaletest

import (
	"fmt"
	"strings"
)

// Config is the text of a configuration of n IPIP tunnels t0…t(n-1),
// each from 192.0.0.1 to a remote of its own in 198.18.0.0/15, with a
// /32 address, a route to a /24 of its own in its own table tabI
// (1000+I), and, with rules, a source rule from its address into that
// table; firewall sets [global] firewall.
func Config(n int, firewall, rules bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[global]\nfirewall = %t\nrule_priority_max = 29999\n[tables]\n", firewall)
	for i := range n {
		fmt.Fprintf(&b, "tab%d = %d\n", i, 1000+i)
	}
	for i := range n {
		hi, lo := (i+1)/256, (i+1)%256
		fmt.Fprintf(&b, "[tunnel.t%d]\nmode = \"ipip\"\nlocal = \"192.0.0.1\"\nremote = \"198.18.%d.%d\"\naddress = \"10.100.%d.%d/32\"\n", i, hi, lo, hi, lo)
		fmt.Fprintf(&b, "[[route]]\nto = \"10.%d.%d.0/24\"\ndev = \"t%d\"\ntable = \"tab%d\"\n", 200+hi, lo, i, i)
		if rules {
			fmt.Fprintf(&b, "[[rule]]\nfrom = \"10.100.%d.%d\"\ntable = \"tab%d\"\n", hi, lo, i)
		}
	}
	return b.String()
}
