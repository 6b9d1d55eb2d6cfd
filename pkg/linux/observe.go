package linux

import (
	"context"
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/iptun"
	"github.com/tunneld/tunneld/pkg/model"
)

// tunnelKinds are the link kinds tunneld manages.
var tunnelKinds = map[string]bool{"ipip": true, "gre": true, "sit": true, "ip6tnl": true}

// Observe implements kernel.Kernel: one dump each of links, addresses,
// routes and rules (others' rules in the scope's band are inputs), the
// sysctls in scope (and those it reads as inputs), and tunneld's
// nftables table. A record in the state directory that cannot be read
// is read as missing, with a warning (setAside).
func (k *Kernel) Observe(ctx context.Context, scope model.Scope) (model.State, model.Inputs, error) {
	var s model.State
	var in model.Inputs
	links, err := k.listLinks(k.scratch.links)
	if err != nil {
		return s, in, err
	}
	k.scratch.links = links
	addrs, err := k.listAddrs(k.scratch.addrs)
	if err != nil {
		return s, in, err
	}
	k.scratch.addrs = addrs
	// A tunnel being created when a crash came is tunneld's without
	// the alias (creatingFile), when it is the one recorded.
	creating, err := k.creatingRecord()
	if err != nil {
		return s, in, err
	}
	names := make(map[uint32]string, len(links))
	for _, l := range links {
		names[l.index] = l.name
	}
	devAddrs := deviceAddrs(addrs)
	in.Devices = make(map[string]model.Device, len(links))
	owned := make(map[uint32]bool, len(scope.Links))
	var ownedIdx []uint32 // the indexes of s.Links, in its order here
	if len(scope.Links) > 0 {
		s.Links = make([]model.Link, 0, len(scope.Links))
	}
	for _, l := range links {
		d := model.Device{Name: l.name, Index: int(l.index), Kind: l.kind, MTU: l.mtu, Up: l.up, Running: l.running, Stats: l.stats}
		d.Addrs, d.Unusable, d.LinkLocal = devAddrs.of(l.index), devAddrs.unusable[l.index], devAddrs.linkLocal[l.index]
		d.Secondary, d.Deprecated = devAddrs.ranks(l.index)
		if !tunnelKinds[l.kind] {
			if l.greRemote.IsValid() || l.greLocal.IsValid() {
				// Another kind of GRE device, to one remote or from
				// one address to any: what the filter lets through
				// (see greKind). Not the fallback gretap0, any to
				// any, which the filter guards against.
				d.Tunnel = &model.Link{Name: l.name, Mode: model.ModeGRE, Local: l.greLocal, Remote: l.greRemote}
			}
			in.Devices[l.name] = d
			continue
		}
		mode := scope.Links[l.name]
		ml, ok := linkFromData(l.kind, l.data, names, mode)
		// tunneld's by its alias; to this process, as a tunnel its last
		// observation found its own, the same device and tunnel, whose
		// alias someone changed since (Kernel.owned); or as the tunnel
		// it was creating when a crash came (creatingFile). Not by a
		// configured name and kind alone: a tester's reload that added
		// a tunnel of the name and kind of one made by hand took that
		// one over, changed it, and deleted it at the next reload
		// without the name.
		ours := l.alias == model.LinkAlias
		if o, seen := k.owned[l.name]; !ours && ok && seen && o.index == l.index {
			ours = o.kept || o.tunnel.is(l.kind, &ml)
		}
		if !ours && ok && len(creating) > 0 {
			// Only the tunnel that was being created: another of the
			// name (made by hand since) is foreign.
			ours = k.createdTunnel(creating, l.name, l.kind, &ml, scope)
		}
		if !ours && ok {
			ml.Name = l.name
			if sit, isSIT := l.data.(*iptun.SIT); isSIT && sit.Proto == 0 {
				// iproute2's default sit, mode any: IPv4 inside as
				// well as IPv6 (the filter accepts both from its
				// remote). tunneld's own are mode ip6ip.
				ml.Others.AnyProto = true
			}
			d.Tunnel, d.Alias = &ml, l.alias
		}
		in.Devices[l.name] = d
		if !ours || !ok {
			continue
		}
		ml.Name, ml.MTU, ml.Up, ml.Unmarked = l.name, l.mtu, l.up, l.alias != model.LinkAlias
		s.Links = append(s.Links, ml)
		owned[l.index] = true
		ownedIdx = append(ownedIdx, l.index)
	}
	clear(k.owned)
	for i := range s.Links {
		if k.owned == nil {
			k.owned = make(map[string]ownedLink, len(s.Links))
		}
		k.owned[s.Links[i].Name] = ownedLink{index: ownedIdx[i], tunnel: newCreatingEntry(s.Links[i])}
	}
	for _, a := range addrs {
		if owned[a.index] && !a.addr.Prefix.Addr().IsLinkLocalUnicast() {
			a.addr.Link = names[a.index]
			s.Addrs = append(s.Addrs, a.addr)
		}
	}
	if err := k.observeRoutes(&s, &in, names); err != nil {
		return s, in, err
	}
	if err := k.observeRules(&s, &in, scope); err != nil {
		return s, in, err
	}
	if err := k.observeSysctls(&s, scope, names); err != nil {
		return s, in, err
	}
	in.Sysctls = k.inputSysctls(scope.ReadSysctls)
	if k.nft != nil {
		if s.Filter, err = k.nft.Read(); err != nil {
			return s, in, err
		}
	}
	s.Sort()
	if err := ctx.Err(); err != nil {
		return s, in, err
	}
	if !k.observed {
		// The first observation, before this process changed anything:
		// tunneld's objects without a sysctl record are a previous
		// run's whose record is gone (a tester's keep_on_exit, then
		// rm -rf /run/tunneld: the next stop left ip_forward on
		// without a word).
		k.observed = true
		k.sysctlsUnknown = k.sysctlsNone && (len(s.Links) > 0 || len(s.Routes) > 0 || len(s.Rules) > 0 || s.Filter != nil)
	}
	in.SysctlsUnknown = k.sysctlsUnknown
	// The records' warnings are given once, by the observation that
	// read them (or the next one that works).
	in.Warnings, k.warnings = k.warnings, nil
	return s, in, nil
}

// addrsByDevice holds the addresses a device's own traffic can come from
// (universe scope, not tentative, duplicate address detection not
// failed) grouped by device index: the preferred primary ones first, then
// the preferred secondary (IPv6: temporary) ones, then the deprecated
// ones, each group in the kernel's order (IPv6: newest first), all in
// one array.
type addrsByDevice struct {
	span  map[uint32]int // device index → spans
	spans []addrSpan
	all   []netip.Prefix
	// unusable holds, by device index, the universe-scope addresses
	// left out for duplicate address detection (nil while there are
	// none, as there mostly are).
	unusable map[uint32][]model.UnusableAddr
	// linkLocal holds, by device index, the first IPv6 link-local
	// address it can send from (nil while there are none).
	linkLocal map[uint32]netip.Addr
}

// addrRanks is the number of groups in a device's span.
const addrRanks = 3

type addrSpan struct {
	start int
	n     [addrRanks]int // how many of each rank
}

// rank is the group an address goes in, or -1 for one left out.
func (a *observedAddr) rank() int {
	switch {
	case a.scope != unix.RT_SCOPE_UNIVERSE || a.unusable:
		return -1
	case a.deprecated:
		return 2
	case a.secondary:
		return 1
	}
	return 0
}

func deviceAddrs(addrs []observedAddr) addrsByDevice {
	g := addrsByDevice{span: map[uint32]int{}}
	for i := range addrs {
		a := &addrs[i]
		r := a.rank()
		if r < 0 {
			g.noteLinkLocal(a)
			if a.scope == unix.RT_SCOPE_UNIVERSE && a.unusable {
				if g.unusable == nil {
					g.unusable = map[uint32][]model.UnusableAddr{}
				}
				g.unusable[a.index] = append(g.unusable[a.index], model.UnusableAddr{Prefix: a.addr.Prefix, Failed: a.dadFailed})
			}
			continue
		}
		j, ok := g.span[a.index]
		if !ok {
			j = len(g.spans)
			g.span[a.index] = j
			g.spans = append(g.spans, addrSpan{})
		}
		g.spans[j].n[r]++
	}
	n := 0
	for i := range g.spans {
		g.spans[i].start = n
		for _, c := range g.spans[i].n {
			n += c
		}
	}
	g.all = make([]netip.Prefix, n)
	filled := make([][addrRanks]int, len(g.spans)) // how many of each are placed
	for i := range addrs {
		a := &addrs[i]
		r := a.rank()
		if r < 0 {
			continue
		}
		j := g.span[a.index]
		at := g.spans[j].start + filled[j][r]
		for k := range r {
			at += g.spans[j].n[k]
		}
		g.all[at] = a.addr.Prefix
		filled[j][r]++
	}
	return g
}

// noteLinkLocal keeps a's address as its device's link-local one if it
// is the first usable IPv6 link-local address seen there.
func (g *addrsByDevice) noteLinkLocal(a *observedAddr) {
	ip := a.addr.Prefix.Addr()
	if a.scope != unix.RT_SCOPE_LINK || a.unusable || !ip.Is6() || !ip.IsLinkLocalUnicast() {
		return
	}
	if _, ok := g.linkLocal[a.index]; ok {
		return
	}
	if g.linkLocal == nil {
		g.linkLocal = map[uint32]netip.Addr{}
	}
	g.linkLocal[a.index] = ip
}

// ranks returns how many of the device's addresses are secondary and
// deprecated (model.Device.Secondary, Deprecated).
func (g addrsByDevice) ranks(index uint32) (secondary, deprecated int) {
	i, ok := g.span[index]
	if !ok {
		return 0, 0
	}
	return g.spans[i].n[1], g.spans[i].n[2]
}

// of returns the addresses of the device with the given index (nil for
// none), capped so that appending to it copies.
func (g addrsByDevice) of(index uint32) []netip.Prefix {
	i, ok := g.span[index]
	if !ok {
		return nil
	}
	sp := g.spans[i]
	end := sp.start
	for _, c := range sp.n {
		end += c
	}
	return g.all[sp.start:end:end]
}

// observeRoutes reads tunneld's routes (every table) and the main table's
// other routes (the underlay, and the keys they hold), in two filtered dumps: a full dump would also
// carry the local table's entries for every address.
func (k *Kernel) observeRoutes(s *model.State, in *model.Inputs, names map[uint32]string) error {
	ours, err := k.listRoutes(k.scratch.routes[0], 0, model.RouteProtocol)
	if err != nil {
		return err
	}
	k.scratch.routes[0] = ours
	if len(ours) > 0 {
		s.Routes = make([]model.Route, 0, len(ours))
	}
	for _, r := range ours {
		if r.protocol == model.RouteProtocol {
			r.route.Dev = names[r.oif]
			s.Routes = append(s.Routes, r.route)
		}
	}
	main, err := k.listRoutes(k.scratch.routes[1], model.TableMain, 0)
	if err != nil {
		return err
	}
	k.scratch.routes[1] = main
	if len(main) > 0 {
		in.Routes = make([]model.UnderlayRoute, 0, len(main))
	}
	for _, r := range main {
		if r.protocol != model.RouteProtocol && r.route.Table == model.TableMain {
			in.Routes = append(in.Routes, model.UnderlayRoute{Dst: r.route.Dst, Via: r.route.Via, Dev: names[r.oif], Metric: r.route.Metric, Proto: r.protocol, Type: r.route.Type, Src: r.route.Src, Expired: r.expired})
		}
	}
	return nil
}

// observeRules reads tunneld's rules: protocol 116 and a priority in the
// scope's band or in one recorded as used (bandsFile); and, as inputs,
// the other IPv4 and IPv6 rules in the scope's band, and those of
// protocol 116 outside every band it owns (model.Inputs.StrayRules).
func (k *Kernel) observeRules(s *model.State, in *model.Inputs, scope model.Scope) error {
	recorded, err := k.ruleBands()
	if err != nil {
		return err
	}
	rules, err := k.listRules(k.scratch.rules, unix.AF_UNSPEC)
	if err != nil {
		return err
	}
	k.scratch.rules = rules
	for i := range rules {
		m := &rules[i]
		if m.attrs.protocol == model.RuleProtocol && scope.OwnsRule(recorded, m.attrs.priority) {
			if r, ok := fromRuleMsg(m); ok {
				s.Rules = append(s.Rules, r)
				continue
			}
		}
		if f, ok := foreignRule(m, scope.Band); ok {
			in.ForeignRules = append(in.ForeignRules, f)
			continue
		}
		if r, ok := strayRule(m); ok {
			in.StrayRules = append(in.StrayRules, r)
		}
	}
	model.SortForeignRules(in.ForeignRules)
	in.StrayRules = model.SortedRules(in.StrayRules)
	return nil
}

// strayRule is m as a rule of tunneld's protocol that is not tunneld's
// (model.Inputs.StrayRules): only an IPv4 or IPv6 one outside every band
// tunneld owns, of any action (one ip(8) has no word for, a `nat`
// rule's, is a '#' word: decodeRule). The caller has taken those in a
// band it owns.
func strayRule(m *ruleMsg) (model.Rule, bool) {
	if m.attrs.protocol != model.RuleProtocol || !m.attrs.hasProtocol || m.family != unix.AF_INET && m.family != unix.AF_INET6 {
		return model.Rule{}, false
	}
	r := decodeRule(m)
	r.Wire = "" // tunneld never deletes it
	return r, true
}

// foreignRule is m, a rule that is not tunneld's, as an input: only an
// IPv4 or IPv6 one inside band (a dump also holds the multicast routing
// rules, whose order is their own), and only when the kernel says its
// protocol. A kernel before 4.17 keeps none: tunneld's own rules come
// back without one, and taken for foreign they would have tunneld place
// its rules past themselves, adding one more at each converge.
func foreignRule(m *ruleMsg, band model.RuleBand) (model.ForeignRule, bool) {
	if !band.Contains(m.attrs.priority) || !m.attrs.hasProtocol {
		return model.ForeignRule{}, false
	}
	switch m.family {
	case unix.AF_INET:
		return model.ForeignRule{Priority: m.attrs.priority, Family: 4}, true
	case unix.AF_INET6:
		return model.ForeignRule{Priority: m.attrs.priority, Family: 6}, true
	}
	return model.ForeignRule{}, false
}

// observeSysctls reads the sysctls in scope and those with a recorded
// original; a recorded one whose file is gone (its device was removed) is
// reported with an empty value, so that a plan can forget it. A recorded
// copy of a forwarding sysctl (an interface's forwarding) is left out
// while the configuration sets that sysctl; once it no longer does, every
// such copy that exists is reported, recorded or not, since restoring the
// forwarding sysctl overwrites them all. Names are the devices by index:
// the record of a device renamed since moves to its new name first
// (kernel.SysctlRecord.Rekey).
func (k *Kernel) observeSysctls(s *model.State, scope model.Scope, names map[uint32]string) error {
	orig, err := k.originals()
	if err != nil {
		return err
	}
	indexed := false
	for _, e := range orig {
		indexed = indexed || e.Index != 0
	}
	if indexed && orig.Rekey(k.bootID(), func(i int) (string, bool) { n, ok := names[uint32(i)]; return n, ok }) {
		// Kept in memory if the file cannot be written: the record's
		// next write meets that error.
		_ = k.saveOriginals(orig)
	}
	paths := slices.Clone(scope.Sysctls)
	for p := range orig {
		if l := model.SysctlLeader(p); l != "" && slices.Contains(scope.Sysctls, l) {
			continue
		}
		if !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	for _, leader := range []string{model.IPForward, model.IPv6Forward} {
		if _, recorded := orig[leader]; !recorded || slices.Contains(scope.Sysctls, leader) {
			continue
		}
		for _, f := range k.copiesOf(leader) {
			if !slices.Contains(paths, f) {
				paths = append(paths, f)
			}
		}
	}
	for _, p := range paths {
		v, err := k.readSysctl(p)
		o, recorded := orig[p]
		switch {
		case err == nil:
			s.Sysctls = append(s.Sysctls, model.Sysctl{Path: p, Value: v, Original: o.Original, Ours: o.Ours})
		case recorded:
			s.Sysctls = append(s.Sysctls, model.Sysctl{Path: p, Original: o.Original, Ours: o.Ours})
		}
	}
	return nil
}

// DeviceAddrs implements kernel.AddrReader with one address dump. It
// leaves the last observation's links, which Apply takes device indexes
// from, as they are. The addresses left out for duplicate address
// detection (Device.Unusable) are not among what it returns: the short
// way follows usable addresses only.
func (k *Kernel) DeviceAddrs(ctx context.Context) (map[int]model.AddrList, error) {
	addrs, err := k.listAddrs(k.scratch.addrs)
	if err != nil {
		return nil, err
	}
	k.scratch.addrs = addrs
	g := deviceAddrs(addrs)
	out := make(map[int]model.AddrList, len(g.span))
	for index := range g.span {
		l := model.AddrList{Addrs: g.of(index)}
		l.Secondary, l.Deprecated = g.ranks(index)
		out[int(index)] = l
	}
	return out, ctx.Err()
}
