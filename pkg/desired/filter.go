package desired

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/model"
)

// Chain priorities of tunneld's table (the kernel's standard values).
const (
	prioFilter = 0
	prioMangle = -150
	prioDstNAT = -100
	prioSrcNAT = 100
)

// filter builds the nftables table: outer-packet protection for every
// tunnel, inner anti-spoofing, the forward policy, MSS clamping and NAT.
// Nothing in it drops traffic that does not involve one of the tunnels.
func (b *builder) filter() *model.Filter {
	input := model.Chain{Name: "input", Type: "filter", Hook: "input", Priority: prioFilter}
	forward := model.Chain{Name: "forward", Type: "filter", Hook: "forward", Priority: prioFilter}
	mss := model.Chain{Name: "mss", Type: "filter", Hook: "forward", Priority: prioMangle}
	pre := model.Chain{Name: "prerouting", Type: "nat", Hook: "prerouting", Priority: prioDstNAT}
	post := model.Chain{Name: "postrouting", Type: "nat", Hook: "postrouting", Priority: prioSrcNAT}
	var spoof []model.Chain

	input.Rules = b.outerRules()
	// Replies and related traffic are accepted before any rule that
	// drops is checked (after the anti-spoofing jumps), so that a
	// [[forward]] drop or a tunnel's forward = "drop" never cuts the
	// answers to connections let through. Without such a rule the
	// accept would change nothing, and the chain goes without it.
	anyDrop := false
	for _, t := range b.c.Tunnels {
		if _, ok := b.present(t.Name); !ok {
			continue
		}
		if c, ok := b.spoofChain(t); ok {
			spoof = append(spoof, c)
			jump := model.FRule{IIF: t.Name, Verdict: model.Verdict{Kind: model.Jump, Chain: c.Name}}
			input.Rules = append(input.Rules, jump)
			forward.Rules = append(forward.Rules, jump)
		}
		if t.MSSClamp {
			mss.Rules = append(mss.Rules, model.FRule{OIF: t.Name, L4Proto: 6, Verdict: model.Verdict{Kind: model.ClampMSS}})
		}
		anyDrop = anyDrop || t.ForwardDrop
	}
	for _, f := range b.c.Forwards {
		if _, ok := b.present(f.Tunnel); ok {
			anyDrop = anyDrop || f.Drop
		}
	}
	if anyDrop {
		forward.Rules = append(forward.Rules, model.FRule{CtEstablished: true, Verdict: model.Verdict{Kind: model.Accept}})
	}
	for _, f := range b.c.Forwards {
		if _, ok := b.present(f.Tunnel); ok {
			forward.Rules = append(forward.Rules, forwardRules(f)...)
		}
	}
	for _, t := range b.c.Tunnels {
		if _, ok := b.present(t.Name); ok && t.ForwardDrop {
			forward.Rules = append(forward.Rules,
				model.FRule{IIF: t.Name, Counter: true, Verdict: model.Verdict{Kind: model.Drop}},
				model.FRule{OIF: t.Name, Counter: true, Verdict: model.Verdict{Kind: model.Drop}})
		}
	}
	// A [[masquerade]] without src is IPv4 only, as iptables' MASQUERADE
	// (the inet table would rewrite IPv6 sources too); with src, each
	// prefix names its family.
	for _, m := range b.c.Masquerades {
		for _, src := range orAny(m.Src) {
			r := model.FRule{OIF: m.OIF, Src: src, Verdict: model.Verdict{Kind: model.Masquerade}}
			if !src.IsValid() {
				r.Family = model.FamilyV4
			}
			post.Rules = append(post.Rules, r)
		}
	}
	// A [[redirect]] without dst is IPv4 only too, as iptables' REDIRECT.
	for _, r := range b.c.Redirects {
		for _, dst := range orAny(r.Dst) {
			rule := model.FRule{IIF: r.IIF, Dst: dst, L4Proto: r.Proto, DPort: r.Port,
				Verdict: model.Verdict{Kind: model.Redirect, Port: r.ToPort}}
			if !dst.IsValid() {
				rule.Family = model.FamilyV4
			}
			pre.Rules = append(pre.Rules, rule)
		}
	}
	f := &model.Filter{}
	for _, c := range append([]model.Chain{input, forward, mss, pre, post}, spoof...) {
		if len(c.Rules) > 0 {
			f.Chains = append(f.Chains, c)
		}
	}
	if len(f.Chains) == 0 {
		return nil
	}
	return f
}

// present returns the tunnel's link when it is part of the desired state.
func (b *builder) present(name string) (model.Link, bool) {
	i, ok := b.links[name]
	if !ok {
		return model.Link{}, false
	}
	return b.res.State.Links[i], true
}

// outerRules accept each tunnel's encapsulated packets from its remote to
// its local address and drop (and count) the same protocol from anyone
// else to that local address (CERT VU#636397, CVE-2020-10136: a fallback
// device, tunl0 or sit0, once up, takes them from anyone); for GRE, only
// version 0, the one gre tunnels take: the kernel's GRE demultiplexer
// (gre_demux) hands version 1, PPTP's, to pptp, which the drop would cut
// off for the router's PPTP connections on the address. The accept of
// the remote stays protocol-wide: its PPTP is let through either way. The tunnels
// tunneld does not own are accepted from their remotes too, and a tunnel
// whose remote is any, its own or another's, leaves its local address
// and protocol without the drop: it takes packets from anyone by design.
// Without that, the drop cut off every other tunnel of the protocol on
// the address, a netifd 6in4 or gre tunnel, a hub of tunneld's own (a
// tester's, in the amd64 guest). A fallback device is no such tunnel.
func (b *builder) outerRules() []model.FRule {
	type dk struct {
		local netip.Addr
		proto uint8
	}
	var accept, foreign []model.FRule
	var keys []dk // (local, proto) of tunneld's tunnels, each once, in order
	seen := map[dk]bool{}
	// open are the (local, proto) a remote-any tunnel takes; its
	// family's unspecified address as local: every local of the family.
	open := map[dk]bool{}
	add := func(l model.Link, proto uint8, own bool) {
		k := dk{l.Local, proto}
		if !l.Remote.IsValid() {
			if !k.local.IsValid() {
				k.local = unspecified(l.Mode.OuterIPv6())
			}
			open[k] = true
			return
		}
		r := model.FRule{Src: host(l.Remote), L4Proto: k.proto, Verdict: model.Verdict{Kind: model.Accept}}
		if l.Local.IsValid() {
			r.Dst = host(l.Local)
		}
		if !own {
			foreign = append(foreign, r)
			return
		}
		accept = append(accept, r)
		if k.local.IsValid() && !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for _, t := range b.c.Tunnels {
		if l, ok := b.present(t.Name); ok {
			add(l, l.Mode.Protocol(), true)
		}
	}
	for _, name := range b.foreignTunnels() {
		l := *b.in.Devices[name].Tunnel
		add(l, l.Mode.Protocol(), false)
		if l.Others.AnyProto {
			// ip's mode any (iproute2's default for ip6tnl and
			// sit): IPv4 and IPv6 inside, protocols 4 and 41 both.
			add(l, model.ModeIPIP.Protocol(), false)
			add(l, model.ModeSIT.Protocol(), false)
		}
	}
	var drop []model.FRule
	for _, k := range keys {
		if open[k] || open[dk{unspecified(k.local.Is6()), k.proto}] {
			continue
		}
		// Another's tunnel matters only where a drop follows: to this
		// local address, with this protocol.
		for _, r := range foreign {
			if r.L4Proto == k.proto && (!r.Dst.IsValid() || r.Dst.Addr() == k.local) && !slices.Contains(accept, r) {
				accept = append(accept, r)
			}
		}
		// GRE's drop is of version 0 alone: PPTP's version 1 to the
		// address (the router a PPTP client or server) reaches pptp,
		// never a gre tunnel, and dropping it broke PPTP.
		greV0 := k.proto == model.ModeGRE.Protocol()
		drop = append(drop, model.FRule{Dst: host(k.local), GREv0: greV0, L4Proto: k.proto, Counter: true, Verdict: model.Verdict{Kind: model.Drop}})
	}
	return append(accept, drop...)
}

// unspecified is the unspecified address of IPv6 (v6) or IPv4.
func unspecified(v6 bool) netip.Addr {
	if v6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// foreignTunnels are the names of the tunnel devices tunneld does not
// own, in name order, but for the kernel's fallback devices (tunl0,
// sit0, …: any to any, what the drop guards against).
func (b *builder) foreignTunnels() []string {
	var names []string
	for name, d := range b.in.Devices {
		if d.Tunnel == nil {
			continue
		}
		if kind, ok := model.FallbackDevices[name]; ok && kind == d.Kind {
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func host(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// linkLocal is IPv6's link-local prefix.
var linkLocal = netip.MustParsePrefix("fe80::/10")

// covers reports whether one of ps contains all of p.
func covers(ps []netip.Prefix, p netip.Prefix) bool {
	for _, q := range ps {
		if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// spoofChain returns the chain that drops packets arriving from the tunnel
// with an inner source outside its allowed prefixes, or inside the
// prefixes the configuration routes elsewhere (see refusedSources); ok
// is false when every source is allowed and none is refused. A tunnel
// that carries IPv6 also lets through link-local sources (fe80::/10),
// whatever its allowed prefixes: the peer's neighbour discovery, pings
// and routing protocols (OSPFv3, RIPng, BGP over link-local) use them,
// and the kernel forwards no packet from one off its link.
func (b *builder) spoofChain(t *config.Tunnel) (model.Chain, bool) {
	allowed := t.AllowedSources
	if allowed == nil {
		allowed = b.derivedSources(t)
	}
	var v4all, v6all bool
	for _, p := range allowed {
		if p.Bits() == 0 {
			v4all = v4all || p.Addr().Is4()
			v6all = v6all || p.Addr().Is6()
		}
	}
	c := model.Chain{Name: "spoof_" + t.Name}
	drops := make([]model.FRule, 0, 4)
	for _, p := range refusedSources(b.sources(), b.c, t, b.routesVia()[t.Name]) {
		if !covers(allowed, p) {
			continue // the chain's last rule drops it already
		}
		drops = append(drops, model.FRule{Src: p, Counter: true, Verdict: model.Verdict{Kind: model.Drop}})
	}
	if (v4all || !t.Mode.CarriesIPv4()) && (v6all || !t.Mode.CarriesIPv6()) {
		if len(drops) == 0 {
			return model.Chain{}, false
		}
		// Every other source is allowed: the chain ends with the
		// refused ones (a regular chain returns at its end).
		c.Rules = drops
		return c, true
	}
	if b.c.CarriesIPv6(t) && !covers(allowed, linkLocal) {
		c.Rules = append(c.Rules, model.FRule{Src: linkLocal, Verdict: model.Verdict{Kind: model.Return}})
	}
	c.Rules = append(c.Rules, drops...)
	for _, p := range allowed {
		c.Rules = append(c.Rules, model.FRule{Src: p, Verdict: model.Verdict{Kind: model.Return}})
	}
	c.Rules = append(c.Rules, model.FRule{Counter: true, Verdict: model.Verdict{Kind: model.Drop}})
	return c, true
}

// derivedSources are the sources a tunnel can legitimately deliver: its
// peers, its own subnets and every destination the configuration routes
// into it (like WireGuard's allowed IPs).
func (b *builder) derivedSources(t *config.Tunnel) []netip.Prefix {
	return derived(t, b.routesVia()[t.Name])
}

// derived is derivedSources given the routes whose dev is t.
func derived(t *config.Tunnel, routes []config.Route) []netip.Prefix {
	var out []netip.Prefix
	seen := map[netip.Prefix]bool{}
	add := func(p netip.Prefix) {
		p = p.Masked()
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, a := range t.Addresses {
		if a.Peer.IsValid() {
			add(host(a.Peer))
		} else if a.Prefix.Bits() < a.Prefix.Addr().BitLen() {
			add(a.Prefix)
		}
	}
	for _, r := range routes {
		if r.To.IsValid() {
			add(r.To)
		}
	}
	return out
}

// sources builds the index of routes refusedSources uses, once.
func (b *builder) sources() *sourceIndex {
	if b.srcIndex == nil {
		b.srcIndex = newSourceIndex(b.c, true)
	}
	return b.srcIndex
}

// routesVia indexes the configured routes by the tunnel they go
// through (config.Route.Through), once.
func (b *builder) routesVia() map[string][]config.Route {
	if b.byDev == nil {
		b.byDev = map[string][]config.Route{}
		for _, r := range b.c.Routes {
			if r.Through != "" {
				b.byDev[r.Through] = append(b.byDev[r.Through], r)
			}
		}
	}
	return b.byDev
}

// forwardRules expands one [[forward]] section into rules: every
// combination of source, destination, protocol and port that can match.
func forwardRules(f config.Forward) []model.FRule {
	base := model.FRule{Verdict: model.Verdict{Kind: model.Accept}}
	if f.Drop {
		base.Verdict.Kind = model.Drop
		base.Counter = true
	}
	if f.In {
		base.IIF, base.OIF = f.Tunnel, f.Interface
	} else {
		base.IIF, base.OIF = f.Interface, f.Tunnel
	}
	var out []model.FRule
	for _, src := range orAny(f.Src) {
		for _, dst := range orAny(f.Dst) {
			if src.IsValid() && dst.IsValid() && src.Addr().Is4() != dst.Addr().Is4() {
				continue
			}
			for _, proto := range orAnyProto(f.Protos) {
				for _, port := range orAnyPort(f.DPorts) {
					r := base
					r.Src, r.Dst, r.L4Proto, r.DPort = src, dst, proto, port
					out = append(out, r)
				}
			}
		}
	}
	return out
}

func orAny(p []netip.Prefix) []netip.Prefix {
	if len(p) == 0 {
		return []netip.Prefix{{}}
	}
	return p
}

func orAnyProto(p []uint8) []uint8 {
	if len(p) == 0 {
		return []uint8{0}
	}
	return p
}

func orAnyPort(p []uint16) []uint16 {
	if len(p) == 0 {
		return []uint16{0}
	}
	return p
}

// foreignTableRules warns when the table inet tunneld in the kernel holds
// rules tunneld did not write (without a comment, or with one that is
// not the rule's: nft.Read's "?untagged", "?comment" and "?edited"
// lines), or edited. The table
// is tunneld's by its name: the next write replaces it, or with the
// filter off deletes it, and those rules go with it, which a tester saw
// happen to an admin's rule without a word.
func (b *builder) foreignTableRules() {
	f := b.cur.Filter
	if f == nil {
		return
	}
	// An admin's rule with a comment of its own reads as one of
	// tunneld's edited: its expressions are not its comment's rule.
	n := strings.Count(f.Observed, "\t?untagged ") + strings.Count(f.Observed, "\t?comment ") + strings.Count(f.Observed, "\t?edited ")
	if n == 0 {
		return
	}
	rules, does := "a rule", "replaces the table, and the rule with it"
	if n > 1 {
		rules, does = fmt.Sprintf("%d rules", n), "replaces the table, and the rules with it"
	}
	rules += " this version of tunneld did not write (an older version's, or written or edited by hand)"
	if !b.c.Global.Firewall {
		does = strings.Replace(does, "replaces", "deletes (firewall = false)", 1)
	}
	b.res.Warnings = append(b.res.Warnings, fmt.Sprintf("nftables table inet %s holds %s: the table is tunneld's by its name, and tunneld %s; keep your own rules in a table of your own", model.TableName, rules, does))
}
