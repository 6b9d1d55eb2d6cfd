package desired

import (
	"fmt"
	"net/netip"

	"github.com/tunneld/tunneld/pkg/config"
)

// pinnedAbsent says why a tunnel whose local address is given as an
// address can send nothing although it is up: no device of the box has
// that address ("its local address 192.0.2.1 is on no device of this
// box"), or one has it but cannot send from it yet (IPv6 in duplicate
// address detection, or failed it); "" while one has it usable, for a
// tunnel that follows a device (see localAddr), a link-local local
// address (the kernel's Addrs leave those out), and where addresses
// were not read. The kernel takes such a tunnel and sends nothing
// through it (its carrier errors count the packets): a tester's WAN
// address was deleted and status said up, drift none.
func (b *builder) pinnedAbsent(t *config.Tunnel) string {
	a := t.Local
	if t.LocalDev != "" || !a.IsValid() || a.IsLinkLocalUnicast() || b.in.Devices == nil || b.in.AddrsUnread {
		return ""
	}
	if b.boxAddrs == nil {
		b.boxAddrs = b.addrHolders(false)
	}
	h, ok := b.boxAddrs[a]
	if !ok || h.why != "" {
		// On a tunnel of the file's (seed 001's carry their own
		// local address), or nowhere.
		if b.tunnelAddrs == nil {
			b.tunnelAddrs = b.addrHolders(true)
		}
		if th, tok := b.tunnelAddrs[a]; tok && (!ok || th.why == "") {
			h, ok = th, true
		}
	}
	if ok {
		if h.why == "" {
			return ""
		}
		return fmt.Sprintf("its local address %s on %s %s: the kernel sends nothing from it", a, h.dev, h.why)
	}
	return fmt.Sprintf("its local address %s is on no device of this box: the kernel sends nothing from it", a)
}

// addrHolder is a device with an address: why it cannot send from it
// ("" when it can).
type addrHolder struct{ dev, why string }

// addrHolders indexes the addresses of the box's devices that are not
// the file's tunnels (a WAN's, lo's: few), once per Build; pinnedAbsent
// looks at the tunnels' own only for an address not there. A thousand
// tunnels pinned to one WAN address each looked it up among a thousand
// devices (6x the pure part of a resync, measured). An address usable on
// one device is usable, whatever another says of it.
func (b *builder) addrHolders(tunnels bool) map[netip.Addr]addrHolder {
	m := map[netip.Addr]addrHolder{}
	for name, d := range b.in.Devices {
		if (b.c.TunnelByName(name) != nil) != tunnels {
			continue
		}
		for _, u := range d.Unusable {
			if _, ok := m[u.Prefix.Addr()]; !ok {
				m[u.Prefix.Addr()] = addrHolder{dev: name, why: u.Why()}
			}
		}
		for _, p := range d.Addrs {
			m[p.Addr()] = addrHolder{dev: name}
		}
	}
	return m
}
