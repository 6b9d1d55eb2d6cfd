// Package nlattr walks runs of netlink attributes in place, without
// copying them: the one walker the kernel seam, the nftables reader and
// the watcher share.
package nlattr

import "encoding/binary"

// typeMask strips an attribute type of its NLA_F_NESTED and
// NLA_F_NET_BYTEORDER flags.
const typeMask = 0x3fff

// hdrLen is the length of an attribute's header (struct nlattr).
const hdrLen = 4

// Next splits the first attribute off b: its type (flags masked), its
// payload, and what follows it after the padding. ok is false when b
// holds no whole attribute: shorter than a header, or a length that is
// too short or runs past b.
func Next(b []byte) (typ uint16, v, rest []byte, ok bool) {
	if len(b) < hdrLen {
		return 0, nil, nil, false
	}
	n := int(binary.NativeEndian.Uint16(b))
	if n < hdrLen || n > len(b) {
		return 0, nil, nil, false
	}
	typ = binary.NativeEndian.Uint16(b[2:]) & typeMask
	return typ, b[hdrLen:n], b[min((n+3)&^3, len(b)):], true
}

// Find is the payload of the first attribute of type typ (flags aside)
// in b; false when there is none, or the run is malformed before it.
func Find(b []byte, typ uint16) ([]byte, bool) {
	for {
		t, v, rest, ok := Next(b)
		if !ok {
			return nil, false
		}
		if t == typ {
			return v, true
		}
		b = rest
	}
}
