package cli

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/kernel"
)

// routeGone says that the kernel has no route to the remote of an up
// tunnel (r, as the kernel has it; ts, as wanted) for the packets it
// sends from its local address, asking the kernel as `ip route get` does
// (kernel.RouteAsker): a tester's WAN lost its router advertisement's
// default route, and status said up. "" while it has one, where the
// kernel cannot be asked, for a tunnel bound to a device (dev: the kernel
// sends there as if the remote were on its link), one whose packets loop
// or whose local address no device has (which say more; the kernel's
// answer from an address it does not have is "network is unreachable"
// whatever its routes), and when the kernel would not answer.
func routeGone(ctx context.Context, k kernel.Kernel, t *config.Tunnel, ts desired.TunnelStatus, r TunnelReport) string {
	ask, ok := k.(kernel.RouteAsker)
	if !ok || !r.Up || !ts.Up || t.Dev != "" || ts.Looped != "" || ts.LocalAbsent != "" {
		return ""
	}
	remote, err := netip.ParseAddr(r.RemoteActual)
	if err != nil {
		return ""
	}
	local, _ := netip.ParseAddr(r.LocalActual) // none for local = "any"
	gone, err := ask.Unroutable(ctx, remote, local)
	if err != nil || !gone {
		return ""
	}
	from := ""
	if local.IsValid() {
		from = " from " + local.String()
	}
	return fmt.Sprintf("the kernel has no route to its remote %s%s (ip route get %s%s): it cannot send its packets; the WAN's default route gone?", remote, from, remote, from)
}
