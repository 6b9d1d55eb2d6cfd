package linux

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// TestRuleMessageRoundTrip: every field tunneld sets on a rule comes back
// from the bytes it sends (the kernel answers a dump in the same form).
func TestRuleMessageRoundTrip(t *testing.T) {
	p := netip.MustParsePrefix
	for _, r := range []model.Rule{
		{Family: 4, Priority: 100, Src: p("10.0.0.0/24"), Table: 42},
		{Family: 4, Priority: 101, Dst: p("192.0.2.0/24"), IIF: "wan", OIF: "lo", Table: 1000},
		{Family: 4, Priority: 102, Mark: 0x10, Mask: 0xf0, HasMark: true, Table: 254},
		{Family: 6, Priority: 103, Src: p("2001:db8::/64"), Dst: p("2001:db8:1::1/128"), Table: 300},
	} {
		b, err := toRuleMsg(r).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var m ruleMsg
		if err := m.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if m.attrs.protocol != model.RuleProtocol {
			t.Errorf("rule %s: protocol %d, want %d", r.ID(), m.attrs.protocol, model.RuleProtocol)
		}
		got, ok := fromRuleMsg(&m)
		if !ok {
			t.Fatalf("rule %s: not read back as a rule tunneld makes", r.ID())
		}
		if diff := cmp.Diff(r, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("rule %s (-sent +read):\n%s", r.ID(), diff)
		}
	}
	// The kernel's dump of `fwmark 0x0/0xff` carries FRA_FWMASK alone.
	kernelForm := toRuleMsg(model.Rule{Family: 4, Priority: 104, HasMark: true, Mask: 0xff, Table: 42})
	kernelForm.attrs.hasMark = false
	b, err := kernelForm.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var km ruleMsg
	if err := km.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	got, _ := fromRuleMsg(&km)
	if diff := cmp.Diff(model.Rule{Family: 4, Priority: 104, HasMark: true, Mask: 0xff, Table: 42}, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("fwmark 0x0/0xff as the kernel dumps it (-want +got):\n%s", diff)
	}
	// The flags: a detached rule (its iif or oif device missing) is
	// still tunneld's rule as it wrote it; an inverted one is not a rule
	// tunneld makes (TestRuleExtra).
	for _, f := range []struct {
		flags uint32
		extra string
	}{{unix.FIB_RULE_IIF_DETACHED, ""}, {unix.FIB_RULE_OIF_DETACHED, ""}, {unix.FIB_RULE_IIF_DETACHED | unix.FIB_RULE_OIF_DETACHED, ""}, {unix.FIB_RULE_INVERT, "not"}, {unix.FIB_RULE_INVERT | unix.FIB_RULE_IIF_DETACHED, "not"}} {
		fm := toRuleMsg(model.Rule{Family: 4, Priority: 105, IIF: "gone0", OIF: "gone1", Table: 42})
		fm.flags = f.flags
		if r, ok := fromRuleMsg(fm); !ok || r.Extra != f.extra {
			t.Errorf("a rule with flags %#x read as %q, %v, want %q, true", f.flags, r.Extra, ok, f.extra)
		}
	}
	var m ruleMsg
	if err := m.UnmarshalBinary([]byte{2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 8, 0, 6, 0, 1}); err == nil {
		t.Error("a rule message with a cut attribute decoded")
	}
}

// TestPrivilegedRulesAsTheKernelKeepsThem: rules and routes whose
// selectors the kernel stores in another form than they are written (a
// prefix of length 0, a mark of 0, a gateway without a device) converge
// in one go, and a second converge has nothing to do.
func TestPrivilegedRulesAsTheKernelKeepsThem(t *testing.T) {
	tests := []struct {
		name, conf string
	}{
		{"from 0.0.0.0/0", "[[rule]]\nfrom = \"0.0.0.0/0\"\ntable = 42\n"},
		{"to ::/0", "[[rule]]\nto = \"::/0\"\ntable = 42\n"},
		{"fwmark 0", "[[rule]]\nfwmark = 0\ntable = 42\n"},
		{"fwmark 0x0/0xff", "[[rule]]\nfwmark = \"0x0/0xff\"\ntable = 42\n"},
		{"fwmark 0x0/0x0", "[[rule]]\nfwmark = \"0x0/0x0\"\ntable = 42\n"},
		{"route via a gateway, no device", "[[route]]\nto = \"10.80.0.0/16\"\nvia = \"192.0.2.1\"\ntable = 42\n"},
		{"IPv6 route via a gateway, no device", "[[route]]\nto = \"2001:db8:80::/48\"\nvia = \"2001:db8::1\"\ntable = 42\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := open(t)
			foreign(t)
			if err := netnstest.AddAddr("eth0", mustPrefix("2001:db8::10/64")); err != nil {
				t.Fatal(err)
			}
			c := parse(t, "[global]\nfirewall = false\n"+tt.conf)
			rep, err := engine.Converge(ctx, k, c, nil)
			if err != nil {
				t.Fatalf("first converge: %v", err)
			}
			if diff := cmp.Diff(1, len(rep.Applied)); diff != "" {
				t.Errorf("first converge's operations (-want +got):\n%s\n%v", diff, rep.Applied)
			}
			rep, err = engine.Converge(ctx, k, c, nil)
			if err != nil {
				t.Fatalf("second converge: %v", err)
			}
			if diff := cmp.Diff(0, len(rep.Applied)); diff != "" {
				t.Errorf("second converge's operations (-want +got):\n%s\n%v", diff, rep.Applied)
			}
		})
	}
}

// TestPrivilegedDetachedRules: a rule whose iif or oif names a device the
// namespace doesn't have (yet, or any more) is kept by the kernel marked
// detached; tunneld reads it as its own all the same: one converge adds
// it, the next has nothing to do, and down removes it. Before, such a rule
// was added again on every converge (the kernel keeping one) and never
// removed.
func TestPrivilegedDetachedRules(t *testing.T) {
	const conf = `[global]
firewall = false
[[rule]]
iif = "gone0"
table = 42
[[rule]]
oif = "gone1"
table = 42
[[rule]]
iif = "gone0"
to = "2001:db8:90::/48"
table = 42
`
	k := open(t)
	// gone1 exists when its rule is added, then goes.
	ipCmd(t, "link", "add", "gone1", "type", "veth", "peer", "name", "gone1p")
	c := parse(t, conf)
	rep, err := engine.Converge(ctx, k, c, nil)
	if err != nil {
		t.Fatalf("first converge: %v", err)
	}
	if diff := cmp.Diff(3, len(rep.Applied)); diff != "" {
		t.Errorf("first converge's operations (-want +got):\n%s\n%v", diff, rep.Applied)
	}
	ipCmd(t, "link", "del", "gone1")
	// rules lists the namespace's rules of protocol 116 over rtnetlink
	// (busybox ip in the test VMs shows no protocol), "iif|oif DEV flags
	// F" each.
	rules := func() []string {
		t.Helper()
		c, err := rtnetlink.Dial(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		all, err := c.Rule.List()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range all {
			if r.Attributes == nil || r.Attributes.Protocol == nil || *r.Attributes.Protocol != model.RuleProtocol {
				continue
			}
			dev := "?"
			if r.Attributes.IIFName != nil {
				dev = "iif " + *r.Attributes.IIFName
			} else if r.Attributes.OIFName != nil {
				dev = "oif " + *r.Attributes.OIFName
			}
			out = append(out, fmt.Sprintf("%s flags %#x", dev, r.Flags))
		}
		return out
	}
	detached := []string{"iif gone0 flags 0x8", "oif gone1 flags 0x10", "iif gone0 flags 0x8"}
	if diff := cmp.Diff(detached, rules()); diff != "" {
		t.Errorf("after the first converge and gone1's deletion, the rules (-want +got):\n%s", diff)
	}
	rep, err = engine.Converge(ctx, k, c, nil)
	if err != nil {
		t.Fatalf("second converge: %v", err)
	}
	if diff := cmp.Diff(0, len(rep.Applied)); diff != "" {
		t.Errorf("second converge's operations (-want +got):\n%s\n%v", diff, rep.Applied)
	}
	if _, err := engine.Down(ctx, k, c); err != nil {
		t.Fatalf("down: %v", err)
	}
	if got := rules(); len(got) != 0 {
		t.Errorf("after down, rules of protocol 116 are left: %q", got)
	}
}

// TestForeignRule: a rule that is not tunneld's is an input when it lies
// in the band, is IPv4 or IPv6, and the kernel says its protocol. A
// kernel before 4.17 keeps none and sends no FRA_PROTOCOL: its rules,
// tunneld's own among them, are none, or tunneld would place its rules
// past its own, one more at each converge.
func TestForeignRule(t *testing.T) {
	band := model.RuleBand{Min: 20000, Max: 20999}
	msg := func(family uint8, priority uint32, protocol uint8, hasProtocol bool) *ruleMsg {
		m := toRuleMsg(model.Rule{Family: 4, Priority: priority, Table: 100})
		m.family, m.attrs.protocol, m.attrs.hasProtocol = family, protocol, hasProtocol
		return m
	}
	const ipmr = 128 // RTNL_FAMILY_IPMR: `ip mrule`
	tests := []struct {
		name string
		m    *ruleMsg
		want model.ForeignRule
		ok   bool
	}{
		{"IPv4, protocol unspec (ip rule add)", msg(unix.AF_INET, 20000, 0, true), model.ForeignRule{Priority: 20000, Family: 4}, true},
		{"IPv6, protocol boot", msg(unix.AF_INET6, 20999, unix.RTPROT_BOOT, true), model.ForeignRule{Priority: 20999, Family: 6}, true},
		{"below the band", msg(unix.AF_INET, 19999, 0, true), model.ForeignRule{}, false},
		{"above the band", msg(unix.AF_INET, 21000, 0, true), model.ForeignRule{}, false},
		{"a multicast routing rule", msg(ipmr, 20000, 0, true), model.ForeignRule{}, false},
		{"no protocol: a kernel before 4.17", msg(unix.AF_INET, 20000, 0, false), model.ForeignRule{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := throughWire(t, tt.m)
			got, ok := foreignRule(&m, band)
			if ok != tt.ok {
				t.Errorf("foreign: %v, want %v", ok, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestStrayRule: a rule that is neither tunneld's nor an input in the
// band is one of model.Inputs.StrayRules when it has tunneld's protocol
// and is IPv4 or IPv6, read with its selectors and what tunneld's rules
// never carry (Extra, for the command that deletes it; no Wire: tunneld
// never deletes it). Another protocol, a multicast routing rule and a
// rule of a kernel that keeps no protocol are none.
func TestStrayRule(t *testing.T) {
	src := netip.MustParsePrefix("10.100.2.1/32")
	msg := func(family uint8, protocol uint8, hasProtocol bool, extra []byte) *ruleMsg {
		m := toRuleMsg(model.Rule{Family: 4, Priority: 25000, Src: src, Table: 102})
		m.family, m.attrs.protocol, m.attrs.hasProtocol, m.attrs.extra = family, protocol, hasProtocol, extra
		if family == unix.AF_INET6 {
			m.attrs.src, m.srcLen = netip.MustParseAddr("2001:db8:2::"), 64
		}
		return m
	}
	const ipmr = 128 // RTNL_FAMILY_IPMR: `ip mrule`
	tests := []struct {
		name string
		m    *ruleMsg
		want model.Rule
		ok   bool
	}{
		{"IPv4, protocol 116", msg(unix.AF_INET, model.RuleProtocol, true, nil), model.Rule{Family: 4, Priority: 25000, Src: src, Table: 102}, true},
		{"IPv6, protocol 116", msg(unix.AF_INET6, model.RuleProtocol, true, nil),
			model.Rule{Family: 6, Priority: 25000, Src: netip.MustParsePrefix("2001:db8:2::/64"), Table: 102}, true},
		{"narrowed: ipproto 6", msg(unix.AF_INET, model.RuleProtocol, true, appendAttr(nil, unix.FRA_IP_PROTO, []byte{6})),
			model.Rule{Family: 4, Priority: 25000, Src: src, Table: 102, Extra: "ipproto 6"}, true},
		{"protocol boot", msg(unix.AF_INET, unix.RTPROT_BOOT, true, nil), model.Rule{}, false},
		{"a multicast routing rule", msg(ipmr, model.RuleProtocol, true, nil), model.Rule{}, false},
		{"no protocol: a kernel before 4.17", msg(unix.AF_INET, 0, false, nil), model.Rule{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := throughWire(t, tt.m)
			got, ok := strayRule(&m)
			if ok != tt.ok {
				t.Errorf("stray: %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// withoutAttr removes the attributes of type typ from a rule message.
func withoutAttr(t *testing.T, b []byte, typ uint16) []byte {
	t.Helper()
	out := append([]byte(nil), b[:fibRuleHdrLen]...)
	ae := netlink.NewAttributeEncoder()
	ad, err := netlink.NewAttributeDecoder(b[fibRuleHdrLen:])
	if err != nil {
		t.Fatal(err)
	}
	for ad.Next() {
		if ad.Type() != typ {
			ae.Bytes(ad.Type(), ad.Bytes())
		}
	}
	if err := ad.Err(); err != nil {
		t.Fatal(err)
	}
	attrs, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return append(out, attrs...)
}

// TestRuleExtra: a rule of tunneld's that someone narrowed with a
// selector or setting tunneld's rules never carry is read with it, named
// in Extra, so that it is not the rule tunneld wants; its deletion is
// sent with the same header fields and attributes, which the kernel
// needs to delete that rule and not tunneld's beside it. The kernel's
// unset suppressions (-1, in every dump) and padding are nothing.
func TestRuleExtra(t *testing.T) {
	u16s := func(a, b uint16) []byte {
		v := make([]byte, 4)
		binary.NativeEndian.PutUint16(v, a)
		binary.NativeEndian.PutUint16(v[2:], b)
		return v
	}
	u32s := func(a, b uint32) []byte {
		v := make([]byte, 8)
		binary.NativeEndian.PutUint32(v, a)
		binary.NativeEndian.PutUint32(v[4:], b)
		return v
	}
	for _, tt := range []struct {
		name      string
		tos       uint8
		flags     uint32
		attrs     func(ae *netlink.AttributeEncoder)
		extra     string
		wireAttrs bool // Wire carries attributes
	}{
		{"plain", 0, 0, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(unix.FRA_SUPPRESS_PREFIXLEN, 0xffffffff)
			ae.Uint32(unix.FRA_SUPPRESS_IFGROUP, 0xffffffff)
			ae.Bytes(unix.FRA_PAD, nil)
		}, "", false},
		{"ipproto", 0, 0, func(ae *netlink.AttributeEncoder) { ae.Uint8(unix.FRA_IP_PROTO, 6) }, "ipproto 6", true},
		{"ports", 0, 0, func(ae *netlink.AttributeEncoder) {
			ae.Bytes(unix.FRA_SPORT_RANGE, u16s(1024, 2047))
			ae.Bytes(unix.FRA_DPORT_RANGE, u16s(22, 22))
		}, "sport 1024-2047 dport 22", true},
		{"uidrange", 0, 0, func(ae *netlink.AttributeEncoder) { ae.Bytes(unix.FRA_UID_RANGE, u32s(0, 0)) }, "uidrange 0-0", true},
		{"suppressions", 0, 0, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(unix.FRA_SUPPRESS_PREFIXLEN, 0)
			ae.Uint32(unix.FRA_SUPPRESS_IFGROUP, 3)
		}, "suppress_prefixlength 0 suppress_ifgroup 3", true},
		{"l3mdev, tun_id, realms", 0, 0, func(ae *netlink.AttributeEncoder) {
			ae.Uint8(unix.FRA_L3MDEV, 1)
			ae.Bytes(unix.FRA_TUN_ID, []byte{0, 0, 0, 0, 0, 0, 1, 2})
			ae.Uint32(unix.FRA_FLOW, 1<<16|2)
		}, "l3mdev tun_id 258 realms 1/2", true},
		{"not, tos", 0x10, unix.FIB_RULE_INVERT | unix.FIB_RULE_IIF_DETACHED, func(*netlink.AttributeEncoder) {}, "not tos 0x10", false},
		{"unknown attribute and flag", 0, 0x8000, func(ae *netlink.AttributeEncoder) { ae.Uint8(0x7e, 1) }, "#attr:126 #flags:0x8000", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := model.Rule{Family: 4, Priority: 20000, Src: netip.MustParsePrefix("192.168.1.0/24"), IIF: "lan0", Table: 42}
			m := toRuleMsg(r)
			m.tos, m.flags = tt.tos, tt.flags
			ae := netlink.NewAttributeEncoder()
			tt.attrs(ae)
			extra, err := ae.Encode()
			if err != nil {
				t.Fatal(err)
			}
			m.attrs.extra = extra
			b, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var read ruleMsg
			if err := read.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			got, ok := fromRuleMsg(&read)
			if !ok {
				t.Fatal("not read as a rule of tunneld's form")
			}
			if diff := cmp.Diff(tt.extra, got.Extra); diff != "" {
				t.Errorf("Extra (-want +got):\n%s", diff)
			}
			if (got.Wire == "") != (tt.extra == "") || tt.wireAttrs != (len(got.Wire) > ruleWireHdrLen) {
				t.Errorf("Wire = %q for Extra %q", got.Wire, got.Extra)
			}
			want := r
			if tt.extra == "" {
				if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
					t.Errorf("plain rule (-want +got):\n%s", diff)
				}
				return
			}
			if got == want {
				t.Error("narrowed rule compares equal to tunneld's")
			}
			// The deletion: the header fields and attributes as read
			// (but the detached flag, which is the kernel's).
			del := toRuleMsg(got)
			if del.tos != tt.tos || del.flags != tt.flags&^unix.FIB_RULE_IIF_DETACHED {
				t.Errorf("deletion's tos, flags = %#x, %#x, want %#x, %#x", del.tos, del.flags, tt.tos, tt.flags&^unix.FIB_RULE_IIF_DETACHED)
			}
			db, err := del.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var again ruleMsg
			if err := again.UnmarshalBinary(db); err != nil {
				t.Fatal(err)
			}
			if back, _ := fromRuleMsg(&again); back != got {
				t.Errorf("deletion reads back as %+v, want %+v", back, got)
			}
		})
	}
}

// TestRuleActionWords: the kernel's rule actions get ip-rule(8)'s words,
// those the plan reads as a rule without a table (model.IsRuleAction);
// a lookup is no such word, and a number ip(8) has none for gets none.
func TestRuleActionWords(t *testing.T) {
	for a, want := range map[uint8]string{
		unix.FR_ACT_TO_TBL: "lookup", unix.FR_ACT_GOTO: "goto", unix.FR_ACT_NOP: "nop",
		unix.FR_ACT_BLACKHOLE: "blackhole", unix.FR_ACT_UNREACHABLE: "unreachable", unix.FR_ACT_PROHIBIT: "prohibit",
		4: "", 5: "", 9: "", 255: "",
	} {
		if got := ruleAction(a); got != want {
			t.Errorf("ruleAction(%d) = %q, want %q", a, got, want)
		}
		if got, wantAction := model.IsRuleAction(want), want != "" && want != "lookup"; got != wantAction {
			t.Errorf("IsRuleAction(%q) = %v, want %v", want, got, wantAction)
		}
	}
}

// throughWire is m as a dump brings it: marshalled, without the
// protocol attribute where m has none (a kernel before 4.17), and read.
func throughWire(t *testing.T, m *ruleMsg) ruleMsg {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !m.attrs.hasProtocol {
		b = withoutAttr(t, b, unix.FRA_PROTOCOL)
	}
	var out ruleMsg
	if err := out.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return out
}
