package desired

import (
	"fmt"
	"net/netip"

	"github.com/tunneld/tunneld/pkg/model"
)

// astray warns of each up tunnel that follows a device's address, is
// bound to no device, and gets no host route, whose remote table main
// routes by another device, while it has a route to it by the followed
// one too: the packets carry one WAN's address and leave by the other,
// whose ISP may drop them for their source (a tester's tunnel following
// wan1, beside wan0's default route of a lower metric, did so, and
// status said up). A device main has no route by (a dummy holding a
// routed address) is followed on purpose, and gets no warning.
func (b *builder) astray() {
	for _, t := range b.c.Tunnels {
		if t.LocalDev == "" || t.Dev != "" || !b.up(t.Name) {
			continue
		}
		l, _ := b.present(t.Name)
		if !l.Remote.IsValid() {
			continue
		}
		best, ok := model.Lookup(b.underlay(), l.Remote)
		if !ok || best.Dev == t.LocalDev {
			continue
		}
		by, ok := model.LookupBy(b.underlay(), l.Remote, t.LocalDev)
		if !ok || b.hasHostRoute(host(l.Remote)) {
			// None by it, or a host route by it (underlayTo).
			continue
		}
		b.res.Warnings = append(b.res.Warnings, fmt.Sprintf("tunnel %q: table main sends its packets to %s by %s (%s), not by %s, whose address %s they carry (%s is there too): unless a policy rule sends them by %s, an ISP that filters sources drops them; bind the tunnel to it (dev = %q), or set host_route = true",
			t.Name, l.Remote, best.Dev, underlayWords(best), t.LocalDev, l.Local, underlayWords(by), t.LocalDev, t.LocalDev))
	}
}

// hasHostRoute reports whether the desired state has a route to dst in
// table main.
func (b *builder) hasHostRoute(dst netip.Prefix) bool {
	for _, r := range b.res.State.Routes {
		if r.Table == model.TableMain && r.Dst == dst {
			return true
		}
	}
	return false
}
