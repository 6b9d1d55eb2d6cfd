package linux

import (
	"fmt"
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
}

func (k *Kernel) listAddrs() ([]observedAddr, error) {
	var out []observedAddr
	err := k.dump(unix.RTM_GETADDR, &rtnetlink.AddressMessage{}, func() { out = out[:0] }, func(b []byte) error {
		var m rtnetlink.AddressMessage
		if err := m.UnmarshalBinary(b); err != nil {
			return decodeError("address", err)
		}
		if m.Attributes == nil {
			return nil
		}
		local, address := ipAddr(m.Attributes.Local), ipAddr(m.Attributes.Address)
		if !local.IsValid() {
			local = address
		}
		if !local.IsValid() {
			return nil
		}
		a := model.Addr{Prefix: netip.PrefixFrom(local, int(m.PrefixLength))}
		if address.IsValid() && address != local {
			a.Peer = address
			a.Prefix = netip.PrefixFrom(local, local.BitLen())
		}
		flags := uint32(m.Flags) | m.Attributes.Flags
		out = append(out, observedAddr{index: m.Index, addr: a, scope: m.Scope, secondary: flags&unix.IFA_F_SECONDARY != 0})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	return out, nil
}

func addAddr(a model.Addr, index uint32) nlreq {
	return nlreq{unix.RTM_NEWADDR, netlink.Create | netlink.Excl, addrMsg(a, index), unless(isExist)}
}

func delAddr(a model.Addr, index uint32) nlreq {
	return nlreq{unix.RTM_DELADDR, 0, addrMsg(a, index), unless(isNotExist)}
}

// ipAddr converts a net.IP from a netlink message (4 or 16 bytes).
func ipAddr(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}
