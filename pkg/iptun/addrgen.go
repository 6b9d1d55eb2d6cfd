package iptun

import (
	"encoding/binary"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// IPv6 address generation modes of a link, ip's addrgenmode (enum
// in6_addr_gen_mode in the kernel's include/uapi/linux/if_link.h).
const (
	AddrGenModeEUI64         uint8 = 0 // the kernel's default: a link-local address from the device
	AddrGenModeNone          uint8 = 1 // no address of the kernel's own
	AddrGenModeStablePrivacy uint8 = 2 // RFC 7217, from stable_secret
	AddrGenModeRandom        uint8 = 3 // RFC 7217 with a random secret
)

// AddrGenMode is the IFLA_AF_SPEC attribute of a setlink that gives a
// link's IPv6 side the address generation mode (an AddrGenMode*
// constant), as iproute2's `ip link set NAME addrgenmode MODE` sends it:
// AF_INET6 nested in IFLA_AF_SPEC, IFLA_INET6_ADDR_GEN_MODE (a u8) in
// that, neither nest flagged NLA_F_NESTED.
//
// The kernel refuses IFLA_AF_SPEC in a creation (RTM_NEWLINK with
// NLM_F_CREATE: EAFNOSUPPORT, ip link add … addrgenmode none too, seen
// on 6.1 and 6.18): it goes in a setlink of the existing link, and
// refuses it with EAFNOSUPPORT as well where the link has no IPv6 side
// (an MTU under 1280).
func AddrGenMode(mode uint8) netlink.Attribute {
	// A u8 attribute is 5 bytes, padded to 8, inside a 4-byte header.
	b := make([]byte, 12)
	binary.NativeEndian.PutUint16(b[0:], 12)
	binary.NativeEndian.PutUint16(b[2:], unix.AF_INET6)
	binary.NativeEndian.PutUint16(b[4:], 5)
	binary.NativeEndian.PutUint16(b[6:], unix.IFLA_INET6_ADDR_GEN_MODE)
	b[8] = mode
	return netlink.Attribute{Type: unix.IFLA_AF_SPEC, Data: b}
}
