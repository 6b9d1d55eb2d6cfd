package model

import "fmt"

// Mode is a tunnel's encapsulation as the configuration names it.
type Mode string

// The tunnel modes tunneld manages.
const (
	ModeIPIP   Mode = "ipip"   // IPv4 in IPv4 (kernel kind ipip)
	ModeGRE    Mode = "gre"    // GRE over IPv4 (kernel kind gre)
	ModeSIT    Mode = "sit"    // IPv6 in IPv4 (kernel kind sit)
	ModeIPIP6  Mode = "ipip6"  // IPv4 in IPv6 (kernel kind ip6tnl, proto 4)
	ModeIP6IP6 Mode = "ip6ip6" // IPv6 in IPv6 (kernel kind ip6tnl, proto 41)
)

// Modes lists every mode in a stable order.
var Modes = []Mode{ModeIPIP, ModeGRE, ModeSIT, ModeIPIP6, ModeIP6IP6}

// ParseMode returns the mode named s.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown mode %q (want ipip, gre, sit, ipip6 or ip6ip6)", s)
}

// Kind is the kernel's link kind (IFLA_INFO_KIND) for the mode.
func (m Mode) Kind() string {
	switch m {
	case ModeIPIP6, ModeIP6IP6:
		return "ip6tnl"
	}
	return string(m)
}

// OuterIPv6 reports whether the mode's underlay (outer header) is IPv6.
func (m Mode) OuterIPv6() bool { return m == ModeIPIP6 || m == ModeIP6IP6 }

// CarriesIPv4 reports whether the mode can carry IPv4 inside.
func (m Mode) CarriesIPv4() bool {
	return m == ModeIPIP || m == ModeGRE || m == ModeIPIP6
}

// CarriesIPv6 reports whether the mode can carry IPv6 inside.
func (m Mode) CarriesIPv6() bool {
	return m == ModeGRE || m == ModeSIT || m == ModeIP6IP6
}

// Protocol is the IP protocol number of the outer packets (for GRE 47; for
// ip6tnl the inner protocol the tunnel carries, the next header after the
// IPv6 header and any extension headers).
func (m Mode) Protocol() uint8 {
	switch m {
	case ModeIPIP, ModeIPIP6:
		return 4
	case ModeGRE:
		return 47
	case ModeSIT, ModeIP6IP6:
		return 41
	}
	return 0
}

// IPv6MinMTU is IPv6's minimum link MTU (RFC 8200, the kernel's
// IPV6_MIN_MTU). The kernel turns IPv6 off on a device whose MTU is below
// it: addrconf drops the device's IPv6 addresses and IPv6 packets arriving
// on it, so a tunnel carrying IPv6 needs at least this MTU.
const IPv6MinMTU = 1280

// Overhead is the number of bytes the encapsulation adds to each packet.
func (m Mode) Overhead(greKey bool) int {
	switch m {
	case ModeGRE:
		if greKey {
			return 28
		}
		return 24
	case ModeIPIP6, ModeIP6IP6:
		return 40
	}
	return 20
}

// Module is the kernel module that provides the mode, and Package the
// OpenWrt package that ships it.
func (m Mode) Module() (module, pkg string) {
	switch m {
	case ModeIPIP:
		return "ipip", "kmod-ipip"
	case ModeGRE:
		return "ip_gre", "kmod-gre"
	case ModeSIT:
		return "sit", "kmod-sit"
	}
	return "ip6_tunnel", "kmod-ip6-tunnel"
}

// FallbackDevices are the devices the kernel creates with each tunnel
// module, by name, with their kind: they have no endpoints, and an up
// one accepts encapsulated packets from anyone.
var FallbackDevices = map[string]string{
	"tunl0": "ipip", "gre0": "gre", "sit0": "sit", "ip6tnl0": "ip6tnl",
}
