package iptun

import (
	"fmt"
	"net/netip"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
)

// GRE is the rtnetlink link driver for kind "gre": GRE over IPv4. Its zero
// value is a valid tunnel: any/any endpoints, no keys, ttl inherit, tos 0,
// nopmtudisc (note: iproute2's default is pmtudisc).
//
// A key is configured by setting GREFlagKey in IFlags (receive) or OFlags
// (send) together with IKey or OKey; "ip link add NAME type gre key 42"
// is IFlags = OFlags = GREFlagKey, IKey = OKey = 42. A key written as a
// dotted quad a.b.c.d is the uint32 a<<24 | b<<16 | c<<8 | d.
type GRE struct {
	Link     uint32     // underlay ifindex ("dev"); 0 = none
	Local    netip.Addr // IPv4; zero value (or 0.0.0.0) = any
	Remote   netip.Addr // IPv4; zero value (or 0.0.0.0) = any
	TTL      uint8      // 0 = inherit from the inner packet
	TOS      uint8      // fixed TOS; 1 = inherit from the inner packet
	PMTUDisc bool       // set DF on outer packets
	// IgnoreDF fragments outer packets even if the inner packet has DF
	// set. The kernel refuses it together with PMTUDisc, and it checks
	// the tunnel's current IgnoreDF before the new one, so turning
	// IgnoreDF off and PMTUDisc on needs two changes.
	IgnoreDF bool
	IFlags   uint16 // GREFlag* bits expected on received packets
	OFlags   uint16 // GREFlag* bits put on sent packets
	IKey     uint32 // receive key; used when IFlags has GREFlagKey
	OKey     uint32 // send key; used when OFlags has GREFlagKey
	FwMark   uint32 // fwmark for the outer route lookup
	Encap    Encap  // optional FOU/GUE encapsulation
}

var _ rtnetlink.LinkDriver = (*GRE)(nil)

// New returns a new, zero GRE.
func (*GRE) New() rtnetlink.LinkDriver { return &GRE{} }

// Kind returns "gre".
func (*GRE) Kind() string { return KindGRE }

// Encode writes the complete IFLA_INFO_DATA attribute set of t in the
// order iproute2 6.1 sends it. Link is left out when 0, as iproute2 does
// (the kernel then uses 0); IFLA_GRE_IGNORE_DF is always sent because the
// kernel keeps the old value when it is missing. Encode fails for a
// non-IPv4 endpoint and for IgnoreDF together with PMTUDisc.
func (t *GRE) Encode(ae *netlink.AttributeEncoder) error {
	if t.IgnoreDF && t.PMTUDisc {
		return fmt.Errorf("iptun: %s ignore-df requires nopmtudisc", KindGRE)
	}
	putBE32(ae, iflaGREIKey, t.IKey)
	putBE32(ae, iflaGREOKey, t.OKey)
	putBE16(ae, iflaGREIFlags, t.IFlags)
	putBE16(ae, iflaGREOFlags, t.OFlags)
	if err := putAddr4(ae, iflaGRELocal, KindGRE, "local", t.Local); err != nil {
		return err
	}
	if err := putAddr4(ae, iflaGRERemote, KindGRE, "remote", t.Remote); err != nil {
		return err
	}
	putBool8(ae, iflaGREPMTUDisc, t.PMTUDisc)
	putBool8(ae, iflaGREIgnoreDF, t.IgnoreDF)
	ae.Uint8(iflaGRETOS, t.TOS)
	if t.Link != 0 {
		ae.Uint32(iflaGRELink, t.Link)
	}
	ae.Uint8(iflaGRETTL, t.TTL)
	ae.Uint32(iflaGREFwMark, t.FwMark)
	t.Encap.encode(ae, greEncapAttrs)
	return nil
}

// Decode replaces t with the parameters in the IFLA_INFO_DATA attributes
// read from ad, ignoring attributes it does not know.
func (t *GRE) Decode(ad *netlink.AttributeDecoder) error {
	*t = GRE{}
	return decodeAll(ad, t.set)
}

func (t *GRE) set(typ uint16, b []byte) error {
	switch typ {
	case iflaGREIKey:
		return getBE32(typ, b, &t.IKey)
	case iflaGREOKey:
		return getBE32(typ, b, &t.OKey)
	case iflaGREIFlags:
		return getBE16(typ, b, &t.IFlags)
	case iflaGREOFlags:
		return getBE16(typ, b, &t.OFlags)
	case iflaGRELocal:
		return getAddr(typ, b, 4, &t.Local)
	case iflaGRERemote:
		return getAddr(typ, b, 4, &t.Remote)
	case iflaGREPMTUDisc:
		return getBool8(typ, b, &t.PMTUDisc)
	case iflaGREIgnoreDF:
		return getBool8(typ, b, &t.IgnoreDF)
	case iflaGRETOS:
		return getU8(typ, b, &t.TOS)
	case iflaGRELink:
		return getU32(typ, b, &t.Link)
	case iflaGRETTL:
		return getU8(typ, b, &t.TTL)
	case iflaGREFwMark:
		return getU32(typ, b, &t.FwMark)
	}
	return t.Encap.set(typ, b, greEncapAttrs)
}
