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
		// The GRE header flags tunneld does not configure (the key's is
		// HasIKey and HasOKey), each with its field and its side.
		o := &l.Others
		g.IFlags |= bit16(o.ICsum, iptun.GREFlagCsum) | bit16(o.ISeq, iptun.GREFlagSeq)
		g.OFlags |= bit16(o.OCsum, iptun.GREFlagCsum) | bit16(o.OSeq, iptun.GREFlagSeq)
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
		// The bits of the ip6tnl flags tunneld does not configure
		// (encaplimit none and tclass inherit are EncapLimit and TOS).
		o := &l.Others
		t.Flags |= bit32(o.FlowLabelInherit, iptun.IP6TnlFlagUseOrigFlowLabel) | bit32(o.DSCPInherit, iptun.IP6TnlFlagRcvDSCPCopy) |
			bit32(o.FwMarkInherit, iptun.IP6TnlFlagUseOrigFwMark) | bit32(o.AllowLocalRemote, iptun.IP6TnlFlagAllowLocalRemote) |
			bit32(o.MIP6, iptun.IP6TnlFlagMIP6Dev)
		return t, nil
	}
	return nil, fmt.Errorf("unknown mode %q", l.Mode)
}

// bit16 is b when on, else 0. It and bit32 write the flags of
// OtherParams one field at a time: tables of the fields (with a function
// each to reach it) were writable data, which the mipsle binary's data
// segment, a little over a 64 KiB step, could not spare.
func bit16(on bool, b uint16) uint16 {
	if on {
		return b
	}
	return 0
}

// bit32 is b when on, else 0.
func bit32(on bool, b uint32) uint32 {
	if on {
		return b
	}
	return 0
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
		o := &l.Others
		o.ICsum, o.OCsum = d.IFlags&iptun.GREFlagCsum != 0, d.OFlags&iptun.GREFlagCsum != 0
		o.ISeq, o.OSeq = d.IFlags&iptun.GREFlagSeq != 0, d.OFlags&iptun.GREFlagSeq != 0
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
		// The kernel reports other bits besides, its own capability
		// flags (IP6_TNL_F_CAP_*), which are none of these.
		o := &l.Others
		o.FlowLabelInherit = d.Flags&iptun.IP6TnlFlagUseOrigFlowLabel != 0
		o.DSCPInherit = d.Flags&iptun.IP6TnlFlagRcvDSCPCopy != 0
		o.FwMarkInherit = d.Flags&iptun.IP6TnlFlagUseOrigFwMark != 0
		o.AllowLocalRemote = d.Flags&iptun.IP6TnlFlagAllowLocalRemote != 0
		o.MIP6 = d.Flags&iptun.IP6TnlFlagMIP6Dev != 0
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
