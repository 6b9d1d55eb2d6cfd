package desired

import (
	"net/netip"

	"github.com/tunneld/tunneld/pkg/model"
)

// localFor picks, of the addresses of d in the tunnel's outer family (v6
// for IPv6), the one the kernel would send to remote from, as `ip route
// get REMOTE` gives it as src: a tunnel that follows a device with more
// than one address (a cable modem's access address beside the DHCP
// lease, a ULA from an upstream router beside the ISP's prefix) must not
// take whichever came first or last (a tester's tunnels took the alias
// and the ULA: dead, with status saying up). routes are the main table's
// routes tunneld does not own. With one address it is that one. Where
// nothing decides (no remote known yet; IPv4, a next hop on none of the
// device's subnets: the routes not read since the device's addresses
// changed, or gone), guess is set, and it is cur, the tunnel's local
// address now, while the device still has it, else the first, a
// preferred primary one: a guess does not move a tunnel for nothing.
func localFor(d model.Device, v6 bool, remote, cur netip.Addr, routes []model.UnderlayRoute) (a netip.Addr, guess, ok bool) {
	first, n := -1, 0
	for i, p := range d.Addrs {
		if p.Addr().Is6() == v6 {
			if first < 0 {
				first = i
			}
			n++
		}
	}
	switch {
	case first < 0:
		return netip.Addr{}, false, false
	case n == 1:
		return d.Addrs[first].Addr(), false, true
	case !remote.IsValid() || remote.Is6() != v6:
		return stay(d, v6, cur, d.Addrs[first].Addr()), true, true
	}
	// The route to the remote by the device: its preferred source, where
	// it is one of the device's, is what the kernel sends from.
	var byDev []model.UnderlayRoute
	for _, r := range routes {
		if r.Dev == d.Name && r.Dst.Addr().Is6() == v6 {
			byDev = append(byDev, r)
		}
	}
	r, routed := model.Lookup(byDev, remote)
	if routed && r.Src.IsValid() && has(d, r.Src) {
		return r.Src, false, true
	}
	if v6 {
		return localFor6(d, remote), false, true
	}
	hop := remote
	if routed && !onSubnet(d, remote) {
		hop = r.Via
	}
	// The kernel's choice for IPv4 (inet_select_addr) by the next hop to
	// the remote (the remote itself on one of the device's subnets, else
	// the gateway of the route to it by the device): the first address
	// whose subnet holds it.
	for _, p := range d.Addrs {
		if p.Addr().Is4() && hop.IsValid() && p.Masked().Contains(hop) {
			return p.Addr(), false, true
		}
	}
	return stay(d, false, cur, d.Addrs[first].Addr()), true, true
}

// stay is cur where d still has it (of the family), else first.
func stay(d model.Device, v6 bool, cur, first netip.Addr) netip.Addr {
	if cur.IsValid() && cur.Is6() == v6 && has(d, cur) {
		return cur
	}
	return first
}

// onSubnet reports whether a is on one of d's subnets (of a's family).
func onSubnet(d model.Device, a netip.Addr) bool {
	for _, p := range d.Addrs {
		if p.Addr().Is4() == a.Is4() && p.Masked().Contains(a) {
			return true
		}
	}
	return false
}

// has reports whether a is one of d's addresses.
func has(d model.Device, a netip.Addr) bool {
	for _, p := range d.Addrs {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// localFor6 follows the kernel's source address selection for IPv6
// (RFC 6724, as ipv6_dev_get_saddr ranks them) where no route's
// preferred source decides, among the device's usable
// addresses: a preferred address before a deprecated one; one whose
// label matches the remote's (a global address for a global remote, not
// a ULA); a public one before a temporary one; the longest prefix in
// common with the remote, up to the address's prefix length; then the
// kernel's order, newest first.
func localFor6(d model.Device, remote netip.Addr) netip.Addr {
	label := addrLabel(remote)
	best, bestScore := netip.Addr{}, [4]int{}
	for i, p := range d.Addrs {
		a := p.Addr()
		if !a.Is6() {
			continue
		}
		rank := d.AddrRank(i)
		score := [4]int{
			boolInt(rank < 2),
			boolInt(addrLabel(a) == label),
			boolInt(rank == 0),
			min(commonBits(a, remote), p.Bits()),
		}
		if !best.IsValid() || greater(score, bestScore) {
			best, bestScore = a, score
		}
	}
	return best
}

// greater reports whether score a ranks above b, key by key.
func greater(a, b [4]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return false
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// commonBits is the length of the prefix a and b share.
func commonBits(a, b netip.Addr) int {
	x, y := a.As16(), b.As16()
	for i := range x {
		if d := x[i] ^ y[i]; d != 0 {
			n := i * 8
			for d&0x80 == 0 {
				n++
				d <<= 1
			}
			return n
		}
	}
	return 128
}

// addrLabels is the kernel's default IPv6 address label table (RFC 6724's
// policy table as Linux has it, ip addrlabel): the label of the longest
// prefix holding an address.
var addrLabels = []struct {
	prefix netip.Prefix
	label  int
}{
	{netip.MustParsePrefix("::1/128"), 0},
	{netip.MustParsePrefix("::/0"), 1},
	{netip.MustParsePrefix("2002::/16"), 2},
	{netip.MustParsePrefix("::/96"), 3},
	{netip.MustParsePrefix("::ffff:0:0/96"), 4},
	{netip.MustParsePrefix("fc00::/7"), 5},
	{netip.MustParsePrefix("2001::/32"), 6},
	{netip.MustParsePrefix("2001:10::/28"), 7},
}

// addrLabel is a's label in addrLabels.
func addrLabel(a netip.Addr) int {
	label, bits := 1, -1
	for _, l := range addrLabels {
		if l.prefix.Contains(a) && l.prefix.Bits() > bits {
			label, bits = l.label, l.prefix.Bits()
		}
	}
	return label
}
