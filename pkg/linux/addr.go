package linux

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/model"
)

// addrMsg encodes an interface address as `ip address add` does: IFA_LOCAL
// is our address, IFA_ADDRESS the peer (or our address again). IPv6
// addresses skip duplicate address detection: on a point-to-point tunnel
// there is nobody to collide with, and DAD would keep them unusable for
// about two seconds.
func addrMsg(a model.Addr, index uint32) *rtnetlink.AddressMessage {
	local := a.Prefix.Addr()
	peer := local
	if a.Peer.IsValid() {
		peer = a.Peer
	}
	m := &rtnetlink.AddressMessage{
		Family:       unix.AF_INET,
		PrefixLength: uint8(a.Prefix.Bits()),
		Index:        index,
		Attributes: &rtnetlink.AddressAttributes{
			Local:   net.IP(local.AsSlice()),
			Address: net.IP(peer.AsSlice()),
		},
	}
	if a.Peer.IsValid() {
		m.PrefixLength = uint8(local.BitLen())
	}
	if local.Is6() {
		m.Family = unix.AF_INET6
		m.Flags = unix.IFA_F_NODAD
		m.Attributes.Flags = unix.IFA_F_NODAD
	}
	return m
}

// observedAddr is one address as the kernel lists it.
type observedAddr struct {
	index     uint32
	addr      model.Addr // Link left empty
	scope     uint8
	secondary bool
	// unusable: the kernel sends from it neither now nor later
	// (tentative in duplicate address detection, not optimistic; or
	// detection failed, then dadFailed too). deprecated: its preferred
	// lifetime is over.
	unusable, dadFailed, deprecated bool
}

func (k *Kernel) listAddrs(into []observedAddr) ([]observedAddr, error) {
	out := into[:0]
	err := list(k, "addresses", unix.RTM_GETADDR, &rtnetlink.AddressMessage{}, func() { out = out[:0] }, func(b []byte) error {
		a, ok, err := decodeAddr(b)
		if err == nil && ok {
			out = append(out, a)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// decodeAddr reads an RTM_NEWADDR message; ok is false for one without
// an address.
func decodeAddr(b []byte) (a observedAddr, ok bool, err error) {
	if len(b) < unix.SizeofIfAddrmsg {
		return a, false, errMalformed
	}
	prefixLen, flags := int(b[1]), uint32(b[2])
	a.scope, a.index = b[3], binary.NativeEndian.Uint32(b[4:])
	var local, address netip.Addr
	err = eachAttr(b[unix.SizeofIfAddrmsg:], func(typ uint16, v []byte) error {
		switch typ {
		case unix.IFA_LOCAL:
			local, _ = netip.AddrFromSlice(v)
		case unix.IFA_ADDRESS:
			address, _ = netip.AddrFromSlice(v)
		case unix.IFA_FLAGS:
			flags |= u32(v)
		}
		return nil
	})
	local, address = local.Unmap(), address.Unmap()
	if !local.IsValid() {
		local = address
	}
	if err != nil || !local.IsValid() {
		return a, false, err
	}
	a.addr = model.Addr{Prefix: netip.PrefixFrom(local, prefixLen)}
	if address.IsValid() && address != local {
		a.addr.Peer = address
		a.addr.Prefix = netip.PrefixFrom(local, local.BitLen())
	}
	a.secondary = flags&unix.IFA_F_SECONDARY != 0
	a.dadFailed = flags&unix.IFA_F_DADFAILED != 0
	a.unusable = a.dadFailed || flags&unix.IFA_F_TENTATIVE != 0 && flags&unix.IFA_F_OPTIMISTIC == 0
	a.deprecated = flags&unix.IFA_F_DEPRECATED != 0
	return a, true, nil
}

func addAddr(a model.Addr, index uint32) nlreq {
	return nlreq{unix.RTM_NEWADDR, netlink.Create | netlink.Excl, addrMsg(a, index), unless(isExist)}
}

func delAddr(a model.Addr, index uint32) nlreq {
	return nlreq{unix.RTM_DELADDR, 0, addrMsg(a, index), unless(isNotExist)}
}
