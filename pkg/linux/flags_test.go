package linux

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/iptun"
	"github.com/tunneld/tunneld/pkg/model"
)

// ip6FlagsBefore and greFlagsBefore are the tables tunnelData and
// linkFromData walked before they wrote each field's flag themselves.
var ip6FlagsBefore = [...]struct {
	bit   uint32
	field func(*model.OtherParams) *bool
}{
	{iptun.IP6TnlFlagUseOrigFlowLabel, func(o *model.OtherParams) *bool { return &o.FlowLabelInherit }},
	{iptun.IP6TnlFlagRcvDSCPCopy, func(o *model.OtherParams) *bool { return &o.DSCPInherit }},
	{iptun.IP6TnlFlagUseOrigFwMark, func(o *model.OtherParams) *bool { return &o.FwMarkInherit }},
	{iptun.IP6TnlFlagAllowLocalRemote, func(o *model.OtherParams) *bool { return &o.AllowLocalRemote }},
	{iptun.IP6TnlFlagMIP6Dev, func(o *model.OtherParams) *bool { return &o.MIP6 }},
}

var greFlagsBefore = [...]struct {
	bit   uint16
	flags func(*iptun.GRE) *uint16
	field func(*model.OtherParams) *bool
}{
	{iptun.GREFlagCsum, func(g *iptun.GRE) *uint16 { return &g.IFlags }, func(o *model.OtherParams) *bool { return &o.ICsum }},
	{iptun.GREFlagCsum, func(g *iptun.GRE) *uint16 { return &g.OFlags }, func(o *model.OtherParams) *bool { return &o.OCsum }},
	{iptun.GREFlagSeq, func(g *iptun.GRE) *uint16 { return &g.IFlags }, func(o *model.OtherParams) *bool { return &o.ISeq }},
	{iptun.GREFlagSeq, func(g *iptun.GRE) *uint16 { return &g.OFlags }, func(o *model.OtherParams) *bool { return &o.OSeq }},
}

// TestFlagsAsTables: for every combination of the GRE and ip6tnl flag
// fields, with and without a key and each encaplimit and tclass,
// tunnelData sets the bits the tables did; for every pattern of those
// bits among others, linkFromData reads the fields the tables did.
func TestFlagsAsTables(t *testing.T) {
	local, remote := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for set := range 1 << len(greFlagsBefore) {
		for _, key := range []bool{false, true} {
			l := model.Link{Mode: model.ModeGRE, Local: local, Remote: remote, HasIKey: key, HasOKey: key, IKey: 5, OKey: 6}
			want := iptun.GRE{}
			if key {
				want.IFlags, want.OFlags = iptun.GREFlagKey, iptun.GREFlagKey
			}
			for i, f := range greFlagsBefore {
				if set&(1<<i) != 0 {
					*f.field(&l.Others) = true
					*f.flags(&want) |= f.bit
				}
			}
			d, err := tunnelData(l, 0)
			if err != nil {
				t.Fatal(err)
			}
			g := d.(*iptun.GRE)
			if g.IFlags != want.IFlags || g.OFlags != want.OFlags {
				t.Errorf("gre %+v: flags %#x %#x, the table's %#x %#x", l.Others, g.IFlags, g.OFlags, want.IFlags, want.OFlags)
			}
		}
	}
	// Every pattern of the two flags on each side, with the key's and
	// with bits tunneld does not read.
	for in := range 1 << 4 {
		for _, other := range []uint16{0, iptun.GREFlagKey, 0x00ff} {
			g := &iptun.GRE{Local: local, Remote: remote, IFlags: other, OFlags: other}
			for i, f := range greFlagsBefore {
				if in&(1<<i) != 0 {
					*f.flags(g) |= f.bit
				}
			}
			var want model.OtherParams
			for _, f := range greFlagsBefore {
				*f.field(&want) = *f.flags(g)&f.bit != 0
			}
			got, ok := linkFromData(iptun.KindGRE, g, nil, model.ModeGRE)
			if !ok {
				t.Fatal("gre not decoded")
			}
			if got.Others.ICsum != want.ICsum || got.Others.OCsum != want.OCsum || got.Others.ISeq != want.ISeq || got.Others.OSeq != want.OSeq {
				t.Errorf("gre flags %#x %#x: %+v, the table's %+v", g.IFlags, g.OFlags, got.Others, want)
			}
		}
	}
	local6, remote6 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	for set := range 1 << len(ip6FlagsBefore) {
		for _, limit := range []int{-1, 4} {
			for _, tos := range []uint8{0, 1} {
				l := model.Link{Mode: model.ModeIP6IP6, Local: local6, Remote: remote6, EncapLimit: limit, TOS: tos}
				var want uint32
				if limit < 0 {
					want |= iptun.IP6TnlFlagIgnEncapLimit
				}
				if tos == 1 {
					want |= iptun.IP6TnlFlagUseOrigTClass
				}
				for i, f := range ip6FlagsBefore {
					if set&(1<<i) != 0 {
						*f.field(&l.Others) = true
						want |= f.bit
					}
				}
				d, err := tunnelData(l, 0)
				if err != nil {
					t.Fatal(err)
				}
				if got := d.(*iptun.IP6Tnl).Flags; got != want {
					t.Errorf("ip6tnl %+v: flags %#x, the table's %#x", l.Others, got, want)
				}
			}
		}
	}
	for in := range 1 << len(ip6FlagsBefore) {
		for _, other := range []uint32{0, iptun.IP6TnlFlagIgnEncapLimit | iptun.IP6TnlFlagUseOrigTClass, 0xffff0000} {
			d := &iptun.IP6Tnl{Local: local6, Remote: remote6, Proto: protoIPv6, Flags: other}
			for i, f := range ip6FlagsBefore {
				if in&(1<<i) != 0 {
					d.Flags |= f.bit
				}
			}
			var want model.OtherParams
			for _, f := range ip6FlagsBefore {
				*f.field(&want) = d.Flags&f.bit != 0
			}
			got, ok := linkFromData(iptun.KindIP6Tnl, d, nil, model.ModeIP6IP6)
			if !ok {
				t.Fatal("ip6tnl not decoded")
			}
			g := got.Others
			w := want
			if diff := cmp.Diff([5]bool{w.FlowLabelInherit, w.DSCPInherit, w.FwMarkInherit, w.AllowLocalRemote, w.MIP6},
				[5]bool{g.FlowLabelInherit, g.DSCPInherit, g.FwMarkInherit, g.AllowLocalRemote, g.MIP6}); diff != "" {
				t.Errorf("ip6tnl flags %#x (-table +got):\n%s", d.Flags, diff)
			}
		}
	}
}
