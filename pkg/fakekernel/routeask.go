package fakekernel

import (
	"context"
	"net/netip"

	"github.com/tunneld/tunneld/pkg/model"
)

// Unroutable answers as the kernel's routing would, policy rules left
// out (kernel.RouteAsker): table main's unicast routes, tunneld's and
// others', and the subnets of the devices that are up (the kernel's
// prefix routes, which this kernel does not list). src is not looked at.
func (k *Kernel) Unroutable(_ context.Context, dst, _ netip.Addr) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var routes []model.UnderlayRoute
	for _, r := range k.Routes {
		if r.Table == model.TableMain {
			routes = append(routes, model.UnderlayRoute{Dst: r.Dst, Via: r.Via, Dev: r.Dev, Metric: r.Metric, Type: r.Type})
		}
	}
	if u, ok := model.Lookup(routes, dst); ok && u.Type == model.RouteUnicast {
		return false, nil
	}
	for _, d := range k.Devices {
		if !d.Up {
			continue
		}
		for _, p := range d.Addrs {
			if p.Masked().Contains(dst) {
				return false, nil
			}
		}
	}
	for _, a := range k.Addrs {
		if d := k.Devices[a.Link]; d != nil && d.Up && a.Prefix.Masked().Contains(dst) {
			return false, nil
		}
	}
	return true, nil
}
