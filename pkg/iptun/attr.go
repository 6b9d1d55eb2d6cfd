package iptun

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
)

// putBE16 writes v as a big-endian (network order) u16 attribute, like the
// kernel's nla_put_be16. The NLA_F_NET_BYTEORDER flag is not set, just as
// iproute2 and the kernel do not set it.
func putBE16(ae *netlink.AttributeEncoder, typ uint16, v uint16) {
	ae.Bytes(typ, binary.BigEndian.AppendUint16(nil, v))
}

// putBE32 writes v as a big-endian (network order) u32 attribute.
func putBE32(ae *netlink.AttributeEncoder, typ uint16, v uint32) {
	ae.Bytes(typ, binary.BigEndian.AppendUint32(nil, v))
}

// putBool8 writes b as a u8 attribute holding 0 or 1.
func putBool8(ae *netlink.AttributeEncoder, typ uint16, b bool) {
	var v uint8
	if b {
		v = 1
	}
	ae.Uint8(typ, v)
}

// putAddr4 writes an IPv4 endpoint address. Like iproute2 it leaves the
// attribute out for "any" (invalid or 0.0.0.0): the kernel then uses any.
func putAddr4(ae *netlink.AttributeEncoder, typ uint16, kind, what string, a netip.Addr) error {
	if !a.IsValid() || a.IsUnspecified() {
		return nil
	}
	if !a.Is4() {
		return fmt.Errorf("iptun: %s %s address %s is not IPv4", kind, what, a)
	}
	b := a.As4()
	ae.Bytes(typ, b[:])
	return nil
}

// putAddr16 writes an IPv6 endpoint address. Like iproute2 it leaves the
// attribute out for "any" (invalid or ::): the kernel then uses any.
func putAddr16(ae *netlink.AttributeEncoder, typ uint16, kind, what string, a netip.Addr) error {
	if !a.IsValid() || a.IsUnspecified() {
		return nil
	}
	if !a.Is6() {
		return fmt.Errorf("iptun: %s %s address %s is not IPv6", kind, what, a)
	}
	if a.Zone() != "" {
		return fmt.Errorf("iptun: %s %s address %s has a zone; use Link instead", kind, what, a)
	}
	b := a.As16()
	ae.Bytes(typ, b[:])
	return nil
}

// getBE16 decodes the current attribute as a big-endian u16 into dst.
func getBE16(ad *netlink.AttributeDecoder, dst *uint16) {
	ad.Do(func(b []byte) error {
		if len(b) != 2 {
			return fmt.Errorf("iptun: attribute %d: want 2 bytes, got %d", ad.Type(), len(b))
		}
		*dst = binary.BigEndian.Uint16(b)
		return nil
	})
}

// getBE32 decodes the current attribute as a big-endian u32 into dst.
func getBE32(ad *netlink.AttributeDecoder, dst *uint32) {
	ad.Do(func(b []byte) error {
		if len(b) != 4 {
			return fmt.Errorf("iptun: attribute %d: want 4 bytes, got %d", ad.Type(), len(b))
		}
		*dst = binary.BigEndian.Uint32(b)
		return nil
	})
}

// getAddr decodes the current attribute as an address of size bytes (4 or
// 16) into dst. The unspecified address decodes to the zero netip.Addr, the
// package's spelling of "any".
func getAddr(ad *netlink.AttributeDecoder, size int, dst *netip.Addr) {
	ad.Do(func(b []byte) error {
		if len(b) != size {
			return fmt.Errorf("iptun: attribute %d: want a %d-byte address, got %d bytes", ad.Type(), size, len(b))
		}
		a, _ := netip.AddrFromSlice(b)
		if a.IsUnspecified() {
			a = netip.Addr{}
		}
		*dst = a
		return nil
	})
}
