package plan

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

// TestPeerAddressAfterUp: an IPv6 address with a peer is added after its
// tunnel is set up, other addresses before: added to a down device, it
// never got its route to the peer, and a tester's routes via the peer
// failed at every apply after the tunnel was created.
func TestPeerAddressAfterUp(t *testing.T) {
	s1 := model.Link{Name: "s1", Mode: model.ModeIP6IP6, Remote: netip.MustParseAddr("2001:db8:a::14"), TTL: 64, EncapLimit: 4, MTU: 1452, Up: true}
	v6peer := model.Addr{Link: "s1", Prefix: netip.MustParsePrefix("fd04::1/128"), Peer: netip.MustParseAddr("fd04::2")}
	v6 := addr("s1", "fd05::1/64")
	g := link("g", model.ModeGRE, "192.0.2.1", "192.0.2.2")
	v4peer := model.Addr{Link: "g", Prefix: netip.MustParsePrefix("10.0.0.1/32"), Peer: netip.MustParseAddr("10.0.0.2")}
	viaPeer := model.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("fd09:33::/64"), Via: netip.MustParseAddr("fd04::2"), Dev: "s1", Metric: 1024}
	s1Down := s1
	s1Down.Up = false
	for _, tt := range []struct {
		name       string
		have, want model.State
		ops        []string
	}{
		{"created", model.State{}, model.State{Links: []model.Link{s1}, Addrs: []model.Addr{v6peer, v6}, Routes: []model.Route{viaPeer}},
			[]string{"add s1", "address fd05::1/64 dev s1", "up s1", "address fd04::1/128 peer fd04::2 dev s1", "route fd09:33::/64 via fd04::2 dev s1"}},
		{"set up again", model.State{Links: []model.Link{s1Down}}, model.State{Links: []model.Link{s1}, Addrs: []model.Addr{v6peer}},
			[]string{"up s1", "address fd04::1/128 peer fd04::2 dev s1"}},
		{"up already", model.State{Links: []model.Link{s1}}, model.State{Links: []model.Link{s1}, Addrs: []model.Addr{v6peer}},
			[]string{"address fd04::1/128 peer fd04::2 dev s1"}},
		{"IPv4 with a peer: before", model.State{}, model.State{Links: []model.Link{g}, Addrs: []model.Addr{v4peer}},
			[]string{"add g", "address 10.0.0.1/32 peer 10.0.0.2 dev g", "up g"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.ops, words(Diff(tt.have, tt.want).Ops)); diff != "" {
				t.Errorf("operations (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRemoteAnyRecreates: a tunnel with an IPv4 outer header whose
// remote turns from any to an address, or back, is deleted and created
// again: the kernel refuses the change in place (it would flip the
// device's point-to-point flag), and a tester's gre tunnel stayed down,
// each apply failing with "invalid argument". ip6tnl changes in place, as
// does a move from one address to another.
func TestRemoteAnyRecreates(t *testing.T) {
	any := netip.Addr{}
	for _, tt := range []struct {
		name     string
		mode     model.Mode
		from, to netip.Addr
		ops      []string
	}{
		{"gre any to an address", model.ModeGRE, any, netip.MustParseAddr("192.0.2.43"), []string{"del t", "add t", "up t"}},
		{"gre an address to any", model.ModeGRE, netip.MustParseAddr("192.0.2.43"), any, []string{"del t", "add t", "up t"}},
		{"ipip any to an address", model.ModeIPIP, any, netip.MustParseAddr("192.0.2.43"), []string{"del t", "add t", "up t"}},
		{"sit an address to any", model.ModeSIT, netip.MustParseAddr("192.0.2.43"), any, []string{"del t", "add t", "up t"}},
		{"gre one address to another", model.ModeGRE, netip.MustParseAddr("192.0.2.42"), netip.MustParseAddr("192.0.2.43"), []string{"change t"}},
		{"ip6ip6 any to an address", model.ModeIP6IP6, any, netip.MustParseAddr("2001:db8:a::43"), []string{"change t"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			local := netip.MustParseAddr("192.0.2.1")
			if tt.mode.OuterIPv6() {
				local = netip.MustParseAddr("2001:db8:a::1")
			}
			old := model.Link{Name: "t", Mode: tt.mode, Local: local, Remote: tt.from, TTL: 64, MTU: 1400, Up: true}
			w := old
			w.Remote = tt.to
			if diff := cmp.Diff(tt.ops, words(Diff(model.State{Links: []model.Link{old}}, model.State{Links: []model.Link{w}}).Ops)); diff != "" {
				t.Errorf("operations (-want +got):\n%s", diff)
			}
		})
	}
}

// words is each operation in a word or two and its object.
func words(ops []Op) []string {
	var out []string
	for _, op := range ops {
		switch op.Kind {
		case LinkAdd, LinkDel, LinkChange, LinkMark:
			out = append(out, map[Kind]string{LinkAdd: "add", LinkDel: "del", LinkChange: "change", LinkMark: "mark"}[op.Kind]+" "+op.Link.Name)
		case LinkUp:
			out = append(out, "up "+op.Name)
		case AddrAdd:
			out = append(out, op.Addr.ID())
		case RouteAdd:
			out = append(out, "route "+op.Route.Dst.String()+" via "+op.Route.Via.String()+" dev "+op.Route.Dev)
		default:
			out = append(out, fmt.Sprint("kind ", int(op.Kind)))
		}
	}
	return out
}
