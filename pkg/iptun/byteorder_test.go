package iptun

import (
	"encoding/binary"
	"testing"
)

// hostOrder lists, for each kind, the IFLA_INFO_DATA attributes whose
// payload is a multi-byte value in host byte order: those the kernel reads
// with nla_get_u16/nla_get_u32 (linux 6.1 net/ipv4/ipip.c, ip_gre.c,
// net/ipv6/sit.c, ip6_tunnel.c) and iproute2 writes with addattr16/32.
// sit's IFLA_IPTUN_FLAGS is among them: the kernel reads it with
// nla_get_be16 into i_flags but compares it with host-order SIT_ISATAP,
// and iproute2 sends it in host order. Everything else is bytes, u8, or
// network order (GRE flags and keys, encap ports, flow info), the same on
// every machine. The table is written from the kernel's source, apart
// from the encoder it checks.
var hostOrder = map[string]map[uint16]int{
	"ipip": {iflaIPTunLink: 4, iflaIPTunEncapType: 2, iflaIPTunEncapFlags: 2, iflaIPTunFwMark: 4},
	"sit": {iflaIPTunLink: 4, iflaIPTunFlags: 2, iflaIPTun6RDPrefixLen: 2, iflaIPTun6RDRelayPrefixLen: 2,
		iflaIPTunEncapType: 2, iflaIPTunEncapFlags: 2, iflaIPTunFwMark: 4},
	"ip6tnl": {iflaIPTunLink: 4, iflaIPTunFlags: 4, iflaIPTunEncapType: 2, iflaIPTunEncapFlags: 2, iflaIPTunFwMark: 4},
	"gre":    {iflaGRELink: 4, iflaGREEncapType: 2, iflaGREEncapFlags: 2, iflaGREFwMark: 4},
}

// littleEndian reports whether this machine is little-endian, as the
// host that captured the golden bytes was.
func littleEndian() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }

// nativeGolden turns golden bytes captured on a little-endian host into
// what iproute2 would send for kind on this machine: each attribute's
// header (nla_len, nla_type) and the host-order payloads of hostOrder
// swapped on a big-endian one, network-order and byte payloads kept.
func nativeGolden(t *testing.T, kind string, le []byte) []byte {
	t.Helper()
	if littleEndian() {
		return le
	}
	order, ok := hostOrder[kind]
	if !ok {
		t.Fatalf("no byte-order table for kind %q", kind)
	}
	out := make([]byte, 0, len(le))
	for b := le; len(b) > 0; {
		if len(b) < 4 {
			t.Fatalf("golden %s: %d trailing bytes", kind, len(b))
		}
		n, typ := int(binary.LittleEndian.Uint16(b)), binary.LittleEndian.Uint16(b[2:])
		if n < 4 || n > len(b) {
			t.Fatalf("golden %s: attribute length %d of %d bytes", kind, n, len(b))
		}
		payload := b[4:n]
		out = binary.BigEndian.AppendUint16(out, uint16(n))
		out = binary.BigEndian.AppendUint16(out, typ)
		switch w := order[typ&^0xc000]; {
		case w == 2 && len(payload) == 2:
			out = binary.BigEndian.AppendUint16(out, binary.LittleEndian.Uint16(payload))
		case w == 4 && len(payload) == 4:
			out = binary.BigEndian.AppendUint32(out, binary.LittleEndian.Uint32(payload))
		case w != 0:
			t.Fatalf("golden %s: attribute %d has %d bytes, the table says %d", kind, typ, len(payload), w)
		default:
			out = append(out, payload...)
		}
		pad := (n + 3) &^ 3
		if pad > len(b) {
			pad = len(b)
		}
		out = append(out, b[n:pad]...)
		b = b[pad:]
	}
	return out
}

// TestNativeGolden: on a little-endian machine the golden bytes are kept
// as captured; on a big-endian one a host-order u32 and each header are
// swapped and a network-order GRE key is not.
func TestNativeGolden(t *testing.T) {
	le := []byte{8, 0, iflaGRELink, 0, 7, 0, 0, 0, 8, 0, iflaGREIKey, 0, 0, 0, 0, 42}
	want := le
	if !littleEndian() {
		want = []byte{0, 8, 0, iflaGRELink, 0, 0, 0, 7, 0, 8, 0, iflaGREIKey, 0, 0, 0, 42}
	}
	if got := nativeGolden(t, "gre", le); string(got) != string(want) {
		t.Errorf("nativeGolden = %x, want %x", got, want)
	}
}
