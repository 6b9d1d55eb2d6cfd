package linux

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
)

// replaceRoute changes tunneld's route with r's key (table, destination,
// metric) to r, through device oif (0: the one the kernel finds for the
// gateway). key holds the kernel's routes of that key (no TOS, no source
// prefix), in the kernel's order; lo is the loopback device's index; dev
// names a device for messages.
//
// The kernel's replace (NLM_F_REPLACE) does not go by protocol: IPv4
// replaces the key's first route (fib_table_insert: fa_first), IPv6 the
// first whose ECMP-ability (having a gateway) is the new route's, else the
// first (fib6_add_rt2node). Beside a foreign route of the same key (an
// admin's ip route prepend or append) that can be the foreign one. So the
// replace is sent only when the route it takes is tunneld's: the key's
// only route, or its first (IPv6: with a gateway exactly when r has one),
// and tunneld has no other with the key (a restart after a crash between
// the add and the deletes below finds two). Otherwise r is added as a
// route of its own, and tunneld's other routes of the key are deleted as
// they are (protocol, type, gateway and device given: fib_table_delete and
// ip6_route_del take no other route); the foreign ones stay as and where
// they are. IPv4 adds r after the key's routes (NLM_F_APPEND: a foreign
// route that came first still does), IPv6 after them anyway. The deletes
// follow once the add worked, so that tunneld's route is never missing;
// IPv6 deletes first where r would join one of tunneld's (as its
// duplicate, the same device and gateway, or into one multipath route), in
// the same datagram: a lookup meanwhile takes the foreign route; if the
// add then fails (a source address the box doesn't have, a gateway it
// can't reach), what was deleted is put back. Where
// IPv6 would make r and a foreign route one multipath route or refuse r as
// the duplicate of a foreign one, nothing is sent and the error names the
// foreign route: tunneld's stays as it was.
func replaceRoute(r model.Route, oif, lo uint32, key []listedRoute, dev func(uint32) string) ([]nlreq, error) {
	var ours, foreign []listedRoute
	for _, l := range key {
		if l.owned() {
			ours = append(ours, l)
		}
		if !l.owned() || l.multipath {
			// A route of tunneld's merged with foreign ones is
			// both (a replace would take them all).
			foreign = append(foreign, l)
		}
	}
	ipv4 := r.Dst.Addr().Is4()
	switch {
	case len(foreign) == 0 && len(ours) <= 1, len(ours) == 1 && key[0].owned() && !key[0].multipath && (ipv4 || ours[0].route.Via.IsValid() == r.Via.IsValid()):
		return []nlreq{{unix.RTM_NEWROUTE, netlink.Create | netlink.Replace, routeMsg(r, oif), func(err error) error { return routeRefused(r, err) }}}, nil
	case len(ours) == 0:
		// Gone since the observation: a replace would take the foreign
		// route; an add is refused.
		return []nlreq{addRoute(r, oif)}, nil
	}
	if !ipv4 {
		for _, f := range foreign {
			if why := joins(f, r, oif, lo); why != "" {
				return nil, fmt.Errorf("a route not owned by tunneld has the same table, destination and metric (%s), and the kernel would %s: tunneld's route is left as it was: %w", describe(f, dev), why, kernel.ErrForeign)
			}
		}
	}
	// r may be among tunneld's routes already (another of them with the
	// key made the plan replace): then only the others go.
	there := slices.ContainsFunc(ours, func(l listedRoute) bool { return l.is(r, oif) })
	addFirst := !there && (ipv4 || !slices.ContainsFunc(ours, func(l listedRoute) bool { return joins(l, r, oif, lo) != "" }))
	var reqs, back []nlreq
	if addFirst {
		flags := netlink.Create
		if ipv4 {
			flags |= netlink.Append
		}
		reqs = append(reqs, nlreq{unix.RTM_NEWROUTE, flags, routeMsg(r, oif), func(err error) error { return routeRefused(r, err) }})
	}
	for _, l := range ours {
		if l.is(r, oif) {
			continue
		}
		o, _ := l.usable()
		d := delRoute(o.route, o.oif)
		if addFirst {
			d.body = afterOK{d.body.(*rtnetlink.RouteMessage)}
		} else if !there {
			// Deleted to make room: put back if the add fails
			// (without NLM_F_EXCL, which IPv6 refuses beside
			// the foreign route; a duplicate is refused anyway).
			back = append(back, nlreq{unix.RTM_NEWROUTE, netlink.Create, ifFailed{routeMsg(o.route, o.oif)}, unless(isExist)})
		}
		reqs = append(reqs, d)
	}
	if !addFirst && !there {
		reqs = append(reqs, nlreq{unix.RTM_NEWROUTE, netlink.Create, routeMsg(r, oif), func(err error) error { return routeRefused(r, err) }})
	}
	return append(reqs, back...), nil
}

// afterOK is a route request sent once the operation's others worked.
type afterOK struct{ *rtnetlink.RouteMessage }

func (afterOK) followUp() {}

// ifFailed is a route request sent once one of the operation's others
// failed: it puts back a route the operation deleted.
type ifFailed struct{ *rtnetlink.RouteMessage }

func (ifFailed) putBack() {}

// owned reports whether l is one of tunneld's routes.
func (l *listedRoute) owned() bool {
	_, ok := l.usable()
	return ok && l.protocol == model.RouteProtocol
}

// is reports whether l is r through device oif (0: any).
func (l *listedRoute) is(r model.Route, oif uint32) bool {
	o, ok := l.usable()
	r.Dev = ""
	return ok && o.route == r && (oif == 0 || o.oif == oif)
}

// joins says what IPv6 does when r (through device oif, 0: the one the
// kernel finds for the gateway) is added beside the foreign route f
// without replacing: "" for adding it as a route of its own;
// otherwise, the two become one multipath route (both have a gateway:
// fib6_add_rt2node counts f r's sibling), or r is refused as f's
// duplicate (rt6_duplicate_nexthop: the same device and gateway; a
// route of another type than unicast has the loopback device).
func joins(f listedRoute, r model.Route, oif, lo uint32) string {
	if r.Via.IsValid() && (f.route.Via.IsValid() || f.multipath) {
		return "merge tunneld's new route with it into one multipath route"
	}
	if r.Type != model.RouteUnicast {
		oif = lo
	}
	if !f.multipath && f.route.Via == r.Via && (oif == 0 || f.oif == oif) {
		return "refuse tunneld's new route as its duplicate"
	}
	return ""
}

// describe is a route as ip route show says it, for messages: "TYPE via
// GATEWAY dev DEVICE proto PROTOCOL", or for a multipath route each
// nexthop as "nexthop via GATEWAY dev DEVICE" (those merged into one of
// tunneld's without tunneld's own, and without a protocol: the kernel
// lists theirs as tunneld's).
func describe(l listedRoute, dev func(uint32) string) string {
	var b strings.Builder
	if t, ok := routeType(l.typ); ok && t != model.RouteUnicast {
		b.WriteString(t.String() + " ")
	} else if !ok {
		fmt.Fprintf(&b, "type %d ", l.typ)
	}
	if l.multipath {
		hops := l.hops
		if l.mergedInto() {
			hops = hops[1:]
		}
		for _, h := range hops {
			fmt.Fprintf(&b, "nexthop via %s dev %s ", h.via, dev(h.oif))
		}
		if l.mergedInto() {
			b.WriteString("merged into tunneld's")
			return b.String()
		}
	} else {
		if l.route.Via.IsValid() {
			b.WriteString("via " + l.route.Via.String() + " ")
		}
		if l.oif != 0 {
			b.WriteString("dev " + dev(l.oif) + " ")
		}
	}
	b.WriteString("proto " + model.RouteProtocolWord(l.protocol))
	return b.String()
}
