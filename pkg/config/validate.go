package config

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/tunneld/tunneld/pkg/model"
)

// validate runs the checks that span sections.
func (d *decoder) validate(c *Config) {
	d.duplicateTunnels(c)
	d.duplicateRoutes(c)
	d.sameRules(c)
	d.duplicateRules(c)
	d.rulesFit(c)
	for _, r := range c.Routes {
		if !r.ViaPeer || !r.To.IsValid() {
			continue
		}
		tun := c.TunnelByName(r.Dev)
		if _, ok := PeerOf(tun, r.To.Addr().Is6()); !ok {
			d.errorf(keyPath("route").index(r.Index).key("via"),
				`tunnel %q has no %s address with a peer ("A peer B", or a %s) to route via`, tun.Name, familyName(r.To.Addr()), pointToPoint(r.To.Addr()))
		}
	}
	for _, f := range c.Forwards {
		if f.Tunnel != "" && c.TunnelByName(f.Tunnel) == nil && !d.undecodedTunnels[f.Tunnel] {
			d.errorf(keyPath("forward").index(f.Index).key("tunnel"), "unknown tunnel %q", f.Tunnel)
		}
	}
	d.ipv6MTU(c)
	d.ignoredFilter(c)
	d.nearTunnels(c)
	d.noSources(c)
}

// noSources warns about an empty allowed_sources: valid, it makes the
// tunnel's spoof chain drop everything that comes out of it, which an
// admin writing [] for "no restriction" does not mean (a tester's).
func (d *decoder) noSources(c *Config) {
	if !c.Global.Firewall {
		return // ignoredFilter names it
	}
	for _, t := range c.Tunnels {
		if t.AllowedSources == nil || len(t.AllowedSources) > 0 {
			continue
		}
		p := tunnelPath(t.Name).key("allowed_sources")
		at := d.where(p, false)
		w := &Error{File: d.file, Line: at.Line, Col: at.Col, Path: string(p),
			Msg: `is empty: every packet from the tunnel is dropped (leave the option out for the default, its peers and the destinations routed into it; ["0.0.0.0/0", "::/0"] allows any source)`}
		c.Warnings = append(c.Warnings, w.Error())
	}
}

// ignoredFilter warns, with firewall = false, about the sections and
// tunnel options that only tunneld's nftables table does ([[forward]],
// [[masquerade]], [[redirect]], a tunnel's forward = "drop",
// allowed_sources, mss_clamp = true): they are valid, and read, but
// nothing is made of them, which the file does not say where they are.
// One warning, at firewall, names them all.
func (d *decoder) ignoredFilter(c *Config) {
	if c.Global.Firewall {
		return
	}
	var what []string
	for _, s := range []struct {
		name string
		n    int
	}{{"[[forward]]", len(c.Forwards)}, {"[[masquerade]]", len(c.Masquerades)}, {"[[redirect]]", len(c.Redirects)}} {
		switch {
		case s.n == 1:
			what = append(what, s.name+" (1 section)")
		case s.n > 1:
			what = append(what, fmt.Sprintf("%s (%d sections)", s.name, s.n))
		}
	}
	if len(d.filterOptions) > 0 {
		what = append(what, "tunnel "+strings.Join(d.filterOptions, ", tunnel "))
	}
	if len(what) == 0 {
		return
	}
	p := keyPath("global").key("firewall")
	at := d.where(p, false)
	w := &Error{File: d.file, Line: at.Line, Col: at.Col, Path: string(p),
		Msg: "is false, so these are ignored (only tunneld's nftables table does them): " + strings.Join(what, ", ")}
	c.Warnings = append(c.Warnings, w.Error())
}

// ipv6MTU refuses an mtu below IPv6's minimum on a tunnel that carries
// IPv6 (see CarriesIPv6, which needs the routes, rules and forwards read):
// the kernel's addrconf turns IPv6 off on such a device, dropping its
// IPv6 addresses, and IPv6 through the tunnel would silently stop. An
// IPv4-only tunnel keeps the range 68–65535.
func (d *decoder) ipv6MTU(c *Config) {
	for _, t := range c.Tunnels {
		if t.MTU != 0 && t.MTU < model.IPv6MinMTU && c.CarriesIPv6(t) {
			d.errorf(tunnelPath(t.Name).key("mtu"), "%d is below %d, IPv6's minimum, and the tunnel carries IPv6: the kernel turns IPv6 off on a device with a smaller mtu", t.MTU, model.IPv6MinMTU)
		}
	}
}

// duplicateRoutes finds two routes with one table, destination and
// metric: the kernel keeps one route per such key, so tunneld would
// replace one with the other on every pass and never converge. An IPv6
// route's metric 0 is the kernel's 1024.
func (d *decoder) duplicateRoutes(c *Config) {
	type key struct {
		table  uint32
		to     netip.Prefix
		metric uint32
	}
	seen := map[key]int{}
	for _, r := range c.Routes {
		if !r.To.IsValid() || r.Table == 0 { // 0: its table was refused, and said so
			continue
		}
		k := key{r.Table, r.To, r.Metric}
		if k.metric == 0 && r.To.Addr().Is6() {
			k.metric = 1024 // the kernel's default for IPv6
		}
		first, ok := seen[k]
		if !ok {
			seen[k] = r.Index
			continue
		}
		at := d.where(keyPath("route").index(first), true)
		d.errorf(keyPath("route").index(r.Index).key("to"),
			"same destination, table and metric as route[%d] (line %d): the kernel keeps one route for them (give one a different metric)", first, at.Line)
	}
}

// sameRules finds two rules at one explicit priority that the kernel
// takes for the same rule: it compares the priority, table, iif, oif and
// mark exactly, but a from or to the rule being added leaves out matches
// any. It would refuse the second as existing, and tunneld would never
// see it in place.
func (d *decoder) sameRules(c *Config) {
	covers := func(a, b netip.Prefix) bool { return !a.IsValid() || !b.IsValid() || a == b }
	// The earlier rules at each explicit priority: a thousand rules, each
	// at its own priority, compare none with each other.
	at := map[uint32][]Rule{}
	for _, b := range c.Rules {
		if b.Priority == 0 {
			continue
		}
		earlier := at[b.Priority]
		at[b.Priority] = append(earlier, b)
		for _, a := range earlier {
			if a.Family != b.Family || a.Table != b.Table || a.IIF != b.IIF || a.OIF != b.OIF ||
				a.HasMark != b.HasMark || a.Mark != b.Mark || a.Mask != b.Mask ||
				!covers(Selector(a.From), Selector(b.From)) || !covers(Selector(a.To), Selector(b.To)) {
				continue
			}
			d.errorf(keyPath("rule").index(b.Index).key("priority"),
				"at the same priority the kernel can take this rule for rule[%d] (a from or to left out matches any): give it another priority", a.Index)
			break
		}
	}
}

// duplicateRules finds a rule given twice, once at least without a
// priority: the same family, selectors and table. The one without would
// get a priority of its own from the band, and tunneld would keep the
// same rule twice in the kernel (the second never decides anything the
// first has not: the same lookup in the same table). Two at the same
// explicit priority are sameRules'; two at different explicit ones are
// the admin's choice.
func (d *decoder) duplicateRules(c *Config) {
	type key struct {
		family   int
		from, to netip.Prefix
		iif, oif string
		hasMark  bool
		mark     uint32
		mask     uint32
		table    uint32
	}
	// seen: the first rule with the key, and the first without a
	// priority.
	type firsts struct{ any, unplaced *Rule }
	seen := map[key]*firsts{}
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.Table == 0 { // its table was refused, and said so
			continue
		}
		k := key{r.Family, Selector(r.From), Selector(r.To), r.IIF, r.OIF, false, 0, 0, r.Table}
		if r.MatchesMark() {
			k.hasMark, k.mark, k.mask = true, r.Mark, r.Mask
		}
		f := seen[k]
		if f == nil {
			f = &firsts{}
			seen[k] = f
		}
		first := f.any
		if r.Priority != 0 {
			first = f.unplaced // beside another explicit one: the admin's choice
		}
		if f.any == nil {
			f.any = r
		}
		if f.unplaced == nil && r.Priority == 0 {
			f.unplaced = r
		}
		if first == nil {
			continue
		}
		at := d.where(keyPath("rule").index(first.Index), true)
		d.add(keyPath("rule").index(r.Index), true,
			"same selectors and table as rule[%d] (line %d): tunneld would add the rule twice, at two priorities (drop one)", first.Index, at.Line)
	}
}

// rulesFit refuses each rule without a priority that finds no free one
// left in the band (RulePriorities, which desired places them by, gives
// it 0): applied, it would be silently missing. Rules that are not
// tunneld's can take further priorities of the band in the kernel; the
// file cannot know them (desired warns when they leave a rule no room,
// and apply fails).
func (d *decoder) rulesFit(c *Config) {
	lo, hi := c.Global.RulePriorityMin, c.Global.RulePriorityMax
	if lo > hi {
		return // said at rule_priority_max
	}
	for i, p := range c.RulePriorities(nil) {
		if p == 0 {
			d.add(keyPath("rule").index(c.Rules[i].Index), true,
				"no free priority left for it in tunneld's rule band %d–%d (global.rule_priority_min/max): widen the band", lo, hi)
		}
	}
}

func tunnelPath(name string) keyPath { return keyPath("tunnel").key(name) }

// duplicateTunnels finds tunnels the kernel would refuse as the same: one
// kind, local and remote, and but for ip6tnl device and (for GRE) input
// key. The later one in the file is reported; positions are only looked
// at when there is a duplicate.
func (d *decoder) duplicateTunnels(c *Config) {
	if !hasDuplicateTunnel(c.Tunnels) {
		return
	}
	at := d.positions()
	inFileOrder := slices.Clone(c.Tunnels)
	sort.SliceStable(inFileOrder, func(i, j int) bool {
		return at.keys[tunnelPath(inFileOrder[i].Name)].before(at.keys[tunnelPath(inFileOrder[j].Name)])
	})
	seen := map[string]string{}
	for _, t := range inFileOrder {
		key, ok := endpointKey(t)
		if !ok {
			continue
		}
		if other, ok := seen[key]; ok {
			d.add(tunnelPath(t.Name), true, "same %s, local and remote as tunnel %q: the kernel keeps one tunnel per endpoint pair%s", t.Mode.Kind(), other, sameTunnelHint(t.Mode))
			continue
		}
		seen[key] = t.Name
	}
}

func hasDuplicateTunnel(ts []*Tunnel) bool {
	seen := map[string]bool{}
	for _, t := range ts {
		key, ok := endpointKey(t)
		if !ok {
			continue
		}
		if seen[key] {
			return true
		}
		seen[key] = true
	}
	return false
}

// sameTunnelHint is what else tells two tunnels of mode apart for the
// kernel (model.Link.SameTunnel): for ip6tnl, nothing.
func sameTunnelHint(m model.Mode) string {
	switch {
	case m == model.ModeGRE:
		return " (give them different keys, or bind them to different devices with dev)"
	case m.OuterIPv6():
		return ""
	}
	return " (bind them to different devices with dev)"
}

// endpointKey is what the kernel tells tunnels apart by, as
// model.Link.SameTunnel says: kind, local and remote, and but for
// ip6tnl the device bound to (dev) and a GRE input key; false for a
// tunnel whose remote is a DNS name (compared once resolved, by the
// kernel). Two ipip tunnels from any local to one remote, one bound to
// wan1 and one to wan2 (a dual-WAN box), are two for the kernel.
func endpointKey(t *Tunnel) (string, bool) {
	if t.RemoteHost != "" {
		return "", false
	}
	local := "any"
	switch {
	case t.LocalDev != "":
		local = "dev " + t.LocalDev
	case t.Local.IsValid():
		local = t.Local.String()
	}
	remote := "any"
	if t.Remote.IsValid() {
		remote = t.Remote.String()
	}
	key := fmt.Sprintf("%s %s %s", t.Mode.Kind(), local, remote)
	if t.Dev != "" && !t.Mode.OuterIPv6() {
		key += " dev " + t.Dev
	}
	if t.Mode == model.ModeGRE && t.HasIKey {
		key += fmt.Sprintf(" key %d", t.IKey)
	}
	return key, true
}

// pointToPoint names the subnets whose other host is the peer.
func pointToPoint(a netip.Addr) string {
	if a.Is6() {
		return "/126 or /127"
	}
	return "/30 or /31"
}

// PeerOf returns the address on the far side of tun's point-to-point link
// of the given family: an explicit peer, or the other host of a /30 or /31.
func PeerOf(tun *Tunnel, v6 bool) (netip.Addr, bool) {
	if tun == nil {
		return netip.Addr{}, false
	}
	for _, a := range tun.Addresses {
		if a.Prefix.Addr().Is6() != v6 {
			continue
		}
		if a.Peer.IsValid() {
			return a.Peer, true
		}
		if p, ok := otherHost(a.Prefix); ok {
			return p, true
		}
	}
	return netip.Addr{}, false
}

// otherHost is the far end of a /31 (/127) or /30 (/126) subnet.
func otherHost(p netip.Prefix) (netip.Addr, bool) {
	bits := p.Addr().BitLen()
	base := p.Masked().Addr()
	switch p.Bits() {
	case bits - 1:
		if p.Addr() == base {
			return base.Next(), true
		}
		return base, true
	case bits - 2:
		first, second := base.Next(), base.Next().Next()
		switch p.Addr() {
		case first:
			return second, true
		case second:
			return first, true
		}
	}
	return netip.Addr{}, false
}

// nearTunnels warns about a route's dev, or a rule's iif or oif, that is
// none of the file's tunnels but nearly is one (another case, or one
// letter off): a device of that name most likely never exists, and a
// route through it is left out, so what the table's rules send there
// goes on to the next rule, main's, and out by the WAN unencapsulated (a
// tester's dev = "moe" for tunnel Moe: check said ok, apply exited 0,
// status said drift none).
func (d *decoder) nearTunnels(c *Config) {
	warn := func(p keyPath, name string) {
		if name == "" || c.TunnelByName(name) != nil {
			return
		}
		for _, t := range c.Tunnels {
			if strings.EqualFold(t.Name, name) || oneEdit(t.Name, name) && !digitEdit(t.Name, name) {
				at := d.where(p, false)
				w := &Error{File: d.file, Line: at.Line, Col: at.Col, Path: string(p),
					Msg: fmt.Sprintf("%q is not one of the file's tunnels: did you mean %q? (names are case-sensitive; while no device has that name, a route through it cannot be made, and a rule on it matches nothing)", name, t.Name)}
				c.Warnings = append(c.Warnings, w.Error())
				return
			}
		}
	}
	for _, r := range c.Routes {
		warn(keyPath("route").index(r.Index).key("dev"), r.Dev)
	}
	for _, r := range c.Rules {
		warn(keyPath("rule").index(r.Index).key("iif"), r.IIF)
		warn(keyPath("rule").index(r.Index).key("oif"), r.OIF)
	}
}

// digitEdit reports whether the one edit between a and b (see oneEdit)
// is a digit's: another digit for a digit (tun0, tun1), or one added or
// removed (wan, wan6) names a device of its own, not a slip; a letter for
// a digit (tunO for tun0) is one.
func digitEdit(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	isDigit := func(c byte) bool { return '0' <= c && c <= '9' }
	if len(a) == len(b) {
		return i < len(a) && isDigit(a[i]) && isDigit(b[i])
	}
	return i < len(b) && isDigit(b[i])
}

// oneEdit reports whether a and b differ by one letter changed, added or
// removed.
func oneEdit(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b)-len(a) > 1 {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	if len(a) == len(b) {
		return i < len(a) && a[i+1:] == b[i+1:]
	}
	return a[i:] == b[i+1:]
}
