// Package desired computes, as a pure function, the kernel state a
// validated configuration asks for given what tunneld observed: the
// devices and their addresses, the underlay routes, DNS answers, and the
// tunnels that already exist.
package desired

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/model"
)

// Result is the desired state plus what explains it.
type Result struct {
	State model.State
	// Tunnels holds one status per configured tunnel, in name order.
	Tunnels []TunnelStatus
	// Notes are parts of the configuration that cannot be applied now
	// (a missing device, an unresolved name), one line each, object
	// first.
	Notes []string
	// Fallbacks are the kernel's fallback tunnel devices (tunl0, gre0, …)
	// that are up and must be set down.
	Fallbacks []string
	// Warnings are what the configuration, applied as it is, does that
	// an admin would not want and tunneld leaves to them to change
	// (see acceptRA), or parts it applies otherwise than they say (a
	// computed MTU raised to IPv6's minimum), one line each, after the
	// file's own (config.Config.Warnings: parts it ignores). Unlike a
	// note, a warning waits for nothing.
	Warnings []string
	// RulesLeftOut are the indexes ([[rule]] positions) of the rules
	// without a priority that found none free in the band, rules tunneld
	// does not own holding the rest: not in State, each with a warning.
	// Like a blocked tunnel, only the admin can make room.
	RulesLeftOut []int
}

// TunnelStatus says whether a tunnel can be up, and if not, why.
type TunnelStatus struct {
	Name string
	Up   bool
	// Reason is empty when Up.
	Reason string
	// Blocked is set when only the admin can bring the tunnel up: a
	// device tunneld does not own holds its name. The other reasons wait
	// for something that comes by itself (an address, a device, a DNS
	// answer).
	Blocked bool
	// Local and Remote are the endpoints the configuration gives, as far
	// as they are known now (a followed device's address, a DNS answer),
	// also when the tunnel cannot be up; invalid when unknown or "any".
	Local, Remote netip.Addr
	// Held are the unreachable routes in State that stand, while the
	// tunnel is not up, in the place of the configured routes through
	// it (see hold); Withdrawn the routes through it left out instead,
	// with why. Both are empty when Up.
	Held      []model.Route    `json:",omitempty"`
	Withdrawn []WithdrawnRoute `json:",omitempty"`
	// Refused is set when the kernel refused the tunnel's creation or
	// setting up in this converge (model.Inputs.Refused): Reason says
	// how, and the converge's error has the refusal too.
	Refused bool `json:",omitempty"`
	// Standing, for a tunnel up in the desired state but missing or
	// down in the kernel, are the unreachable routes tunneld has there
	// that stand for the routes through it (the plan replaces them once
	// it has created it or set it up; see standing).
	Standing []model.Route `json:",omitempty"`
	// Dropping is set on an up tunnel that cannot carry every packet
	// its MTU lets in, and says which it drops and why: an ip6ip6
	// tunnel, or a gre tunnel with pmtudisc, whose underlay leaves less
	// than IPv6's minimum 1280 after the overhead ("IPv6 packets over
	// 1252 bytes are dropped: the underlay wan's mtu 1300 is too small
	// (1328 needed)"; gre adds ", and forwarded IPv4 ones without DF" after
	// "dropped"; see shortfall).
	Dropping string `json:",omitempty"`
	// LocalGuess is set on a tunnel that follows a device whose local
	// address was a guess (localFor: nothing decided among the device's
	// addresses): the short way, reading addresses alone, does not move
	// a tunnel by one; the converge, with the routes, does.
	LocalGuess bool `json:",omitempty"`
	// Looped is set on a tunnel whose packets to its remote go into the
	// tunnel itself: a route through it holds the remote, and table
	// main has no route to the remote by the underlay for its host route
	// (the WAN's default route gone; a tester's status said up).
	Looped string `json:",omitempty"`
	// LocalAbsent is set on an up tunnel whose local address, given as
	// an address, no device of the box can send from, and says why
	// (pinnedAbsent).
	LocalAbsent string `json:",omitempty"`
}

// Build computes the desired state. cur is the owned state observed now
// (used to keep an existing tunnel while its local device has no address).
func Build(c *config.Config, in model.Inputs, cur model.State) Result {
	// The observed links are looked up by name in their order (an
	// observation comes in it: then this is one pass).
	cur.Links = model.SortedLinks(cur.Links)
	b := &builder{c: c, in: in, cur: cur, links: make(map[string]int, len(c.Tunnels))}
	b.presize()
	// The file's own warnings (config.Config.Warnings) come first: plan,
	// apply, status and the daemon's log say them with the rest.
	b.res.Warnings = slices.Clone(c.Warnings)
	for _, t := range c.Tunnels {
		b.tunnel(t)
	}
	b.boundToDown()
	b.addrs()
	b.routes()
	b.standing()
	b.foreignKeys()
	b.rules()
	b.hostRoutes()
	b.astray()
	b.sysctls()
	b.acceptRA()
	b.fallbacks()
	if c.Global.Firewall {
		b.res.State.Filter = b.filter()
	}
	b.foreignTableRules()
	b.res.Warnings = append(b.res.Warnings, SourceWarnings(c)...)
	b.res.State.Sort()
	return b.res
}

// presize gives the result's slices room for what the configuration
// names, so that a thousand tunnels are not appended in growing copies.
// Empty ones stay nil.
func (b *builder) presize() {
	addrs := 0
	for _, t := range b.c.Tunnels {
		addrs += len(t.Addresses)
	}
	if n := len(b.c.Tunnels); n > 0 {
		b.res.Tunnels = make([]TunnelStatus, 0, n)
		b.res.State.Links = make([]model.Link, 0, n)
	}
	if addrs > 0 {
		b.res.State.Addrs = make([]model.Addr, 0, addrs)
	}
	if n := len(b.c.Routes); n > 0 {
		b.res.State.Routes = make([]model.Route, 0, n)
	}
	if n := len(b.c.Rules); n > 0 {
		b.res.State.Rules = make([]model.Rule, 0, n)
	}
}

type builder struct {
	c   *config.Config
	in  model.Inputs
	cur model.State
	res Result
	// links indexes res.State.Links by name.
	links map[string]int
	// byDev caches routesVia(), srcIndex sources().
	byDev    map[string][]config.Route
	srcIndex *sourceIndex
	// boxAddrs and tunnelAddrs index the addresses of the devices that
	// are not the file's tunnels and of those that are, for
	// pinnedAbsent, made at its first call that needs each.
	boxAddrs, tunnelAddrs map[netip.Addr]addrHolder
	// underlayRoutes caches underlay().
	underlayRoutes []model.UnderlayRoute
	underlayDone   bool
}

func (b *builder) note(format string, args ...any) {
	b.res.Notes = append(b.res.Notes, fmt.Sprintf(format, args...))
}

func (b *builder) current(name string) (model.Link, bool) {
	i, ok := model.LinkNamed(b.cur.Links, name)
	if !ok {
		return model.Link{}, false
	}
	return b.cur.Links[i], true
}

// up reports whether the tunnel's link is in the desired state and up.
func (b *builder) up(name string) bool {
	l, ok := b.present(name)
	return ok && l.Up
}

// routable reports whether routes can go through the tunnel now: it is up
// in the desired state, the kernel did not refuse it in this converge
// (model.Inputs.Refused), and, when the daemon holds back its repairs
// (model.Inputs.HeldTunnels), it is up in the kernel too (a held tunnel
// that someone else deleted or set down stays so until the hold ends).
func (b *builder) routable(name string) bool {
	if _, refused := b.in.Refused[name]; refused || !b.up(name) {
		return false
	}
	if !b.in.HeldTunnels[name] {
		return true
	}
	l, ok := b.current(name)
	return ok && l.Up
}

// addLink puts a link into the desired state.
func (b *builder) addLink(l model.Link) {
	b.links[l.Name] = len(b.res.State.Links)
	b.res.State.Links = append(b.res.State.Links, l)
}

func (b *builder) tunnel(t *config.Tunnel) {
	remote, why2 := b.remoteAddr(t)
	local, guess, why := b.localAddr(t, remote)
	st := TunnelStatus{Name: t.Name, Local: local, Remote: remote, LocalGuess: guess}
	if taken := b.nameTaken(t); taken != "" {
		// Creating the link fails, and its addresses, its up state and
		// the routes through it would land on the device holding the
		// name, which is not tunneld's. The endpoints stay in the status:
		// they are what the tunnel would have.
		st.Reason, st.Blocked = taken, true
		b.res.Tunnels = append(b.res.Tunnels, st)
		return
	}
	if why == "" {
		why = why2
	}
	if why == "" && t.RemoteHost != "" && remote != local {
		if dev := b.holder(remote); dev != "" {
			// A name pointing at the router itself (its own dynamic
			// DNS name, say): the tunnel would talk to this box (a
			// tester's).
			why = fmt.Sprintf("remote %s resolves to %s, an address of this box's (%s): the remote is the other end", t.RemoteHost, remote, dev)
		}
	}
	if why == "" && local.IsValid() && local == remote {
		// A name that resolves to the local address, or a device whose
		// address is the remote: the kernel takes it, and the tunnel
		// talks to itself (a tester's).
		why = fmt.Sprintf("local and remote are both %s: the remote is the other end", local)
	}
	if why == "" {
		why = b.underlayGone(t)
	}
	if why != "" {
		st.Reason = why
		b.res.Tunnels = append(b.res.Tunnels, st)
		// Keep an existing tunnel, down, so that its counters, addresses
		// and the ifindex others refer to survive until the input returns.
		if l, ok := b.current(t.Name); ok && l.Mode == t.Mode {
			l.Up = false
			b.addLink(l)
		}
		return
	}
	l := model.Link{
		Name: t.Name, Mode: t.Mode, Local: local, Remote: remote, Dev: t.Dev,
		TTL: t.TTL, TOS: t.TOS, PMTUDisc: t.PMTUDisc,
		IKey: t.IKey, OKey: t.OKey, HasIKey: t.HasIKey, HasOKey: t.HasOKey,
		MTU: t.MTU, Up: true,
	}
	if t.Mode.OuterIPv6() {
		l.EncapLimit = t.EncapLimit
		l.PMTUDisc = false // ip6tnl has no such parameter
	}
	under, underDev := b.underlayMTU(t, remote)
	if l.MTU == 0 {
		l.MTU = b.computedMTU(t, under)
	}
	st.Dropping = b.shortfall(t, under, underDev, l.MTU)
	st.LocalAbsent = b.pinnedAbsent(t)
	st.Up = true
	if why := b.underlayDown(t); why != "" {
		// Made, or kept, down: the routes through it are withdrawn
		// to a failover, or stand unreachable, as for a tunnel whose
		// local device lost its address.
		l.Up, st.Up, st.Reason, st.Dropping = false, false, why, ""
	}
	if why, refused := b.in.Refused[t.Name]; refused {
		// The kernel refused it in this converge: not up, and not
		// routable (see routable). It stays in the desired state as
		// it is, so that the plan tries it again and nothing keyed on
		// it (the filter, its host route) changes with the refusal.
		st.Up, st.Reason, st.Dropping, st.Refused = false, why, "", true
		if cur, ok := b.current(t.Name); ok && !cur.SameTunnel(l) {
			// Refused a move to its endpoints: the kernel keeps it
			// between the old ones, with a peer the configuration
			// no longer names. Set down, not left up sending there.
			l.Up = false
		}
	}
	b.res.Tunnels = append(b.res.Tunnels, st)
	b.addLink(l)
}

// holder is the device that has the address a, or whose IPv4 subnet's
// broadcast address it is (a tester's name answering 10.1.1.255), in
// words ("lan0", "lan0's subnet's broadcast"); "" for none. The devices
// are looked at in name order, for a stable answer.
func (b *builder) holder(a netip.Addr) string {
	var found, what string
	for name, d := range b.in.Devices {
		if found != "" && name > found {
			continue
		}
		for _, p := range d.Addrs {
			switch {
			case p.Addr() == a:
				found, what = name, name
			case a.Is4() && p.Addr().Is4() && p.Bits() < 31 && broadcast(p) == a:
				found, what = name, name+"'s subnet's broadcast"
			default:
				continue
			}
			break
		}
	}
	return what
}

// broadcast is the broadcast address of the IPv4 prefix p.
func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(b)
}

// nameTaken says why the tunnel's name is held by a device tunneld does
// not own (one that is not among the owned links observed: the LAN port,
// lo, a tunnel of another kind), or "". Nothing keyed on the name may be
// built then: the link's creation fails, and its addresses, up state,
// routes and filter rules would land on that device.
func (b *builder) nameTaken(t *config.Tunnel) string {
	if _, owned := b.current(t.Name); owned {
		return ""
	}
	d, exists := b.in.Devices[t.Name]
	if !exists {
		return ""
	}
	what := "a device"
	if d.Kind != "" {
		what = "a " + d.Kind + " device"
		if strings.ContainsRune("aeiou", rune(d.Kind[0])) {
			what = "an " + d.Kind + " device" // an ipip device
		}
	}
	if d.Tunnel != nil || d.Kind == t.Mode.Kind() {
		// A tunnel made by hand, perhaps the one the configuration
		// replaces (ip tunnel add in a start script), or tunneld's own
		// whose alias someone changed: tunneld never takes it over, nor
		// deletes it; the alias gives it back.
		alias := "without tunneld's alias"
		if d.Alias != "" {
			alias = fmt.Sprintf("with the alias %q, not tunneld's", d.Alias)
		}
		return fmt.Sprintf("the name %s is taken by %s %s, which tunneld does not own: give the tunnel another name, or delete that device (ip link del %s); "+
			"if it is tunneld's own and someone changed its alias, give it back: ip link set %s alias %s (busybox ip: echo %s > /sys/class/net/%s/ifalias)", t.Name, what, alias, model.LinkArg(t.Name), model.LinkArg(t.Name), model.LinkAlias, model.LinkAlias, t.Name)
	}
	return fmt.Sprintf("the name %s is taken by %s tunneld does not own: give the tunnel another name", t.Name, what)
}

// underlayGone says why the device the tunnel is bound to (its dev) is
// missing, or "": the kernel would refuse the link, and its addresses and
// routes would each fail after it. A dev naming another configured
// tunnel is created in this same round.
func (b *builder) underlayGone(t *config.Tunnel) string {
	if t.Dev == "" || b.c.TunnelByName(t.Dev) != nil {
		return ""
	}
	if _, ok := b.in.Devices[t.Dev]; ok {
		return ""
	}
	return fmt.Sprintf("device %s (dev) does not exist", t.Dev)
}

// underlayDown says that the device the tunnel is bound to (its dev) is
// down or has no carrier, or "": nothing the tunnel sends can leave. A
// tester's bound tunnel whose WAN went down with its address kept stayed
// up, and the routes through it too: the failover route the
// configuration gave never took over, and the LAN's packets died in the
// tunnel. A dev naming another configured tunnel is that tunnel's.
func (b *builder) underlayDown(t *config.Tunnel) string {
	if t.Dev == "" || b.c.TunnelByName(t.Dev) != nil {
		return ""
	}
	d, ok := b.in.Devices[t.Dev]
	switch {
	case !ok:
		return "" // underlayGone's
	case !d.Up:
		return fmt.Sprintf("device %s (dev) is down", t.Dev)
	case !d.Running:
		return fmt.Sprintf("device %s (dev) has no carrier", t.Dev)
	}
	return ""
}

// boundToDown sets down each up tunnel bound to a configured tunnel
// (its dev) that is not up, as underlayDown does one bound to a device
// that is down, and so on down a chain of them: a tester's gre tunnel
// bound to an ipip tunnel that lost its WAN's carrier stayed up, the
// route through it too, and the failover never took over. The tunnels
// are looked at again until none changes, as one may be bound to a
// tunnel listed after it. Their addresses come after (addrs).
func (b *builder) boundToDown() {
	for changed := true; changed; {
		changed = false
		for _, t := range b.c.Tunnels {
			if t.Dev == "" || b.c.TunnelByName(t.Dev) == nil || !b.up(t.Name) || b.up(t.Dev) {
				continue
			}
			b.res.State.Links[b.links[t.Name]].Up = false
			if i := slices.IndexFunc(b.res.Tunnels, func(s TunnelStatus) bool { return s.Name == t.Name }); i >= 0 {
				st := &b.res.Tunnels[i]
				st.Up, st.Reason, st.Dropping = false, fmt.Sprintf("tunnel %s (dev) is not up", t.Dev), ""
			}
			changed = true
		}
	}
}

// addrs puts the addresses of each tunnel in the desired state there,
// once every tunnel's up state is settled (boundToDown); on a tunnel that
// is down, not its IPv6 addresses with a peer: added to a down device,
// such an address never gets its route to the peer (see plan's upFirst),
// and setting a tunnel down deletes its IPv6 addresses
// (net.ipv6.conf.*.keep_addr_on_down, off by default), which the plan
// would add again while it is down. They come when it is up.
func (b *builder) addrs() {
	for _, t := range b.c.Tunnels {
		l, ok := b.present(t.Name)
		if !ok {
			continue
		}
		for _, a := range t.Addresses {
			if l.Up || !a.Peer.Is6() {
				b.res.State.Addrs = append(b.res.State.Addrs, a)
			}
		}
	}
}

// computedMTU is the MTU of a tunnel the configuration gives none: the
// underlay's (under) minus the overhead, but at least IPv6's minimum on a
// tunnel that carries IPv6, with a warning: the kernel turns IPv6 off on
// a device with a smaller MTU (its addresses go, and IPv6 through the
// tunnel silently stops). Outer packets may then exceed the underlay's
// MTU: sit clears DF below 1280 and they are fragmented, the trade-off
// OpenWrt's 6in4, 6rd and dslite make with their default mtu 1280, and
// so does gre without pmtudisc; an ip6ip6 tunnel, and a gre tunnel with
// pmtudisc, do not fragment them (see dropsOversize), and shortfall
// says so instead.
func (b *builder) computedMTU(t *config.Tunnel, under int) int {
	over := Overhead(t)
	mtu := under - over
	if mtu < model.IPv6MinMTU && b.c.CarriesIPv6(t) {
		if !dropsOversize(t) {
			b.res.Warnings = append(b.res.Warnings, fmt.Sprintf("tunnel %q: computed mtu %d (underlay %d minus overhead %d) is below IPv6's minimum %d: using %d",
				t.Name, mtu, under, over, model.IPv6MinMTU, model.IPv6MinMTU))
		}
		mtu = model.IPv6MinMTU
	}
	return mtu
}

// dropsOversize reports whether the kernel drops the tunnel's outer
// packets that are larger than the underlay's MTU rather than fragment
// them. ip6tnl (ipip6, ip6ip6) never fragments them. ipip and gre with
// pmtudisc put DF on every outer packet (ip_tunnel_xmit copies the
// tunnel's frag_off into the outer header), and the IPv4 output drops a
// DF packet over the route's MTU (ip_fragment); without pmtudisc the
// outer packets are fragmented. sit clears DF on its own when the
// underlay minus the overhead is below 1280 (ipip6_tunnel_xmit), so it
// fragments where it matters, pmtudisc or not. (An underlay route with a
// locked mtu clears DF too; tunneld does not look.)
func dropsOversize(t *config.Tunnel) bool {
	switch {
	case t.Mode.OuterIPv6():
		return true
	case t.Mode == model.ModeSIT:
		return false
	}
	return t.PMTUDisc
}

// shortfall says which packets an up tunnel drops, "" when none: one
// that carries IPv6, does not fragment its outer packets (dropsOversize:
// ip6ip6, gre with pmtudisc) and whose underlay (under, the MTU of the
// device dev) leaves less than IPv6's minimum 1280 after the overhead.
// Its MTU is 1280 all the same (computed or given: the kernel turns IPv6
// off below it), but the tunnel sends no usable Packet Too Big for what
// the underlay cannot take: ip6tnl sends one with an MTU below 1280,
// which hosts ignore, and gre none at all below 1280 (tnl_update_pmtu).
// Every IPv6 packet between under-overhead and 1280 bytes is dropped,
// path MTU discovery never recovers, and TCP clamped to 1280 dies too (a
// tester saw ping6 -s 1232 and up lose all over a 1300 underlay, with
// status up and no drift). gre drops the forwarded IPv4 packets without
// DF in that range as well (they are not fragmented below the tunnel's
// MTU, and nothing tells their sender); those with DF get a Fragmentation
// Needed and shrink. The router's own IPv4 packets without DF lose only
// the first one to a destination: the kernel then fragments them at the
// path MTU it learned (seen in the VM). A sit tunnel clears DF below 1280 and its outer IPv4
// packets are fragmented, as are gre's without pmtudisc, so they have no
// such gap; ipip and ipip6 carry IPv4 only, whose minimum is far below.
// The warning says what to do: raise the underlay's MTU to 1280 plus the
// overhead (or, when that is enough, stop sending the 8-byte
// encapsulation limit option; on gre, set pmtudisc = false).
func (b *builder) shortfall(t *config.Tunnel, under int, dev string, mtu int) string {
	over := Overhead(t)
	fits := under - over
	if !dropsOversize(t) || !b.c.CarriesIPv6(t) || fits >= model.IPv6MinMTU || fits >= mtu {
		return ""
	}
	need := model.IPv6MinMTU + over
	underlay := "the underlay's mtu"
	if dev != "" {
		underlay = "the underlay " + dev + "'s mtu"
	}
	how := fmt.Sprintf("raise %s to at least %d", underlay, need)
	if t.Mode.OuterIPv6() && t.EncapLimit >= 0 && fits+8 >= model.IPv6MinMTU {
		how += `, or set encaplimit = "none" (8 bytes less overhead)`
	}
	why := fmt.Sprintf("%s does not fragment its outer packets", t.Mode)
	dropped := fmt.Sprintf("IPv6 packets over %d bytes", fits)
	also := ""
	if !t.Mode.OuterIPv6() {
		why = fmt.Sprintf("%s sets DF on its outer packets (pmtudisc = true), so the kernel does not fragment them", t.Mode)
		also = ", and forwarded IPv4 ones without DF"
		how += ", or set pmtudisc = false (the kernel then fragments the outer packets)"
	}
	var given string
	if t.MTU == 0 {
		given = fmt.Sprintf("computed mtu %d (underlay %d minus overhead %d) is below IPv6's minimum %d: using %d", fits, under, over, model.IPv6MinMTU, mtu)
	} else {
		given = fmt.Sprintf("mtu %d is above what the underlay carries (%d minus overhead %d: %d)", mtu, under, over, fits)
	}
	b.res.Warnings = append(b.res.Warnings, fmt.Sprintf("tunnel %q: %s, but %s: %s through it are dropped%s; %s",
		t.Name, given, why, dropped, also, how))
	return fmt.Sprintf("%s are dropped%s: %s %d is too small (%d needed)", dropped, also, underlay, under, need)
}

// Overhead is the bytes the tunnel's encapsulation adds: the mode's
// header, plus 8 for the encapsulation-limit option of an ip6tnl that
// sends one (the kernel subtracts it too).
func Overhead(t *config.Tunnel) int {
	o := t.Mode.Overhead(t.HasOKey)
	if t.Mode.OuterIPv6() && t.EncapLimit >= 0 {
		o += 8
	}
	return o
}

func outerFamily(t *config.Tunnel, a netip.Addr) bool { return a.Is6() == t.Mode.OuterIPv6() }

func familyWord(t *config.Tunnel) string {
	if t.Mode.OuterIPv6() {
		return "IPv6"
	}
	return "IPv4"
}

// localAddr resolves the tunnel's local endpoint, for one that follows a
// device the address the kernel would send to remote from (localFor;
// guess when nothing decided it); a non-empty reason means it cannot be
// known now.
func (b *builder) localAddr(t *config.Tunnel, remote netip.Addr) (local netip.Addr, guess bool, why string) {
	if t.LocalDev == "" {
		return t.Local, false, ""
	}
	d, ok := b.in.Devices[t.LocalDev]
	if !ok {
		return netip.Addr{}, false, fmt.Sprintf("local device %s does not exist", t.LocalDev)
	}
	if b.in.AddrsUnread {
		return netip.Addr{}, false, fmt.Sprintf("it follows the %s address of %s, which --from-empty does not read (plan without it, as root or with CAP_NET_ADMIN, shows the tunnel)", familyWord(t), t.LocalDev)
	}
	var cur netip.Addr
	if l, ok := b.current(t.Name); ok {
		cur = l.Local
	}
	if a, guess, ok := localFor(d, t.Mode.OuterIPv6(), remote, cur, b.in.Routes); ok {
		return a, guess, ""
	}
	if why := unusableWhy(t, d.Unusable); why != "" {
		return netip.Addr{}, false, fmt.Sprintf("local device %s has no usable %s address%s", t.LocalDev, familyWord(t), why)
	}
	if t.Mode.OuterIPv6() && d.LinkLocal.IsValid() {
		return netip.Addr{}, false, linkLocalOnly(t, d.LinkLocal)
	}
	return netip.Addr{}, false, fmt.Sprintf("local device %s has no %s address", t.LocalDev, familyWord(t))
}

// linkLocalOnly is the reason of a tunnel whose local device has no
// IPv6 address but link-local ones: those are never followed, which "has
// no IPv6 address" left an admin who saw fe80::… on the device to guess.
// A tunnel to a link-local remote can name the address itself (its dev
// is required then).
func linkLocalOnly(t *config.Tunnel, ll netip.Addr) string {
	why := fmt.Sprintf("local device %s has only a link-local IPv6 address (%s), which is never followed", t.LocalDev, ll)
	if t.Remote.IsLinkLocalUnicast() {
		why += fmt.Sprintf(": for a tunnel between link-local addresses, write local = %q", ll.String())
	}
	return why
}

// unusableWhy words the addresses of the tunnel's outer family that
// duplicate address detection keeps from being followed, for the end of
// a reason: ` yet (2001:db8::5 is in duplicate address detection)`, the
// "yet" only when one of them may still pass; "" for none.
func unusableWhy(t *config.Tunnel, unusable []model.UnusableAddr) string {
	var whys []string
	yet := ""
	for _, u := range unusable {
		if !outerFamily(t, u.Prefix.Addr()) {
			continue
		}
		whys = append(whys, u.Prefix.Addr().String()+" "+u.Why())
		if !u.Failed {
			yet = " yet"
		}
	}
	if len(whys) == 0 {
		return ""
	}
	return yet + " (" + strings.Join(whys, ", ") + ")"
}

// remoteAddr resolves the tunnel's remote endpoint; a non-empty reason
// means it cannot be known now. Of a name's addresses, the one the
// tunnel has is kept while the name still gives it (a DS-Lite AFTR's NAT
// state is lost with a move to another); else the lowest of the family,
// whatever order the answer came in, so that `apply` and the daemon,
// which ask separately, pick the same one.
func (b *builder) remoteAddr(t *config.Tunnel) (netip.Addr, string) {
	if t.RemoteHost == "" {
		return t.Remote, ""
	}
	answers := b.in.Resolved[t.RemoteHost]
	if l, ok := b.current(t.Name); ok && l.Remote.IsValid() && outerFamily(t, l.Remote) && slices.Contains(answers, l.Remote) {
		return l.Remote, ""
	}
	var lowest, unusable netip.Addr
	for _, a := range answers {
		switch {
		case !outerFamily(t, a):
		case a.IsUnspecified() || a.IsLoopback() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			// A DNS blocker's answer (0.0.0.0, ::, 127.0.0.1) is no
			// peer: taken, the kernel kept any, and the tunnel
			// never matched (a tester's sinkholed name).
			unusable = a
		case !lowest.IsValid() || a.Less(lowest):
			lowest = a
		}
	}
	if lowest.IsValid() {
		return lowest, ""
	}
	if unusable.IsValid() {
		return netip.Addr{}, fmt.Sprintf("remote %s resolves to %s, which is no peer's address (a DNS blocker's answer?)", t.RemoteHost, unusable)
	}
	if len(answers) > 0 {
		other := make([]string, len(answers))
		for i, a := range answers {
			other[i] = a.String()
		}
		return netip.Addr{}, fmt.Sprintf("remote %s has no %s address (it resolves to %s only)", t.RemoteHost, familyWord(t), strings.Join(other, ", "))
	}
	return netip.Addr{}, fmt.Sprintf("remote %s has no %s address (not resolved yet)", t.RemoteHost, familyWord(t))
}

// underlayMTU is the MTU of the device the tunnel's packets leave by,
// and its name ("" when none is known: then 1500): its dev, or that of
// main's route to the remote (by the followed device where main has one:
// underlayTo), or the followed device.
func (b *builder) underlayMTU(t *config.Tunnel, remote netip.Addr) (int, string) {
	dev := t.Dev
	if dev == "" && remote.IsValid() {
		if r, ok := b.underlayTo(t, remote); ok {
			dev = r.Dev
		}
	}
	if dev == "" {
		dev = t.LocalDev
	}
	if d, ok := b.in.Devices[dev]; ok && d.MTU > 0 {
		return d.MTU, dev
	}
	return 1500, ""
}

// underlay is the main table without routes through tunneld's tunnels.
func (b *builder) underlay() []model.UnderlayRoute {
	if b.underlayDone {
		return b.underlayRoutes
	}
	b.underlayDone = true
	out := make([]model.UnderlayRoute, 0, len(b.in.Routes))
	for _, r := range b.in.Routes {
		if b.c.TunnelByName(r.Dev) == nil {
			out = append(out, r)
		}
	}
	b.underlayRoutes = out
	return out
}
