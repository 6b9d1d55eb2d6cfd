package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// checkIfname validates a Linux interface name (IFNAMSIZ-1 bytes, no '/',
// ':' or whitespace, not "." or "..").
func checkIfname(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("interface name is empty")
	case len(s) > 15:
		return fmt.Errorf("interface name %q is longer than 15 bytes", s)
	case s == "." || s == "..":
		return fmt.Errorf("interface name %q is not allowed", s)
	case s == "all" || s == "default":
		// The kernel refuses them (EINVAL): its sysctls of every
		// interface, and of new ones, go by these names. A tester's
		// [tunnel.all] passed check and failed with "invalid argument".
		return fmt.Errorf("interface name %q is the kernel's name for the settings of %s (net.ipv4.conf.%s), not a device's: name each interface", s, map[string]string{"all": "every interface", "default": "interfaces made from now on"}[s], s)
	case strings.ContainsAny(s, "/:"):
		return fmt.Errorf("interface name %q contains '/' or ':'", s)
	case strings.IndexFunc(s, unicode.IsSpace) >= 0:
		return fmt.Errorf("interface name %q contains whitespace", s)
	case strings.ContainsAny(s, "*+"):
		// nft reads a trailing * as a wildcard, iptables a +; tunneld
		// matches names exactly.
		return fmt.Errorf("interface name %q has a wildcard: name each interface", s)
	case strings.IndexFunc(s, notNameRune) >= 0:
		// The kernel takes more, but the filter's chains are named
		// after tunnels, and the commands tunneld prints must parse.
		return fmt.Errorf("interface name %q may hold only letters, digits, '_', '-' and '.'", s)
	}
	return nil
}

// notNameRune reports whether r may not be in an interface name.
func notNameRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
}

// parsePrefix accepts a CIDR prefix or a bare address (a host prefix). The
// prefix must not have host bits set.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or prefix", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a prefix", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set (did you mean %s?)", s, p.Masked())
	}
	return p, nil
}

// parseAddr parses a plain IP address (no zone, no prefix).
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	return a.Unmap(), nil
}

// parseIfAddr parses an interface address: "A/LEN", "A" (a host address) or
// the point-to-point form "A peer B" / "A/32 peer B" of `ip address add`.
func parseIfAddr(s string) (local netip.Prefix, peer netip.Addr, err error) {
	f := strings.Fields(s)
	switch {
	case len(f) == 1:
	case len(f) == 3 && f[1] == "peer":
		peer, err = parseAddr(strings.TrimSuffix(f[2], "/32"))
		if err != nil || strings.Contains(strings.TrimSuffix(f[2], "/32"), "/") {
			return local, peer, fmt.Errorf("%q: peer must be a single address", s)
		}
	default:
		return local, peer, fmt.Errorf("%q is not an address (want A/LEN or A peer B)", s)
	}
	if strings.Contains(f[0], "/") {
		local, err = netip.ParsePrefix(f[0])
	} else {
		var a netip.Addr
		a, err = netip.ParseAddr(f[0])
		local = netip.PrefixFrom(a, a.BitLen())
	}
	if err != nil || local.Addr().Zone() != "" {
		return local, peer, fmt.Errorf("%q is not an address (want A/LEN or A peer B)", s)
	}
	if peer.IsValid() && peer.Is4() != local.Addr().Is4() {
		return local, peer, fmt.Errorf("%q mixes IPv4 and IPv6", s)
	}
	if peer.IsValid() && local.Bits() != local.Addr().BitLen() {
		return local, peer, fmt.Errorf("%q: with a peer the local address takes no prefix length (or /32)", s)
	}
	return local, peer, nil
}

// checkHostname validates a DNS name for a remote endpoint.
func checkHostname(s string) error {
	if len(s) > 253 || s == "" {
		return fmt.Errorf("%q is neither an IP address nor a valid host name", s)
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is neither an IP address nor a valid host name", s)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%q is neither an IP address nor a valid host name", s)
			}
		}
	}
	return nil
}

var protoNumbers = map[string]uint8{
	"icmp": 1, "ipip": 4, "tcp": 6, "udp": 17, "ipv6": 41, "gre": 47,
	"esp": 50, "ah": 51, "icmpv6": 58, "ipv6-icmp": 58, "sctp": 132,
}

// parseProto accepts a protocol name or number.
func parseProto(s string) (uint8, error) {
	if n, ok := protoNumbers[strings.ToLower(s)]; ok {
		return n, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("unknown protocol %q (a name such as tcp, udp, icmp, or a number 1–255)", s)
	}
	return uint8(n), nil
}

// parseMark parses a firewall mark "MARK" or "MARK/MASK" (decimal or 0x).
func parseMark(s string) (mark, mask uint32, err error) {
	m, k, hasMask := strings.Cut(s, "/")
	mv, err := strconv.ParseUint(m, 0, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("%q is not a mark (want MARK or MARK/MASK)", s)
	}
	if !hasMask {
		return uint32(mv), 0xffffffff, nil
	}
	kv, err := strconv.ParseUint(k, 0, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("%q is not a mark (want MARK or MARK/MASK)", s)
	}
	if mv&^kv != 0 {
		// The kernel compares the masked bits alone: 0x100/0xff
		// matches every packet whose low byte is 0, unmarked ones too.
		return 0, 0, fmt.Errorf("%q has mark bits outside the mask, which the kernel ignores (give the mask the mark's bits: %#x/%#x)", s, mv, kv|mv)
	}
	return uint32(mv), uint32(kv), nil
}

func sortStrings(s []string) { slices.Sort(s) }
