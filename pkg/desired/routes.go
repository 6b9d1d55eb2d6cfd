package desired

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/model"
)

func (b *builder) routes() {
	var waiting []*config.Route
	for i := range b.c.Routes {
		r := &b.c.Routes[i]
		if tun := b.through(r); tun != nil && !b.routable(tun.Name) {
			// Held as an unreachable route while the tunnel is not
			// up (see hold); its status says why it is not.
			waiting = append(waiting, r)
			continue
		}
		if r.Dev != "" && b.c.TunnelByName(r.Dev) == nil {
			d, ok := b.in.Devices[r.Dev]
			if !ok {
				b.note("route %s table %d: device %s does not exist", r.To, r.Table, r.Dev)
				continue
			}
			if !d.Up {
				// The kernel refuses (and flushes) routes through a down
				// device; the route comes back with the device.
				b.note("route %s table %d: device %s is down", r.To, r.Table, r.Dev)
				continue
			}
		}
		via, dev := r.Via, r.Dev
		if r.ViaPeer {
			via, _ = config.PeerOf(b.c.TunnelByName(r.Dev), r.To.Addr().Is6())
		}
		if dev == "" && via.IsValid() {
			dev = b.gatewayDevice(via)
		}
		if down := b.downHolder(r, via, dev); down != "" {
			// As for a route given its down device: the kernel would
			// take the gateway by whatever route it finds in the
			// route's table (a tester's went into a tunnel, by that
			// table's default route).
			b.note("route %s table %d: its gateway %s is on the subnet of %s, which is down", r.To, r.Table, via, down)
			continue
		}
		b.res.State.Routes = append(b.res.State.Routes, model.Route{
			Table: r.Table, Dst: r.To, Via: via, Dev: dev, OnLink: r.OnLink, Metric: metric(r.To.Addr(), r.Metric), Src: r.Src, Type: r.Type,
		})
	}
	b.hold(waiting)
}

// through is the tunnel r goes through (RouteThrough), nil for a route
// with a gateway and no dev where a device that is not one of the file's
// tunnels holds a narrower subnet with the gateway: the kernel reaches
// it there (a tester's LAN gateway inside a tunnel's /8 had its route
// refused as unreachable while the tunnel was down).
func (b *builder) through(r *config.Route) *config.Tunnel {
	t := RouteThrough(b.c, r)
	if t == nil || r.Dev != "" {
		return t
	}
	bits := -1
	for _, a := range t.Addresses {
		switch {
		case a.Peer.IsValid() && a.Peer == r.Via:
			bits = max(bits, r.Via.BitLen())
		case !a.Peer.IsValid() && a.Prefix.Masked().Contains(r.Via):
			bits = max(bits, a.Prefix.Bits())
		}
	}
	for name, d := range b.in.Devices {
		if b.c.TunnelByName(name) != nil {
			continue
		}
		for _, p := range d.Addrs {
			if p.Bits() > bits && p.Masked().Contains(r.Via) {
				return nil
			}
		}
	}
	return t
}

// gatewayDevice is the device main's most specific route to gateway
// leaves by, when that route is a direct one (no gateway of its own) on
// an up device: where the box reaches the gateway, its own subnet, a
// host route to it (a /32 cloud address's), a peer's. "" otherwise (the
// tunnel to carry it not made yet, say): the kernel decides, and the
// next round of a convergence, which reads the route back, puts it right.
// A route with a gateway and no dev gets it: the kernel would look the
// gateway up in the route's own table first (IPv6: by the policy rules),
// where another route may take it to another device or refuse it. A
// tester's edit put a route on the device of the default route it
// replaced in that table, and an IPv6 one was refused for good once a
// rule sent lookups into a table with a default route through another
// gateway.
func (b *builder) gatewayDevice(gateway netip.Addr) string {
	u, ok := model.Lookup(b.in.Routes, gateway)
	if !ok || u.Via.IsValid() || u.Dev == "" || !b.in.Devices[u.Dev].Up {
		return ""
	}
	return u.Dev
}

// downHolder is, for a route r with a gateway and no dev for which no
// device that is up was found (dev, see gatewayDevice), the device that
// is down, not one of the file's tunnels, whose address's subnet holds
// the gateway (the narrowest); "" when none does, and for other routes.
// That is the device the route reaches its gateway by once it is up: the
// kernel removes a down device's IPv4 subnet routes and keeps its
// addresses, so that main has no route to say it.
func (b *builder) downHolder(r *config.Route, gateway netip.Addr, dev string) string {
	if r.Dev != "" || dev != "" || !gateway.IsValid() {
		return ""
	}
	found, bits := "", -1
	for name, d := range b.in.Devices {
		if d.Up || b.c.TunnelByName(name) != nil {
			continue
		}
		for _, p := range d.Addrs {
			if p.Masked().Contains(gateway) && (p.Bits() > bits || p.Bits() == bits && name < found) {
				found, bits = name, p.Bits()
			}
		}
	}
	return found
}

// foreignKeys warns about each configured route in table main whose
// destination and metric (tunneld's metric: an IPv6 route without one has
// 1024, see metric) a route tunneld does not own has there: the kernel
// refuses to add a route beside another of the same table, destination
// and metric, so apply cannot add tunneld's (it does not take the other
// over), and plan and status would show an addition that fails. The other is an underlay route (the
// main table's foreign unicast routes are observed; other tables are
// not): most often the default route a router advertisement gave the WAN
// on a 6in4 router, or one made by hand. Where tunneld's route is in the
// kernel already (the other one was added beside it since), it is not
// added, but once removed (down, the daemon's stop) it could not be again.
func (b *builder) foreignKeys() {
	for i := range b.c.Routes {
		r := &b.c.Routes[i]
		if r.Table != model.TableMain {
			continue
		}
		key := model.RouteKey{Table: r.Table, Dst: r.To.Masked(), Metric: metric(r.To.Addr(), r.Metric)}
		var others []model.UnderlayRoute
		for _, u := range b.in.Routes {
			if u.Dst.Masked() == key.Dst && u.Metric == key.Metric {
				others = append(others, u)
			}
		}
		if len(others) == 0 {
			continue
		}
		id := model.Route{Table: key.Table, Dst: key.Dst, Metric: key.Metric}.ID()
		descs := make([]string, len(others))
		dels := make([]string, len(others))
		for j, u := range others {
			descs[j], dels[j] = underlayWords(u), deleteAdvice(u)
		}
		which, that := "a route tunneld does not own", "that route"
		if len(others) > 1 {
			which, that = "routes tunneld does not own", "those routes"
		}
		what := "the kernel refuses a second route of that key, and apply cannot add it"
		if slices.ContainsFunc(b.cur.Routes, func(c model.Route) bool { return c.Key() == key }) {
			what = "tunneld's route is in place beside it, but once removed (down, the daemon's stop) apply cannot add it again"
		}
		// Nothing is lower than metric 0.
		how := "lower to come first, higher to back the other up"
		switch {
		case key.Metric == 0:
			how = "higher to back the other up"
		case key.Metric == IPv6DefaultMetric && r.To.Addr().Is6():
			how += ", not 0: an IPv6 route without one has 1024"
		}
		b.res.Warnings = append(b.res.Warnings, fmt.Sprintf("route[%d]: %s has the same table, destination and metric as %s, %s: %s; give route[%d] a metric no route there has (%s), or delete %s: %s",
			r.Index, id, strings.Join(descs, " and "), which, what, r.Index, how, that, strings.Join(dels, "; ")))
	}
}

// underlayWords writes u as `ip route` lists it: "default via
// 2001:db8:a::1 dev wan proto ra metric 1024".
func underlayWords(u model.UnderlayRoute) string {
	w := dstWord(u.Dst)
	if u.Type != model.RouteUnicast {
		w = u.Type.String() + " " + w
	}
	if u.Via.IsValid() {
		w += " via " + u.Via.String()
	}
	if u.Dev != "" {
		w += " dev " + u.Dev
	}
	return fmt.Sprintf("%s proto %s metric %d", w, model.RouteProtocolWord(u.Proto), u.Metric)
}

// deleteAdvice is the command that deletes u, and for a default route a
// router advertisement gave its device, how to keep the next one from
// adding it again.
func deleteAdvice(u model.UnderlayRoute) string {
	cmd := "ip route del "
	if u.Dst.Addr().Is6() {
		cmd = "ip -6 route del "
	}
	if u.Type != model.RouteUnicast {
		cmd += u.Type.String() + " "
	}
	cmd += dstWord(u.Dst)
	if u.Via.IsValid() {
		cmd += " via " + u.Via.String()
	}
	if u.Dev != "" {
		cmd += " dev " + u.Dev
	}
	cmd += fmt.Sprintf(" metric %d", u.Metric)
	if u.Proto != model.RouteProtocolRA || u.Dst.Bits() != 0 || u.Dev == "" {
		return cmd
	}
	return fmt.Sprintf("%s, after setting %s to 0, else the next router advertisement on %s adds it again", cmd,
		model.SysctlName("net/ipv6/conf/"+u.Dev+"/accept_ra_defrtr"), u.Dev)
}

// dstWord is a destination as ip(8) writes it: "default" for /0.
func dstWord(p netip.Prefix) string {
	if p.Bits() == 0 {
		return "default"
	}
	return p.String()
}

// hostRoutes adds, for each up tunnel whose own encapsulated packets would
// be routed into a tunnel, a host route to its remote through the underlay
// (netifd does the same). Auto mode looks at the tables those packets can
// reach: main, and the tables of tunneld's rules that match them. A
// tunnel bound to an underlay device needs none: its outer lookups are
// made with that device as output interface.
func (b *builder) hostRoutes() {
	// have, the routes' keys, is made when the first host route is:
	// most configurations need none.
	var have map[model.RouteKey]bool
	into := newCovering(len(b.c.Routes))
	for i := range b.c.Routes {
		// The configured routes into a tunnel that routes() put in the
		// desired state, by the one judgement it makes (through).
		r := &b.c.Routes[i]
		if t := b.through(r); t != nil && b.routable(t.Name) {
			into.add(model.Route{Table: r.Table, Dst: r.To})
		}
	}
	for _, t := range b.c.Tunnels {
		if t.HostRoute == config.HostRouteOff && t.Dev == "" && b.up(t.Name) {
			b.loopsWithout(t, into)
		}
		if !b.up(t.Name) || t.HostRoute == config.HostRouteOff || t.HostRoute == config.HostRouteAuto && t.Dev != "" {
			continue
		}
		l, _ := b.present(t.Name)
		if !l.Remote.IsValid() {
			continue
		}
		// Both maps are made only when needed: most tunnels need no host
		// route, and a thousand of them would each allocate.
		var tables map[uint32]bool
		if t.HostRoute == config.HostRouteOn {
			tables = map[uint32]bool{model.TableMain: true}
		}
		var reach map[uint32]bool
		covered := false // a route into a tunnel holds the remote
		into.containing(l.Remote, func(r *model.Route) {
			if reach == nil {
				reach = b.reachableTables(l)
			}
			if reach[r.Table] {
				if tables == nil {
					tables = map[uint32]bool{}
				}
				tables[r.Table], covered = true, true
			}
		})
		if len(tables) == 0 {
			continue
		}
		u, ok := b.underlayTo(t, l.Remote)
		if d, exists := b.in.Devices[u.Dev]; ok && exists && !d.Up {
			ok = false
		}
		if !ok {
			u, ok = b.keptHostRoute(l.Remote)
			if ok {
				b.note("tunnel %q: host route to %s: no underlay route to it in table main now; the one via %s dev %s is kept while %s is on %s's subnet", t.Name, l.Remote, u.Via, u.Dev, u.Via, u.Dev)
			}
		}
		if !ok {
			b.note("tunnel %q: host route to %s: no underlay route to it in table main", t.Name, l.Remote)
			if covered {
				// Otherwise nothing sends them into a tunnel (host_route
				// = true alone): the kernel has no route for them, which
				// status asks it about (a tester's said "into itself").
				b.loops(t.Name, fmt.Sprintf("its packets to %s go into itself: table main has no route to it by the underlay", l.Remote))
			}
			continue
		}
		if have == nil {
			have = make(map[model.RouteKey]bool, len(b.res.State.Routes))
			for _, r := range b.res.State.Routes {
				have[r.Key()] = true
			}
		}
		for _, table := range sortedTables(tables) {
			hr := model.Route{Table: table, Dst: host(l.Remote), Via: u.Via, Dev: u.Dev, Metric: metric(l.Remote, 0)}
			if have[hr.Key()] {
				continue
			}
			if table == model.TableMain && b.leftToForeign(t.Name, l.Remote, hr) {
				continue
			}
			have[hr.Key()] = true
			b.res.State.Routes = append(b.res.State.Routes, hr)
		}
	}
}

// underlayTo is main's underlay route to the tunnel t's remote: for a
// tunnel that follows a device's address, the best of main's routes by
// that device when there is one, as the packets from that address must
// leave by it; otherwise main's best (model.Lookup). With two WANs' default
// routes, a tester's host route for the tunnel following wan1 went by
// wan0's, which has the lower metric, and its ISP drops wan1's source.
func (b *builder) underlayTo(t *config.Tunnel, remote netip.Addr) (model.UnderlayRoute, bool) {
	routes := b.underlay()
	if t.LocalDev != "" {
		if u, ok := model.LookupBy(routes, remote, t.LocalDev); ok {
			return u, true
		}
	}
	return model.Lookup(routes, remote)
}

// loopsWithout marks t, a tunnel with host_route = false and no dev, as
// looped (TunnelStatus.Looped) where a configured route through a tunnel
// in main holds its remote and is more specific than main's underlay
// route to it: the tunnel's packets to its remote then go into that
// tunnel (a tester's status said up). into indexes the configured routes
// into tunnels.
func (b *builder) loopsWithout(t *config.Tunnel, into *covering) {
	l, _ := b.present(t.Name)
	if !l.Remote.IsValid() {
		return
	}
	var best *model.Route
	into.containing(l.Remote, func(r *model.Route) {
		if r.Table == model.TableMain && (best == nil || r.Dst.Bits() > best.Dst.Bits()) {
			best = r
		}
	})
	if best == nil {
		return
	}
	if u, ok := model.Lookup(b.underlay(), l.Remote); ok && u.Dst.Bits() >= best.Dst.Bits() {
		return
	}
	b.loops(t.Name, fmt.Sprintf("its packets to %s go into a tunnel: host_route = false, and the route to %s in table main through a tunnel holds it", l.Remote, dstWord(best.Dst)))
}

// loops puts why on the status of the tunnel name (TunnelStatus.Looped).
func (b *builder) loops(name, why string) {
	if i := slices.IndexFunc(b.res.Tunnels, func(s TunnelStatus) bool { return s.Name == name }); i >= 0 {
		b.res.Tunnels[i].Looped = why
	}
}

// keptHostRoute is the host route to remote that tunneld has in main
// while main has no underlay route to the remote (the WAN's default route
// gone: a DHCP lease without its router option), as an underlay route,
// where its gateway is still on a subnet of its device, which is up: it
// still keeps the tunnel's packets to its remote out of the tunnel, and
// deleting it sent them into the tunnel itself (a tester's).
func (b *builder) keptHostRoute(remote netip.Addr) (model.UnderlayRoute, bool) {
	hr := host(remote)
	for _, r := range b.cur.Routes {
		if r.Table != model.TableMain || r.Dst != hr || !r.Via.IsValid() || r.Type != model.RouteUnicast {
			continue
		}
		d, ok := b.in.Devices[r.Dev]
		if ok && d.Up && b.c.TunnelByName(r.Dev) == nil && onSubnet(d, r.Via) {
			return model.UnderlayRoute{Dst: hr, Via: r.Via, Dev: r.Dev}, true
		}
	}
	return model.UnderlayRoute{}, false
}

// leftToForeign reports whether main holds the key of hr, the host route
// to the remote, with a route tunneld does not own: the kernel would
// refuse tunneld's beside it (a tester's apply failed with "file exists"
// every time). A unicast one (the how-to's `ip route add REMOTE via GW`,
// netifd's) does the job, and a note says so; one that drops (an
// admin's blackhole) keeps the tunnel from its remote, and a warning
// says how to delete it.
func (b *builder) leftToForeign(tunnel string, remote netip.Addr, hr model.Route) bool {
	for _, u := range b.in.Routes {
		if u.Dst != hr.Dst || u.Metric != hr.Metric {
			continue
		}
		switch {
		case u.Type == model.RouteUnicast && b.c.TunnelByName(u.Dev) != nil:
			b.res.Warnings = append(b.res.Warnings, fmt.Sprintf("tunnel %q: host route to %s: table main has one tunneld does not own (%s), which sends the tunnel's packets to its remote into tunnel %q, and the kernel refuses tunneld's host route beside it; delete it: %s",
				tunnel, remote, underlayWords(u), u.Dev, deleteAdvice(u)))
		case u.Type == model.RouteUnicast:
			b.note("tunnel %q: host route to %s: table main has one tunneld does not own (%s), which it leaves to do the job", tunnel, remote, underlayWords(u))
		default:
			b.res.Warnings = append(b.res.Warnings, fmt.Sprintf("tunnel %q: host route to %s: table main has a %s route to it that tunneld does not own (%s): the tunnel's packets to its remote are dropped, and the kernel refuses tunneld's host route beside it; delete it: %s",
				tunnel, remote, u.Type, underlayWords(u), deleteAdvice(u)))
		}
		return true
	}
	return false
}

// covering indexes routes by destination so that the routes containing
// an address are found with one map lookup per prefix length in use, not
// by testing every route (a thousand tunnels each with a route).
type covering struct {
	bits []int // prefix lengths in use, in first-seen order
	// routes are the routes added; first maps a destination to the
	// index of its first route, next chains the rest (-1 ends a chain).
	routes []model.Route
	first  map[netip.Prefix]int
	next   []int
}

// newCovering is an empty index with room for n routes.
func newCovering(n int) *covering {
	return &covering{routes: make([]model.Route, 0, n), first: make(map[netip.Prefix]int, n), next: make([]int, 0, n)}
}

func (c *covering) add(r model.Route) {
	d := r.Dst.Masked()
	if !slices.Contains(c.bits, d.Bits()) {
		c.bits = append(c.bits, d.Bits())
	}
	i := len(c.routes)
	c.routes, c.next = append(c.routes, r), append(c.next, -1)
	j, ok := c.first[d]
	if !ok {
		c.first[d] = i
		return
	}
	for c.next[j] >= 0 {
		j = c.next[j]
	}
	c.next[j] = i
}

// containing calls f with each route whose destination contains a, the
// routes of one destination in the order they were added.
func (c *covering) containing(a netip.Addr, f func(*model.Route)) {
	for _, bits := range c.bits {
		p, err := a.Prefix(bits)
		if err != nil {
			continue // a prefix length of the other family
		}
		i, ok := c.first[p]
		for ok && i >= 0 {
			f(&c.routes[i])
			i = c.next[i]
		}
	}
}

// reachableTables are the tables a tunnel's own outer packets (locally
// generated, from Local to Remote) are looked up in.
func (b *builder) reachableTables(l model.Link) map[uint32]bool {
	out := map[uint32]bool{model.TableMain: true}
	for _, r := range b.res.State.Rules {
		if (r.Family == 6) != l.Remote.Is6() || r.HasMark && r.Mark&r.Mask != 0 {
			continue
		}
		if r.Src.IsValid() && (!l.Local.IsValid() || !r.Src.Contains(l.Local)) {
			continue
		}
		if r.Dst.IsValid() && !r.Dst.Contains(l.Remote) {
			continue
		}
		if r.IIF != "" && r.IIF != "lo" || r.OIF != "" && r.OIF != l.Dev {
			continue
		}
		out[r.Table] = true
	}
	return out
}

func (b *builder) sysctls() {
	for _, sc := range ConfiguredSysctls(b.c) {
		if dev, ok := strings.CutSuffix(strings.TrimPrefix(sc.Path, "net/ipv4/conf/"), "/proxy_arp"); ok {
			// A tunnel the plan creates has its device by the sysctls'
			// turn (they come after the links): one apply, or a plan
			// pasted into a shell, sets it, not a second round.
			_, exists := b.in.Devices[dev]
			_, made := b.links[dev]
			if b.c.TunnelByName(dev) != nil && !made {
				// A tunnel of the file's that is not there: a device
				// that holds its name is someone else's (a tester's
				// veth got proxy_arp), and the tunnel's own gets it
				// with it.
				b.note("sysctl %s: tunnel %s is not in the kernel yet", model.SysctlName(sc.Path), dev)
				continue
			}
			if !exists && !made {
				b.note("sysctl %s: device %s does not exist", model.SysctlName(sc.Path), dev)
				continue
			}
		}
		b.res.State.Sysctls = append(b.res.State.Sysctls, sc)
	}
	if b.in.SysctlsUnknown {
		if w := UnknownOriginalsWarning(b.res.State.Sysctls, b.cur.Sysctls); w != "" {
			b.res.Warnings = append(b.res.Warnings, w)
		}
	}
}

// ConfiguredSysctls are the sysctls c sets, with the values it sets them
// to: ip_forward and IPv6 forwarding as given, and proxy_arp on each of
// its devices, whether or not they exist (Build leaves out those that do
// not yet).
func ConfiguredSysctls(c *config.Config) []model.Sysctl {
	g := c.Global
	var out []model.Sysctl
	add := func(path string, on bool) {
		v := "0"
		if on {
			v = "1"
		}
		out = append(out, model.Sysctl{Path: path, Value: v})
	}
	if g.IPForward != nil {
		add(model.IPForward, *g.IPForward)
	}
	if g.IPv6Forward != nil {
		add(model.IPv6Forward, *g.IPv6Forward)
	}
	for _, dev := range g.ProxyARP {
		add("net/ipv4/conf/"+dev+"/proxy_arp", true)
	}
	return out
}

// UnknownOriginalsWarning is the warning for the sysctls of want (the
// configuration's) that cur (the kernel's, with the record's originals)
// has as want sets them without a recorded original, when tunneld's
// objects were found without a sysctl record (model.Inputs.SysctlsUnknown):
// their values before tunneld are unknown, and down leaves them as they
// are. "" when there are none.
func UnknownOriginalsWarning(want, cur []model.Sysctl) string {
	var names []string
	for _, w := range want {
		for _, c := range cur {
			if c.Path == w.Path && c.Value == w.Value && c.Original == "" && c.Ours == nil {
				names = append(names, model.SysctlName(w.Path)+" = "+w.Value)
			}
		}
	}
	if len(names) == 0 {
		return ""
	}
	return "the state directory has no sysctl record, but the kernel has tunneld's tunnels, routes, rules or table " +
		"(kept at a stop with keep_on_exit, or by a crash, and the directory wiped since?): the values before tunneld of " +
		strings.Join(names, ", ") + ", already as the configuration sets them, are unknown, and `tunneld down` leaves them as they are: " +
		"after it, check them (sysctl NAME) and set by hand those tunneld had set"
}

// InputSysctls are the sysctls Build reads from Inputs.Sysctls (the
// scope's ReadSysctls), sorted: with ipv6_forward = true, the accept_ra
// of each device an IPv6 tunnel takes its local address from (see
// acceptRA).
func InputSysctls(c *config.Config) []string {
	if g := c.Global.IPv6Forward; g == nil || !*g {
		return nil
	}
	var out []string
	for _, t := range c.Tunnels {
		if t.LocalDev == "" || !t.Mode.OuterIPv6() {
			continue
		}
		if p := acceptRAPath(t.LocalDev); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func acceptRAPath(dev string) string { return "net/ipv6/conf/" + dev + "/accept_ra" }

// acceptRA warns about each device of InputSysctls whose accept_ra is 1:
// with IPv6 forwarding on, the kernel takes router advertisements only
// where it is 2, so an address SLAAC gave the device (a Debian WAN's)
// expires, and the tunnels that follow it go down. tunneld warns and
// leaves the value to the admin: how the device gets its address is not
// the configuration's to say (on OpenWrt odhcp6c, not the kernel, takes
// the advertisements). Only devices an IPv6 tunnel follows (local =
// "wan") are looked at: accept_ra is 1 on every device by default, and a
// warning for each LAN port that never hears an advertisement would be
// noise; a device an IPv4 tunnel follows (6in4) needs its IPv4 address,
// and a literal local address is the admin's to keep.
func (b *builder) acceptRA() {
	for _, p := range InputSysctls(b.c) {
		if b.in.Sysctls[p] == "1" {
			b.res.Warnings = append(b.res.Warnings, model.SysctlName(p)+" is 1: with ipv6_forward on, "+
				"the kernel ignores router advertisements there and the address from SLAAC expires; set it to 2")
		}
	}
}

// fallbacks sets down the fallback devices of the kinds tunneld's tunnels
// use: another kind's fallback device (an LVS real server's tunl0 up with
// its service address, on a box where tunneld only manages GRE or only
// routes) is not tunneld's to change.
func (b *builder) fallbacks() {
	kinds := map[string]bool{}
	for _, t := range b.c.Tunnels {
		kinds[t.Mode.Kind()] = true
	}
	for name, kind := range model.FallbackDevices {
		if d, ok := b.in.Devices[name]; ok && d.Up && d.Kind == kind && kinds[d.Kind] {
			b.res.Fallbacks = append(b.res.Fallbacks, name)
		}
	}
	slices.Sort(b.res.Fallbacks) // in name order; no sort of the map's keys instantiated for it
}

// IPv6DefaultMetric is the metric the kernel gives an IPv6 route added
// with none (IP6_RT_PRIO_USER); tunneld asks for it explicitly so that
// what it reads back matches.
const IPv6DefaultMetric = 1024

func metric(dst netip.Addr, m uint32) uint32 {
	if m == 0 && dst.Is6() {
		return IPv6DefaultMetric
	}
	return m
}
