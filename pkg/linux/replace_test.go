package linux

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
)

// listed is a route of table 1000 to dst with metric 5, as a dump lists
// it: "unicast", "unreachable" and so on, a gateway (or ""), a device
// index, a protocol.
func listed(dst, typ, via string, oif uint32, proto uint8) listedRoute {
	var l listedRoute
	l.route = model.Route{Table: 1000, Dst: netip.MustParsePrefix(dst), Metric: 5}
	if via != "" {
		l.route.Via = netip.MustParseAddr(via)
	}
	l.oif, l.protocol = oif, proto
	l.typ = map[string]uint8{"unicast": unix.RTN_UNICAST, "unreachable": unix.RTN_UNREACHABLE, "blackhole": unix.RTN_BLACKHOLE, "throw": unix.RTN_THROW}[typ]
	return l
}

// mergedListed is tunneld's IPv6 route to dst through 2001:db8:a::1 on
// eth0 with a foreign one through 2001:db8:b::1 on eth1 merged into it,
// as a dump lists the two.
func mergedListed(dst string) listedRoute {
	l := listed(dst, "unicast", "", 0, model.RouteProtocol)
	l.multipath = true
	l.hops = []nexthop{{via: netip.MustParseAddr("2001:db8:a::1"), oif: 2}, {via: netip.MustParseAddr("2001:db8:b::1"), oif: 3}}
	return l
}

// reqString is a route request as "VERB TYPE via GATEWAY oif INDEX", the
// verb add (NLM_F_EXCL), append, prepend (neither: IPv6 adds after
// anyway), replace or del, with "after" for a follow-up and "if failed"
// for a put-back.
func reqString(r nlreq) string {
	var m *rtnetlink.RouteMessage
	switch b := r.body.(type) {
	case *rtnetlink.RouteMessage:
		m = b
	case afterOK:
		m = b.RouteMessage
	case ifFailed:
		m = b.RouteMessage
	}
	verb := "del"
	if r.typ == unix.RTM_NEWROUTE {
		switch {
		case r.flags&netlink.Replace != 0:
			verb = "replace"
		case r.flags&netlink.Excl != 0:
			verb = "add"
		case r.flags&netlink.Append != 0:
			verb = "append"
		default:
			verb = "prepend"
		}
	}
	switch r.phase() {
	case sendAfterOK:
		verb += " after"
	case sendIfFailed:
		verb += " if failed"
	}
	via := "-"
	if m.Attributes.Gateway != nil {
		via = net.IP(m.Attributes.Gateway).String()
	}
	return fmt.Sprintf("%s type %d via %s oif %d proto %d", verb, m.Type, via, m.Attributes.OutIface, m.Protocol)
}

// TestReplaceRoute: the requests that change tunneld's route beside the
// routes of its key the kernel has (in its order), for each kind of
// neighbour; eth0 is index 2, eth1 3, lo 1.
func TestReplaceRoute(t *testing.T) {
	const ours, static = model.RouteProtocol, unix.RTPROT_STATIC
	v4 := model.Route{Table: 1000, Dst: netip.MustParsePrefix("10.50.0.0/16"), Via: netip.MustParseAddr("192.0.2.2"), Dev: "eth0", Metric: 5}
	v6gw := model.Route{Table: 1000, Dst: netip.MustParsePrefix("2001:db8:50::/48"), Via: netip.MustParseAddr("2001:db8:a::1"), Dev: "eth0", Metric: 5}
	v6gw2 := v6gw
	v6gw2.Via = netip.MustParseAddr("2001:db8:a::2")
	v6dev := model.Route{Table: 1000, Dst: netip.MustParsePrefix("2001:db8:50::/48"), Dev: "eth0", Metric: 5}
	v6blackhole := model.Route{Table: 1000, Dst: netip.MustParsePrefix("2001:db8:50::/48"), Metric: 5, Type: model.RouteBlackhole}
	for _, c := range []struct {
		name string
		r    model.Route
		oif  uint32
		key  []listedRoute
		want []string // or the error's end
	}{{
		name: "alone", r: v4, oif: 2,
		key:  []listedRoute{listed("10.50.0.0/16", "unicast", "192.0.2.1", 2, ours)},
		want: []string{"replace type 1 via 192.0.2.2 oif 2 proto 116"},
	}, {
		name: "ipv4 first", r: v4, oif: 2,
		key:  []listedRoute{listed("10.50.0.0/16", "unicast", "192.0.2.1", 2, ours), listed("10.50.0.0/16", "unicast", "198.51.100.1", 3, static)},
		want: []string{"replace type 1 via 192.0.2.2 oif 2 proto 116"},
	}, {
		name: "ipv4 after a foreign route", r: v4, oif: 2,
		key: []listedRoute{listed("10.50.0.0/16", "unicast", "198.51.100.1", 3, static), listed("10.50.0.0/16", "unicast", "192.0.2.1", 2, ours)},
		want: []string{
			"append type 1 via 192.0.2.2 oif 2 proto 116",
			"del after type 1 via 192.0.2.1 oif 2 proto 116",
		},
	}, {
		name: "ipv4 after a foreign throw route", r: v4, oif: 2,
		key: []listedRoute{listed("10.50.0.0/16", "throw", "", 0, static), listed("10.50.0.0/16", "unicast", "192.0.2.1", 2, ours)},
		want: []string{
			"append type 1 via 192.0.2.2 oif 2 proto 116",
			"del after type 1 via 192.0.2.1 oif 2 proto 116",
		},
	}, {
		name: "ipv4 twice, no foreign route, once as wanted", r: v4, oif: 2,
		key:  []listedRoute{listed("10.50.0.0/16", "unicast", "192.0.2.1", 2, ours), listed("10.50.0.0/16", "unicast", "192.0.2.2", 2, ours)},
		want: []string{"del type 1 via 192.0.2.1 oif 2 proto 116"},
	}, {
		name: "ipv4 twice, no foreign route, neither as wanted", r: v4, oif: 2,
		key: []listedRoute{listed("10.50.0.0/16", "unicast", "192.0.2.1", 2, ours), listed("10.50.0.0/16", "unicast", "192.0.2.3", 2, ours)},
		want: []string{
			"append type 1 via 192.0.2.2 oif 2 proto 116",
			"del after type 1 via 192.0.2.1 oif 2 proto 116",
			"del after type 1 via 192.0.2.3 oif 2 proto 116",
		},
	}, {
		name: "ipv4 twice, once as wanted", r: v4, oif: 2,
		key:  []listedRoute{listed("10.50.0.0/16", "unicast", "192.0.2.2", 2, ours), listed("10.50.0.0/16", "unicast", "192.0.2.1", 2, ours), listed("10.50.0.0/16", "unicast", "198.51.100.1", 3, static)},
		want: []string{"del type 1 via 192.0.2.1 oif 2 proto 116"},
	}, {
		name: "gone, a foreign route left", r: v4, oif: 2,
		key:  []listedRoute{listed("10.50.0.0/16", "unicast", "198.51.100.1", 3, static)},
		want: []string{"add type 1 via 192.0.2.2 oif 2 proto 116"},
	}, {
		name: "ipv6 first, gateway for gateway", r: v6gw, oif: 2,
		key:  []listedRoute{listed("2001:db8:50::/48", "unicast", "2001:db8:a::2", 2, ours), listed("2001:db8:50::/48", "unicast", "", 3, static)},
		want: []string{"replace type 1 via 2001:db8:a::1 oif 2 proto 116"},
	}, {
		name: "ipv6 first, blackhole for unreachable", r: v6blackhole,
		key:  []listedRoute{listed("2001:db8:50::/48", "unreachable", "", 1, ours), listed("2001:db8:50::/48", "unicast", "", 3, static)},
		want: []string{"replace type 6 via - oif 0 proto 116"},
	}, {
		name: "ipv6 a device for a gateway", r: v6dev, oif: 2,
		key: []listedRoute{listed("2001:db8:50::/48", "unicast", "2001:db8:a::1", 2, ours), listed("2001:db8:50::/48", "unicast", "", 3, static)},
		want: []string{
			"prepend type 1 via - oif 2 proto 116",
			"del after type 1 via 2001:db8:a::1 oif 2 proto 116",
		},
	}, {
		name: "ipv6 after a foreign route, the same device", r: v6dev, oif: 2,
		key: []listedRoute{listed("2001:db8:50::/48", "unicast", "", 3, static), listed("2001:db8:50::/48", "blackhole", "", 1, ours)},
		want: []string{
			"prepend type 1 via - oif 2 proto 116",
			"del after type 6 via - oif 0 proto 116",
		},
	}, {
		name: "ipv6 a duplicate of tunneld's", r: v6blackhole,
		key: []listedRoute{listed("2001:db8:50::/48", "unicast", "", 3, static), listed("2001:db8:50::/48", "unreachable", "", 1, ours)},
		want: []string{
			"del type 7 via - oif 0 proto 116",
			"prepend type 6 via - oif 0 proto 116",
			"prepend if failed type 7 via - oif 0 proto 116",
		},
	}, {
		name: "ipv6 another gateway, after a foreign route", r: v6gw2, oif: 2,
		key: []listedRoute{listed("2001:db8:50::/48", "unicast", "", 3, static), listed("2001:db8:50::/48", "unicast", "2001:db8:a::1", 2, ours)},
		want: []string{
			"del type 1 via 2001:db8:a::1 oif 2 proto 116",
			"prepend type 1 via 2001:db8:a::2 oif 2 proto 116",
			"prepend if failed type 1 via 2001:db8:a::1 oif 2 proto 116",
		},
	}, {
		name: "ipv6 a gateway beside a foreign gateway", r: v6gw, oif: 2,
		key:  []listedRoute{listed("2001:db8:50::/48", "unicast", "", 2, ours), listed("2001:db8:50::/48", "unicast", "2001:db8:b::1", 3, static)},
		want: []string{"(via 2001:db8:b::1 dev eth1 proto static), and the kernel would merge tunneld's new route with it into one multipath route: tunneld's route is left as it was: " + kernel.ErrForeign.Error()},
	}, {
		name: "ipv6 a duplicate of a foreign route", r: v6blackhole,
		key:  []listedRoute{listed("2001:db8:50::/48", "unicast", "2001:db8:a::2", 2, ours), listed("2001:db8:50::/48", "unicast", "", 1, unix.RTPROT_RA)},
		want: []string{"(dev lo proto ra), and the kernel would refuse tunneld's new route as its duplicate: tunneld's route is left as it was: " + kernel.ErrForeign.Error()},
	}, {
		name: "ipv6 another gateway, merged with a foreign one", r: v6gw2, oif: 2,
		key:  []listedRoute{mergedListed("2001:db8:50::/48")},
		want: []string{"(nexthop via 2001:db8:b::1 dev eth1 merged into tunneld's), and the kernel would merge tunneld's new route with it into one multipath route: tunneld's route is left as it was: " + kernel.ErrForeign.Error()},
	}, {
		name: "ipv6 a device, merged with a foreign one", r: v6dev, oif: 2,
		key: []listedRoute{mergedListed("2001:db8:50::/48")},
		want: []string{
			"prepend type 1 via - oif 2 proto 116",
			"del after type 1 via 2001:db8:a::1 oif 2 proto 116",
		},
	}} {
		t.Run(c.name, func(t *testing.T) {
			names := map[uint32]string{1: "lo", 2: "eth0", 3: "eth1"}
			reqs, err := replaceRoute(c.r, c.oif, 1, c.key, func(i uint32) string { return names[i] })
			var got []string
			if err != nil {
				if !errors.Is(err, kernel.ErrForeign) || !strings.HasPrefix(err.Error(), "a route not owned by tunneld has the same table, destination and metric ") {
					t.Errorf("error %v", err)
				}
				got = []string{strings.TrimPrefix(err.Error(), "a route not owned by tunneld has the same table, destination and metric ")}
			}
			for _, r := range reqs {
				got = append(got, reqString(r))
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
