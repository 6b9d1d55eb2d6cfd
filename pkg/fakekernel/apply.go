package fakekernel

import (
	"fmt"
	"slices"
	"syscall"

	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// apply performs op; then are the plan's operations after it.
func (k *Kernel) apply(op plan.Op, then []plan.Op) error {
	switch op.Kind {
	case plan.LinkAdd:
		return k.linkAdd(*op.Link)
	case plan.LinkChange:
		return k.linkChange(*op.Link)
	case plan.LinkMark:
		if _, ok := k.Tunnels[op.Link.Name]; !ok {
			return errno(syscall.ENODEV, "no device %s", op.Link.Name)
		}
		k.Aliases[op.Link.Name] = model.LinkAlias
		delete(k.Creating, op.Link.Name)
	case plan.LinkUp, plan.LinkDown:
		d, ok := k.Devices[op.Name]
		if !ok {
			return errno(syscall.ENODEV, "no device %s", op.Name)
		}
		up := op.Kind == plan.LinkUp
		d.Up, d.Running = up, up
		if !up {
			k.flushRoutes(op.Name)
		}
	case plan.LinkDel:
		if _, ok := k.Devices[op.Link.Name]; !ok {
			return nil // ENOENT: already gone
		}
		k.delDevice(op.Link.Name)
	case plan.AddrAdd:
		if _, ok := k.Devices[op.Addr.Link]; !ok {
			return errno(syscall.ENODEV, "no device %s", op.Addr.Link)
		}
		if !slices.Contains(k.Addrs, *op.Addr) {
			k.Addrs = append(k.Addrs, *op.Addr)
		}
	case plan.AddrDel:
		k.Addrs = slices.DeleteFunc(k.Addrs, func(a model.Addr) bool { return a == *op.Addr })
	case plan.RouteAdd, plan.RouteReplace:
		return k.routeSet(*op.Route, op.Kind == plan.RouteReplace)
	case plan.RouteDel:
		k.Routes = slices.DeleteFunc(k.Routes, func(r Route) bool {
			return r.Proto == model.RouteProtocol && r.Key() == op.Route.Key()
		})
	case plan.RuleAdd:
		k.Rules = append(k.Rules, Rule{*op.Rule, model.RuleProtocol})
	case plan.RuleDel:
		// As the kernel does, the first rule that matches: a deletion
		// without what someone narrowed a rule with (model.Rule.Extra)
		// matches that rule too.
		if i := slices.IndexFunc(k.Rules, func(r Rule) bool {
			if op.Rule.Extra == "" {
				r.Extra, r.Wire = "", ""
			}
			return r.Proto == model.RuleProtocol && r.Rule == *op.Rule
		}); i >= 0 {
			k.Rules = slices.Delete(k.Rules, i, i+1)
		}
	case plan.SysctlSet:
		if _, ok := k.Sysctls[op.Sysctl.Path]; !ok {
			return errno(syscall.ENOENT, "no sysctl %s", op.Sysctl.Path)
		}
		if _, err := k.Originals.Set(op.Sysctl.Path, op.Sysctl.Value, k.copiesOf(op.Sysctl.Path), k.readSysctl); err != nil {
			return err
		}
		k.writeSysctl(op.Sysctl.Path, op.Sysctl.Value)
	case plan.SysctlRestore, plan.SysctlKeep:
		k.Originals.Restoring(op, then)
		if _, ok := k.Sysctls[op.Sysctl.Path]; ok && op.Kind == plan.SysctlRestore {
			k.writeSysctl(op.Sysctl.Path, op.Sysctl.Original)
		}
		k.Originals.Restored(op, k.readSysctl)
	case plan.FilterReplace:
		k.setFilter(op.Filter)
	case plan.FilterDel:
		k.setFilter(nil)
	default:
		return fmt.Errorf("unknown operation %d", op.Kind)
	}
	return nil
}

func (k *Kernel) linkAdd(l model.Link) error {
	if k.Drivers != nil && !k.Drivers[l.Mode.Kind()] {
		return &kernel.NoDriverError{Mode: l.Mode}
	}
	if _, ok := k.Devices[l.Name]; ok {
		return fmt.Errorf("device %s exists: %w", l.Name, kernel.ErrForeign)
	}
	if err := k.checkUnique(l); err != nil {
		return err
	}
	if l.Dev != "" {
		if _, ok := k.Devices[l.Dev]; !ok {
			return errno(syscall.ENODEV, "no underlay device %s", l.Dev)
		}
	}
	d := k.addDevice(model.Device{Name: l.Name, Kind: l.Mode.Kind(), MTU: l.MTU})
	d.Up, d.Running = false, false
	l.Up = false
	k.Tunnels[l.Name] = l
	k.Aliases[l.Name] = model.LinkAlias
	return nil
}

// checkUnique refuses a second tunnel with the same endpoints, as the
// kernel does: model.Link.SameTunnel, which also compares the underlay
// device of ipip, gre and sit tunnels (the fake compared the addresses
// and key alone, and refused two over different devices that Linux
// holds).
func (k *Kernel) checkUnique(l model.Link) error {
	for name, o := range k.Tunnels {
		if name != l.Name && o.SameTunnel(l) {
			return errno(syscall.EEXIST, "tunnel %s has the same endpoints", name)
		}
	}
	return nil
}

func (k *Kernel) linkChange(l model.Link) error {
	o, ok := k.Tunnels[l.Name]
	if !ok {
		return errno(syscall.ENODEV, "no tunnel %s", l.Name)
	}
	if o.Mode.Kind() != l.Mode.Kind() {
		return errno(syscall.EOPNOTSUPP, "cannot change the kind of %s", l.Name)
	}
	if err := k.checkUnique(l); err != nil {
		return err
	}
	if o.Others.IgnoreDF && l.PMTUDisc {
		return errno(syscall.EINVAL, "%s has ignore-df, which refuses pmtudisc", l.Name)
	}
	d := k.Devices[l.Name]
	d.MTU = l.MTU
	l.Up = false
	k.Tunnels[l.Name] = l
	return nil
}

func (k *Kernel) routeSet(r model.Route, replace bool) error {
	if r.Type != model.RouteUnicast && (r.Dev != "" || r.Via.IsValid() || r.OnLink) {
		return errno(syscall.EINVAL, "gateway, device and multipath can not be specified for a %s route", r.Type)
	}
	if r.Dev != "" {
		d, ok := k.Devices[r.Dev]
		if !ok {
			return errno(syscall.ENODEV, "no device %s", r.Dev)
		}
		if !d.Up {
			return errno(syscall.ENETDOWN, "device %s is down", r.Dev)
		}
	}
	i := slices.IndexFunc(k.Routes, func(x Route) bool { return x.Key() == r.Key() && x.Proto == model.RouteProtocol })
	f := slices.IndexFunc(k.Routes, func(x Route) bool { return x.Key() == r.Key() && x.Proto != model.RouteProtocol })
	switch {
	case f >= 0 && (i < 0 || !replace):
		return fmt.Errorf("a route with protocol %d holds the same table, destination and metric: %w", k.Routes[f].Proto, kernel.ErrForeign)
	case i >= 0 && !replace && k.Routes[i].Route == r:
		return nil // EEXIST for the very route: done
	case i >= 0 && !replace:
		return errno(syscall.EEXIST, "route exists")
	case i >= 0 && (f < 0 || i < f && (r.Dst.Addr().Is4() || k.Routes[i].Via.IsValid() == r.Via.IsValid())):
		k.Routes[i].Route = r // Linux's replace takes tunneld's route
		k.dropOtherOwnRoutes(i)
	case i >= 0:
		// Linux's seam adds r after the key's routes and deletes
		// tunneld's old one, unless IPv6 would join r to a foreign route.
		for _, x := range k.Routes {
			if x.Key() == r.Key() && x.Proto != model.RouteProtocol && r.Dst.Addr().Is6() && joins(x.Route, r) {
				return fmt.Errorf("a route with protocol %d holds the same table, destination and metric, and the kernel would join tunneld's new route to it: %w", x.Proto, kernel.ErrForeign)
			}
		}
		k.Routes = append(k.Routes, Route{r, model.RouteProtocol})
		k.dropOtherOwnRoutes(len(k.Routes) - 1)
	default:
		k.Routes = append(k.Routes, Route{r, model.RouteProtocol})
	}
	return nil
}

// dropOtherOwnRoutes deletes tunneld's routes with the key of the route
// at i but that one, as Linux's seam does after a replace (a restart
// after a crash between its add and delete finds two of them).
func (k *Kernel) dropOtherOwnRoutes(i int) {
	keep := k.Routes[i]
	out := k.Routes[:0]
	for j, x := range k.Routes {
		if j == i || x.Key() != keep.Key() || x.Proto != model.RouteProtocol {
			out = append(out, x)
		}
	}
	k.Routes = out
}

// joins reports whether IPv6, adding r beside the foreign route f of its
// key, would make the two one multipath route (both have a gateway) or
// refuse r as f's duplicate (the same device and gateway).
func joins(f, r model.Route) bool {
	return r.Via.IsValid() && f.Via.IsValid() || f.Via == r.Via && f.Dev == r.Dev
}

func (k *Kernel) readSysctl(p string) (string, error) {
	v, ok := k.Sysctls[p]
	if !ok {
		return "", errno(syscall.ENOENT, "no sysctl %s", p)
	}
	return v, nil
}
