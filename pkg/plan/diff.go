package plan

import (
	"net/netip"

	"github.com/tunneld/tunneld/pkg/model"
)

// Diff returns the operations that turn have (the owned state observed in
// the kernel) into want, and set down the given fallback devices. Order:
// links whose mode changed are deleted first (a name cannot be held
// twice); then links are created and changed, addresses added, links set
// up, routes and rules added or changed, sysctls set and the filter table
// replaced; then, in reverse, what is no longer wanted is removed. Objects
// that a link deletion takes with it (its addresses and routes) are not
// deleted separately.
func Diff(have, want model.State, fallbacks ...string) Plan {
	d := differ{gone: map[string]bool{}}
	d.links(have.Links, want.Links)
	d.addrs(have.Addrs, want.Addrs)
	d.routes(have.Routes, want.Routes)
	d.rules(have.Rules, want.Rules)
	d.sysctls(have.Sysctls, want.Sysctls)
	d.filter(have.Filter, want.Filter)
	for _, name := range fallbacks {
		d.phase[phaseDown] = append(d.phase[phaseDown], Op{Kind: LinkDown, Name: name})
	}
	var p Plan
	for _, ops := range d.phase {
		p.Ops = append(p.Ops, ops...)
	}
	return p
}

// Phases of a plan, in execution order.
const (
	phaseRecreate = iota // LinkDel of links whose mode changed
	phaseLinks           // LinkAdd, LinkChange
	phaseAddrFix         // AddrDel of addresses re-added with another prefix
	phaseAddrs           // AddrAdd
	phaseUp              // LinkUp
	phaseRoutes          // RouteAdd, RouteReplace
	phaseRules           // RuleAdd
	phaseSysctls         // SysctlSet
	phaseFilter          // FilterReplace, FilterDel
	phaseRestore         // SysctlRestore
	phaseRuleDel         // RuleDel
	phaseRouteDel        // RouteDel
	phaseAddrDel         // AddrDel
	phaseDown            // LinkDown
	phaseLinkDel         // LinkDel
	phases
)

type differ struct {
	phase [phases][]Op
	// gone holds links that are deleted (or re-created) by this plan: the
	// kernel removes their addresses and routes.
	gone map[string]bool
}

func (d *differ) add(ph int, op Op) { d.phase[ph] = append(d.phase[ph], op) }

func (d *differ) links(have, want []model.Link) {
	h := make(map[string]model.Link, len(have))
	for _, l := range have {
		h[l.Name] = l
	}
	for _, w := range want {
		w := w
		old, exists := h[w.Name]
		delete(h, w.Name)
		switch {
		case exists && old.Mode != w.Mode:
			old := old
			d.add(phaseRecreate, Op{Kind: LinkDel, Link: &old})
			d.gone[w.Name] = true
			fallthrough
		case !exists:
			d.add(phaseLinks, Op{Kind: LinkAdd, Link: &w})
			if w.Up {
				d.add(phaseUp, Op{Kind: LinkUp, Link: &w, Name: w.Name})
			}
		default:
			if old.Params() != w.Params() {
				old := old
				d.add(phaseLinks, Op{Kind: LinkChange, Link: &w, Old: &old})
			}
			if w.Up && !old.Up {
				d.add(phaseUp, Op{Kind: LinkUp, Link: &w, Name: w.Name})
			}
			if !w.Up && old.Up {
				d.add(phaseDown, Op{Kind: LinkDown, Link: &w, Name: w.Name})
			}
		}
	}
	for _, l := range have {
		if _, left := h[l.Name]; left {
			l := l
			d.gone[l.Name] = true
			d.add(phaseLinkDel, Op{Kind: LinkDel, Link: &l})
		}
	}
}

func (d *differ) addrs(have, want []model.Addr) {
	h := make(map[model.Addr]bool, len(have))
	type onLink struct {
		link string
		addr netip.Addr
	}
	hAddr := make(map[onLink]bool, len(have))
	for _, a := range have {
		if !d.gone[a.Link] {
			h[a] = true
			hAddr[onLink{a.Link, a.Prefix.Addr()}] = true
		}
	}
	w := make(map[model.Addr]bool, len(want))
	wAddr := make(map[onLink]bool, len(want))
	for _, a := range want {
		a := a
		w[a] = true
		wAddr[onLink{a.Link, a.Prefix.Addr()}] = true
		if !h[a] {
			d.add(phaseAddrs, Op{Kind: AddrAdd, Addr: &a})
		}
	}
	for _, a := range have {
		a := a
		if d.gone[a.Link] || w[a] {
			continue
		}
		// The same address with another prefix or peer is removed before
		// the new one is added: the kernel would refuse the duplicate.
		if wAddr[onLink{a.Link, a.Prefix.Addr()}] {
			d.add(phaseAddrFix, Op{Kind: AddrDel, Addr: &a})
		} else {
			d.add(phaseAddrDel, Op{Kind: AddrDel, Addr: &a})
		}
	}
}

func (d *differ) routes(have, want []model.Route) {
	h := make(map[model.RouteKey]model.Route, len(have))
	for _, r := range have {
		if !d.gone[r.Dev] {
			h[r.Key()] = r
		}
	}
	w := make(map[model.RouteKey]bool, len(want))
	for _, r := range want {
		r := r
		w[r.Key()] = true
		old, ok := h[r.Key()]
		switch {
		case !ok:
			d.add(phaseRoutes, Op{Kind: RouteAdd, Route: &r})
		case old != r:
			d.add(phaseRoutes, Op{Kind: RouteReplace, Route: &r})
		}
	}
	for _, r := range have {
		r := r
		if !d.gone[r.Dev] && !w[r.Key()] {
			d.add(phaseRouteDel, Op{Kind: RouteDel, Route: &r})
		}
	}
}

func (d *differ) rules(have, want []model.Rule) {
	h := make(map[model.Rule]bool, len(have))
	for _, r := range have {
		h[r] = true
	}
	w := make(map[model.Rule]bool, len(want))
	for _, r := range want {
		r := r
		w[r] = true
		if !h[r] {
			d.add(phaseRules, Op{Kind: RuleAdd, Rule: &r})
		}
	}
	for _, r := range have {
		r := r
		if !w[r] {
			d.add(phaseRuleDel, Op{Kind: RuleDel, Rule: &r})
		}
	}
}

func (d *differ) sysctls(have, want []model.Sysctl) {
	h := map[string]model.Sysctl{}
	for _, s := range have {
		h[s.Path] = s
	}
	w := map[string]bool{}
	for _, s := range want {
		s := s
		w[s.Path] = true
		if old, ok := h[s.Path]; !ok || old.Value != s.Value {
			s.Original = old.Original
			d.add(phaseSysctls, Op{Kind: SysctlSet, Sysctl: &s})
		}
	}
	for _, s := range have {
		s := s
		if !w[s.Path] && s.Original != "" {
			d.add(phaseRestore, Op{Kind: SysctlRestore, Sysctl: &s})
		}
	}
}

func (d *differ) filter(have, want *model.Filter) {
	switch {
	case want == nil && have != nil:
		d.add(phaseFilter, Op{Kind: FilterDel})
	case want != nil && !want.Equal(have):
		d.add(phaseFilter, Op{Kind: FilterReplace, Filter: want})
	}
}
