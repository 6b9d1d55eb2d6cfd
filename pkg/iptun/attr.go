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

// The get* helpers decode one attribute's payload b (of type typ) into
// dst, refusing a payload of the wrong size.

func sizeError(typ uint16, want, got int) error {
	return fmt.Errorf("iptun: attribute %d: want %d bytes, got %d", typ, want, got)
}

func getU8(typ uint16, b []byte, dst *uint8) error {
	if len(b) != 1 {
		return sizeError(typ, 1, len(b))
	}
	*dst = b[0]
	return nil
}

func getBool8(typ uint16, b []byte, dst *bool) error {
	var v uint8
	err := getU8(typ, b, &v)
	*dst = v != 0
	return err
}

// getU16 and getU32 read host-order values.
func getU16(typ uint16, b []byte, dst *uint16) error {
	if len(b) != 2 {
		return sizeError(typ, 2, len(b))
	}
	*dst = binary.NativeEndian.Uint16(b)
	return nil
}

func getU32(typ uint16, b []byte, dst *uint32) error {
	if len(b) != 4 {
		return sizeError(typ, 4, len(b))
	}
	*dst = binary.NativeEndian.Uint32(b)
	return nil
}

// getBE16 and getBE32 read big-endian (network order) values.
func getBE16(typ uint16, b []byte, dst *uint16) error {
	if len(b) != 2 {
		return sizeError(typ, 2, len(b))
	}
	*dst = binary.BigEndian.Uint16(b)
	return nil
}

func getBE32(typ uint16, b []byte, dst *uint32) error {
	if len(b) != 4 {
		return sizeError(typ, 4, len(b))
	}
	*dst = binary.BigEndian.Uint32(b)
	return nil
}

// getAddr reads an address of size bytes (4 or 16). The unspecified
// address decodes to the zero netip.Addr, the package's spelling of "any".
func getAddr(typ uint16, b []byte, size int, dst *netip.Addr) error {
	if len(b) != size {
		return fmt.Errorf("iptun: attribute %d: want a %d-byte address, got %d bytes", typ, size, len(b))
	}
	a, _ := netip.AddrFromSlice(b)
	if a.IsUnspecified() {
		a = netip.Addr{}
	}
	*dst = a
	return nil
}

// decodeAll feeds each attribute of ad to set, which ignores types it
// does not know; the first error stops it.
func decodeAll(ad *netlink.AttributeDecoder, set func(typ uint16, b []byte) error) error {
	for ad.Next() {
		typ := ad.Type()
		ad.Do(func(b []byte) error { return set(typ, b) })
	}
	return ad.Err()
}
