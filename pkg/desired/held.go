package desired

import (
	"net/netip"

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
// its remote's first DNS answer and the box's own lookups (that one's
// too) go by the route's table.
func whyLookup(name string) string {
	return name + " is not resolved yet, and its lookup may need the way an unreachable route would block"
}

// RouteThrough is the configured tunnel the route r goes through, or nil:
// the one its dev names or, for a route with a gateway and no dev, the
// one whose own subnet (an address's prefix, or its peer) holds the
// gateway, which the kernel reaches only through that tunnel.
func RouteThrough(c *config.Config, r *config.Route) *config.Tunnel {
	if r.Dev != "" {
		return c.TunnelByName(r.Dev)
	}
	if !r.Via.IsValid() {
		return nil
	}
	for _, t := range c.Tunnels {
		for _, a := range t.Addresses {
			if a.Peer.IsValid() && a.Peer == r.Via || !a.Peer.IsValid() && a.Prefix.Masked().Contains(r.Via) {
				return t
			}
		}
	}
	return nil
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
			why = whyLookup(tun.RemoteHost)
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
// answer yet (the daemon keeps the last good one when a lookup fails).
func (b *builder) awaitsName(t *config.Tunnel) bool {
	return t.RemoteHost != "" && len(b.in.Resolved[t.RemoteHost]) == 0
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
