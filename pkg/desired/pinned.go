package desired

import (
	"fmt"

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
	for name, d := range b.in.Devices {
		for _, p := range d.Addrs {
			if p.Addr() == a {
				return ""
			}
		}
		for _, u := range d.Unusable {
			if u.Prefix.Addr() == a {
				return fmt.Sprintf("its local address %s on %s %s: the kernel sends nothing from it", a, name, u.Why())
			}
		}
	}
	return fmt.Sprintf("its local address %s is on no device of this box: the kernel sends nothing from it", a)
}
