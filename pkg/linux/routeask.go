package linux

import (
	"context"
	"errors"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Unroutable asks the kernel for its route to dst from src, as `ip route
// get DST from SRC` does (kernel.RouteAsker): by the policy rules, with
// multipath, nexthop-group and source-specific routes, which the
// observation does not read as the underlay (a tester's working DS-Lite
// tunnel, its IPv6 default route `from` the delegated prefix, was called
// unroutable by main's routes alone). No route (ENETUNREACH,
// EHOSTUNREACH) or one that refuses (unreachable, prohibit, blackhole)
// is unroutable; another error says nothing. The question goes over a
// socket of its own, dialled at the first (status asks it, once per
// tunnel).
func (k *Kernel) Unroutable(ctx context.Context, dst, src netip.Addr) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if k.ask == nil {
		c, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
		if err != nil {
			return false, err
		}
		k.ask = c
	}
	msgs, err := k.ask.Execute(netlink.Message{Header: netlink.Header{Type: unix.RTM_GETROUTE, Flags: netlink.Request}, Data: routeGetMsg(dst, src)})
	err = unwrap(err)
	if errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	for _, m := range msgs {
		if len(m.Data) < unix.SizeofRtMsg {
			continue
		}
		switch m.Data[7] { // rtm_type
		case unix.RTN_UNREACHABLE, unix.RTN_PROHIBIT, unix.RTN_BLACKHOLE:
			return true, nil
		}
	}
	return false, nil
}

// routeGetMsg is the RTM_GETROUTE request of `ip route get DST from SRC`:
// struct rtmsg with the addresses' lengths, then RTA_DST and RTA_SRC
// (without src, or with one of the other family, none: the kernel picks
// the source as for a socket not bound to one).
func routeGetMsg(dst, src netip.Addr) []byte {
	fam, bits := byte(unix.AF_INET), byte(32)
	if dst.Is6() {
		fam, bits = unix.AF_INET6, 128
	}
	hdr := make([]byte, unix.SizeofRtMsg)
	hdr[0], hdr[1] = fam, bits
	ae := netlink.NewAttributeEncoder()
	ae.Bytes(unix.RTA_DST, dst.AsSlice())
	if src.IsValid() && src.Is6() == dst.Is6() {
		hdr[2] = bits
		ae.Bytes(unix.RTA_SRC, src.AsSlice())
	}
	attrs, _ := ae.Encode() // two fixed-size attributes: never fails
	return append(hdr, attrs...)
}
