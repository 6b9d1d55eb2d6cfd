package iptun

// Link kinds handled by this package, as carried in IFLA_INFO_KIND.
const (
	KindIPIP   = "ipip"   // IPv4 in IPv4 (and MPLS in IPv4)
	KindSIT    = "sit"    // IPv6 in IPv4 (and IPv4/MPLS in IPv4)
	KindGRE    = "gre"    // GRE over IPv4
	KindIP6Tnl = "ip6tnl" // IPv4 or IPv6 in IPv6
)

// IFLA_IPTUN_* attribute numbers (enum in the kernel's
// include/uapi/linux/if_tunnel.h), used by ipip, sit and ip6tnl.
const (
	iflaIPTunUnspec            = 0
	iflaIPTunLink              = 1  // u32, underlay ifindex
	iflaIPTunLocal             = 2  // in_addr or in6_addr
	iflaIPTunRemote            = 3  // in_addr or in6_addr
	iflaIPTunTTL               = 4  // u8 (ip6tnl: hop limit)
	iflaIPTunTOS               = 5  // u8
	iflaIPTunEncapLimit        = 6  // u8, ip6tnl only
	iflaIPTunFlowInfo          = 7  // be32, ip6tnl only
	iflaIPTunFlags             = 8  // sit: u16 i_flags; ip6tnl: u32
	iflaIPTunProto             = 9  // u8
	iflaIPTunPMTUDisc          = 10 // u8
	iflaIPTun6RDPrefix         = 11 // in6_addr, sit only
	iflaIPTun6RDRelayPrefix    = 12 // in_addr, sit only
	iflaIPTun6RDPrefixLen      = 13 // u16, sit only
	iflaIPTun6RDRelayPrefixLen = 14 // u16, sit only
	iflaIPTunEncapType         = 15 // u16
	iflaIPTunEncapFlags        = 16 // u16
	iflaIPTunEncapSport        = 17 // be16
	iflaIPTunEncapDport        = 18 // be16
	iflaIPTunCollectMetadata   = 19 // flag
	iflaIPTunFwMark            = 20 // u32
)

// IFLA_GRE_* attribute numbers (enum in the kernel's
// include/uapi/linux/if_tunnel.h), used by gre.
const (
	iflaGREUnspec          = 0
	iflaGRELink            = 1  // u32, underlay ifindex
	iflaGREIFlags          = 2  // be16, GRE header flags
	iflaGREOFlags          = 3  // be16, GRE header flags
	iflaGREIKey            = 4  // be32
	iflaGREOKey            = 5  // be32
	iflaGRELocal           = 6  // in_addr
	iflaGRERemote          = 7  // in_addr
	iflaGRETTL             = 8  // u8
	iflaGRETOS             = 9  // u8
	iflaGREPMTUDisc        = 10 // u8
	iflaGREEncapLimit      = 11 // u8, ip6gre only
	iflaGREFlowInfo        = 12 // be32, ip6gre only
	iflaGREFlags           = 13 // u32, ip6gre only
	iflaGREEncapType       = 14 // u16
	iflaGREEncapFlags      = 15 // u16
	iflaGREEncapSport      = 16 // be16
	iflaGREEncapDport      = 17 // be16
	iflaGRECollectMetadata = 18 // flag
	iflaGREIgnoreDF        = 19 // u8
	iflaGREFwMark          = 20 // u32
	iflaGREErspanIndex     = 21 // u32
	iflaGREErspanVer       = 22 // u8
	iflaGREErspanDir       = 23 // u8
	iflaGREErspanHwid      = 24 // u16
)

// GRE header flag bits for GRE.IFlags and GRE.OFlags, as host-order values
// of the 16-bit GRE flags word. They are sent in network byte order, so
// GREFlagKey is the kernel's __be16 GRE_KEY = htons(0x2000) on the wire.
const (
	GREFlagCsum    uint16 = 0x8000 // checksum present (GRE_CSUM)
	GREFlagRouting uint16 = 0x4000 // routing present (GRE_ROUTING)
	GREFlagKey     uint16 = 0x2000 // key present (GRE_KEY)
	GREFlagSeq     uint16 = 0x1000 // sequence number present (GRE_SEQ)
)

// SITFlagISATAP marks a sit tunnel as an ISATAP interface (SIT_ISATAP, the
// only defined bit of SIT.Flags).
const SITFlagISATAP uint16 = 0x0001

// Bits of IP6Tnl.Flags (IP6_TNL_F_* in include/uapi/linux/ip6_tunnel.h).
const (
	// IP6TnlFlagIgnEncapLimit means "encaplimit none": no tunnel
	// encapsulation limit option is added and IP6Tnl.EncapLimit is unused.
	IP6TnlFlagIgnEncapLimit uint32 = 0x1
	// IP6TnlFlagUseOrigTClass copies the traffic class from the inner
	// packet ("tclass inherit").
	IP6TnlFlagUseOrigTClass uint32 = 0x2
	// IP6TnlFlagUseOrigFlowLabel copies the flow label from the inner
	// packet ("flowlabel inherit").
	IP6TnlFlagUseOrigFlowLabel uint32 = 0x4
	// IP6TnlFlagMIP6Dev marks a tunnel used for Mobile IPv6.
	IP6TnlFlagMIP6Dev uint32 = 0x8
	// IP6TnlFlagRcvDSCPCopy copies the DSCP from the outer packet on
	// receive ("dscp inherit").
	IP6TnlFlagRcvDSCPCopy uint32 = 0x10
	// IP6TnlFlagUseOrigFwMark copies the fwmark from the inner packet
	// ("fwmark inherit").
	IP6TnlFlagUseOrigFwMark uint32 = 0x20
	// IP6TnlFlagAllowLocalRemote allows the remote endpoint to be a local
	// address ("allow-localremote").
	IP6TnlFlagAllowLocalRemote uint32 = 0x40
)

// Defaults iproute2 uses for an ip6tnl tunnel when the command line does
// not say otherwise (the kernel uses the same values for missing attributes).
const (
	IP6TnlDefaultHopLimit   uint8 = 64 // DEFAULT_TNL_HOP_LIMIT
	IP6TnlDefaultEncapLimit uint8 = 4  // IPV6_DEFAULT_TNL_ENCAP_LIMIT
)

// Masks of the host-order IP6Tnl.FlowInfo value: the traffic class is bits
// 20-27 and the flow label bits 0-19, as in the IPv6 header's first word.
const (
	FlowInfoTClassMask    uint32 = 0x0ff00000
	FlowInfoFlowLabelMask uint32 = 0x000fffff
)

// Encapsulation types for Encap.Type (enum tunnel_encap_types).
const (
	EncapTypeNone uint16 = 0 // no UDP encapsulation
	EncapTypeFOU  uint16 = 1 // foo-over-UDP
	EncapTypeGUE  uint16 = 2 // generic UDP encapsulation
	EncapTypeMPLS uint16 = 3 // MPLS encapsulation
)

// Encapsulation flag bits for Encap.Flags (TUNNEL_ENCAP_FLAG_*).
const (
	EncapFlagCsum    uint16 = 1 << 0 // UDP checksum over IPv4
	EncapFlagCsum6   uint16 = 1 << 1 // UDP checksum over IPv6 (iproute2's ip6tnl default)
	EncapFlagRemCsum uint16 = 1 << 2 // remote checksum offload
)
