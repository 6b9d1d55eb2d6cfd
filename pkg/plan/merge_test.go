package plan

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

// TestDiffAgreesWithMaps checks Diff, which walks both sides in their
// order, against mapDiff, the implementation it replaced (each kind looked
// up in maps: to 1336947), on random states of few names and addresses,
// so that the same link, address, route key and rule priority meet often
// on both sides and within one.
func TestDiffAgreesWithMaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		have, want := randomState(rng, true), randomState(rng, false)
		got, ref := opsText(Diff(have, want)), opsText(mapDiff(have, want))
		if diff := cmp.Diff(ref, got); diff != "" {
			t.Fatalf("case %d: have %+v\nwant %+v\nDiff (-mapDiff +Diff):\n%s", i, have, want, diff)
		}
	}
}

// TestDiffLeavesStatesAlone: Diff reads the states it is given and
// changes none of their objects (the daemon keeps its last observation).
func TestDiffLeavesStatesAlone(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		have, want := randomState(rng, true), randomState(rng, false)
		before := fmt.Sprintf("%+v %+v", have, want)
		Diff(have, want)
		if after := fmt.Sprintf("%+v %+v", have, want); after != before {
			t.Fatalf("Diff changed its input:\nbefore %s\nafter  %s", before, after)
		}
	}
}

// TestDifferOwn: a link is tunneld's when it is among the observed or the
// wanted links, each in name order.
func TestDifferOwn(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	names := []string{"a", "b", "c", "d", "e"}
	for range 500 {
		var have, want []model.Link
		in := map[string]bool{}
		for _, n := range names {
			switch rng.IntN(4) {
			case 0:
				have = append(have, model.Link{Name: n})
				in[n] = true
			case 1:
				want = append(want, model.Link{Name: n})
				in[n] = true
			case 2:
				have, want = append(have, model.Link{Name: n}), append(want, model.Link{Name: n})
				in[n] = true
			}
		}
		d := differ{haveLinks: have, wantLinks: want}
		for _, n := range append(names, "", "z") {
			if got := d.own(n); got != in[n] {
				t.Fatalf("have %v, want %v: own(%q) = %t", have, want, n, got)
			}
		}
	}
}

// opsText is each operation with every object it carries, for comparing
// plans whole.
func opsText(p Plan) []string {
	var out []string
	for _, op := range p.Ops {
		s := fmt.Sprintf("%v %q", op.Kind, op.Name)
		for _, v := range []any{op.Link, op.Old, op.Addr, op.Route, op.Rule, op.Sysctl, op.Filter} {
			s += fmt.Sprintf(" %+v", v)
		}
		out = append(out, s)
	}
	return out
}

// randomState is a state in model.State's order (an observation when
// observed: sysctls with their record) drawn from a few of each.
func randomState(rng *rand.Rand, observed bool) model.State {
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	var s model.State
	seen := map[string]bool{}
	for range rng.IntN(4) {
		name := pick("a", "b", "c")
		if seen[name] {
			continue // a name is held once
		}
		seen[name] = true
		s.Links = append(s.Links, model.Link{Name: name, Mode: model.Mode(pick("ipip", "gre")),
			Local: netip.MustParseAddr("192.0.2.1"), MTU: 1400 + rng.IntN(2)*80, Up: rng.IntN(3) > 0})
	}
	for range rng.IntN(6) {
		a := model.Addr{Link: pick("a", "b", "c", "wan"), Prefix: netip.MustParsePrefix(pick("10.0.0.1/32", "10.0.0.1/24", "10.0.0.2/32"))}
		if rng.IntN(4) == 0 {
			a.Peer = netip.MustParseAddr("10.0.0.9")
		}
		s.Addrs = append(s.Addrs, a)
	}
	for range rng.IntN(6) {
		r := model.Route{Table: uint32(42 + rng.IntN(2)), Dst: netip.MustParsePrefix(pick("0.0.0.0/0", "10.1.0.0/24", "10.1.0.0/16")),
			Dev: pick("a", "b", ""), Metric: uint32(rng.IntN(2) * 10)}
		if r.Dev == "" || rng.IntN(3) == 0 {
			r.Via = netip.MustParseAddr("10.0.0.2")
		}
		s.Routes = append(s.Routes, r)
	}
	for range rng.IntN(6) {
		s.Rules = append(s.Rules, model.Rule{Family: 4, Priority: uint32(100 + rng.IntN(3)),
			Src: netip.MustParsePrefix(pick("10.0.0.1/32", "10.0.0.2/32")), Table: uint32(42 + rng.IntN(2))})
	}
	paths := []string{model.IPForward, "net/ipv4/conf/a/forwarding", "net/ipv4/conf/x/forwarding", "net/ipv4/conf/x/proxy_arp"}
	for _, p := range paths {
		if rng.IntN(2) == 0 {
			continue
		}
		sc := model.Sysctl{Path: p, Value: pick("0", "1")}
		if observed {
			sc.Value = pick("0", "1", "")
			sc.Original = pick("", "0", "1")
			if rng.IntN(2) == 0 {
				sc.Ours = []string{pick("0", "1")}
			}
		}
		s.Sysctls = append(s.Sysctls, sc)
	}
	s.Sort()
	return s
}

// mapDiff and its differ are Diff as it was before it walked both sides
// in order (to 1336947): the reference TestDiffAgreesWithMaps holds it to.
// Sysctls and the filter, which that change left alone but for how a
// link is known to be tunneld's (TestDifferOwn), are Diff's own.
func mapDiff(have, want model.State, fallbacks ...string) Plan {
	d := mapDiffer{gone: map[string]bool{}}
	d.links(have.Links, want.Links)
	// Not in the reference: the deletion first of a renamed tunnel
	// (TestRenameDeletesFirst) and the order of changes that trade
	// endpoints (TestSwapConverges), which deletes and creates again one
	// tunnel of a cycle and so tells gone.
	clearWay(&d.phase, func(name string) { d.gone[name] = true })
	d.addrs(have.Addrs, want.Addrs)
	d.routes(have.Routes, want.Routes)
	d.rules(have.Rules, want.Rules)
	rest := differ{gone: d.gone, haveLinks: have.Links, wantLinks: want.Links}
	rest.sysctls(have.Sysctls, want.Sysctls)
	rest.filter(have.Filter, want.Filter)
	for _, name := range fallbacks {
		d.phase[phaseDown] = append(d.phase[phaseDown], Op{Kind: LinkDown, Name: name})
	}
	var p Plan
	for i, ops := range d.phase {
		p.Ops = append(p.Ops, ops...)
		p.Ops = append(p.Ops, rest.phase[i]...)
	}
	return p
}

type mapDiffer struct {
	phase [phases][]Op
	// gone holds links that are deleted (or re-created) by this plan: the
	// kernel removes their addresses and routes.
	gone map[string]bool
}

func (d *mapDiffer) add(ph int, op Op) { d.phase[ph] = append(d.phase[ph], op) }

// Each loop below reads the states in place and copies an object only for
// an operation: a no-op plan of a thousand tunnels allocates nothing per
// object.

func (d *mapDiffer) links(have, want []model.Link) {
	h := make(map[string]*model.Link, len(have))
	for i := range have {
		h[have[i].Name] = &have[i]
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
	mapInHave = 1 << iota
	mapInWant
)

func (d *mapDiffer) addrs(have, want []model.Addr) {
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
			where[a] |= mapInHave
			whereOn[onLink{a.Link, a.Prefix.Addr()}] |= mapInHave
		}
	}
	for _, a := range want {
		if where[a]&mapInHave == 0 {
			d.add(phaseAddrs, Op{Kind: AddrAdd, Addr: ptr(a)})
		}
		where[a] |= mapInWant
		whereOn[onLink{a.Link, a.Prefix.Addr()}] |= mapInWant
	}
	for _, a := range have {
		if d.gone[a.Link] || where[a]&mapInWant != 0 {
			continue
		}
		if whereOn[onLink{a.Link, a.Prefix.Addr()}]&mapInWant != 0 {
			d.add(phaseAddrFix, Op{Kind: AddrDel, Addr: ptr(a)})
		} else {
			d.add(phaseAddrDel, Op{Kind: AddrDel, Addr: ptr(a)})
		}
	}
}

func (d *mapDiffer) routes(have, want []model.Route) {
	type sides struct {
		have   *model.Route
		wanted bool
	}
	where := make(map[model.RouteKey]sides, max(len(have), len(want)))
	held := map[model.RouteKey]int{}
	for i := range have {
		if !d.gone[have[i].Dev] {
			where[have[i].Key()] = sides{have: &have[i]}
			held[have[i].Key()]++
		}
	}
	for i := range want {
		r := &want[i]
		k := r.Key()
		w := where[k]
		switch {
		case w.have == nil:
			d.add(phaseRoutes, Op{Kind: RouteAdd, Route: ptr(*r)})
		case !sameRoute(*w.have, *r) || held[k] > 1:
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

func (d *mapDiffer) rules(have, want []model.Rule) {
	where := make(map[model.Rule]uint8, max(len(have), len(want)))
	for i := range have {
		where[have[i]] |= mapInHave
	}
	for i := range want {
		r := &want[i]
		if where[*r]&mapInHave == 0 {
			d.add(phaseRules, Op{Kind: RuleAdd, Rule: ptr(*r)})
		}
		where[*r] |= mapInWant
	}
	for i := range have {
		if r := &have[i]; where[*r]&mapInWant == 0 {
			d.add(phaseRuleDel, Op{Kind: RuleDel, Rule: ptr(*r)})
		}
	}
}
