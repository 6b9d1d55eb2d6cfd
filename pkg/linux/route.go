package linux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/model"
)

// rtnTypes maps tunneld's route types to the kernel's (rtm_type).
var rtnTypes = [...]uint8{
	model.RouteUnicast:     unix.RTN_UNICAST,
	model.RouteUnreachable: unix.RTN_UNREACHABLE,
	model.RouteBlackhole:   unix.RTN_BLACKHOLE,
	model.RouteProhibit:    unix.RTN_PROHIBIT,
}

// routeType is the model's type for the kernel's rtm_type; ok is false
// for a type tunneld never configures (local, broadcast, throw, ...).
func routeType(rtn uint8) (model.RouteType, bool) {
	for t, n := range rtnTypes {
		if n == rtn {
			return model.RouteType(t), true
		}
	}
	return 0, false
}

// routeMsg encodes one of tunneld's routes. Tables above 255 only fit the
// RTA_TABLE attribute (the header then says 0; it reads back as 252). A
// route of another type than unicast has no gateway or device (the
// kernel refuses them: "Gateway, device and multipath can not be
// specified for this route type") and keeps scope universe, as ip(8)
// gives it.
func routeMsg(r model.Route, oif uint32) *rtnetlink.RouteMessage {
	m := &rtnetlink.RouteMessage{
		Family:    unix.AF_INET,
		DstLength: uint8(r.Dst.Bits()),
		Protocol:  model.RouteProtocol,
		Scope:     unix.RT_SCOPE_UNIVERSE,
		Type:      rtnTypes[r.Type],
		Attributes: rtnetlink.RouteAttributes{
			OutIface: oif,
			Priority: r.Metric,
			Table:    r.Table,
		},
	}
	if r.Dst.Addr().Is6() {
		m.Family = unix.AF_INET6
	}
	if r.Table < 256 {
		m.Table = uint8(r.Table)
	}
	if r.Dst.Bits() > 0 {
		m.Attributes.Dst = net.IP(r.Dst.Addr().AsSlice())
	}
	if r.Via.IsValid() {
		m.Attributes.Gateway = net.IP(r.Via.AsSlice())
	} else if r.Dst.Addr().Is4() && r.Type == model.RouteUnicast {
		m.Scope = unix.RT_SCOPE_LINK
	}
	if r.OnLink {
		m.Flags |= unix.RTNH_F_ONLINK
	}
	if r.Src.IsValid() {
		m.Attributes.Src = net.IP(r.Src.AsSlice())
	}
	return m
}

// observedRoute is a route as listed (unicast, unreachable, blackhole or
// prohibit), with what tells owners apart.
type observedRoute struct {
	route    model.Route
	oif      uint32
	protocol uint8
	// expired: its lifetime (an IPv6 router advertisement's) ran out
	// and the kernel no longer takes it, though it lists it until its
	// garbage collection (RTA_CACHEINFO's rta_expires below zero).
	expired bool
}

// listRoutes dumps the routes of one table (0: all) with one protocol
// (0: any). Kernels with strict checking (4.20+; the filter on protocol
// since 5.3) filter the dump themselves; older ones send everything, and
// the caller filters again.
func (k *Kernel) listRoutes(into []observedRoute, table uint32, protocol uint8) ([]observedRoute, error) {
	req := &rtnetlink.RouteMessage{Family: unix.AF_UNSPEC, Protocol: protocol, Attributes: rtnetlink.RouteAttributes{Table: table}}
	if table < 256 {
		req.Table = uint8(table)
	}
	out := into[:0]
	err := list(k, "routes", unix.RTM_GETROUTE, req, func() { out = out[:0] }, func(b []byte) error {
		r, ok, err := decodeRoute(b)
		if err == nil && ok {
			out = append(out, r)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// listedRoute is a route as the kernel lists it, whatever its type and
// shape, with what decodeRoute leaves a route out for: its TOS, source
// prefix length, type (rtm_type) and whether it is a multipath route.
// route and oif hold what the message says (a gateway and device for
// any type).
type listedRoute struct {
	observedRoute
	tos, srcLen, typ uint8
	multipath        bool
	// hops are a multipath route's nexthops (IPv6: the route the
	// message is about first, then those the kernel made one route
	// with it).
	hops []nexthop
}

// nexthop is one of a multipath route's nexthops.
type nexthop struct {
	via    netip.Addr
	oif    uint32
	onlink bool
}

// decodeHops reads RTA_MULTIPATH: struct rtnexthop, then its
// attributes, for each nexthop; it stops at one it cannot read.
func decodeHops(b []byte) []nexthop {
	var hops []nexthop
	for len(b) >= unix.SizeofRtNexthop {
		n := int(binary.NativeEndian.Uint16(b))
		if n < unix.SizeofRtNexthop || n > len(b) {
			break
		}
		h := nexthop{oif: binary.NativeEndian.Uint32(b[4:]), onlink: b[2]&unix.RTNH_F_ONLINK != 0}
		if eachAttr(b[unix.SizeofRtNexthop:n], func(t uint16, v []byte) error {
			if t == unix.RTA_GATEWAY {
				h.via, _ = netip.AddrFromSlice(v)
				h.via = h.via.Unmap()
			}
			return nil
		}) != nil {
			break
		}
		hops = append(hops, h)
		b = b[min(nlaAlign(n), len(b)):]
	}
	return hops
}

// decodeListed reads an RTM_NEWROUTE message; a multipath route's
// nexthops only with hops, or if it is an IPv6 one of tunneld's
// protocol (see usable).
func decodeListed(b []byte, hops bool) (r listedRoute, err error) {
	if len(b) < unix.SizeofRtMsg {
		return r, errMalformed
	}
	family, dstLen := b[0], int(b[1])
	r.srcLen, r.tos, r.typ = b[2], b[3], b[7]
	r.protocol = b[5]
	r.route.Table = uint32(b[4])
	r.route.OnLink = binary.NativeEndian.Uint32(b[8:])&unix.RTNH_F_ONLINK != 0
	dst := netip.IPv4Unspecified()
	if family == unix.AF_INET6 {
		dst = netip.IPv6Unspecified()
	}
	err = eachAttr(b[unix.SizeofRtMsg:], func(t uint16, v []byte) error {
		switch t {
		case unix.RTA_DST:
			if a, ok := netip.AddrFromSlice(v); ok {
				dst = a
			}
		case unix.RTA_GATEWAY:
			r.route.Via, _ = netip.AddrFromSlice(v)
		case unix.RTA_PREFSRC:
			r.route.Src, _ = netip.AddrFromSlice(v)
		case unix.RTA_OIF:
			r.oif = u32(v)
		case unix.RTA_PRIORITY:
			r.route.Metric = u32(v)
		case unix.RTA_TABLE:
			r.route.Table = u32(v)
		case unix.RTA_CACHEINFO:
			// struct rta_cacheinfo: rta_expires, an __s32 in clock
			// ticks, follows two __u32.
			if len(v) >= 12 {
				r.expired = int32(binary.NativeEndian.Uint32(v[8:])) < 0
			}
		case unix.RTA_MULTIPATH:
			r.multipath = true
			if hops || family == unix.AF_INET6 && r.protocol == model.RouteProtocol {
				r.hops = decodeHops(v)
			}
		}
		return nil
	})
	r.route.Via, r.route.Src = r.route.Via.Unmap(), r.route.Src.Unmap()
	r.route.Dst = netip.PrefixFrom(dst.Unmap(), dstLen)
	return r, err
}

// usable is the route as tunneld reads its own and the underlay; ok is
// false for a route tunneld never owns or depends on (of a type it does
// not configure, such as local, broadcast or throw; multipath; or with a
// source prefix). A route of another type than unicast reads back as it
// was configured: IPv6 lists one with the loopback device (its reject
// entries hang off lo), and that device is dropped; the error it carries
// in RTA_CACHEINFO (-EHOSTUNREACH, -EACCES, -EINVAL) and any expiry are
// not read.
//
// An IPv6 multipath route of tunneld's protocol is one of tunneld's
// routes that the kernel made one route with a foreign route added
// beside it (both have a gateway: an admin's ip -6 route append or
// prepend; tunneld makes none): the message is about tunneld's, with its
// protocol, and lists its nexthop first. That nexthop is tunneld's route:
// with it observed, tunneld's plan stays empty and down deletes it (a
// delete with its gateway takes that nexthop only).
func (l *listedRoute) usable() (r observedRoute, ok bool) {
	r = l.observedRoute
	var known bool
	r.route.Type, known = routeType(l.typ)
	if l.multipath && l.mergedInto() {
		r.route.Via, r.oif, r.route.OnLink = l.hops[0].via, l.hops[0].oif, l.hops[0].onlink
	} else if l.multipath {
		return r, false
	}
	if !known || l.srcLen != 0 {
		return r, false
	}
	if r.route.Type != model.RouteUnicast {
		r.oif, r.route.Via, r.route.OnLink = 0, netip.Addr{}, false
	}
	return r, true
}

// mergedInto reports whether l is an IPv6 multipath route of tunneld's
// protocol: tunneld's route first, with foreign ones the kernel merged
// into it.
func (l *listedRoute) mergedInto() bool {
	return l.multipath && l.protocol == model.RouteProtocol && l.route.Dst.Addr().Is6() && len(l.hops) > 1 && l.hops[0].via.IsValid()
}

// decodeRoute reads an RTM_NEWROUTE message as usable does.
func decodeRoute(b []byte) (r observedRoute, ok bool, err error) {
	l, err := decodeListed(b, false)
	if err != nil {
		return l.observedRoute, false, err
	}
	r, ok = l.usable()
	return r, ok, nil
}

// addRoute creates a route that must not exist: EEXIST means a route that
// is not tunneld's holds the same table, destination and metric (tunneld
// would have seen its own), and tunneld does not take it over.
func addRoute(r model.Route, oif uint32) nlreq {
	return nlreq{unix.RTM_NEWROUTE, netlink.Create | netlink.Excl, routeMsg(r, oif), func(err error) error {
		if isExist(err) {
			// Outside main tunneld reads no one else's routes, so
			// this is where it can say what to do (a tester's got
			// the kernel's "file exists" alone).
			ip := "ip"
			if r.Dst.Addr().Is6() {
				ip = "ip -6"
			}
			return fmt.Errorf("a route not owned by tunneld has the same table, destination and metric (%s route show table %d %s lists it): give this route a metric no route there has, or delete that one: %w", ip, r.Table, r.Dst, err)
		}
		return routeRefused(r, err)
	}}
}

// routeRefused says what to change where the kernel refuses a route for
// its gateway or source, which check cannot know (it reads no kernel): a
// tester got the kernel's words alone ("network is unreachable: Nexthop
// has invalid gateway", "invalid argument: Invalid prefsrc address").
func routeRefused(r model.Route, err error) error {
	switch {
	case err == nil:
		return nil
	case (errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH)) && r.Via.IsValid() && !r.OnLink:
		// IPv4 says "network is unreachable", IPv6 "no route to host".
		// "Subnets that are up": a tester's gateway was on a LAN
		// device that was only down.
		if r.Dev == "" {
			return fmt.Errorf("the gateway %s is on none of the box's subnets that are up (fix via, or bring its device up): %w", r.Via, err)
		}
		return fmt.Errorf("the gateway %s is on none of %s's subnets, or %s is down (fix via, bring it up, or set onlink = true if it is reachable on the link all the same): %w", r.Via, r.Dev, r.Dev, err)
	case errors.Is(err, unix.EINVAL) && r.Src.IsValid() && (strings.Contains(err.Error(), "prefsrc") || strings.Contains(err.Error(), "source address")):
		// IPv4's "Invalid prefsrc address", IPv6's "Invalid source address".
		return fmt.Errorf("the source %s is not an address of this box (src must be one of its own): %w", r.Src, err)
	}
	return err
}

func delRoute(r model.Route, oif uint32) nlreq {
	m := routeMsg(r, oif)
	m.Scope = unix.RT_SCOPE_NOWHERE
	return nlreq{unix.RTM_DELROUTE, 0, m, unless(isNotExist)}
}
