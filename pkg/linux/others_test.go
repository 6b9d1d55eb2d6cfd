package linux

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// nla is one netlink attribute, padded to its alignment.
func nla(typ uint16, v []byte) []byte {
	b := make([]byte, unix.SizeofNlAttr, nlaAlign(unix.SizeofNlAttr+len(v)))
	binary.NativeEndian.PutUint16(b, uint16(unix.SizeofNlAttr+len(v)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, v...)
	return b[:cap(b)]
}

func ne16(v uint16) []byte { return binary.NativeEndian.AppendUint16(nil, v) }
func ne32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// linkMsg is an RTM_NEWLINK message as the kernel sends it in a dump: a
// device t-x, index 7, up, mtu 1452, alias tunneld's, of the given kind
// with the given IFLA_INFO_DATA attributes.
func linkMsg(kind string, data ...[]byte) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(b[4:], 7)
	binary.NativeEndian.PutUint32(b[8:], unix.IFF_UP)
	var info []byte
	for _, d := range data {
		info = append(info, d...)
	}
	b = append(b, nla(unix.IFLA_IFNAME, []byte("t-x\x00"))...)
	b = append(b, nla(unix.IFLA_MTU, ne32(1452))...)
	b = append(b, nla(unix.IFLA_IFALIAS, []byte(model.LinkAlias))...)
	return append(b, nla(unix.IFLA_LINKINFO|unix.NLA_F_NESTED, append(
		nla(unix.IFLA_INFO_KIND, []byte(kind+"\x00")),
		nla(unix.IFLA_INFO_DATA|unix.NLA_F_NESTED, info)...))...)
}

// IFLA_IPTUN_* and IFLA_GRE_* numbers, spelled out here rather than
// taken from iptun.
const (
	tunLink, tunLocal, tunRemote, tunTTL, tunTOS    = 1, 2, 3, 4, 5
	tunEncapLimit, tunFlowInfo, tunFlags, tunProto  = 6, 7, 8, 9
	tunPMTUDisc                                     = 10
	tunEncapType, tunEncapFlags, tunSport, tunDport = 15, 16, 17, 18
	tunFwMark                                       = 20

	greLink, greIFlags, greOFlags, greIKey, greOKey  = 1, 2, 3, 4, 5
	greLocal, greRemote, greTTL, greTOS, grePMTUDisc = 6, 7, 8, 9, 10
	greEncapType, greEncapFlags, greSport, greDport  = 14, 15, 16, 17
	greIgnoreDF, greFwMark                           = 19, 20
)

// byHand are the values a test gives the parameters tunneld does not
// configure in an IFLA_INFO_DATA it builds by hand.
type byHand struct {
	fwmark                              uint32
	encapType, encapFlags, sport, dport uint16
	iflags, oflags                      uint16 // gre: GRE_CSUM 0x8000, GRE_SEQ 0x1000
	ignoreDF                            bool   // gre
}

// encapData are the encapsulation attributes in the order the kernel's
// fill_info functions write them.
func encapData(typ, flags, sport, dport uint16, h byHand) [][]byte {
	return [][]byte{nla(typ, ne16(h.encapType)), nla(sport, be16(h.sport)), nla(dport, be16(h.dport)), nla(flags, ne16(h.encapFlags))}
}

// ip4Data is the IFLA_INFO_DATA of an ipip (or sit) tunnel from
// 192.0.2.1 to 192.0.2.2, ttl 64, pmtudisc, as the kernel's
// ipip_fill_info (ipip6_fill_info) writes it.
func ip4Data(kind string, h byHand) [][]byte {
	d := [][]byte{
		nla(tunLink, ne32(0)),
		nla(tunLocal, netip.MustParseAddr("192.0.2.1").AsSlice()),
		nla(tunRemote, netip.MustParseAddr("192.0.2.2").AsSlice()),
		nla(tunTTL, []byte{64}),
		nla(tunTOS, []byte{0}),
	}
	if kind == "sit" {
		d = append(d, nla(tunPMTUDisc, []byte{1}), nla(tunProto, []byte{41}), nla(tunFlags, be16(0)))
	} else {
		d = append(d, nla(tunProto, []byte{4}), nla(tunPMTUDisc, []byte{1}))
	}
	d = append(d, nla(tunFwMark, ne32(h.fwmark)))
	return append(d, encapData(tunEncapType, tunEncapFlags, tunSport, tunDport, h)...)
}

// greData is the IFLA_INFO_DATA of a gre tunnel without keys from
// 192.0.2.1 to 192.0.2.2, ttl 64, as the kernel's ipgre_fill_info writes
// it; pmtudisc unless h has ignore-df, which the kernel refuses with it.
func greData(h byHand) [][]byte {
	pmtudisc, ignoreDF := byte(1), byte(0)
	if h.ignoreDF {
		pmtudisc, ignoreDF = 0, 1
	}
	d := [][]byte{
		nla(greLink, ne32(0)),
		nla(greIFlags, be16(h.iflags)),
		nla(greOFlags, be16(h.oflags)),
		nla(greIKey, be32(0)),
		nla(greOKey, be32(0)),
		nla(greLocal, netip.MustParseAddr("192.0.2.1").AsSlice()),
		nla(greRemote, netip.MustParseAddr("192.0.2.2").AsSlice()),
		nla(greTTL, []byte{64}),
		nla(greTOS, []byte{0}),
		nla(grePMTUDisc, []byte{pmtudisc}),
		nla(greFwMark, ne32(h.fwmark)),
	}
	d = append(d, encapData(greEncapType, greEncapFlags, greSport, greDport, h)...)
	return append(d, nla(greIgnoreDF, []byte{ignoreDF}))
}

// ip6tnlData is the IFLA_INFO_DATA of an ip6tnl in the order the
// kernel's ip6_tnl_fill_info writes it: 2001:db8::1 to 2001:db8::2, hop
// limit 64, encapsulation limit 4, with the given protocol, flow info
// (traffic class and flow label, big endian) and flags (host order).
func ip6tnlData(proto uint8, flowinfo, flags uint32, h byHand) [][]byte {
	d := [][]byte{
		nla(tunLink, ne32(0)),
		nla(tunLocal, netip.MustParseAddr("2001:db8::1").AsSlice()),
		nla(tunRemote, netip.MustParseAddr("2001:db8::2").AsSlice()),
		nla(tunTTL, []byte{64}),
		nla(tunEncapLimit, []byte{4}),
		nla(tunFlowInfo, be32(flowinfo)),
		nla(tunFlags, ne32(flags)),
		nla(tunProto, []byte{proto}),
		nla(tunFwMark, ne32(h.fwmark)),
	}
	return append(d, encapData(tunEncapType, tunEncapFlags, tunSport, tunDport, h)...)
}

// The kernel's own ip6tnl flags, which it reports beside the ones set
// through netlink: IP6_TNL_F_CAP_XMIT | IP6_TNL_F_CAP_RCV.
const ip6tnlCaps = 0x10000 | 0x20000

// observedFrom decodes a link message as Observe does, for a
// configuration that names t-x with mode.
func observedFrom(t *testing.T, b []byte, mode model.Mode) model.Link {
	t.Helper()
	l, err := decodeLink(b)
	if err != nil {
		t.Fatal(err)
	}
	ml, ok := linkFromData(l.kind, l.data, map[uint32]string{}, mode)
	if !ok {
		t.Fatalf("%s link not read as a tunnel", l.kind)
	}
	ml.Name, ml.MTU, ml.Up = l.name, l.mtu, l.up
	return ml
}

// driftCommands is what a plan from the observed link o to want does.
func driftCommands(o, want model.Link) []string {
	var out []string
	for _, op := range plan.Diff(model.State{Links: []model.Link{o}}, model.State{Links: []model.Link{want}}).Ops {
		out = append(out, op.Command(nil))
	}
	return out
}

// TestIP6TnlHandChangesAreDrift: an ipip6 tunnel the kernel reports
// with the inner protocol any (ip -6 tunnel change NAME mode any), a
// flow label, or a flag tunneld does not set (allow-localremote, …)
// differs from the tunnel tunneld wants, and the plan changes it back
// in place, printing what ip needs to undo it. linkFromData read proto
// 0 as the configured mode and ignored the flow label and those flags:
// a tester's hand change in the VM was never seen, so never repaired.
// The kernel's capability flags are no difference.
func TestIP6TnlHandChangesAreDrift(t *testing.T) {
	want := model.Link{Name: "t-x", Mode: model.ModeIPIP6, Local: netip.MustParseAddr("2001:db8::1"), Remote: netip.MustParseAddr("2001:db8::2"),
		TTL: 64, EncapLimit: 4, MTU: 1452, Up: true}
	const change = "ip link change t-x mtu 1452 type ip6tnl mode ipip6 local 2001:db8::1 remote 2001:db8::2 hoplimit 64 encaplimit 4"
	for _, tt := range []struct {
		name     string
		proto    uint8
		flowinfo uint32
		flags    uint32
		want     []string
	}{
		{"as tunneld made it", 4, 0, ip6tnlCaps, nil},
		{"without the capability flags", 4, 0, 0, nil},
		{"mode any", 0, 0, ip6tnlCaps, []string{change}},
		{"flowlabel", 4, 0x12345, ip6tnlCaps, []string{change + " flowlabel 0x00000"}},
		{"allow-localremote", 4, 0, ip6tnlCaps | 0x40, []string{change + " noallow-localremote"}},
		{"flowlabel inherit", 4, 0, 0x4, []string{change + " flowlabel 0x00000"}},
		{"fwmark inherit", 4, 0, 0x20, []string{change + " fwmark 0"}},
		{"dscp inherit", 4, 0, 0x10, []string{change + "  # also clears dscp inherit, which ip cannot"}},
		{"mip6", 4, 0, 0x8, []string{change + "  # also clears mip6, which ip cannot"}},
		{"all of them", 0, 0xfffff, ip6tnlCaps | 0x7c, []string{change + " flowlabel 0x00000 fwmark 0 noallow-localremote  # also clears dscp inherit, mip6, which ip cannot"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := observedFrom(t, linkMsg("ip6tnl", ip6tnlData(tt.proto, tt.flowinfo, tt.flags, byHand{})...), model.ModeIPIP6)
			if diff := cmp.Diff(tt.want, driftCommands(o, want)); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTunnelHandChangesAreDrift: a tunnel of any kind the kernel
// reports with a parameter tunneld writes but did not read back — a
// fwmark or a UDP encapsulation (ip link set NAME type KIND fwmark 7,
// encap fou …), a gre tunnel's checksums, sequence numbers or
// ignore-df — differs from the tunnel tunneld wants, and the plan
// changes it back in place. Encapsulation flags and ports without an
// encapsulation do nothing, and are no difference (iproute2's
// ip link change of an ip6tnl writes encap-csum6 with none).
func TestTunnelHandChangesAreDrift(t *testing.T) {
	v4 := func(mode model.Mode) model.Link {
		return model.Link{Name: "t-x", Mode: mode, Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddr("192.0.2.2"),
			TTL: 64, PMTUDisc: true, MTU: 1452, Up: true}
	}
	ip6 := model.Link{Name: "t-x", Mode: model.ModeIP6IP6, Local: netip.MustParseAddr("2001:db8::1"), Remote: netip.MustParseAddr("2001:db8::2"),
		TTL: 64, EncapLimit: 4, MTU: 1452, Up: true}
	const (
		ipip   = "ip link change t-x mtu 1452 type ipip local 192.0.2.1 remote 192.0.2.2 ttl 64 pmtudisc"
		sit    = "ip link change t-x mtu 1452 type sit local 192.0.2.1 remote 192.0.2.2 ttl 64 pmtudisc"
		gre    = "ip link change t-x mtu 1452 type gre local 192.0.2.1 remote 192.0.2.2 ttl 64 pmtudisc"
		ip6ip6 = "ip link change t-x mtu 1452 type ip6tnl mode ip6ip6 local 2001:db8::1 remote 2001:db8::2 hoplimit 64 encaplimit 4"
	)
	fou := byHand{encapType: 1, encapFlags: 1, sport: 4000, dport: 5555}
	for _, tt := range []struct {
		name string
		msg  []byte
		want model.Link
		out  []string
	}{
		{"ipip as tunneld made it", linkMsg("ipip", ip4Data("ipip", byHand{})...), v4(model.ModeIPIP), nil},
		{"ipip fwmark", linkMsg("ipip", ip4Data("ipip", byHand{fwmark: 7})...), v4(model.ModeIPIP), []string{ipip + " fwmark 0"}},
		{"ipip encap fou", linkMsg("ipip", ip4Data("ipip", fou)...), v4(model.ModeIPIP), []string{ipip + " noencap"}},
		{"ipip encap flags and ports without encap", linkMsg("ipip", ip4Data("ipip", byHand{encapFlags: 3, sport: 1, dport: 2})...), v4(model.ModeIPIP), nil},
		{"sit as tunneld made it", linkMsg("sit", ip4Data("sit", byHand{})...), v4(model.ModeSIT), nil},
		{"sit fwmark and encap gue", linkMsg("sit", ip4Data("sit", byHand{fwmark: 0xffffffff, encapType: 2, dport: 6080})...), v4(model.ModeSIT),
			[]string{sit + " fwmark 0 noencap"}},
		{"gre as tunneld made it", linkMsg("gre", greData(byHand{})...), v4(model.ModeGRE), nil},
		{"gre csum", linkMsg("gre", greData(byHand{iflags: 0x8000, oflags: 0x8000})...), v4(model.ModeGRE),
			[]string{gre + "  # also clears icsum, ocsum, which ip cannot"}},
		{"gre iseq, oseq", linkMsg("gre", greData(byHand{iflags: 0x1000, oflags: 0x1000})...), v4(model.ModeGRE),
			[]string{gre + "  # also clears iseq, oseq, which ip cannot"}},
		{"gre ocsum only", linkMsg("gre", greData(byHand{oflags: 0x8000})...), v4(model.ModeGRE),
			[]string{gre + "  # also clears ocsum, which ip cannot"}},
		{"gre nopmtudisc ignore-df", linkMsg("gre", greData(byHand{ignoreDF: true})...), v4(model.ModeGRE), []string{
			"ip link change t-x mtu 1452 type gre local 192.0.2.1 remote 192.0.2.2 ttl 64 nopmtudisc noignore-df", gre}},
		{"gre fwmark, encap fou", linkMsg("gre", greData(byHand{fwmark: 1, encapType: 1, dport: 5555})...), v4(model.ModeGRE),
			[]string{gre + " fwmark 0 noencap"}},
		{"ip6tnl fwmark", linkMsg("ip6tnl", ip6tnlData(41, 0, 0, byHand{fwmark: 42})...), ip6, []string{ip6ip6 + " fwmark 0"}},
		{"ip6tnl fwmark inherit", linkMsg("ip6tnl", ip6tnlData(41, 0, 0x20, byHand{})...), ip6, []string{ip6ip6 + " fwmark 0"}},
		{"ip6tnl encap fou", linkMsg("ip6tnl", ip6tnlData(41, 0, 0, fou)...), ip6, []string{ip6ip6 + " noencap"}},
		{"ip6tnl encap-csum6 without encap", linkMsg("ip6tnl", ip6tnlData(41, 0, 0, byHand{encapFlags: 2})...), ip6, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := observedFrom(t, tt.msg, tt.want.Mode)
			if diff := cmp.Diff(tt.out, driftCommands(o, tt.want)); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOthersRoundTrip: the parameters tunneld does not configure are
// written as the link says and read back the same, for every kind, so
// the change that undoes a hand change (all of them zero) sends the
// defaults.
func TestOthersRoundTrip(t *testing.T) {
	fou := model.Encap{Type: 1, Flags: 1, SPort: 4000, DPort: 5555}
	common := []model.OtherParams{{}, {FwMark: 0xffffffff}, {Encap: fou}}
	ip6 := append(common,
		model.OtherParams{AnyProto: true},
		model.OtherParams{FlowLabel: 0xfffff},
		model.OtherParams{FlowLabelInherit: true},
		model.OtherParams{DSCPInherit: true},
		model.OtherParams{FwMarkInherit: true},
		model.OtherParams{AllowLocalRemote: true},
		model.OtherParams{MIP6: true},
		model.OtherParams{AnyProto: true, FlowLabel: 1, FlowLabelInherit: true, DSCPInherit: true, FwMarkInherit: true, AllowLocalRemote: true,
			MIP6: true, FwMark: 9, Encap: model.Encap{Type: 2, DPort: 6080}})
	gre := append(common,
		model.OtherParams{ICsum: true}, model.OtherParams{OCsum: true}, model.OtherParams{ISeq: true}, model.OtherParams{OSeq: true},
		model.OtherParams{ICsum: true, OCsum: true, ISeq: true, OSeq: true, FwMark: 1, Encap: fou})
	v4 := func(mode model.Mode, pmtudisc bool) model.Link {
		l := model.Link{Mode: mode, Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddr("192.0.2.2"), TTL: 64, TOS: 1, PMTUDisc: pmtudisc}
		if mode == model.ModeGRE {
			l.HasIKey, l.IKey = true, 42 // the key's flag beside the others
		}
		return l
	}
	v6 := func(mode model.Mode) model.Link {
		return model.Link{Mode: mode, Local: netip.MustParseAddr("2001:db8::1"), Remote: netip.MustParseAddr("2001:db8::2"), TTL: 64, TOS: 1, EncapLimit: -1}
	}
	var links []model.Link
	for _, o := range common {
		for _, l := range []model.Link{v4(model.ModeIPIP, true), v4(model.ModeSIT, true)} {
			l.Others = o
			links = append(links, l)
		}
	}
	for _, o := range gre {
		l := v4(model.ModeGRE, true)
		l.Others = o
		links = append(links, l)
	}
	ignoreDF := v4(model.ModeGRE, false)
	ignoreDF.Others.IgnoreDF = true
	links = append(links, ignoreDF)
	for _, o := range ip6 {
		for _, l := range []model.Link{v6(model.ModeIPIP6), v6(model.ModeIP6IP6)} {
			l.Others = o
			links = append(links, l)
		}
	}
	for _, want := range links {
		data, err := tunnelData(want, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := linkFromData(want.Mode.Kind(), data, nil, want.Mode)
		if !ok {
			t.Fatalf("%s: not decoded", want.Mode)
		}
		if diff := cmp.Diff(want, got, opts); diff != "" {
			t.Errorf("%s %+v read back (-want +got):\n%s", want.Mode, want.Others, diff)
		}
	}
}
