package linux

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// Apply implements kernel.Kernel. The rtnetlink requests of consecutive
// operations travel together, up to maxBatch a datagram, on the one
// request socket; sysctls (a file write each) and the nftables table (one
// batch of its own) are done in their turn. Adding what exists and
// deleting what is gone count as done; any other failure is collected and
// the next operation is tried. The plan's rule band is recorded before
// its first rule is added, and the record of bands brought up to date
// after a plan that added or deleted rules; so are the tunnels it
// creates before the first creation, and that record after it
// (creatingFile). A tunnel is not set up once the table failed
// (kernel.ErrUnguarded).
func (k *Kernel) Apply(ctx context.Context, p plan.Plan) error {
	k.KeepRecords()
	var ae *kernel.ApplyError
	b := &batcher{k: k, errs: &ae, notCreated: map[string]bool{}, notMoved: map[string]bool{}}
	idx := &indexes{k: k, m: k.observedIndexes(), before: b.flush, notCreated: b.notCreated, notMoved: b.notMoved}
	tabs := &tableRoutes{k: k, before: b.flush}
	bandRecorded, creatingRecorded := false, false
	unguarded := false     // the plan's table could not be written: kernel.ErrUnguarded
	var regained []plan.Op // ipip6 changes after which dropLinkLocal runs
	for i, op := range p.Ops {
		if err := ctx.Err(); err != nil {
			b.flush()
			kernel.Collect(&ae, op, err)
			continue
		}
		switch op.Kind {
		case plan.SysctlSet, plan.SysctlRestore, plan.SysctlKeep, plan.FilterReplace, plan.FilterDel:
			b.flush()
			if op.Kind == plan.SysctlSet && b.notCreated[model.SysctlDevice(op.Sysctl.Path)] {
				// A sysctl of a tunnel whose creation failed above:
				// that failure is the error.
				if ae == nil {
					ae = &kernel.ApplyError{}
				}
				ae.Skipped = append(ae.Skipped, op)
				continue
			}
			err := k.direct(op, p.Ops[i+1:], idx)
			unguarded = unguarded || op.Kind == plan.FilterReplace && err != nil
			kernel.Collect(&ae, op, err)
			continue
		case plan.LinkUp:
			if unguarded {
				kernel.Collect(&ae, op, kernel.ErrUnguarded)
				continue
			}
		}
		if dev := op.OnTunnel(); dev != "" && idx.moveFailed(dev) {
			// Left where it was, with a peer the configuration no
			// longer names: not set up, addressed or routed through
			// (kernel.ApplyError.Skipped).
			if ae == nil {
				ae = &kernel.ApplyError{}
			}
			ae.Skipped = append(ae.Skipped, op)
			continue
		}
		reqs, err := requests(op, idx, tabs)
		if errors.Is(err, errNotCreated) {
			// The tunnel's failed creation is the error; op is not
			// done all the same.
			if ae == nil {
				ae = &kernel.ApplyError{}
			}
			ae.Skipped = append(ae.Skipped, op)
			continue
		}
		if err != nil {
			kernel.Collect(&ae, op, err)
			continue
		}
		if op.Kind == plan.LinkAdd && !creatingRecorded {
			if err := k.recordCreating(p); err != nil {
				kernel.Collect(&ae, op, fmt.Errorf("record the tunnels being created: %w", err))
				continue
			}
			creatingRecorded = true
		}
		if op.Kind == plan.LinkAdd {
			idx.dumped = false // its index is known once it exists
			idx.created(op.Link.Name)
		}
		if op.Kind == plan.RuleAdd && !bandRecorded {
			if err := k.recordBand(p.RuleBand); err != nil {
				kernel.Collect(&ae, op, fmt.Errorf("record rule priority band %s: %w", p.RuleBand, err))
				continue
			}
			bandRecorded = true
		}
		b.add(op, reqs)
		if op.MovesEndpoints() {
			idx.moving(op.Link.Name)
		}
		if regainsIPv6(op) {
			regained = append(regained, op)
		}
	}
	b.flush()
	if len(regained) > 0 {
		k.dropLinkLocal(regained, idx, b)
	}
	if (changesRules(p) || k.bandsLeftEmpty()) && ctx.Err() == nil {
		if err := k.syncBands(p.RuleBand); err != nil {
			// Said with the first rule operation; with none (a record
			// left behind), the next Apply tries again.
			if i := slices.IndexFunc(p.Ops, func(op plan.Op) bool { return op.Kind == plan.RuleAdd || op.Kind == plan.RuleDel }); i >= 0 {
				kernel.Collect(&ae, p.Ops[i], fmt.Errorf("record rule priority bands: %w", err))
			}
		}
	}
	if err := k.settleCreating(ae, b.notCreated); err != nil {
		// The file is as it was, or written: the next Apply settles
		// it again. Said with the first operation on a tunnel, if any.
		if i := slices.IndexFunc(p.Ops, onAnyTunnel); i >= 0 {
			kernel.Collect(&ae, p.Ops[i], fmt.Errorf("record the tunnels being created: %w", err))
		}
	}
	if ctx.Err() == nil {
		k.markSysctls(p)
	}
	if i, err := k.unsavedRecord(p.Ops); i >= 0 {
		kernel.Collect(&ae, p.Ops[i], err)
	}
	if ae != nil {
		return ae
	}
	return nil
}

// dropLinkLocal deletes the IPv6 link-local addresses the kernel gave
// the ipip6 tunnels that ops raised past an MTU of 1280 (regainsIPv6),
// with one address dump; a failure is the change's.
func (k *Kernel) dropLinkLocal(ops []plan.Op, idx *indexes, b *batcher) {
	addrs, err := k.listAddrs(nil)
	for _, op := range ops {
		if err != nil {
			kernel.Collect(b.errs, op, fmt.Errorf("changed, but reading its addresses failed: %w", err))
			continue
		}
		i, err := idx.get(op.Link.Name)
		if err != nil {
			continue // gone since: nothing to delete
		}
		var dels []nlreq
		for _, a := range addrs {
			if a.index == i && a.addr.Prefix.Addr().Is6() && a.addr.Prefix.Addr().IsLinkLocalUnicast() {
				dels = append(dels, delAddr(a.addr, i))
			}
		}
		if len(dels) > 0 {
			b.add(op, dels)
		}
	}
	b.flush()
}

// direct performs the operations that are not rtnetlink requests; then
// are the plan's operations after op, idx the Apply's device indexes.
func (k *Kernel) direct(op plan.Op, then []plan.Op, idx *indexes) error {
	switch op.Kind {
	case plan.SysctlSet:
		return k.setSysctl(op.Sysctl.Path, op.Sysctl.Value, func(dev string) uint32 {
			i, _ := idx.get(dev)
			return i
		})
	case plan.SysctlRestore, plan.SysctlKeep:
		return k.restoreSysctl(op, then)
	case plan.FilterReplace:
		if k.nft == nil {
			// Opened without it (the kernel had no nf_tables): a
			// module installed since is taken now. Never silently
			// without: the tunnels would run unprotected, and the
			// failure keeps them down (kernel.ErrUnguarded).
			if err := k.RequireFilter(); err != nil {
				return err
			}
			if k.nft == nil {
				return &kernel.NoNFTablesError{}
			}
		}
		return k.nft.Replace(op.Filter)
	case plan.FilterDel:
		if k.nft == nil {
			return nil // no nf_tables, no table
		}
		return k.nft.Delete()
	}
	return fmt.Errorf("unknown operation %d", op.Kind)
}

// observedIndexes maps the device names of the last observation (the one
// a plan is made from) to their indexes. A device an operation names is
// then the very one observed: the kernel gives out indexes in increasing
// order, so one replaced since has a new index and the request fails (and
// the next round, observing again, retries) instead of reaching the new
// device. Only a device created with a chosen index, or moved in from
// another namespace, can take a freed one.
func (k *Kernel) observedIndexes() map[string]uint32 {
	m := make(map[string]uint32, len(k.scratch.links))
	for _, l := range k.scratch.links {
		m[l.name] = l.index
	}
	return m
}

// indexes resolves device names to indexes: from the last observation,
// else with one link dump, taken again only when a name is missing after
// links were created (pending requests are sent first). Creating a
// thousand tunnels costs one dump; changing one observed tunnel costs none.
type indexes struct {
	k *Kernel
	m map[string]uint32
	// dumped: m holds a dump taken by this Apply, with no link created
	// since.
	dumped bool
	before func()
	// pending: tunnels whose creation is batched but not yet sent;
	// notCreated: the batcher's tunnels whose creation failed.
	pending    map[string]bool
	notCreated map[string]bool
	// movePending: tunnels whose change to other endpoints is batched
	// but not yet sent; notMoved: the batcher's tunnels whose change to
	// other endpoints failed.
	movePending map[string]bool
	notMoved    map[string]bool
}

// moving notes a tunnel whose change to other endpoints is batched.
func (x *indexes) moving(name string) {
	if x.movePending == nil {
		x.movePending = map[string]bool{}
	}
	x.movePending[name] = true
}

// moveFailed reports whether the change of the tunnel name to other
// endpoints failed earlier in the same Apply (another tunnel holds them:
// the kernel keeps it as it was), sending what is batched first if that
// change is among it.
func (x *indexes) moveFailed(name string) bool {
	if x.movePending[name] {
		x.before()
		x.movePending = nil // the flush sent every pending change
	}
	return x.notMoved[name]
}

// created notes a tunnel whose creation is batched.
func (x *indexes) created(name string) {
	if x.pending == nil {
		x.pending = map[string]bool{}
	}
	x.pending[name] = true
}

// errNotCreated: the device is a tunnel whose creation failed earlier in
// the same Apply.
var errNotCreated = errors.New("the tunnel was not created")

func (x *indexes) get(name string) (uint32, error) {
	if name == "" {
		return 0, nil
	}
	if x.pending[name] {
		// Its creation must be known to have worked before anything
		// is sent to a device of that name.
		x.before()
		x.pending = nil // the flush sent every pending creation
	}
	if x.notCreated[name] {
		return 0, fmt.Errorf("device %s: %w", name, errNotCreated)
	}
	if i, ok := x.m[name]; ok {
		return i, nil
	}
	if !x.dumped {
		x.before()
		links, err := x.k.listLinks(nil)
		if err != nil {
			return 0, err
		}
		x.m, x.dumped = make(map[string]uint32, len(links)), true
		for _, l := range links {
			x.m[l.name] = l.index
		}
		if i, ok := x.m[name]; ok {
			return i, nil
		}
	}
	return 0, fmt.Errorf("device %s does not exist: %w", name, unix.ENODEV)
}

// name is the name of the device with the given index, or the index
// as a number if no name is known.
func (x *indexes) name(index uint32) string {
	for n, i := range x.m {
		if i == index {
			return n
		}
	}
	return fmt.Sprint(index)
}

// tableRoutes reads the routes of a table, every protocol, in the
// kernel's order, for the replaces of one Apply: one dump a table, taken
// when its first replace is built, pending requests sent first. A plan
// has one operation a route key, so a replace finds its key as the
// earlier operations left it.
type tableRoutes struct {
	k      *Kernel
	before func()
	m      map[uint32][]listedRoute
}

// key returns the routes with r's key: its table, destination and
// metric, with no TOS and no source prefix.
func (t *tableRoutes) key(r model.Route) ([]listedRoute, error) {
	all, ok := t.m[r.Table]
	if !ok {
		t.before()
		req := &rtnetlink.RouteMessage{Family: unix.AF_UNSPEC, Attributes: rtnetlink.RouteAttributes{Table: r.Table}}
		if r.Table < 256 {
			req.Table = uint8(r.Table)
		}
		all = nil
		if err := list(t.k, "routes", unix.RTM_GETROUTE, req, func() { all = all[:0] }, func(b []byte) error {
			l, err := decodeListed(b, true)
			if err == nil && l.route.Table == r.Table {
				all = append(all, l)
			}
			return err
		}); err != nil {
			return nil, err
		}
		if t.m == nil {
			t.m = map[uint32][]listedRoute{}
		}
		t.m[r.Table] = all
	}
	var out []listedRoute
	for _, l := range all {
		if l.tos == 0 && l.srcLen == 0 && l.route.Dst == r.Dst && l.route.Metric == r.Metric {
			out = append(out, l)
		}
	}
	return out, nil
}

// requests builds an operation's rtnetlink requests.
func requests(op plan.Op, idx *indexes, tabs *tableRoutes) ([]nlreq, error) {
	one := func(r nlreq) ([]nlreq, error) { return []nlreq{r}, nil }
	switch op.Kind {
	case plan.LinkAdd:
		under, err := idx.get(op.Link.Dev)
		if err != nil {
			return nil, err
		}
		return addLink(*op.Link, under)
	case plan.LinkChange:
		i, err := idx.get(op.Link.Name)
		if err != nil {
			return nil, err
		}
		under, err := idx.get(op.Link.Dev)
		if err != nil {
			return nil, err
		}
		r, err := changeLink(*op.Link, i, under)
		if err != nil {
			return nil, err
		}
		if regainsIPv6(op) {
			return []nlreq{r, addrGenNone(op.Link.Name, "changed")}, nil
		}
		return one(r)
	case plan.LinkMark:
		i, err := idx.get(op.Link.Name)
		if err != nil {
			return nil, err
		}
		return one(nlreq{unix.RTM_NEWLINK, 0, markMsg{i}, nil})
	case plan.LinkUp, plan.LinkDown:
		i, err := idx.get(op.Name)
		if err != nil {
			return nil, err
		}
		return one(setUp(i, op.Kind == plan.LinkUp))
	case plan.LinkDel:
		i, err := idx.get(op.Link.Name)
		if err != nil {
			return nil, nil // already gone
		}
		delete(idx.m, op.Link.Name)
		return one(delLink(i))
	case plan.AddrAdd, plan.AddrDel:
		i, err := idx.get(op.Addr.Link)
		if err != nil {
			if op.Kind == plan.AddrDel {
				return nil, nil
			}
			return nil, err
		}
		if op.Kind == plan.AddrAdd {
			return one(addAddr(*op.Addr, i))
		}
		return one(delAddr(*op.Addr, i))
	case plan.RouteAdd, plan.RouteReplace, plan.RouteDel:
		oif, err := idx.get(op.Route.Dev)
		if err != nil {
			if op.Kind == plan.RouteDel {
				return nil, nil
			}
			return nil, err
		}
		switch op.Kind {
		case plan.RouteAdd:
			return one(addRoute(*op.Route, oif))
		case plan.RouteReplace:
			key, err := tabs.key(*op.Route)
			if err != nil {
				return nil, err
			}
			lo, _ := idx.get("lo")
			return replaceRoute(*op.Route, oif, lo, key, idx.name)
		}
		return one(delRoute(*op.Route, oif))
	case plan.RuleAdd:
		return one(nlreq{unix.RTM_NEWRULE, netlink.Create | netlink.Excl, toRuleMsg(*op.Rule), unless(isExist)})
	case plan.RuleDel:
		return one(nlreq{unix.RTM_DELRULE, 0, toRuleMsg(*op.Rule), unless(isNotExist)})
	}
	return nil, fmt.Errorf("unknown operation %d", op.Kind)
}
