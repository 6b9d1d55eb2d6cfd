package linux

import (
	"context"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/plan"
)

// Apply implements kernel.Kernel. Every operation is one netlink request
// on the same socket (or one nftables batch, or one file write). Adding
// what exists and deleting what is gone count as done; any other failure
// is collected and the next operation is tried.
func (k *Kernel) Apply(ctx context.Context, p plan.Plan) error {
	idx := &indexes{k: k}
	var ae *kernel.ApplyError
	for _, op := range p.Ops {
		if err := ctx.Err(); err != nil {
			kernel.Collect(&ae, op, err)
			continue
		}
		kernel.Collect(&ae, op, k.apply(op, idx))
	}
	if ae != nil {
		return ae
	}
	return nil
}

// indexes resolves device names to indexes with one link dump, taken
// again only when a name is missing (after links were created): creating
// a thousand tunnels costs one dump, not a lookup each.
type indexes struct {
	k     *Kernel
	m     map[string]uint32
	stale bool
}

func (x *indexes) get(name string) (uint32, error) {
	if name == "" {
		return 0, nil
	}
	if i, ok := x.m[name]; ok {
		return i, nil
	}
	if x.m == nil || x.stale {
		links, err := x.k.listLinks()
		if err != nil {
			return 0, err
		}
		x.m, x.stale = make(map[string]uint32, len(links)), false
		for _, l := range links {
			x.m[l.name] = l.index
		}
		if i, ok := x.m[name]; ok {
			return i, nil
		}
	}
	return 0, fmt.Errorf("device %s does not exist: %w", name, unix.ENODEV)
}

func (k *Kernel) apply(op plan.Op, idx *indexes) error {
	switch op.Kind {
	case plan.LinkAdd:
		under, err := idx.get(op.Link.Dev)
		if err != nil {
			return err
		}
		idx.stale = true
		return k.addLink(*op.Link, under)
	case plan.LinkChange:
		i, err := idx.get(op.Link.Name)
		if err != nil {
			return err
		}
		under, err := idx.get(op.Link.Dev)
		if err != nil {
			return err
		}
		return k.changeLink(*op.Link, i, under)
	case plan.LinkUp, plan.LinkDown:
		i, err := idx.get(op.Name)
		if err != nil {
			return err
		}
		return k.setUp(i, op.Kind == plan.LinkUp)
	case plan.LinkDel:
		i, err := idx.get(op.Link.Name)
		if err != nil {
			return nil // already gone
		}
		delete(idx.m, op.Link.Name)
		return k.delLink(i)
	case plan.AddrAdd, plan.AddrDel:
		i, err := idx.get(op.Addr.Link)
		if err != nil {
			if op.Kind == plan.AddrDel {
				return nil
			}
			return err
		}
		if op.Kind == plan.AddrAdd {
			return k.addAddr(*op.Addr, i)
		}
		return k.delAddr(*op.Addr, i)
	case plan.RouteAdd, plan.RouteReplace, plan.RouteDel:
		oif, err := idx.get(op.Route.Dev)
		if err != nil {
			if op.Kind == plan.RouteDel {
				return nil
			}
			return err
		}
		switch op.Kind {
		case plan.RouteAdd:
			return k.addRoute(*op.Route, oif)
		case plan.RouteReplace:
			return k.replaceRoute(*op.Route, oif)
		}
		return k.delRoute(*op.Route, oif)
	case plan.RuleAdd:
		err := k.write(unix.RTM_NEWRULE, netlink.Create|netlink.Excl, toRuleMsg(*op.Rule))
		if isExist(err) {
			return nil
		}
		return err
	case plan.RuleDel:
		err := k.write(unix.RTM_DELRULE, 0, toRuleMsg(*op.Rule))
		if isNotExist(err) {
			return nil
		}
		return err
	case plan.SysctlSet:
		return k.setSysctl(op.Sysctl.Path, op.Sysctl.Value)
	case plan.SysctlRestore:
		return k.restoreSysctl(op.Sysctl.Path, op.Sysctl.Original)
	case plan.FilterReplace:
		if k.nft == nil {
			return nil
		}
		return k.nft.Replace(op.Filter)
	case plan.FilterDel:
		if k.nft == nil {
			return nil
		}
		return k.nft.Delete()
	}
	return fmt.Errorf("unknown operation %d", op.Kind)
}
