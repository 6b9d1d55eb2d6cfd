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
	d := differ{gone: map[string]bool{}, own: map[string]bool{}}
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
	phaseRecreate      = iota // LinkDel of links whose mode changed
	phaseLinks                // LinkAdd, LinkChange
	phaseAddrFix              // AddrDel of addresses re-added with another prefix
	phaseAddrs                // AddrAdd
	phaseUp                   // LinkUp
	phaseRoutes               // RouteAdd, RouteReplace
	phaseRules                // RuleAdd
	phaseSysctls              // SysctlSet
	phaseFilter               // FilterReplace, FilterDel
	phaseRestore              // SysctlRestore
	phaseRestoreCopies        // SysctlRestore of what restoring a forwarding sysctl overwrote
	phaseRuleDel              // RuleDel
	phaseRouteDel             // RouteDel
	phaseAddrDel              // AddrDel
	phaseDown                 // LinkDown
	phaseLinkDel              // LinkDel
	phases
)

type differ struct {
	phase [phases][]Op
	// gone holds links that are deleted (or re-created) by this plan: the
	// kernel removes their addresses and routes.
	gone map[string]bool
	// own holds tunneld's links, the ones observed and the ones wanted.
	own map[string]bool
}

func (d *differ) add(ph int, op Op) { d.phase[ph] = append(d.phase[ph], op) }

// Each loop below reads the states in place and copies an object only for
// an operation: a no-op plan of a thousand tunnels allocates nothing per
// object.

func (d *differ) links(have, want []model.Link) {
	h := make(map[string]*model.Link, len(have))
	for i := range have {
		h[have[i].Name] = &have[i]
		d.own[have[i].Name] = true
	}
	for i := range want {
		d.own[want[i].Name] = true
	}
	for i := range want {
		w := &want[i]
		old, exists := h[w.Name]
		delete(h, w.Name)
		switch {
		case exists && old.Mode != w.Mode:
			d.add(phaseRecreate, Op{Kind: LinkDel, Link: ptr(*old)})
			d.gone[w.Name] = true
			fallthrough
		case !exists:
			d.add(phaseLinks, Op{Kind: LinkAdd, Link: ptr(*w)})
			if w.Up {
				d.add(phaseUp, Op{Kind: LinkUp, Link: ptr(*w), Name: w.Name})
			}
		default:
			if old.Params() != w.Params() {
				d.add(phaseLinks, Op{Kind: LinkChange, Link: ptr(*w), Old: ptr(*old)})
			}
			if w.Up && !old.Up {
				d.add(phaseUp, Op{Kind: LinkUp, Link: ptr(*w), Name: w.Name})
			}
			if !w.Up && old.Up {
				d.add(phaseDown, Op{Kind: LinkDown, Link: ptr(*w), Name: w.Name})
			}
		}
	}
	for i := range have {
		l := &have[i]
		if _, left := h[l.Name]; left {
			d.gone[l.Name] = true
			d.add(phaseLinkDel, Op{Kind: LinkDel, Link: ptr(*l)})
		}
	}
}

// Where an object is, in one map per kind rather than one per side.
const (
	inHave = 1 << iota
	inWant
)

func (d *differ) addrs(have, want []model.Addr) {
	// The same address with another prefix or peer is removed before the
	// new one is added: the kernel would refuse the duplicate. onLink
	// finds those.
	type onLink struct {
		link string
		addr netip.Addr
	}
	where := make(map[model.Addr]uint8, max(len(have), len(want)))
	whereOn := make(map[onLink]uint8, max(len(have), len(want)))
	for _, a := range have {
		if !d.gone[a.Link] {
			where[a] |= inHave
			whereOn[onLink{a.Link, a.Prefix.Addr()}] |= inHave
		}
	}
	for _, a := range want {
		if where[a]&inHave == 0 {
			d.add(phaseAddrs, Op{Kind: AddrAdd, Addr: ptr(a)})
		}
		where[a] |= inWant
		whereOn[onLink{a.Link, a.Prefix.Addr()}] |= inWant
	}
	for _, a := range have {
		if d.gone[a.Link] || where[a]&inWant != 0 {
			continue
		}
		if whereOn[onLink{a.Link, a.Prefix.Addr()}]&inWant != 0 {
			d.add(phaseAddrFix, Op{Kind: AddrDel, Addr: ptr(a)})
		} else {
			d.add(phaseAddrDel, Op{Kind: AddrDel, Addr: ptr(a)})
		}
	}
}

func (d *differ) routes(have, want []model.Route) {
	type sides struct {
		have   *model.Route
		wanted bool
	}
	where := make(map[model.RouteKey]sides, max(len(have), len(want)))
	for i := range have {
		if !d.gone[have[i].Dev] {
			where[have[i].Key()] = sides{have: &have[i]}
		}
	}
	for i := range want {
		r := &want[i]
		k := r.Key()
		w := where[k]
		switch {
		case w.have == nil:
			d.add(phaseRoutes, Op{Kind: RouteAdd, Route: ptr(*r)})
		case !sameRoute(*w.have, *r):
			d.add(phaseRoutes, Op{Kind: RouteReplace, Route: ptr(*r)})
		}
		w.wanted = true
		where[k] = w
	}
	for i := range have {
		r := &have[i]
		if !d.gone[r.Dev] && !where[r.Key()].wanted {
			d.add(phaseRouteDel, Op{Kind: RouteDel, Route: ptr(*r)})
		}
	}
}

// sameRoute reports whether the kernel's route have is the route want. A
// route configured with a gateway and no device gets the device the
// kernel finds for the gateway: any device matches.
func sameRoute(have, want model.Route) bool {
	if want.Dev == "" {
		have.Dev = ""
	}
	return have == want
}

func (d *differ) rules(have, want []model.Rule) {
	where := make(map[model.Rule]uint8, max(len(have), len(want)))
	for i := range have {
		where[have[i]] |= inHave
	}
	for i := range want {
		r := &want[i]
		if where[*r]&inHave == 0 {
			d.add(phaseRules, Op{Kind: RuleAdd, Rule: ptr(*r)})
		}
		where[*r] |= inWant
	}
	for i := range have {
		if r := &have[i]; where[*r]&inWant == 0 {
			d.add(phaseRuleDel, Op{Kind: RuleDel, Rule: ptr(*r)})
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
		w[s.Path] = true
		if old, ok := h[s.Path]; !ok || old.Value != s.Value {
			s.Original = old.Original
			d.add(phaseSysctls, Op{Kind: SysctlSet, Sysctl: ptr(s)})
		}
	}
	// A sysctl no longer wanted gets its original back, unless someone
	// else has changed it since tunneld did: then it keeps their value
	// (SysctlKeep), and its record is forgotten.
	restored := map[string]bool{} // forwarding sysctls written back
	copied := map[string]string{} // … whose write the kernel copies: the value
	kept := map[string]bool{}     // forwarding sysctls left as someone else set them
	for _, s := range have {
		if w[s.Path] || s.Original == "" || model.SysctlLeader(s.Path) != "" {
			continue
		}
		if s.ChangedByOthers() {
			kept[s.Path] = true
			d.add(phaseRestore, Op{Kind: SysctlKeep, Sysctl: ptr(s)})
			continue
		}
		restored[s.Path] = true
		if model.WriteCopies(s.Path, s.Value, s.Original) {
			copied[s.Path] = s.Original
		}
		d.add(phaseRestore, Op{Kind: SysctlRestore, Sysctl: ptr(s)})
	}
	// What the kernel copies a forwarding sysctl onto (every interface's
	// forwarding) is seen to once the forwarding sysctl is no longer
	// wanted. Each ends with its recorded value (the one before tunneld
	// first wrote the forwarding sysctl), or, where someone else changed
	// it since the kernel copied tunneld's write onto it, with theirs; an
	// interface that appeared since, of which tunneld has no record, with
	// the value it has now: it got it from "default", which tunneld's
	// write had overwritten, or from whoever made it, and tunneld leaves it
	// as it finds it rather than guess. Only those whose value restoring
	// the forwarding sysctl overwrites with another get a write; the
	// seam forgets the others' records with the forwarding sysctl's
	// (kernel.SysctlRecord). One someone else changed that ends as
	// they set it without a write gets a line of its own, to say why it
	// is not back at its recorded value; when the forwarding sysctl
	// itself was changed by someone else (which the kernel copied onto
	// every interface), its line says it for all. tunneld's own links
	// are left out: one this plan deletes needs nothing; one it creates
	// gets the value the kernel gives it, which a plan made before it
	// existed could not see, so the plan made again after a crash must
	// not either.
	for _, s := range have {
		leader := model.SysctlLeader(s.Path)
		if leader == "" || w[leader] {
			continue
		}
		restoring := restored[leader]
		handled := restoring || kept[leader]
		recorded := s.Original != ""
		dev := model.SysctlDevice(s.Path)
		switch {
		case handled && (s.Value == "" || d.gone[dev] || !recorded && d.own[dev]):
			continue // gone, going, or the kernel's to set
		case !handled && !recorded:
			continue
		case !handled && s.Value == "":
			// The forwarding sysctl is restored (a crash since):
			// nothing is left to put back on a device that is gone.
			d.add(phaseRestoreCopies, Op{Kind: SysctlRestore, Sysctl: ptr(s)})
			continue
		}
		end := s.Value
		if recorded {
			end = s.End()
		}
		after := s.Value
		if v, ok := copied[leader]; ok {
			after = model.CopiedValue(s.Path, v)
		}
		switch {
		case end != after:
			c := s
			c.Original = end
			d.add(phaseRestoreCopies, Op{Kind: SysctlRestore, Sysctl: &c})
		case !handled && s.ChangedByOthers():
			d.add(phaseRestoreCopies, Op{Kind: SysctlKeep, Sysctl: ptr(s)})
		case !handled:
			// Back at its value already (a crash after its write).
			d.add(phaseRestoreCopies, Op{Kind: SysctlRestore, Sysctl: ptr(s)})
		case restoring && s.ChangedByOthers() && end != s.Original:
			d.add(phaseRestoreCopies, Op{Kind: SysctlKeep, Sysctl: ptr(s)})
		}
	}
}

// ptr is a pointer to a copy of v, for an operation.
func ptr[T any](v T) *T { return &v }

func (d *differ) filter(have, want *model.Filter) {
	switch {
	case want == nil && have != nil:
		d.add(phaseFilter, Op{Kind: FilterDel})
	case want != nil && !want.Equal(have):
		d.add(phaseFilter, Op{Kind: FilterReplace, Filter: want})
	}
}
