package linux

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/model"
)

// routeMsg encodes one of tunneld's routes. Tables above 255 only fit the
// RTA_TABLE attribute (the header then says 0; it reads back as 252).
func routeMsg(r model.Route, oif uint32) *rtnetlink.RouteMessage {
	m := &rtnetlink.RouteMessage{
		Family:    unix.AF_INET,
		DstLength: uint8(r.Dst.Bits()),
		Protocol:  model.RouteProtocol,
		Scope:     unix.RT_SCOPE_UNIVERSE,
		Type:      unix.RTN_UNICAST,
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
	} else if r.Dst.Addr().Is4() {
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

// observedRoute is a unicast route as listed, with what tells owners apart.
type observedRoute struct {
	route    model.Route
	oif      uint32
	protocol uint8
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
	return list(k, into, "routes", unix.RTM_GETROUTE, req, decodeRoute)
}

// decodeRoute reads an RTM_NEWROUTE message; ok is false for a route
// tunneld never owns or depends on (not unicast, multipath, or with a
// source prefix).
func decodeRoute(b []byte) (r observedRoute, ok bool, err error) {
	if len(b) < unix.SizeofRtMsg {
		return r, false, errMalformed
	}
	family, dstLen, srcLen, typ := b[0], int(b[1]), b[2], b[7]
	r.protocol = b[5]
	r.route.Table = uint32(b[4])
	r.route.OnLink = binary.NativeEndian.Uint32(b[8:])&unix.RTNH_F_ONLINK != 0
	multipath := false
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
		case unix.RTA_MULTIPATH:
			multipath = true
		}
		return nil
	})
	if err != nil || typ != unix.RTN_UNICAST || multipath || srcLen != 0 {
		return r, false, err
	}
	r.route.Via, r.route.Src = r.route.Via.Unmap(), r.route.Src.Unmap()
	r.route.Dst = netip.PrefixFrom(dst.Unmap(), dstLen)
	return r, true, nil
}

// addRoute creates a route that must not exist: EEXIST means a route that
// is not tunneld's holds the same table, destination and metric (tunneld
// would have seen its own), and tunneld does not take it over.
func addRoute(r model.Route, oif uint32) nlreq {
	return nlreq{unix.RTM_NEWROUTE, netlink.Create | netlink.Excl, routeMsg(r, oif), func(err error) error {
		if isExist(err) {
			return fmt.Errorf("a route not owned by tunneld has the same table, destination and metric: %w", err)
		}
		return err
	}}
}

func replaceRoute(r model.Route, oif uint32) nlreq {
	return nlreq{unix.RTM_NEWROUTE, netlink.Create | netlink.Replace, routeMsg(r, oif), nil}
}

func delRoute(r model.Route, oif uint32) nlreq {
	m := routeMsg(r, oif)
	m.Scope = unix.RT_SCOPE_NOWHERE
	return nlreq{unix.RTM_DELROUTE, 0, m, unless(isNotExist)}
}
