package desired

import (
	"net/netip"
	"slices"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/model"
)

// WithdrawnRoute is a configured route through a tunnel that is not up
// which has no unreachable route in its place, and why.
type WithdrawnRoute struct {
	Route model.Route
	Why   string
}

// WhyFallback is why a route through a tunnel that is not up is
// withdrawn rather than held as an unreachable route when the
// configuration has another route to the same destination in the same
// table, in place now (a failover).
const WhyFallback = "another route to it in the configuration is in place"

// whyLookup is why such a route is withdrawn when the tunnel waits for
// its remote's first DNS answer of the family it needs (family: "" when
// the name has no answer at all) and the box's own lookups (that one's
// too) go by the route's table.
func whyLookup(name, family string) string {
	if family != "" {
		return name + " has no " + family + " address yet, and its lookup may need the way an unreachable route would block"
	}
	return name + " is not resolved yet, and its lookup may need the way an unreachable route would block"
}

// RouteThrough is the configured tunnel the route r goes through, or nil
// (config.Route.Through).
func RouteThrough(c *config.Config, r *config.Route) *config.Tunnel {
	return c.TunnelByName(r.Through)
}

// destKey is a route's table and destination, whatever its metric.
type destKey struct {
	table uint32
	dst   netip.Prefix
}

func destOf(r model.Route) destKey { return destKey{r.Table, r.Dst.Masked()} }

// hold puts, in the place of each configured route through a tunnel
// that is not up (waiting for an address, a device or a DNS answer, its
// name held by another device, its creation or setting up refused by
// the kernel in this converge), an unreachable route with its table,
// destination and metric: what it matches is refused (ICMP unreachable)
// instead of being looked up further (a rule's table left empty falls
// through to main, whose default route leaves by the WAN unencapsulated).
// When the tunnel comes up, the plan replaces it in place with the
// route itself, and the reverse when it goes down. Two exceptions leave
// the route withdrawn (see WithdrawnRoute): another route of the
// configuration to the same destination in the same table is in place
// (the admin made a failover), or the tunnel waits for its remote's
// first DNS answer and the route is in a table the box's own lookups go
// by (the lookup of that name could never get out). waiting are the
// routes through a tunnel not up, in file order.
func (b *builder) hold(waiting []*config.Route) {
	if len(waiting) == 0 {
		return
	}
	live := make(map[destKey]bool, len(b.res.State.Routes))
	for _, r := range b.res.State.Routes {
		live[destOf(r)] = true
	}
	idx := make(map[string]int, len(b.res.Tunnels))
	for i, ts := range b.res.Tunnels {
		idx[ts.Name] = i
	}
	for _, r := range waiting {
		tun := RouteThrough(b.c, r)
		ph := model.Route{Table: r.Table, Dst: r.To, Metric: metric(r.To.Addr(), r.Metric), Type: model.RouteUnreachable}
		st := &b.res.Tunnels[idx[tun.Name]]
		why := ""
		switch {
		case live[destOf(ph)]:
			why = WhyFallback
		case b.awaitsName(tun) && b.ownLookups(r.To.Addr().Is6())[r.Table]:
			family := ""
			if len(b.in.Resolved[tun.RemoteHost]) > 0 {
				family = familyWord(tun)
			}
			why = whyLookup(tun.RemoteHost, family)
		}
		if why != "" {
			st.Withdrawn = append(st.Withdrawn, WithdrawnRoute{Route: ph, Why: why})
			continue
		}
		st.Held = append(st.Held, ph)
		b.res.State.Routes = append(b.res.State.Routes, ph)
	}
}

// awaitsName reports whether the tunnel's remote is a DNS name with no
// answer of the tunnel's outer family yet (the daemon keeps the last good
// one when a lookup fails, or answers only with the other family). An
// answer of the other family alone is no answer: the tunnel stays down
// and the daemon asks again, and an unreachable route in a table its own
// lookups use could block the way to the DNS server for good (a tester's
// gre tunnel whose name first answered AAAA only never came up: the
// route through it covered the server).
func (b *builder) awaitsName(t *config.Tunnel) bool {
	return t.RemoteHost != "" && !slices.ContainsFunc(b.in.Resolved[t.RemoteHost], func(a netip.Addr) bool { return outerFamily(t, a) })
}

// ownLookups are the tables the box's own packets of one family, to any
// destination and before a source is chosen, are looked up in: main,
// and those of the configuration's rules that can match them (no from,
// no oif, no iif but lo, no fwmark besides 0).
func (b *builder) ownLookups(v6 bool) map[uint32]bool {
	out := map[uint32]bool{model.TableMain: true}
	for _, r := range b.c.Rules {
		if (r.Family == 6) != v6 || r.From.IsValid() && r.From.Bits() > 0 || r.OIF != "" ||
			r.IIF != "" && r.IIF != "lo" || r.HasMark && r.Mark&r.Mask != 0 {
			continue
		}
		out[r.Table] = true
	}
	return out
}

// standing fills in TunnelStatus.Standing: for each tunnel up in the
// desired state, routable (not held back: those have their Held), but
// missing or down in the kernel (the observed cur),
// the unreachable routes of tunneld's there with the table, destination
// and metric of a configured route through it, in file order. They are
// what the last converge left while the tunnel was not up, or what one
// whose creation the kernel refused left (plan and status, which do
// not try it, see the tunnel as one to create): the routes through it
// are refused until the plan has brought it up.
func (b *builder) standing() {
	var missing map[string]int // index in res.Tunnels
	for i, st := range b.res.Tunnels {
		if !b.routable(st.Name) {
			continue // not up, or held back: its routes are Held
		}
		if l, ok := b.current(st.Name); ok && l.Up {
			continue
		}
		if missing == nil {
			missing = map[string]int{}
		}
		missing[st.Name] = i
	}
	if missing == nil {
		return
	}
	var unreachable map[model.RouteKey]bool
	for _, r := range b.cur.Routes {
		if r.Type == model.RouteUnreachable {
			if unreachable == nil {
				unreachable = map[model.RouteKey]bool{}
			}
			unreachable[r.Key()] = true
		}
	}
	if unreachable == nil {
		return
	}
	for i := range b.c.Routes {
		r := &b.c.Routes[i]
		tun := RouteThrough(b.c, r)
		if tun == nil {
			continue
		}
		j, ok := missing[tun.Name]
		if !ok {
			continue
		}
		ph := model.Route{Table: r.Table, Dst: r.To, Metric: metric(r.To.Addr(), r.Metric), Type: model.RouteUnreachable}
		if unreachable[ph.Key()] {
			b.res.Tunnels[j].Standing = append(b.res.Tunnels[j].Standing, ph)
		}
	}
}
