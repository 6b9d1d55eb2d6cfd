package linux

import (
	"net"
	"net/netip"
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
// loopback device IPv6 lists them with, every table) as rtnetlink's
// decoders do.
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
	routesSeen, flagged, typed := 0, 0, 0
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
	if addrs < 7 || secondary != 1 || routesSeen < 13 || flagged != 1 || typed != 3 {
		t.Errorf("compared %d addresses (%d secondary) and %d routes (%d on-link with source and metric, %d unreachable, blackhole or prohibit): the namespace is not what the test set up", addrs, secondary, routesSeen, flagged, typed)
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
	if m.Attributes.Multipath != nil || m.SrcLength != 0 {
		return observedRoute{}, false
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
	r := model.Route{Table: table, Dst: netip.PrefixFrom(dst, int(m.DstLength)), Via: ipAddr(m.Attributes.Gateway),
		OnLink: m.Flags&unix.RTNH_F_ONLINK != 0, Metric: m.Attributes.Priority, Src: ipAddr(m.Attributes.Src)}
	oif := m.Attributes.OutIface
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
