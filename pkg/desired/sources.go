package desired

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/tunneld/tunneld/pkg/config"
)

// refusedSources are the inner sources the tunnel t must not deliver,
// whatever its allowed sources say: those whose most specific prefix in
// the configuration (of a family t carries, but the default route) is
// one it routes elsewhere, through another device or as unreachable,
// blackhole or prohibit, and not through t. A prefix is routed elsewhere
// when a [[route]] sends it there or it is another tunnel's own subnet
// or peer (the kernel's connected and peer routes send those through
// that tunnel; see newSourceIndex). A prefix counts as through t when a
// [[route]] (in any table) sends it into t, it is one of t's own
// subnets or peers, or t's allowed_sources (its derived sources, byDev
// being the routes whose dev is t, when it gives none) names it; one
// both routed elsewhere and through t is through t (a failover, or two
// tunnels with the same subnet). So a source inside the router's own
// routed /48, which has its unreachable route, is refused from a 6in4
// tunnel whose default route lets every other source in (IPv6 has no
// rp_filter: a tester's broker sent such packets and they reached the
// LAN), a LAN's /64 routed to br-lan inside a /48 routed into the tunnel
// is refused while the rest of the /48 passes, another tunnel's /30
// transfer net is refused from a tunnel with the default route, and an
// allowed_sources prefix as specific as a route elsewhere lets it in
// again (asymmetric routing, on purpose). The result is minimal CIDR
// prefixes, in order.
//
// A route's table does not matter, on either side: the chain sees the
// packet's inner source only, not which table the lookup of a reply to
// it would use (that depends on the rules, tunneld's and anyone else's,
// on the reply's own source, mark and incoming device), so a prefix
// routed elsewhere in any table is refused. Weighing only routes in the
// same table as the one into t would let the router's own prefixes in
// again wherever the default route through t sits in a table of its own
// (the usual policy routing: default through t in table vpn, the
// router's /48 unreachable in main), and a table that no [[rule]] names
// may still be looked up by someone else's rule. Where a prefix routed
// elsewhere in one table is meant to come out of t all the same, an
// allowed_sources prefix as specific lets it in.
func refusedSources(ix *sourceIndex, c *config.Config, t *config.Tunnel, byDev []config.Route) []netip.Prefix {
	carries := func(p netip.Prefix) bool {
		return p.Bits() > 0 && (p.Addr().Is4() && t.Mode.CarriesIPv4() || p.Addr().Is6() && c.CarriesIPv6(t))
	}
	// in says for each prefix of the configuration whether it is
	// through t (true) or elsewhere (false).
	in := map[netip.Prefix]bool{}
	mark := func(p netip.Prefix, through bool) {
		if carries(p) {
			in[p] = in[p] || through
		}
	}
	for _, p := range ix.through[t] {
		mark(p, true)
	}
	allowed := t.AllowedSources
	if allowed == nil {
		allowed = derived(t, byDev)
	}
	for _, p := range append(derived(t, nil), allowed...) {
		mark(p.Masked(), true)
	}
	through := make([]netip.Prefix, 0, len(in))
	for p := range in {
		through = append(through, p)
	}
	// A prefix routed elsewhere matters only inside one through t or an
	// allowed one (a default route's /0 among them): the rest of it is
	// no allowed source, which the chain's last rule drops anyway, and a
	// prefix through t nearer than any larger one is already marked. The
	// index finds those without weighing every route of the
	// configuration for every tunnel (a thousand tunnels, each with its
	// own route).
	for _, q := range append(slices.Clip(through), allowed...) {
		ix.inside(q.Masked(), func(r routed) {
			if r.tunnel != t {
				mark(r.dst, false)
			}
		})
	}
	var elsewhere []netip.Prefix
	for p, th := range in {
		if !th {
			elsewhere = append(elsewhere, p)
		}
	}
	sortPrefixes(elsewhere)
	var out []netip.Prefix
	for _, p := range elsewhere {
		// A prefix whose nearest enclosing one is elsewhere too is
		// part of that one's region already.
		if q, ok := enclosing(in, p); ok && !in[q] {
			continue
		}
		var holes []netip.Prefix
		for _, q := range through {
			if q.Bits() > p.Bits() && p.Contains(q.Addr()) {
				holes = append(holes, q)
			}
		}
		out = append(out, subtract(p, holes)...)
	}
	return out
}

// routed is a configured route's destination, or a tunnel's own subnet
// or peer, and the tunnel it goes through (nil: elsewhere).
type routed struct {
	dst    netip.Prefix
	tunnel *config.Tunnel
}

// sourceIndex holds, for refusedSources, the configuration's routes once:
// by the tunnel they go through, and all of them in address order (with
// the tunnels' own subnets and peers among them, when it is made with
// subnets).
type sourceIndex struct {
	through map[*config.Tunnel][]netip.Prefix
	all     []routed // sorted by address, then prefix length
}

// newSourceIndex indexes the configuration's [[route]] sections and,
// with subnets, each tunnel's own subnets and peers as well: the kernel's
// connected and peer routes send those through the tunnel as a [[route]]
// with its dev would, so another tunnel refuses them just the same.
// IPv6 link-local ones are left out: every link has its own fe80::/64,
// so one on a tunnel is no other tunnel's business, and the spoof chains
// let fe80::/10 through (see spoofChain). IPv4's 169.254.0.0/16 is routed
// like any other prefix and stays (a VPN's /30 inside transfer nets). A
// host address without a peer (a /32 or /128) routes nothing.
func newSourceIndex(c *config.Config, subnets bool) *sourceIndex {
	n := len(c.Routes)
	if subnets {
		for _, t := range c.Tunnels {
			n += len(t.Addresses)
		}
	}
	ix := &sourceIndex{through: map[*config.Tunnel][]netip.Prefix{}, all: make([]routed, 0, n)}
	for i := range c.Routes {
		r := &c.Routes[i]
		t := RouteThrough(c, r)
		dst := r.To.Masked()
		if t != nil {
			ix.through[t] = append(ix.through[t], dst)
		}
		ix.all = append(ix.all, routed{dst, t})
	}
	if subnets {
		for _, t := range c.Tunnels {
			for _, p := range derived(t, nil) {
				if !linkLocal.Contains(p.Addr()) {
					ix.all = append(ix.all, routed{p, t})
				}
			}
		}
	}
	sortRouted(ix.all)
	return ix
}

// inside calls f with each route whose destination lies inside q (q
// itself included): they sit together in address order, from q's first
// address on.
func (ix *sourceIndex) inside(q netip.Prefix, f func(routed)) {
	for i := ix.from(q.Addr()); i < len(ix.all) && q.Contains(ix.all[i].dst.Addr()); i++ {
		if r := ix.all[i]; r.dst.Bits() >= q.Bits() {
			f(r)
		}
	}
}

// from is the index of the first route whose destination's address is
// not below a: where slices.BinarySearchFunc would put a, with the same
// probes (sort.Search; the generic one was instantiated for routed
// alone).
func (ix *sourceIndex) from(a netip.Addr) int {
	return sort.Search(len(ix.all), func(i int) bool { return ix.all[i].dst.Addr().Compare(a) >= 0 })
}

// enclosing is the longest prefix of in that strictly contains p.
func enclosing(in map[netip.Prefix]bool, p netip.Prefix) (netip.Prefix, bool) {
	for bits := p.Bits() - 1; bits >= 0; bits-- {
		q := netip.PrefixFrom(p.Addr(), bits).Masked()
		if _, ok := in[q]; ok {
			return q, true
		}
	}
	return netip.Prefix{}, false
}

// subtract is p without the holes (each inside p), as the fewest CIDR
// prefixes, in address order.
func subtract(p netip.Prefix, holes []netip.Prefix) []netip.Prefix {
	split := false
	for _, h := range holes {
		if h.Addr().Is4() != p.Addr().Is4() {
			continue
		}
		if h.Bits() <= p.Bits() && h.Contains(p.Addr()) {
			return nil
		}
		if h.Bits() > p.Bits() && p.Contains(h.Addr()) {
			split = true
		}
	}
	if !split {
		return []netip.Prefix{p}
	}
	lo := netip.PrefixFrom(p.Addr(), p.Bits()+1)
	b := p.Addr().AsSlice()
	b[p.Bits()/8] |= 0x80 >> (p.Bits() % 8)
	a, _ := netip.AddrFromSlice(b)
	hi := netip.PrefixFrom(a, p.Bits()+1)
	return append(subtract(lo, holes), subtract(hi, holes)...)
}

// sortPrefixes sorts ps in comparePrefix order, with sort.Sort: the
// order slices.SortFunc gives (see model.SortForeignRules) without a
// sort instantiated for netip.Prefix alone.
func sortPrefixes(ps []netip.Prefix) {
	if len(ps) > 1 {
		sort.Sort(prefixOrder(ps))
	}
}

// prefixOrder is sortPrefixes' sort.Interface.
type prefixOrder []netip.Prefix

func (s prefixOrder) Len() int           { return len(s) }
func (s prefixOrder) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s prefixOrder) Less(i, j int) bool { return comparePrefix(s[i], s[j]) < 0 }

// sortRouted sorts rs by destination, in comparePrefix order, as
// sortPrefixes does.
func sortRouted(rs []routed) {
	if len(rs) > 1 {
		sort.Sort(routedOrder(rs))
	}
}

// routedOrder is sortRouted's sort.Interface.
type routedOrder []routed

func (s routedOrder) Len() int           { return len(s) }
func (s routedOrder) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s routedOrder) Less(i, j int) bool { return comparePrefix(s[i].dst, s[j].dst) < 0 }

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// SourceWarnings says of each tunnel that lets every source of a family
// it carries come out of it, because a default route goes through it and
// allowed_sources is not given, while no [[route]] refuses any of that
// family from it either (see refusedSources): nothing checks the sources
// it delivers but, where there are any, other tunnels' subnets and peers,
// which its spoof chain refuses all the same. A tester's 6in4 tunnel to a
// broker, with the default route through it and no route for the
// router's own prefix, forwarded packets with a source in that prefix to
// the LAN. Other tunnels' subnets and peers do not silence it: they are
// not the LAN's prefixes the warning asks routes for; the warning only
// says then that they are the sources refused ("IPv6 source filtering
// refuses only other tunnels' subnets and peers"), where it says "no
// source filtering" when nothing is. None with the filter off (firewall
// = false: the configuration warns of allowed_sources there).
func SourceWarnings(c *config.Config) []string {
	if !c.Global.Firewall {
		return nil
	}
	var out []string
	routesByDev := map[string][]config.Route{}
	for _, r := range c.Routes {
		if r.Through != "" {
			routesByDev[r.Through] = append(routesByDev[r.Through], r)
		}
	}
	// routes indexes the [[route]] sections, subnets the tunnels' own
	// subnets and peers as well (what the spoof chains refuse); each is
	// built on first use.
	var routes, subnets *sourceIndex
	for _, t := range c.Tunnels {
		if t.AllowedSources != nil {
			continue
		}
		byDev := routesByDev[t.Name]
		if !slices.ContainsFunc(derived(t, byDev), func(p netip.Prefix) bool { return p.Bits() == 0 }) {
			continue // no default route through it
		}
		if routes == nil {
			routes = newSourceIndex(c, false)
		}
		refused := refusedSources(routes, c, t, byDev)
		var refusedAll []netip.Prefix // with the subnets, once needed
		allDone := false
		for _, p := range derived(t, byDev) {
			if p.Bits() != 0 || p.Addr().Is4() && !t.Mode.CarriesIPv4() || p.Addr().Is6() && !c.CarriesIPv6(t) {
				continue
			}
			sameFamily := func(q netip.Prefix) bool { return q.Addr().Is4() == p.Addr().Is4() }
			if slices.ContainsFunc(refused, sameFamily) {
				continue
			}
			if !allDone {
				if subnets == nil {
					subnets = newSourceIndex(c, true)
				}
				refusedAll, allDone = refusedSources(subnets, c, t, byDev), true
			}
			fam := "IPv4"
			if p.Addr().Is6() {
				fam = "IPv6"
			}
			if slices.ContainsFunc(refusedAll, sameFamily) {
				out = append(out, fmt.Sprintf(`tunnel %q: %s source filtering refuses only other tunnels' subnets and peers: a default route goes through it, so any other %s source may come out of it, even one of this router's own networks: give those their routes in the configuration (a routed prefix's unreachable route), which the tunnel then refuses, or set allowed_sources (["%s"] to accept them all, as now)`,
					t.Name, fam, fam, p))
				continue
			}
			out = append(out, fmt.Sprintf(`tunnel %q: no source filtering for %s: a default route goes through it, so any %s source may come out of it, even one of this router's own networks: give those their routes in the configuration (a routed prefix's unreachable route), which the tunnel then refuses, or set allowed_sources (["%s"] to accept any, as now)`,
				t.Name, fam, fam, p))
		}
	}
	return out
}
