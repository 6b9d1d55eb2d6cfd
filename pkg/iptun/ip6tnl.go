package iptun

import (
	"net/netip"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
)

// IP6Tnl is the rtnetlink link driver for kind "ip6tnl": IPv4 or IPv6 in
// IPv6. Note that its zero value differs from iproute2's defaults (hop
// limit IP6TnlDefaultHopLimit, encapsulation limit IP6TnlDefaultEncapLimit,
// Encap.Flags EncapFlagCsum6): a zero TTL inherits the inner hop limit and
// a zero EncapLimit (without IP6TnlFlagIgnEncapLimit) forbids any further
// encapsulation of the packets.
type IP6Tnl struct {
	Link   uint32     // underlay ifindex ("dev"); 0 = none
	Local  netip.Addr // IPv6; zero value (or ::) = any
	Remote netip.Addr // IPv6; zero value (or ::) = any
	TTL    uint8      // hop limit; 0 = inherit from the inner packet
	// EncapLimit is the value of the tunnel encapsulation limit option.
	// "encaplimit none" is Flags |= IP6TnlFlagIgnEncapLimit, which leaves
	// the option out; EncapLimit is then unused but still sent.
	EncapLimit uint8
	// FlowInfo is the host-order first word of the outer IPv6 header
	// without the version: traffic class << 20 | flow label (see the
	// FlowInfo*Mask constants). It is sent big endian.
	FlowInfo uint32
	Flags    uint32 // IP6TnlFlag* bits
	// Proto is the accepted inner protocol: unix.IPPROTO_IPIP (4, "mode
	// ipip6"), unix.IPPROTO_IPV6 (41, "mode ip6ip6") or 0 (any).
	Proto  uint8
	FwMark uint32 // fwmark for the outer route lookup
	Encap  Encap  // optional FOU/GUE encapsulation
}

var _ rtnetlink.LinkDriver = (*IP6Tnl)(nil)

// New returns a new, zero IP6Tnl.
func (*IP6Tnl) New() rtnetlink.LinkDriver { return &IP6Tnl{} }

// Kind returns "ip6tnl".
func (*IP6Tnl) Kind() string { return KindIP6Tnl }

// Encode writes the complete IFLA_INFO_DATA attribute set of t in the
// order iproute2 6.1 sends it. It fails for an endpoint that is not IPv6
// or has a zone.
func (t *IP6Tnl) Encode(ae *netlink.AttributeEncoder) error {
	ae.Uint8(iflaIPTunProto, t.Proto)
	if err := putAddr16(ae, iflaIPTunLocal, KindIP6Tnl, "local", t.Local); err != nil {
		return err
	}
	if err := putAddr16(ae, iflaIPTunRemote, KindIP6Tnl, "remote", t.Remote); err != nil {
		return err
	}
	ae.Uint8(iflaIPTunTTL, t.TTL)
	ae.Uint8(iflaIPTunEncapLimit, t.EncapLimit)
	putBE32(ae, iflaIPTunFlowInfo, t.FlowInfo)
	ae.Uint32(iflaIPTunFlags, t.Flags)
	ae.Uint32(iflaIPTunLink, t.Link)
	ae.Uint32(iflaIPTunFwMark, t.FwMark)
	t.Encap.encode(ae, iptunEncapAttrs)
	return nil
}

// Decode replaces t with the parameters in the IFLA_INFO_DATA attributes
// read from ad, ignoring attributes it does not know.
func (t *IP6Tnl) Decode(ad *netlink.AttributeDecoder) error {
	*t = IP6Tnl{}
	return decodeAll(ad, t.set)
}

func (t *IP6Tnl) set(typ uint16, b []byte) error {
	switch typ {
	case iflaIPTunProto:
		return getU8(typ, b, &t.Proto)
	case iflaIPTunLocal:
		return getAddr(typ, b, 16, &t.Local)
	case iflaIPTunRemote:
		return getAddr(typ, b, 16, &t.Remote)
	case iflaIPTunTTL:
		return getU8(typ, b, &t.TTL)
	case iflaIPTunEncapLimit:
		return getU8(typ, b, &t.EncapLimit)
	case iflaIPTunFlowInfo:
		return getBE32(typ, b, &t.FlowInfo)
	case iflaIPTunFlags:
		return getU32(typ, b, &t.Flags)
	case iflaIPTunLink:
		return getU32(typ, b, &t.Link)
	case iflaIPTunFwMark:
		return getU32(typ, b, &t.FwMark)
	}
	return t.Encap.set(typ, b, iptunEncapAttrs)
}
