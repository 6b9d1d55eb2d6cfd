package linux

import (
	"maps"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/plan"
)

// TestPrivilegedDecodeAddrsAndRoutes: the lean address and route
// decoders read every address and route of a namespace (IPv4 and IPv6,
// a peer address, gateways, an on-link route with a preferred source and
// a metric, unreachable, blackhole and prohibit routes without the
// loopback device IPv6 lists them with, an IPv6 route of tunneld's that
// a foreign one was merged into as its first nexthop, an IPv4 multipath
// route not at all, every table) as rtnetlink's decoders do.
func TestPrivilegedDecodeAddrsAndRoutes(t *testing.T) {
	k := open(t)
	foreign(t)
	for _, a := range [][2]string{{"eth0", "2001:db8::10/64"}, {"eth1", "2001:db8:1::10/64"}, {"eth0", "192.0.2.11/24"}} { // the last one secondary
		if err := netnstest.AddAddr(a[0], mustPrefix(a[1])); err != nil {
			t.Fatal(err)
		}
	}
	peer := model.Addr{Link: "eth1", Prefix: mustPrefix("10.1.1.1/32"), Peer: netip.MustParseAddr("10.1.1.2")}
	routes := []model.Route{
		{Table: 77, Dst: mustPrefix("2001:db8:9::/48"), Via: netip.MustParseAddr("2001:db8::1"), Dev: "eth0"},
		{Table: 77, Dst: mustPrefix("10.77.0.0/16"), Via: netip.MustParseAddr("203.0.113.9"), OnLink: true, Src: netip.MustParseAddr("192.0.2.10"), Metric: 30, Dev: "eth0"},
		{Table: 77, Dst: mustPrefix("10.78.0.0/16"), Type: model.RouteUnreachable},
		{Table: 254, Dst: mustPrefix("2001:db8:7::/48"), Metric: 1024, Type: model.RouteBlackhole},
		{Table: 1000, Dst: mustPrefix("2001:db8:8::/48"), Metric: 5, Type: model.RouteProhibit},
	}
	p := plan.Plan{Ops: []plan.Op{{Kind: plan.AddrAdd, Addr: &peer}}}
	for i := range routes {
		p.Ops = append(p.Ops, plan.Op{Kind: plan.RouteAdd, Route: &routes[i]})
	}
	if err := k.Apply(ctx, p); err != nil {
		t.Fatal(err)
	}
	// An admin's route with a gateway beside tunneld's first: IPv6 makes
	// the two one multipath route, listed as tunneld's. And an IPv4
	// multipath route.
	ipCmd(t, "-6", "route", "append", "2001:db8:9::/48", "via", "2001:db8:1::1", "dev", "eth1", "table", "77", "proto", "static")
	addMultipath4(t, "10.79.0.0/16", 77, map[string]string{"eth0": "192.0.2.1", "eth1": "198.51.100.1"})
	opts := []cmp.Option{cmp.AllowUnexported(observedAddr{}, observedRoute{}), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})}

	addrs, secondary := 0, 0
	err := k.dump(unix.RTM_GETADDR, &rtnetlink.AddressMessage{}, func() {}, func(b []byte) error {
		got, gotOK, err := decodeAddr(b)
		if err != nil {
			return err
		}
		want, wantOK := addrReference(t, b)
		if gotOK != wantOK || wantOK && !cmp.Equal(want, got, opts...) {
			t.Errorf("address (-rtnetlink +decodeAddr): ok %v/%v\n%s", wantOK, gotOK, cmp.Diff(want, got, opts...))
		}
		if gotOK {
			addrs++
			if got.secondary {
				secondary++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	routesSeen, flagged, typed, merged := 0, 0, 0, 0
	err = k.dump(unix.RTM_GETROUTE, &rtnetlink.RouteMessage{Family: unix.AF_UNSPEC}, func() {}, func(b []byte) error {
		got, gotOK, err := decodeRoute(b)
		if err != nil {
			return err
		}
		want, wantOK := routeReference(t, b)
		if gotOK != wantOK || wantOK && !cmp.Equal(want, got, opts...) {
			t.Errorf("route (-rtnetlink +decodeRoute): ok %v/%v\n%s", wantOK, gotOK, cmp.Diff(want, got, opts...))
		}
		if gotOK {
			routesSeen++
			if got.route.OnLink && got.route.Src.IsValid() && got.route.Metric == 30 {
				flagged++
			}
			if got.route.Dst == mustPrefix("2001:db8:9::/48") && got.route.Via == netip.MustParseAddr("2001:db8::1") && got.protocol == model.RouteProtocol {
				merged++
			}
			if got.route.Type != model.RouteUnicast {
				typed++
				if got.oif != 0 || got.route.Via.IsValid() {
					t.Errorf("%s route %s: device %d, gateway %s", got.route.Type, got.route.Dst, got.oif, got.route.Via)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if addrs < 7 || secondary != 1 || routesSeen < 13 || flagged != 1 || typed != 3 || merged != 1 {
		t.Errorf("compared %d addresses (%d secondary) and %d routes (%d on-link with source and metric, %d unreachable, blackhole or prohibit, %d of tunneld's with a foreign one in it): the namespace is not what the test set up", addrs, secondary, routesSeen, flagged, typed, merged)
	}
}

// addrReference decodes an address message with rtnetlink, as tunneld
// did before it had its own decoder.
func addrReference(t *testing.T, b []byte) (observedAddr, bool) {
	var m rtnetlink.AddressMessage
	if err := m.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if m.Attributes == nil {
		return observedAddr{}, false
	}
	local, address := ipAddr(m.Attributes.Local), ipAddr(m.Attributes.Address)
	if !local.IsValid() {
		local = address
	}
	if !local.IsValid() {
		return observedAddr{}, false
	}
	a := model.Addr{Prefix: netip.PrefixFrom(local, int(m.PrefixLength))}
	if address.IsValid() && address != local {
		a.Peer = address
		a.Prefix = netip.PrefixFrom(local, local.BitLen())
	}
	flags := uint32(m.Flags) | m.Attributes.Flags
	return observedAddr{index: m.Index, addr: a, scope: m.Scope, secondary: flags&unix.IFA_F_SECONDARY != 0,
		unusable:   flags&unix.IFA_F_DADFAILED != 0 || flags&unix.IFA_F_TENTATIVE != 0 && flags&unix.IFA_F_OPTIMISTIC == 0,
		deprecated: flags&unix.IFA_F_DEPRECATED != 0}, true
}

// routeReference decodes a route message with rtnetlink.
func routeReference(t *testing.T, b []byte) (observedRoute, bool) {
	var m rtnetlink.RouteMessage
	if err := m.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	var typ model.RouteType
	switch m.Type {
	case unix.RTN_UNICAST:
	case unix.RTN_UNREACHABLE:
		typ = model.RouteUnreachable
	case unix.RTN_BLACKHOLE:
		typ = model.RouteBlackhole
	case unix.RTN_PROHIBIT:
		typ = model.RouteProhibit
	default:
		return observedRoute{}, false
	}
	if m.SrcLength != 0 {
		return observedRoute{}, false
	}
	via, oif, onlink := ipAddr(m.Attributes.Gateway), m.Attributes.OutIface, m.Flags&unix.RTNH_F_ONLINK != 0
	if mp := m.Attributes.Multipath; mp != nil {
		// IPv6 lists a route of tunneld's that a foreign one was
		// merged into as tunneld's, its nexthop first.
		if m.Family != unix.AF_INET6 || m.Protocol != model.RouteProtocol || len(mp) < 2 || ipAddr(mp[0].Gateway) == (netip.Addr{}) {
			return observedRoute{}, false
		}
		via, oif, onlink = ipAddr(mp[0].Gateway), mp[0].Hop.IfIndex, mp[0].Hop.Flags&unix.RTNH_F_ONLINK != 0
	}
	dst := netip.IPv4Unspecified()
	if m.Family == unix.AF_INET6 {
		dst = netip.IPv6Unspecified()
	}
	if a := ipAddr(m.Attributes.Dst); a.IsValid() {
		dst = a
	}
	table := m.Attributes.Table
	if table == 0 {
		table = uint32(m.Table)
	}
	r := model.Route{Table: table, Dst: netip.PrefixFrom(dst, int(m.DstLength)), Via: via,
		OnLink: onlink, Metric: m.Attributes.Priority, Src: ipAddr(m.Attributes.Src)}
	if typ != model.RouteUnicast {
		r.Type, r.Via, r.OnLink, oif = typ, netip.Addr{}, false, 0 // IPv6 says dev lo
	}
	return observedRoute{route: r, oif: oif, protocol: m.Protocol}, true
}

// ipAddr converts a net.IP from rtnetlink (4 or 16 bytes).
func ipAddr(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

// addMultipath4 adds an IPv4 multipath route to dst in table with one
// nexthop per device and gateway, over rtnetlink (busybox ip, in the test
// VMs, has no nexthop keyword).
func addMultipath4(t *testing.T, dst string, table uint32, hops map[string]string) {
	t.Helper()
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := netip.MustParsePrefix(dst)
	m := &rtnetlink.RouteMessage{Family: unix.AF_INET, DstLength: uint8(p.Bits()), Table: unix.RT_TABLE_UNSPEC,
		Protocol: unix.RTPROT_STATIC, Scope: unix.RT_SCOPE_UNIVERSE, Type: unix.RTN_UNICAST,
		Attributes: rtnetlink.RouteAttributes{Dst: p.Addr().AsSlice(), Table: table}}
	for _, dev := range slices.Sorted(maps.Keys(hops)) {
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			t.Fatal(err)
		}
		m.Attributes.Multipath = append(m.Attributes.Multipath, rtnetlink.NextHop{
			Hop: rtnetlink.RTNextHop{IfIndex: uint32(ifc.Index)}, Gateway: netip.MustParseAddr(hops[dev]).AsSlice()})
	}
	if err := c.Route.Add(m); err != nil {
		t.Fatalf("multipath route %s table %d: %v", dst, table, err)
	}
}
