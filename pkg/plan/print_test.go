package plan

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

// TestRouteCommand: route operations print as commands ip(8) accepts; an
// IPv6 default route takes -6 before "route" ("ip route add -6 default"
// is refused: "any valid prefix is expected rather than "-6""). A route
// of another type than unicast names it before the destination, as
// ip-route(8) has it.
func TestRouteCommand(t *testing.T) {
	v6def := model.Route{Table: 253, Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("2001:db8:1::"), Dev: "t6", Metric: 100}
	v4def := route(42, "0.0.0.0/0", "moe")
	v6net := model.Route{Table: 254, Dst: netip.MustParsePrefix("2001:db8:9::/48"), Dev: "t6"}
	v4unreach := model.Route{Table: 42, Dst: netip.MustParsePrefix("10.0.0.0/8"), Type: model.RouteUnreachable}
	v6unreach := model.Route{Table: 254, Dst: netip.MustParsePrefix("2001:db8::/48"), Metric: 1024, Type: model.RouteUnreachable}
	v6blackhole := model.Route{Table: 254, Dst: netip.MustParsePrefix("::/0"), Metric: 1024, Type: model.RouteBlackhole}
	v4prohibit := model.Route{Table: 1000, Dst: netip.MustParsePrefix("192.0.2.7/32"), Metric: 5, Type: model.RouteProhibit}
	tables := map[uint32]string{253: "default", 254: "main", 42: "vpn"}
	tests := []struct {
		name string
		op   Op
		want string
	}{
		{"v6 default add", Op{Kind: RouteAdd, Route: &v6def}, "ip -6 route add default via 2001:db8:1:: dev t6 metric 100 table default proto 116"},
		{"v6 default replace", Op{Kind: RouteReplace, Route: &v6def}, "ip -6 route replace default via 2001:db8:1:: dev t6 metric 100 table default proto 116"},
		{"v6 default del", Op{Kind: RouteDel, Route: &v6def}, "ip -6 route del default via 2001:db8:1:: dev t6 metric 100 table default proto 116"},
		{"v4 default", Op{Kind: RouteAdd, Route: &v4def}, "ip route add default dev moe table 42 proto 116  # table vpn"},
		{"v6 prefix", Op{Kind: RouteAdd, Route: &v6net}, "ip route add 2001:db8:9::/48 dev t6 table main proto 116"},
		{"v4 unreachable", Op{Kind: RouteAdd, Route: &v4unreach}, "ip route add unreachable 10.0.0.0/8 table 42 proto 116  # table vpn"},
		{"v6 unreachable", Op{Kind: RouteAdd, Route: &v6unreach}, "ip route add unreachable 2001:db8::/48 metric 1024 table main proto 116"},
		{"v6 unreachable del", Op{Kind: RouteDel, Route: &v6unreach}, "ip route del unreachable 2001:db8::/48 metric 1024 table main proto 116"},
		{"v6 blackhole default", Op{Kind: RouteReplace, Route: &v6blackhole}, "ip -6 route replace blackhole default metric 1024 table main proto 116"},
		{"v4 prohibit host", Op{Kind: RouteAdd, Route: &v4prohibit}, "ip route add prohibit 192.0.2.7 metric 5 table 1000 proto 116"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.op.Command(tables)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestTableByNumber: a command names a table by number, which ip(8)
// reads without /etc/iproute2/rt_tables (tunneld writes no line there),
// and the configuration's name of it after, in a comment; main, local
// and default by name, which ip(8) knows, with or without names given.
func TestTableByNumber(t *testing.T) {
	rule := model.Rule{Family: 4, Src: netip.MustParsePrefix("10.0.0.1/32"), Table: 42, Priority: 20000}
	main := route(254, "10.9.0.0/16", "moe")
	local := route(255, "10.9.0.0/16", "moe")
	named := map[uint32]string{42: "vpn", 254: "main", 255: "local"}
	for _, tt := range []struct {
		name   string
		op     Op
		tables map[uint32]string
		want   string
	}{
		{"rule, named", Op{Kind: RuleAdd, Rule: &rule}, named, "ip rule add from 10.0.0.1 lookup 42 priority 20000 protocol 116  # table vpn"},
		{"rule del, named", Op{Kind: RuleDel, Rule: &rule}, named, "ip rule del from 10.0.0.1 lookup 42 priority 20000 protocol 116  # table vpn"},
		{"rule, no names", Op{Kind: RuleAdd, Rule: &rule}, nil, "ip rule add from 10.0.0.1 lookup 42 priority 20000 protocol 116"},
		{"main, no names", Op{Kind: RouteAdd, Route: &main}, nil, "ip route add 10.9.0.0/16 dev moe table main proto 116"},
		{"main, named", Op{Kind: RouteAdd, Route: &main}, named, "ip route add 10.9.0.0/16 dev moe table main proto 116"},
		{"local, no names", Op{Kind: RouteDel, Route: &local}, nil, "ip route del 10.9.0.0/16 dev moe table local proto 116"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.op.Command(tt.tables)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestIP6TnlTClassCommand: an ipip6 or ip6ip6 tunnel's tos prints as
// ip(8)'s tclass (inherit, or the traffic class in hex).
func TestIP6TnlTClassCommand(t *testing.T) {
	for _, tt := range []struct {
		tos  uint8
		want string
	}{
		{0, "ip link add ds mtu 1460 type ip6tnl mode ipip6 local 2001:db8::1 remote 2001:db8::2 hoplimit 64 encaplimit none"},
		{1, "ip link add ds mtu 1460 type ip6tnl mode ipip6 local 2001:db8::1 remote 2001:db8::2 hoplimit 64 encaplimit none tclass inherit"},
		{0xb8, "ip link add ds mtu 1460 type ip6tnl mode ipip6 local 2001:db8::1 remote 2001:db8::2 hoplimit 64 encaplimit none tclass 0xb8"},
	} {
		l := model.Link{Name: "ds", Mode: model.ModeIPIP6, Local: netip.MustParseAddr("2001:db8::1"), Remote: netip.MustParseAddr("2001:db8::2"),
			TTL: 64, TOS: tt.tos, EncapLimit: -1, MTU: 1460}
		first, _, _ := strings.Cut(Op{Kind: LinkAdd, Link: &l}.Command(nil), "\n")
		if diff := cmp.Diff(tt.want, first); diff != "" {
			t.Errorf("tos %#x (-want +got):\n%s", tt.tos, diff)
		}
	}
}

// TestIPIP6AddrGenModeCommand: a tunnel's creation prints the step that
// marks it as tunneld's, and an ipip6 tunnel's the one after it that keeps
// it from an IPv6 link-local address of its own, as the Linux seam takes
// them (aliasMsg, addrGenNoneMsg); an ip6ip6 tunnel's not the second.
func TestIPIP6AddrGenModeCommand(t *testing.T) {
	l := model.Link{Name: "ds", Mode: model.ModeIPIP6, Local: netip.MustParseAddr("2001:db8::1"), Remote: netip.MustParseAddr("2001:db8::2"), TTL: 64, EncapLimit: -1, MTU: 1460}
	six := l
	six.Name, six.Mode = "six", model.ModeIP6IP6
	want := "ip link add ds mtu 1460 type ip6tnl mode ipip6 local 2001:db8::1 remote 2001:db8::2 hoplimit 64 encaplimit none\nip link set ds alias tunneld\nip link set ds addrgenmode none"
	if diff := cmp.Diff(want, Op{Kind: LinkAdd, Link: &l}.Command(nil)); diff != "" {
		t.Errorf("ipip6 (-want +got):\n%s", diff)
	}
	if got := (Op{Kind: LinkAdd, Link: &six}).Command(nil); strings.Contains(got, "addrgenmode") || !strings.HasSuffix(got, "\nip link set six alias tunneld") {
		t.Errorf("ip6ip6: %q", got)
	}
}

// TestRestoreCommand: a recorded sysctl no longer wanted is written back,
// and one whose device is gone (observed without a value) has nothing to
// write back: the line says its record is forgotten, not a write.
func TestRestoreCommand(t *testing.T) {
	tests := []struct {
		name string
		s    model.Sysctl
		want string
	}{
		{"there", model.Sysctl{Path: "net/ipv4/conf/eth1/proxy_arp", Value: "1", Original: "0", Ours: []string{"1"}},
			"sysctl -w net.ipv4.conf.eth1.proxy_arp=0  # original value"},
		{"gone with its device", model.Sysctl{Path: "net/ipv4/conf/eth1/proxy_arp", Original: "0", Ours: []string{"1"}},
			"# net.ipv4.conf.eth1.proxy_arp is gone with its device: its original 0 is forgotten"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Op{Kind: SysctlRestore, Sysctl: &tt.s}.Command(nil)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("command (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLinkChangeUndoesOthers: a change of a tunnel whose kernel
// parameters tunneld does not configure were changed by hand prints the
// words ip needs to undo them (ip carries a tunnel's values over into
// `ip link change`), and names in a comment those it has no word for.
func TestLinkChangeUndoesOthers(t *testing.T) {
	ds := model.Link{Name: "ds", Mode: model.ModeIPIP6, Local: netip.MustParseAddr("2001:db8::1"), Remote: netip.MustParseAddr("2001:db8::2"),
		TTL: 64, EncapLimit: -1, MTU: 1460}
	gre := model.Link{Name: "g", Mode: model.ModeGRE, Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddr("192.0.2.2"),
		TTL: 64, MTU: 1476}
	const (
		dsChange  = "ip link change ds mtu 1460 type ip6tnl mode ipip6 local 2001:db8::1 remote 2001:db8::2 hoplimit 64 encaplimit none"
		greChange = "ip link change dev g mtu 1476 type gre local 192.0.2.1 remote 192.0.2.2 ttl 64 nopmtudisc"
	)
	for _, tt := range []struct {
		name string
		link model.Link
		old  model.OtherParams
		want string
	}{
		{"nothing by hand", ds, model.OtherParams{}, dsChange},
		{"mode any: the mode is named", ds, model.OtherParams{AnyProto: true}, dsChange},
		{"flowlabel", ds, model.OtherParams{FlowLabel: 0x12345}, dsChange + " flowlabel 0x00000"},
		{"flowlabel inherit", ds, model.OtherParams{FlowLabelInherit: true}, dsChange + " flowlabel 0x00000"},
		{"fwmark inherit", ds, model.OtherParams{FwMarkInherit: true}, dsChange + " fwmark 0"},
		{"fwmark inherit and a mark", ds, model.OtherParams{FwMarkInherit: true, FwMark: 3}, dsChange + " fwmark 0"},
		{"allow-localremote", ds, model.OtherParams{AllowLocalRemote: true}, dsChange + " noallow-localremote"},
		{"dscp inherit and mip6", ds, model.OtherParams{DSCPInherit: true, MIP6: true}, dsChange + "  # also clears dscp inherit, mip6, which ip cannot"},
		{"gre fwmark", gre, model.OtherParams{FwMark: 7}, greChange + " fwmark 0"},
		{"gre encap fou", gre, model.OtherParams{Encap: model.Encap{Type: 1, DPort: 5555}}, greChange + " noencap"},
		{"gre ignore-df", gre, model.OtherParams{IgnoreDF: true}, greChange + " noignore-df"},
		{"gre checksums and sequence numbers", gre, model.OtherParams{ICsum: true, OCsum: true, ISeq: true, OSeq: true},
			greChange + "  # also clears icsum, ocsum, iseq, oseq, which ip cannot"},
		{"all that ip can and cannot", gre, model.OtherParams{FwMark: 1, Encap: model.Encap{Type: 2}, IgnoreDF: true, ISeq: true},
			greChange + " fwmark 0 noencap noignore-df  # also clears iseq, which ip cannot"},
	} {
		old := tt.link
		old.Others = tt.old
		if diff := cmp.Diff(tt.want, Op{Kind: LinkChange, Link: &tt.link, Old: &old}.Command(nil)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestNarrowedRuleCommand: a rule of tunneld's someone narrowed
// (model.Rule.Extra) is deleted with what it was narrowed with, in
// ip(8)'s words, so that ip(8) deletes that rule and not tunneld's
// beside it; what ip(8) has no words for is said in a comment.
func TestNarrowedRuleCommand(t *testing.T) {
	named := map[uint32]string{42: "vpn"}
	narrowed := model.Rule{Family: 4, Src: netip.MustParsePrefix("10.0.0.0/24"), Table: 42, Priority: 20000,
		Extra: "not tos 0x10 ipproto 6 dport 22 uidrange 0-0 suppress_prefixlength 0", Wire: "\x10\x02\x00\x00\x00"}
	unnamed := model.Rule{Family: 6, Table: 42, Priority: 20001, Extra: "sport 1024-2047 #attr:30 #flags:0x8"}
	// Another action: no lookup, no table.
	blackhole := model.Rule{Family: 4, Src: netip.MustParsePrefix("10.0.0.0/24"), Priority: 20000, Extra: "blackhole"}
	gotoRule := model.Rule{Family: 4, Src: netip.MustParsePrefix("10.0.0.0/24"), Priority: 20000, Extra: "goto 32766"}
	// An action ip(8) has no word for (a nat rule's, of a stray rule):
	// the deletion names none, and keeps the lookup the kernel matches.
	nat := model.Rule{Family: 4, Src: netip.MustParsePrefix("10.1.1.8/32"), Priority: 25009, Table: 254, Extra: "#action:10"}
	natMore := model.Rule{Family: 4, Src: netip.MustParsePrefix("10.1.1.8/32"), Priority: 25009, Table: 42, Extra: "#action:10 #attr:30"}
	for _, tt := range []struct {
		name   string
		rule   *model.Rule
		tables map[uint32]string
		want   string
	}{
		{"named", &narrowed, named, "ip rule del from 10.0.0.0/24 not tos 0x10 ipproto 6 dport 22 uidrange 0-0 suppress_prefixlength 0 lookup 42 priority 20000 protocol 116  # table vpn"},
		{"unnamed", &unnamed, named, "ip -6 rule del sport 1024-2047 lookup 42 priority 20001 protocol 116  # table vpn; the rule has selectors tunneld does not write (attr:30 flags:0x8)"},
		{"blackhole", &blackhole, named, "ip rule del from 10.0.0.0/24 blackhole priority 20000 protocol 116"},
		{"goto", &gotoRule, named, "ip rule del from 10.0.0.0/24 goto 32766 priority 20000 protocol 116"},
		{"nat", &nat, named, "ip rule del from 10.1.1.8 lookup main priority 25009 protocol 116  # the rule's action 10 has no ip(8) word (a deprecated nat rule's, shown as masquerade or map-to): the command names none, and deletes the rule whatever its action"},
		{"nat and more", &natMore, named, "ip rule del from 10.1.1.8 lookup 42 priority 25009 protocol 116  # table vpn; the rule has selectors tunneld does not write (attr:30); the rule's action 10 has no ip(8) word (a deprecated nat rule's, shown as masquerade or map-to): the command names none, and deletes the rule whatever its action"},
		{"unnamed, no table names", &unnamed, nil, "ip -6 rule del sport 1024-2047 lookup 42 priority 20001 protocol 116  # the rule has selectors tunneld does not write (attr:30 flags:0x8)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Op{Kind: RuleDel, Rule: tt.rule}.Command(tt.tables)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
