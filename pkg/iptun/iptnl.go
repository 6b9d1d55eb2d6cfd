package iptun

import (
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
)

// ip4Params are the IFLA_IPTUN_* parameters ipip and sit share. Its fields
// match IPIP exactly so the two convert into each other.
type ip4Params struct {
	Link     uint32
	Local    netip.Addr
	Remote   netip.Addr
	TTL      uint8
	TOS      uint8
	PMTUDisc bool
	Proto    uint8
	FwMark   uint32
	Encap    Encap
}

// encode writes the shared parameters in the order iproute2 6.1 sends
// them for "ip link add NAME type ipip|sit ...".
func (p *ip4Params) encode(ae *netlink.AttributeEncoder, kind string) error {
	if p.TTL != 0 && !p.PMTUDisc {
		// The kernel forces DF whenever a fixed TTL is set, so this state
		// cannot exist; iproute2 refuses it too.
		return fmt.Errorf("iptun: %s ttl %d requires pmtudisc (only ttl inherit allows nopmtudisc)", kind, p.TTL)
	}
	ae.Uint8(iflaIPTunProto, p.Proto)
	if err := putAddr4(ae, iflaIPTunLocal, kind, "local", p.Local); err != nil {
		return err
	}
	if err := putAddr4(ae, iflaIPTunRemote, kind, "remote", p.Remote); err != nil {
		return err
	}
	putBool8(ae, iflaIPTunPMTUDisc, p.PMTUDisc)
	ae.Uint8(iflaIPTunTOS, p.TOS)
	ae.Uint8(iflaIPTunTTL, p.TTL)
	ae.Uint32(iflaIPTunLink, p.Link)
	ae.Uint32(iflaIPTunFwMark, p.FwMark)
	p.Encap.encode(ae, iptunEncapAttrs)
	return nil
}

// set stores one attribute into p if it is one of the shared parameters.
func (p *ip4Params) set(typ uint16, b []byte) error {
	switch typ {
	case iflaIPTunProto:
		return getU8(typ, b, &p.Proto)
	case iflaIPTunLocal:
		return getAddr(typ, b, 4, &p.Local)
	case iflaIPTunRemote:
		return getAddr(typ, b, 4, &p.Remote)
	case iflaIPTunPMTUDisc:
		return getBool8(typ, b, &p.PMTUDisc)
	case iflaIPTunTOS:
		return getU8(typ, b, &p.TOS)
	case iflaIPTunTTL:
		return getU8(typ, b, &p.TTL)
	case iflaIPTunLink:
		return getU32(typ, b, &p.Link)
	case iflaIPTunFwMark:
		return getU32(typ, b, &p.FwMark)
	}
	return p.Encap.set(typ, b, iptunEncapAttrs)
}
