package iptun

import "github.com/mdlayher/netlink"

// Encap is the optional UDP encapsulation (FOU/GUE) of a tunnel, the
// *_ENCAP_* attributes. The zero value means no encapsulation, which is
// what iproute2 sends unless "encap ..." is given (for ip6tnl iproute2
// additionally sets Flags to EncapFlagCsum6 by default; the flags have no
// effect while Type is EncapTypeNone).
type Encap struct {
	Type  uint16 // EncapType* constant
	Flags uint16 // EncapFlag* bits
	SPort uint16 // UDP source port, host order; 0 = chosen by the kernel
	DPort uint16 // UDP destination port, host order
}

// encapAttrs holds the attribute numbers of the four encapsulation
// attributes, which differ between the IFLA_IPTUN_* and IFLA_GRE_* spaces.
type encapAttrs struct {
	typ, flags, sport, dport uint16
}

var (
	iptunEncapAttrs = encapAttrs{iflaIPTunEncapType, iflaIPTunEncapFlags, iflaIPTunEncapSport, iflaIPTunEncapDport}
	greEncapAttrs   = encapAttrs{iflaGREEncapType, iflaGREEncapFlags, iflaGREEncapSport, iflaGREEncapDport}
)

// encode writes the encapsulation attributes in iproute2's order: type and
// flags as host-endian u16, the ports as big-endian u16.
func (e Encap) encode(ae *netlink.AttributeEncoder, n encapAttrs) {
	ae.Uint16(n.typ, e.Type)
	ae.Uint16(n.flags, e.Flags)
	putBE16(ae, n.sport, e.SPort)
	putBE16(ae, n.dport, e.DPort)
}

// set stores one attribute into e if it is one of the encapsulation
// attributes n.
func (e *Encap) set(typ uint16, b []byte, n encapAttrs) error {
	switch typ {
	case n.typ:
		return getU16(typ, b, &e.Type)
	case n.flags:
		return getU16(typ, b, &e.Flags)
	case n.sport:
		return getBE16(typ, b, &e.SPort)
	case n.dport:
		return getBE16(typ, b, &e.DPort)
	}
	return nil
}
