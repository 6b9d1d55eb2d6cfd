package linux

import (
	"fmt"

	"github.com/jsimonetti/rtnetlink/v2"

	"github.com/tunneld/tunneld/pkg/iptun"
	"github.com/tunneld/tunneld/pkg/model"
)

// Inner protocols of the link kinds (IFLA_IPTUN_PROTO).
const (
	protoIPIP = 4
	protoIPv6 = 41
)

// tunnelData builds the full IFLA_INFO_DATA parameter set of a tunnel
// (changelink resets what is left out), l.Others included: what
// tunneld wants has them all zero, which undoes a hand change.
func tunnelData(l model.Link, underlay uint32) (rtnetlink.LinkDriver, error) {
	switch l.Mode {
	case model.ModeIPIP:
		return &iptun.IPIP{Link: underlay, Local: l.Local, Remote: l.Remote, TTL: l.TTL, TOS: l.TOS, PMTUDisc: l.PMTUDisc, Proto: protoIPIP,
			FwMark: l.Others.FwMark, Encap: iptun.Encap(l.Others.Encap)}, nil
	case model.ModeSIT:
		return &iptun.SIT{Link: underlay, Local: l.Local, Remote: l.Remote, TTL: l.TTL, TOS: l.TOS, PMTUDisc: l.PMTUDisc, Proto: protoIPv6,
			FwMark: l.Others.FwMark, Encap: iptun.Encap(l.Others.Encap)}, nil
	case model.ModeGRE:
		g := &iptun.GRE{Link: underlay, Local: l.Local, Remote: l.Remote, TTL: l.TTL, TOS: l.TOS, PMTUDisc: l.PMTUDisc,
			IgnoreDF: l.Others.IgnoreDF, FwMark: l.Others.FwMark, Encap: iptun.Encap(l.Others.Encap)}
		if l.HasIKey {
			g.IFlags, g.IKey = iptun.GREFlagKey, l.IKey
		}
		if l.HasOKey {
			g.OFlags, g.OKey = iptun.GREFlagKey, l.OKey
		}
		for _, f := range greFlags {
			if *f.field(&l.Others) {
				*f.flags(g) |= f.bit
			}
		}
		return g, nil
	case model.ModeIPIP6, model.ModeIP6IP6:
		t := &iptun.IP6Tnl{Link: underlay, Local: l.Local, Remote: l.Remote, TTL: l.TTL, Proto: protoIPv6,
			FwMark: l.Others.FwMark, Encap: iptun.Encap(l.Others.Encap)}
		switch {
		case l.Others.AnyProto:
			t.Proto = 0
		case l.Mode == model.ModeIPIP6:
			t.Proto = protoIPIP
		}
		if l.EncapLimit < 0 {
			t.EncapLimit, t.Flags = iptun.IP6TnlDefaultEncapLimit, iptun.IP6TnlFlagIgnEncapLimit
		} else {
			t.EncapLimit = uint8(l.EncapLimit)
		}
		// The outer TOS is the IPv6 traffic class (`tclass`): inherit
		// copies the inner packet's, a value goes in the flow info.
		if l.TOS == 1 {
			t.Flags |= iptun.IP6TnlFlagUseOrigTClass
		} else {
			t.FlowInfo = uint32(l.TOS) << 20 & iptun.FlowInfoTClassMask
		}
		t.FlowInfo |= l.Others.FlowLabel & iptun.FlowInfoFlowLabelMask
		for _, f := range ip6Flags {
			if *f.field(&l.Others) {
				t.Flags |= f.bit
			}
		}
		return t, nil
	}
	return nil, fmt.Errorf("unknown mode %q", l.Mode)
}

// ip6Flags are the bits of the ip6tnl flags tunneld does not configure
// (encaplimit none and tclass inherit are EncapLimit and TOS), each
// with its field. The kernel reports other bits besides, its own
// capability flags (IP6_TNL_F_CAP_*), which are none of these.
var ip6Flags = [...]struct {
	bit   uint32
	field func(*model.OtherParams) *bool
}{
	{iptun.IP6TnlFlagUseOrigFlowLabel, func(o *model.OtherParams) *bool { return &o.FlowLabelInherit }},
	{iptun.IP6TnlFlagRcvDSCPCopy, func(o *model.OtherParams) *bool { return &o.DSCPInherit }},
	{iptun.IP6TnlFlagUseOrigFwMark, func(o *model.OtherParams) *bool { return &o.FwMarkInherit }},
	{iptun.IP6TnlFlagAllowLocalRemote, func(o *model.OtherParams) *bool { return &o.AllowLocalRemote }},
	{iptun.IP6TnlFlagMIP6Dev, func(o *model.OtherParams) *bool { return &o.MIP6 }},
}

// greFlags are the GRE header flags tunneld does not configure (the key's
// is HasIKey and HasOKey), each with its field and its side.
var greFlags = [...]struct {
	bit   uint16
	flags func(*iptun.GRE) *uint16
	field func(*model.OtherParams) *bool
}{
	{iptun.GREFlagCsum, func(g *iptun.GRE) *uint16 { return &g.IFlags }, func(o *model.OtherParams) *bool { return &o.ICsum }},
	{iptun.GREFlagCsum, func(g *iptun.GRE) *uint16 { return &g.OFlags }, func(o *model.OtherParams) *bool { return &o.OCsum }},
	{iptun.GREFlagSeq, func(g *iptun.GRE) *uint16 { return &g.IFlags }, func(o *model.OtherParams) *bool { return &o.ISeq }},
	{iptun.GREFlagSeq, func(g *iptun.GRE) *uint16 { return &g.OFlags }, func(o *model.OtherParams) *bool { return &o.OSeq }},
}

// encapOf is a tunnel's UDP encapsulation as the model holds it: none,
// whatever flags and ports the kernel keeps beside it, which do nothing
// then (iproute2's ip link change of an ip6tnl writes encap-csum6 with
// no encapsulation).
func encapOf(e iptun.Encap) model.Encap {
	if e.Type == iptun.EncapTypeNone {
		return model.Encap{}
	}
	return model.Encap(e)
}

// linkFromData decodes a tunnel's parameters; mode is the configured mode
// of a link of that name, used where the kernel cannot tell: an ip6tnl
// carrying any protocol, which is drift (Others.AnyProto).
func linkFromData(kind string, data rtnetlink.LinkDriver, names map[uint32]string, mode model.Mode) (model.Link, bool) {
	var l model.Link
	switch d := data.(type) {
	case *iptun.IPIP:
		// The protocol (ip's mode any or mplsip) and collect_metadata
		// (external) are not read: the kernel changes neither in place.
		l = model.Link{Mode: model.ModeIPIP, Local: d.Local, Remote: d.Remote, Dev: names[d.Link], TTL: d.TTL, TOS: d.TOS, PMTUDisc: d.PMTUDisc,
			Others: model.OtherParams{FwMark: d.FwMark, Encap: encapOf(d.Encap)}}
	case *iptun.SIT:
		// Nor a sit tunnel's protocol and isatap; its 6rd prefix, which
		// tunneld never writes, is not read either.
		l = model.Link{Mode: model.ModeSIT, Local: d.Local, Remote: d.Remote, Dev: names[d.Link], TTL: d.TTL, TOS: d.TOS, PMTUDisc: d.PMTUDisc,
			Others: model.OtherParams{FwMark: d.FwMark, Encap: encapOf(d.Encap)}}
	case *iptun.GRE:
		l = model.Link{Mode: model.ModeGRE, Local: d.Local, Remote: d.Remote, Dev: names[d.Link], TTL: d.TTL, TOS: d.TOS, PMTUDisc: d.PMTUDisc,
			HasIKey: d.IFlags&iptun.GREFlagKey != 0, HasOKey: d.OFlags&iptun.GREFlagKey != 0,
			Others: model.OtherParams{IgnoreDF: d.IgnoreDF, FwMark: d.FwMark, Encap: encapOf(d.Encap)}}
		if l.HasIKey {
			l.IKey = d.IKey
		}
		if l.HasOKey {
			l.OKey = d.OKey
		}
		for _, f := range greFlags {
			*f.field(&l.Others) = *f.flags(d)&f.bit != 0
		}
	case *iptun.IP6Tnl:
		l = model.Link{Local: d.Local, Remote: d.Remote, Dev: names[d.Link], TTL: d.TTL, EncapLimit: int(d.EncapLimit),
			Others: model.OtherParams{FwMark: d.FwMark, Encap: encapOf(d.Encap)}}
		switch {
		case d.Proto == protoIPIP:
			l.Mode = model.ModeIPIP6
		case d.Proto == protoIPv6:
			l.Mode = model.ModeIP6IP6
		case mode.Kind() == kind:
			l.Mode = mode
		default:
			l.Mode = model.ModeIP6IP6
		}
		// The kernel refuses any protocol but these and 0, any.
		l.Others.AnyProto = d.Proto != protoIPIP && d.Proto != protoIPv6
		l.Others.FlowLabel = d.FlowInfo & iptun.FlowInfoFlowLabelMask
		for _, f := range ip6Flags {
			*f.field(&l.Others) = d.Flags&f.bit != 0
		}
		if d.Flags&iptun.IP6TnlFlagIgnEncapLimit != 0 {
			l.EncapLimit = -1
		}
		l.TOS = uint8(d.FlowInfo & iptun.FlowInfoTClassMask >> 20)
		if d.Flags&iptun.IP6TnlFlagUseOrigTClass != 0 {
			l.TOS = 1
		}
	default:
		return model.Link{}, false
	}
	return l, true
}
