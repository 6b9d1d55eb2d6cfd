package engine

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// Endpoints is the short way from an address hint to the tunnels that
// take their local endpoint from a device: it re-reads the devices'
// addresses alone, plans with them and the rest of last (the last full
// observation, or what an earlier short way returned), and applies only
// the changes of tunnels whose local address moved, and the filter's when
// one did (its rules name the local addresses). The full converge the
// hint also asks for comes after it and does the rest (routes, addresses)
// or undoes what a stale part of last got wrong. A kernel that is no
// kernel.AddrReader, or a configuration without such tunnels, makes it do
// nothing. The addresses left out for duplicate address detection
// (Device.Unusable) and the link-local one (Device.LinkLocal), which only
// word a down tunnel's reason, stay as last observed until that converge.
// A tunnel whose new local address is a guess (desired.TunnelStatus
// LocalGuess: the routes that would decide it are last's) is not moved
// here either. The Report's Last is last with the new
// addresses, and the tunnels and the filter as changed: what the next
// short way, before the converge, plans from.
func Endpoints(ctx context.Context, k kernel.Kernel, c *config.Config, resolved map[string][]netip.Addr, last Snapshot, hold ...Hold) (Report, error) {
	var rep Report
	ar, ok := k.(kernel.AddrReader)
	if !ok || len(LocalDevices(c)) == 0 || last.Inputs.Devices == nil {
		return rep, nil
	}
	start := time.Now()
	addrs, err := ar.DeviceAddrs(ctx)
	if err != nil {
		return rep, err
	}
	in := last.Inputs
	in.Devices = maps.Clone(in.Devices)
	for name, d := range in.Devices {
		l := addrs[d.Index]
		d.Addrs, d.Secondary, d.Deprecated = l.Addrs, l.Secondary, l.Deprecated
		in.Devices[name] = d
	}
	s := Plan(last.Have, in, c, resolved)
	// A local address the builder guessed (the routes that would decide
	// it are last's, read before the addresses changed) waits for the
	// converge, which reads them: a renew that moves the WAN to a new
	// subnet would move the tunnel to the wrong address and back.
	var guessed map[string]bool
	for _, t := range s.Want.Tunnels {
		if t.LocalGuess {
			if guessed == nil {
				guessed = map[string]bool{}
			}
			guessed[t.Name] = true
		}
	}
	held := func(op plan.Op) bool { return slices.ContainsFunc(hold, func(h Hold) bool { return h(op) }) }
	waits := func(op plan.Op) bool { return held(op) || guessed[op.Link.Name] }
	moved := slices.ContainsFunc(s.Plan.Ops, func(op plan.Op) bool { return isMove(op) && !waits(op) })
	s.Plan.Ops = slices.DeleteFunc(s.Plan.Ops, func(op plan.Op) bool {
		switch {
		case isMove(op):
			return waits(op)
		case op.Kind == plan.FilterReplace:
			// The filter names the tunnels' local addresses: it moves
			// with them, or packets to the new address would pass it
			// until the converge.
			return !moved || held(op)
		}
		return true
	})
	// The filter follows the moves here, where a plan has it first (see
	// plan's phases): a move makes no tunnel and no chain, and the
	// address is what the reaction to the hint waits for.
	if i := slices.IndexFunc(s.Plan.Ops, func(op plan.Op) bool { return op.Kind == plan.FilterReplace }); i >= 0 {
		f := s.Plan.Ops[i]
		s.Plan.Ops = append(slices.Delete(s.Plan.Ops, i, i+1), f)
	}
	rep.FirstRead = time.Since(start)
	rep.Last = s
	if s.Plan.Empty() {
		return rep, nil
	}
	start = time.Now()
	err = k.Apply(ctx, s.Plan)
	rep.Apply = time.Since(start)
	rep.Applied = succeeded(s.Plan.Ops, err)
	rep.Last.Have.Links = changed(last.Have.Links, rep.Applied)
	for _, op := range rep.Applied {
		if op.Kind == plan.FilterReplace {
			rep.Last.Have.Filter = op.Filter
		}
	}
	return rep, explainExists(err, s)
}

// isMove reports whether op moves a tunnel's local endpoint.
func isMove(op plan.Op) bool {
	return op.Kind == plan.LinkChange && op.Old != nil && op.Old.Local != op.Link.Local
}

// changed returns a copy of links with the tunnels the operations
// changed as they made them (the administrative state is not theirs), so
// that the next short way, planning from it, does not change them again.
func changed(links []model.Link, ops []plan.Op) []model.Link {
	links = slices.Clone(links)
	at := make(map[string]int, len(links))
	for i, l := range links {
		at[l.Name] = i
	}
	for _, op := range ops {
		if op.Link == nil {
			continue
		}
		if i, ok := at[op.Link.Name]; ok {
			l := *op.Link
			l.Up = links[i].Up
			links[i] = l
		}
	}
	return links
}

// LocalDevices lists the devices c's tunnels take their local address
// from (`local = "wan"`), sorted, each once.
func LocalDevices(c *config.Config) []string {
	var out []string
	for _, t := range c.Tunnels {
		if t.LocalDev != "" && !slices.Contains(out, t.LocalDev) {
			out = append(out, t.LocalDev)
		}
	}
	slices.Sort(out)
	return out
}
