package iptun

// Overhead returns the number of bytes a tunnel of the given kind adds in
// front of each packet: 20 for ipip and sit (outer IPv4 header), 24 for
// gre (IPv4 + GRE header) plus 4 when greKey is set, and 40 for ip6tnl
// (outer IPv6 header; the kernel reserves 8 more unless the encapsulation
// limit option is disabled with IP6TnlFlagIgnEncapLimit). GRE checksums,
// sequence numbers and FOU/GUE encapsulation are not included. Unknown
// kinds return 0.
func Overhead(kind string, greKey bool) int {
	switch kind {
	case KindIPIP, KindSIT:
		return 20
	case KindGRE:
		if greKey {
			return 28
		}
		return 24
	case KindIP6Tnl:
		return 40
	}
	return 0
}
