package iptun

import (
	"net/netip"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
)

// SIT is the rtnetlink link driver for kind "sit": IPv6 (and, depending on
// Proto, IPv4 or MPLS) in IPv4. Its zero value is a valid tunnel: any/any
// endpoints, ttl inherit, tos 0, nopmtudisc, any inner protocol.
//
// 6rd parameters (IFLA_IPTUN_6RD_*) are not managed: Encode never sends
// them, so the kernel keeps its current 6rd configuration, and Decode
// ignores them.
type SIT struct {
	Link     uint32     // underlay ifindex ("dev"); 0 = none
	Local    netip.Addr // IPv4; zero value (or 0.0.0.0) = any
	Remote   netip.Addr // IPv4; zero value (or 0.0.0.0) = any
	TTL      uint8      // 0 = inherit from the inner packet
	TOS      uint8      // fixed TOS; 1 = inherit from the inner packet
	PMTUDisc bool       // set DF on outer packets; required when TTL != 0
	// Proto is the accepted inner protocol: 0 = any (iproute2's default),
	// unix.IPPROTO_IPV6 (41, "mode ip6ip", the kernel's default when the
	// attribute is absent), unix.IPPROTO_IPIP (4) or unix.IPPROTO_MPLS (137).
	Proto  uint8
	FwMark uint32 // fwmark for the outer route lookup
	Encap  Encap  // optional FOU/GUE encapsulation
	Flags  uint16 // SITFlagISATAP or 0
}

var _ rtnetlink.LinkDriver = (*SIT)(nil)

// New returns a new, zero SIT.
func (*SIT) New() rtnetlink.LinkDriver { return &SIT{} }

// Kind returns "sit".
func (*SIT) Kind() string { return KindSIT }

func (t *SIT) params() ip4Params {
	return ip4Params{
		Link:     t.Link,
		Local:    t.Local,
		Remote:   t.Remote,
		TTL:      t.TTL,
		TOS:      t.TOS,
		PMTUDisc: t.PMTUDisc,
		Proto:    t.Proto,
		FwMark:   t.FwMark,
		Encap:    t.Encap,
	}
}

// Encode writes the complete IFLA_INFO_DATA attribute set of t. It fails
// for a non-IPv4 endpoint and for TTL != 0 without PMTUDisc.
func (t *SIT) Encode(ae *netlink.AttributeEncoder) error {
	p := t.params()
	if err := p.encode(ae, KindSIT); err != nil {
		return err
	}
	// The kernel reads this as __be16 i_flags but compares it with the
	// host-order SIT_ISATAP, and iproute2 sends it host endian.
	ae.Uint16(iflaIPTunFlags, t.Flags)
	return nil
}

// Decode replaces t with the parameters in the IFLA_INFO_DATA attributes
// read from ad, ignoring attributes it does not know.
func (t *SIT) Decode(ad *netlink.AttributeDecoder) error {
	*t = SIT{}
	return decodeAll(ad, t.set)
}

func (t *SIT) set(typ uint16, b []byte) error {
	if typ == iflaIPTunFlags {
		return getU16(typ, b, &t.Flags)
	}
	p := t.params()
	err := p.set(typ, b)
	*t = SIT{Link: p.Link, Local: p.Local, Remote: p.Remote, TTL: p.TTL, TOS: p.TOS, PMTUDisc: p.PMTUDisc,
		Proto: p.Proto, FwMark: p.FwMark, Encap: p.Encap, Flags: t.Flags}
	return err
}
