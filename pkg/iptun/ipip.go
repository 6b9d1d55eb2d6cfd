package iptun

import (
	"net/netip"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
)

// IPIP is the rtnetlink link driver for kind "ipip": IPv4 (or MPLS) in
// IPv4. Its zero value is a valid tunnel: any/any endpoints, ttl inherit,
// tos 0, nopmtudisc (note: iproute2's default is pmtudisc).
type IPIP struct {
	Link     uint32     // underlay ifindex ("dev"); 0 = none
	Local    netip.Addr // IPv4; zero value (or 0.0.0.0) = any
	Remote   netip.Addr // IPv4; zero value (or 0.0.0.0) = any
	TTL      uint8      // 0 = inherit from the inner packet
	TOS      uint8      // fixed TOS; 1 = inherit from the inner packet
	PMTUDisc bool       // set DF on outer packets; required when TTL != 0
	Proto    uint8      // accepted inner protocol: 0 = any, unix.IPPROTO_IPIP (4), unix.IPPROTO_MPLS (137)
	FwMark   uint32     // fwmark for the outer route lookup
	Encap    Encap      // optional FOU/GUE encapsulation
}

var _ rtnetlink.LinkDriver = (*IPIP)(nil)

// New returns a new, zero IPIP.
func (*IPIP) New() rtnetlink.LinkDriver { return &IPIP{} }

// Kind returns "ipip".
func (*IPIP) Kind() string { return KindIPIP }

// Encode writes the complete IFLA_INFO_DATA attribute set of t. It fails
// for a non-IPv4 endpoint and for TTL != 0 without PMTUDisc.
func (t *IPIP) Encode(ae *netlink.AttributeEncoder) error {
	p := ip4Params(*t)
	return p.encode(ae, KindIPIP)
}

// Decode replaces t with the parameters in the IFLA_INFO_DATA attributes
// read from ad, ignoring attributes it does not know.
func (t *IPIP) Decode(ad *netlink.AttributeDecoder) error {
	*t = IPIP{}
	return decodeAll(ad, t.set)
}

func (t *IPIP) set(typ uint16, b []byte) error { return (*ip4Params)(t).set(typ, b) }
