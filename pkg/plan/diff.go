package plan

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/tunneld/tunneld/pkg/model"
)

// Diff returns the operations that turn have (the owned state observed in
// the kernel) into want, and set down the given fallback devices. Order:
// links whose mode changed are deleted first (a name cannot be held
// twice), and so are those in the way of another's endpoints (clearWay);
// then links are created and changed, each leaving its endpoints before
// another takes them, addresses added, links set up, routes and rules
// added or changed, sysctls set and the filter table replaced; then, in
// reverse, what is no longer wanted is removed. Objects that a link
// deletion takes with it (its addresses and routes) are not deleted
// separately, and are added again to one created again, whose device's
// sysctls are written again too.
func Diff(have, want model.State, fallbacks ...string) Plan {
	// Both sides in model.State's order (the observation and the desired
	// state come so, and then this costs one comparison per object): each
	// kind is then diffed by walking the two sides side by side, with no
	// map of either.
	have.Sort()
	want.Sort()
	d := differ{haveLinks: have.Links, wantLinks: want.Links}
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

// Phases of a plan, in execution order. The filter comes first: it
// matches tunnels by name, so it can be in place before they exist, and a
// crash in the middle of a plan then leaves no tunnel up and routed
// without it (it came after the sysctls, and a tester's kill -9 of apply
// left a tunnel forwarding what its forward = "drop" refused). A tunnel
// the plan deletes loses its chains with that replace, before it goes at
// the end; its deletion comes last so that its routes are replaced, not
// withdrawn, first.
const (
	phaseFilter        = iota // FilterReplace
	phaseRecreate             // LinkDel of links whose mode changed (or flipsPointToPoint), or in another's way (clearWay)
	phaseLinks                // LinkAdd, LinkChange, LinkMark
	phaseAddrFix              // AddrDel of addresses re-added with another prefix
	phaseAddrs                // AddrAdd
	phaseUp                   // LinkUp
	phasePeerAddrs            // AddrAdd of IPv6 addresses with a peer (see upFirst)
	phaseRoutes               // RouteAdd, RouteReplace
	phaseRuleClear            // RuleDel of a rule narrowed as the kernel's duplicate check ignores (see clashes)
	phaseRules                // RuleAdd
	phaseSysctls              // SysctlSet
	phaseRestore              // SysctlRestore
	phaseRestoreCopies        // SysctlRestore of what restoring a forwarding sysctl overwrote
	phaseRuleDel              // RuleDel
	phaseRouteDel             // RouteDel
	phaseAddrDel              // AddrDel
	phaseDown                 // LinkDown
	phaseLinkDel              // LinkDel
	phaseFilterDel            // FilterDel: last, once no tunnel it guards is left
	phases
)

type differ struct {
	phase [phases][]Op
	// gone holds links that are deleted (or re-created) by this plan: the
	// kernel removes their addresses and routes. Few are, so it is a map
	// made only when one is.
	gone map[string]bool
	// haveLinks and wantLinks, in name order, are tunneld's links, the
	// ones observed and the ones wanted.
	haveLinks, wantLinks []model.Link
}

// own reports whether the link called name is tunneld's, observed or
// wanted.
func (d *differ) own(name string) bool {
	return linkIn(d.haveLinks, name) || linkIn(d.wantLinks, name)
}

func linkIn(links []model.Link, name string) bool {
	_, found := model.LinkNamed(links, name)
	return found
}

// recreated reports whether the link called name is deleted and created
// again by this plan: it goes, and is wanted.
func (d *differ) recreated(name string) bool {
	return name != "" && d.gone[name] && linkIn(d.wantLinks, name)
}

// deletedBefore reports whether the plan deletes the device name, for
// good, before it puts sysctls back (phaseRecreate: a tunnel in another's
// way, as a renamed one is): the device's sysctls are gone with it then,
// and there is nothing to write back.
func (d *differ) deletedBefore(name string) bool {
	if name == "" || !d.gone[name] || linkIn(d.wantLinks, name) {
		return false
	}
	return slices.ContainsFunc(d.phase[phaseRecreate], func(op Op) bool { return op.Kind == LinkDel && op.Link.Name == name })
}

func (d *differ) goes(name string) {
	if d.gone == nil {
		d.gone = map[string]bool{}
	}
	d.gone[name] = true
}

// add appends op to phase ph. It is not inlined: its append, inlined
// at each of its thirty-odd callers, cost 6.5 KB of the mipsle binary's
// text; a call per operation costs nothing measurable
// (BenchmarkPlan1000).
//
//go:noinline
func (d *differ) add(ph int, op Op) { d.phase[ph] = append(d.phase[ph], op) }

// Each loop below reads the states in place and copies an object only for
// an operation: a no-op plan of a thousand tunnels allocates nothing per
// object.

func (d *differ) links(have, want []model.Link) {
	byName := func(a, b *model.Link) int { return strings.Compare(a.Name, b.Name) }
	groups(have, want, byName, func(hs, ws []model.Link) {
		// A name is held once on each side.
		for i := range ws {
			w := &ws[i]
			if len(hs) == 0 {
				d.create(w)
				continue
			}
			old := &hs[0]
			if old.Mode != w.Mode || flipsPointToPoint(old, w) {
				d.add(phaseRecreate, Op{Kind: LinkDel, Link: ptr(*old)})
				d.goes(w.Name)
				d.create(w)
				continue
			}
			if old.Params() != w.Params() {
				from := old
				if old.Others.IgnoreDF && !w.Others.IgnoreDF && w.PMTUDisc {
					// The kernel refuses pmtudisc while the tunnel
					// has ignore-df, even in the change that clears
					// it: clear it first, without pmtudisc.
					mid := *w
					mid.PMTUDisc = false
					d.add(phaseLinks, Op{Kind: LinkChange, Link: ptr(mid), Old: ptr(*old)})
					from = &mid
				}
				d.add(phaseLinks, Op{Kind: LinkChange, Link: ptr(*w), Old: ptr(*from)})
			}
			if old.Unmarked {
				// Held by its name only: once the configuration drops
				// it, nothing would say it is tunneld's to remove.
				d.add(phaseLinks, Op{Kind: LinkMark, Link: ptr(*w)})
			}
			if w.Up && !old.Up {
				d.add(phaseUp, Op{Kind: LinkUp, Link: ptr(*w), Name: w.Name})
			}
			if !w.Up && old.Up {
				d.add(phaseDown, Op{Kind: LinkDown, Link: ptr(*w), Name: w.Name})
			}
		}
		if len(ws) == 0 {
			for i := range hs {
				d.goes(hs[i].Name)
				d.add(phaseLinkDel, Op{Kind: LinkDel, Link: ptr(hs[i])})
			}
		}
	})
	clearWay(&d.phase, d.goes)
}

// flipsPointToPoint reports whether changing the tunnel old into w turns
// its remote from any to an address or back, for a tunnel with an IPv4
// outer header (ipip, gre, sit): the kernel then refuses the change in
// place (EINVAL: it would flip the device's IFF_POINTOPOINT), and the
// tunnel is deleted and created again (a tester's gre tunnel whose remote
// went from any to an address stayed down, each apply failing with
// "invalid argument"). ip6tnl changes it in place.
func flipsPointToPoint(old, w *model.Link) bool {
	if w.Mode.OuterIPv6() {
		return false
	}
	return remoteClass(old.Remote) != remoteClass(w.Remote)
}

// remoteClass is what the kernel makes of an IPv4 tunnel's remote for its
// device's flags: none (any), a multicast group (IFF_BROADCAST), or a
// unicast peer (IFF_POINTOPOINT).
func remoteClass(a netip.Addr) int {
	switch {
	case !a.IsValid() || a.IsUnspecified():
		return 0
	case a.IsMulticast():
		return 1
	}
	return 2
}

// upFirst reports whether the address a is added after its link is set
// up (phasePeerAddrs): an IPv6 address with a peer, whose route to the
// peer the kernel adds when the address is added to an up device, and
// never later (added while the link is down, the route's creation fails
// on the down device, and setting the link up does not make it again: a
// tester's routes via the peer failed with "no route to host" at every
// apply after the tunnel was created).
func upFirst(a *model.Addr) bool { return a.Peer.IsValid() && a.Peer.Is6() }

// clearWay orders the links' operations for the kernel, which holds one
// tunnel per endpoints (model.Link.SameTunnel) and refuses a second with
// EEXIST: a tunnel that goes while another is created or changed to take
// its endpoints (a tunnel renamed in the configuration) is deleted first,
// in phaseRecreate (deleted last, as other deletions are, it failed the
// rename's first converge, and the next one made it: a tester's apply of
// a renamed gre tunnel exited 1); and the changes are put in an order
// in which each leaves its endpoints before another takes them
// (orderLinks). goes is told of a tunnel that orderLinks deletes and
// creates again.
func clearWay(phase *[phases][]Op, goes func(name string)) {
	if dels := phase[phaseLinkDel]; len(dels) > 0 {
		kept := dels[:0]
		for _, del := range dels {
			if takenBy(phase[phaseLinks], *del.Link) {
				phase[phaseRecreate] = append(phase[phaseRecreate], del)
				continue
			}
			kept = append(kept, del)
		}
		phase[phaseLinkDel] = kept
	}
	orderLinks(phase, goes)
}

// linkRun is one tunnel's operations in phaseLinks, which orderLinks
// moves together: its creation, or its change (two when ignore-df is
// cleared first) and its mark. to is the tunnel it makes (nil for a mark
// alone); from is the tunnel it was when a change moves it off its
// endpoints (nil otherwise).
type linkRun struct {
	ops      []Op
	from, to *model.Link
}

// endpointKey is what model.Link.SameTunnel compares first: two tunnels
// with different keys are never one.
type endpointKey struct {
	kind          string
	local, remote netip.Addr
}

func keyOf(l *model.Link) endpointKey {
	return endpointKey{l.Mode.Kind(), l.Local, l.Remote}
}

// leavesFor reports whether a leaves the endpoints b takes, and must so
// come first.
func leavesFor(a, b *linkRun) bool {
	return a != b && a.from != nil && b.to != nil && a.from.SameTunnel(*b.to)
}

// orderLinks orders phaseLinks so that a tunnel changed off its
// endpoints comes before the one created or changed to take them: a
// chain (t1 takes t2's remote while t2 moves on to a new one) made it
// only when the names happened to put t2 first. Otherwise the order
// stays the names'. A cycle (two tunnels that swap remotes, as two DNS
// names whose answers swap, or three in a rotation) has no such order:
// one tunnel of it, the first by name, is deleted first (phaseRecreate)
// and created again in its turn, as one whose mode changed is, its
// addresses and routes added again (goes). Moving it to a temporary
// endpoint instead would keep its device, but no endpoint is sure to be
// free (another tunnel's, a foreign one's, or the any-remote catch-all
// of another's local, which would take others' packets meanwhile) and it
// costs two changes; the tunnel carries nothing right during the swap
// either way, and the re-creation is the path a mode change already
// takes.
func orderLinks(phase *[phases][]Op, goes func(name string)) {
	ops := phase[phaseLinks]
	moves := false
	for _, op := range ops {
		if op.Kind == LinkChange && !op.Old.SameTunnel(*op.Link) {
			moves = true
			break
		}
	}
	if !moves {
		return
	}
	runs := make([]linkRun, 0, len(ops))
	for i := 0; i < len(ops); {
		j := i + 1
		for j < len(ops) && ops[j].Link.Name == ops[i].Link.Name {
			j++
		}
		r := linkRun{ops: ops[i:j]}
		if k := ops[i].Kind; k == LinkAdd || k == LinkChange {
			r.to = ops[i].Link
		}
		if ops[i].Kind == LinkChange && !ops[i].Old.SameTunnel(*ops[i].Link) {
			r.from = ops[i].Old
		}
		runs = append(runs, r)
		i = j
	}
	// The runs that take (to) and leave (from) each kind, local and
	// remote: only those can be related by leavesFor. A WAN address
	// change moves every tunnel that follows it, and comparing each
	// with each made the plan of 1000 such tunnels 16 times slower.
	// leaving holds, by key, 1 + the last run leaving it, and nextLeaving
	// the one before each (1 +, 0 for none): one array, not a slice per
	// key.
	leaving := make(map[endpointKey]int, len(runs))
	nextLeaving := make([]int, len(runs))
	for i := range runs {
		if runs[i].from != nil {
			k := keyOf(runs[i].from)
			nextLeaving[i] = leaving[k]
			leaving[k] = i + 1
		}
	}
	// waits counts, by run, the runs not yet placed that leave what it
	// takes; the next placed is the first by name that waits for none.
	waits := make([]int, len(runs))
	blocked := false
	for b := range runs {
		if runs[b].to == nil {
			continue
		}
		for a := leaving[keyOf(runs[b].to)] - 1; a >= 0; a = nextLeaving[a] - 1 {
			if leavesFor(&runs[a], &runs[b]) {
				waits[b]++
				blocked = true
			}
		}
	}
	if !blocked {
		return // name order is an order
	}
	taking := map[endpointKey][]int{}
	for i := range runs {
		if runs[i].to != nil {
			taking[keyOf(runs[i].to)] = append(taking[keyOf(runs[i].to)], i)
		}
	}
	placed := make([]bool, len(runs))
	release := func(a int) {
		if runs[a].from == nil {
			return
		}
		for _, b := range taking[keyOf(runs[a].from)] {
			if !placed[b] && leavesFor(&runs[a], &runs[b]) {
				waits[b]--
			}
		}
	}
	out := make([]Op, 0, len(ops))
	for left := len(runs); left > 0; {
		next := -1
		for i := range runs {
			if !placed[i] && waits[i] == 0 {
				next = i
				break
			}
		}
		if next < 0 {
			c := onCycle(runs, placed)
			release(c)
			runs[c] = recreate(phase, runs[c], goes)
			continue
		}
		placed[next] = true
		left--
		out = append(out, runs[next].ops...)
		release(next)
	}
	phase[phaseLinks] = out
}

// onCycle returns the first by name of the runs on a cycle among those
// not placed, each of which waits for another (leavesFor).
func onCycle(runs []linkRun, placed []bool) int {
	i := 0
	for placed[i] {
		i++
	}
	// Walk back from run to a run it waits for: within len(runs) steps
	// the walk is on a cycle, and a second round of it finds its first.
	waitsFor := func(b int) int {
		for a := range runs {
			if !placed[a] && leavesFor(&runs[a], &runs[b]) {
				return a
			}
		}
		panic("plan: a run waits for none") // not reached: every run not placed waits
	}
	for range runs {
		i = waitsFor(i)
	}
	first := i
	for j := waitsFor(i); j != i; j = waitsFor(j) {
		first = min(first, j)
	}
	return first
}

// recreate turns r, a tunnel's change, into its deletion first
// (phaseRecreate) and its creation in r's turn, set up (phaseUp) if
// wanted up: it was up already, and no LinkUp was planned; one wanted
// down is created down, and its LinkDown goes.
func recreate(phase *[phases][]Op, r linkRun, goes func(name string)) linkRun {
	old := r.ops[0].Old
	w := r.to
	for _, op := range r.ops {
		if op.Kind == LinkChange {
			w = op.Link // past the change that clears ignore-df first
		}
	}
	phase[phaseRecreate] = append(phase[phaseRecreate], Op{Kind: LinkDel, Link: ptr(*old)})
	goes(w.Name)
	switch {
	case w.Up && old.Up:
		phase[phaseUp] = append(phase[phaseUp], Op{Kind: LinkUp, Link: ptr(*w), Name: w.Name})
	case !w.Up && old.Up:
		downs := phase[phaseDown][:0]
		for _, op := range phase[phaseDown] {
			if op.Kind != LinkDown || op.Name != w.Name {
				downs = append(downs, op)
			}
		}
		phase[phaseDown] = downs
	}
	return linkRun{ops: []Op{{Kind: LinkAdd, Link: ptr(*w)}}, to: w}
}

// takenBy reports whether one of ops creates or changes a tunnel to take
// old's endpoints.
func takenBy(ops []Op, old model.Link) bool {
	for _, op := range ops {
		if (op.Kind == LinkAdd || op.Kind == LinkChange) && op.Link.Name != old.Name && op.Link.SameTunnel(old) {
			return true
		}
	}
	return false
}

func (d *differ) create(w *model.Link) {
	d.add(phaseLinks, Op{Kind: LinkAdd, Link: ptr(*w)})
	if w.Up {
		d.add(phaseUp, Op{Kind: LinkUp, Link: ptr(*w), Name: w.Name})
	}
}

// groups walks have and want, each in the order key gives, side by side,
// and calls f with each group of objects of equal key: those of have and
// those of want (either may be empty), groups in key order.
func groups[T any](have, want []T, key func(a, b *T) int, f func(hs, ws []T)) {
	i, j := 0, 0
	for i < len(have) || j < len(want) {
		var first *T
		switch {
		case i == len(have):
			first = &want[j]
		case j == len(want):
			first = &have[i]
		case key(&have[i], &want[j]) <= 0:
			first = &have[i]
		default:
			first = &want[j]
		}
		hi, wj := i, j
		for hi < len(have) && key(&have[hi], first) == 0 {
			hi++
		}
		for wj < len(want) && key(&want[wj], first) == 0 {
			wj++
		}
		f(have[i:hi], want[j:wj])
		i, j = hi, wj
	}
}

// has reports whether s holds an object equal to x.
func has[T comparable](s []T, x *T) bool {
	for i := range s {
		if s[i] == *x {
			return true
		}
	}
	return false
}

func (d *differ) addrs(have, want []model.Addr) {
	// The same address with another prefix or peer is removed before the
	// new one is added: the kernel would refuse the duplicate. A group
	// is one address on one link.
	onLink := func(a, b *model.Addr) int {
		if c := strings.Compare(a.Link, b.Link); c != 0 {
			return c
		}
		return a.Prefix.Addr().Compare(b.Prefix.Addr())
	}
	groups(have, want, onLink, func(hs, ws []model.Addr) {
		if len(hs) > 0 && d.gone[hs[0].Link] {
			hs = nil
		}
		for i := range ws {
			if !has(hs, &ws[i]) {
				ph := phaseAddrs
				if upFirst(&ws[i]) {
					ph = phasePeerAddrs
				}
				d.add(ph, Op{Kind: AddrAdd, Addr: ptr(ws[i])})
			}
		}
		for i := range hs {
			switch {
			case has(ws, &hs[i]):
			case len(ws) > 0:
				d.add(phaseAddrFix, Op{Kind: AddrDel, Addr: ptr(hs[i])})
			default:
				d.add(phaseAddrDel, Op{Kind: AddrDel, Addr: ptr(hs[i])})
			}
		}
	})
}

func (d *differ) routes(have, want []model.Route) {
	// model.CompareRoute orders by the route's key (table, destination,
	// metric) and nothing else.
	groups(have, want, model.CompareRoute, func(hs, ws []model.Route) {
		// The routes through a link that goes are the kernel's to remove.
		if slices.ContainsFunc(hs, func(r model.Route) bool { return d.gone[r.Dev] }) {
			var kept []model.Route
			for _, r := range hs {
				if !d.gone[r.Dev] {
					kept = append(kept, r)
				}
			}
			hs = kept
		}
		for i := range ws {
			switch {
			case len(hs) == 0:
				d.add(phaseRoutes, Op{Kind: RouteAdd, Route: ptr(ws[i])})
			case !sameRoute(hs[len(hs)-1], ws[i]) || len(hs) > 1:
				// Several of tunneld's with one key (the restart
				// after a crash between the add and the delete of a
				// replace beside a foreign route): the replace
				// leaves one.
				d.add(phaseRoutes, Op{Kind: RouteReplace, Route: ptr(ws[i])})
			}
		}
		if len(ws) == 0 {
			for i := range hs {
				d.add(phaseRouteDel, Op{Kind: RouteDel, Route: ptr(hs[i])})
			}
		}
	})
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
	byPriority := func(a, b *model.Rule) int {
		if c := cmp.Compare(a.Priority, b.Priority); c != 0 {
			return c
		}
		return cmp.Compare(a.Family, b.Family)
	}
	groups(have, want, byPriority, func(hs, ws []model.Rule) {
		for i := range ws {
			if !has(hs, &ws[i]) {
				d.add(phaseRules, Op{Kind: RuleAdd, Rule: ptr(ws[i])})
			}
		}
		// Rules someone narrowed (model.Rule.Extra) go first: the kernel
		// deletes the first rule a deletion matches, and one of
		// tunneld's rule matches a narrowed rule at its priority too.
		for _, narrowed := range [2]bool{true, false} {
			for i := range hs {
				if (hs[i].Extra != "") == narrowed && !has(ws, &hs[i]) {
					phase := phaseRuleDel
					if clashes(hs[i]) {
						phase = phaseRuleClear
					}
					d.add(phase, Op{Kind: RuleDel, Rule: ptr(hs[i])})
				}
			}
		}
	})
}

// clashes reports whether r was narrowed with what the kernel's check
// for an existing rule ignores (`not`, a `tos` where the new rule has
// none, `realms`): tunneld's rule at its priority would be refused as a
// duplicate while r is there, so r goes before the additions, not
// after (a tester's pasted plan removed the narrowed rule and added
// nothing; apply took a second round).
func clashes(r model.Rule) bool {
	for _, w := range strings.Fields(r.Extra) {
		if w == "not" || w == "tos" || w == "realms" {
			return true
		}
	}
	return false
}

func (d *differ) sysctls(have, want []model.Sysctl) {
	h := map[string]model.Sysctl{}
	for _, s := range have {
		h[s.Path] = s
	}
	w := map[string]bool{}
	for _, s := range want {
		w[s.Path] = true
		// A device's sysctl on a tunnel this plan creates again (its
		// mode changed, or it breaks a cycle of endpoints) is written
		// whatever the old device had: the new one comes up with
		// conf/default's value, and the write comes after it in the
		// same plan, as its addresses and routes do. The record keeps
		// the original found before tunneld first wrote the sysctl
		// (the seam's Set records one only once), and the write makes
		// the value ours again.
		if old, ok := h[s.Path]; !ok || old.Value != s.Value || d.recreated(model.SysctlDevice(s.Path)) {
			s.Original = old.Original
			d.add(phaseSysctls, Op{Kind: SysctlSet, Sysctl: ptr(s)})
		}
	}
	// A sysctl no longer wanted gets its original back, unless someone
	// else has changed it since tunneld did: then it keeps their value
	// (SysctlKeep), and its record is forgotten.
	restored := map[string]bool{}  // forwarding sysctls written back
	copied := map[string]string{}  // … whose write the kernel copies: the value
	kept := map[string]bool{}      // forwarding sysctls left as someone else set them
	wrote := map[string][]string{} // forwarding sysctls written back: the values tunneld wrote
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
		wrote[s.Path] = s.Ours
		if s.Ours == nil {
			// A record an older version wrote: the value it has is
			// taken as tunneld's, as it is restored whatever it is.
			wrote[s.Path] = []string{s.Value}
		}
		if model.WriteCopies(s.Path, s.Value, s.Original) {
			copied[s.Path] = s.Original
		}
		d.add(phaseRestore, Op{Kind: SysctlRestore, Sysctl: ptr(s), DeviceGone: d.deletedBefore(model.SysctlDevice(s.Path))})
	}
	// What the kernel copies a forwarding sysctl onto (every interface's
	// forwarding) is seen to once the forwarding sysctl is no longer
	// wanted. Each ends with its recorded value (the one before tunneld
	// first wrote the forwarding sysctl), or, where someone else changed
	// it since the kernel copied tunneld's write onto it, with theirs.
	//
	// An interface that appeared since, of which tunneld has no record,
	// took its value from "default" when it appeared. Where that value is
	// the one tunneld's write copied onto "default" (or someone set the
	// same by hand, which cannot be told apart), it ends as "default"
	// does, as an interface that appears after the restore would: in the
	// usual case the kernel's copy of the restored value, with no write
	// (a PPPoE or LTE interface that came up while tunneld ran stops
	// forwarding with ip_forward). Where it is another value, someone set
	// it since (by hand, or by setting "default"): it keeps that value,
	// written back if restoring the forwarding sysctl overwrites it, and
	// said in a line of its own where it then ends unlike an interface
	// that appeared with tunneld's value. When the forwarding sysctl
	// itself was changed by someone else, which the kernel copied onto
	// every interface, an interface without a record keeps the value it
	// has.
	//
	// Only those whose value restoring the forwarding sysctl overwrites
	// with another get a write; the seam forgets the others' records with
	// the forwarding sysctl's (kernel.SysctlRecord). One someone else
	// changed that ends as they set it without a write gets a line of its
	// own, to say why it is not back at its recorded value; when the
	// forwarding sysctl itself was changed by someone else, its line says
	// it for all. tunneld's own links are left out: one this plan deletes
	// needs nothing; one it creates gets the value the kernel gives it,
	// which a plan made before it existed could not see, so the plan made
	// again after a crash must not either.
	after := func(s model.Sysctl) string {
		if v, ok := copied[model.SysctlLeader(s.Path)]; ok {
			return model.CopiedValue(s.Path, v)
		}
		return s.Value
	}
	// inherit is, by forwarding sysctl written back, "default"'s
	// forwarding among its copies, and the value it ends with.
	inherit := map[string]inheritance{}
	for _, s := range have {
		leader := model.SysctlLeader(s.Path)
		if !restored[leader] || s.Value == "" || s.Path != defaultForwarding(leader) {
			continue
		}
		end := after(s)
		if s.Original != "" {
			end = s.End()
		}
		inherit[leader] = inheritance{s.Path, end}
	}
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
		case handled && (s.Value == "" || d.gone[dev] || !recorded && d.own(dev)):
			continue // gone, going, or the kernel's to set
		case !handled && !recorded:
			continue
		case !handled && s.Value == "":
			// The forwarding sysctl is restored (a crash since):
			// nothing is left to put back on a device that is gone.
			d.add(phaseRestoreCopies, Op{Kind: SysctlRestore, Sysctl: ptr(s)})
			continue
		case restoring && !recorded:
			d.unrecordedCopy(s, wrote[leader], after(s), inherit[leader])
			continue
		}
		end := s.Value
		if recorded {
			end = s.End()
		}
		switch {
		case end != after(s):
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

// inheritance is "default"'s forwarding, from which an interface takes its
// value when it appears, and the value a plan leaves it at.
type inheritance struct{ path, end string }

// unrecordedCopy sees to s, a copy of a forwarding sysctl being written
// back (whose writes tunneld made were wrote) that has no record: an
// interface that appeared since. after is the value the write back leaves
// it at; dflt is "default"'s forwarding and the value it ends with (zero
// when it is not observed: a record an older version wrote). See the
// comment in sysctls.
func (d *differ) unrecordedCopy(s model.Sysctl, wrote []string, after string, dflt inheritance) {
	ours := make([]string, len(wrote))
	for i, v := range wrote {
		ours[i] = model.CopiedValue(s.Path, v)
	}
	inherited := after
	if strings.HasSuffix(s.Path, "/forwarding") && dflt.path != "" && dflt.path != s.Path {
		inherited = dflt.end // not accept_redirects, nor "default" itself
	}
	c := s
	c.Ours = ours
	switch {
	case !c.ChangedByOthers() && inherited != after:
		c.Original = inherited
		d.add(phaseRestoreCopies, Op{Kind: SysctlRestore, Sysctl: &c, From: dflt.path})
	case !c.ChangedByOthers():
		// Left by the write back where "default" ends.
	case s.Value != after:
		c.Original = s.Value
		d.add(phaseRestoreCopies, Op{Kind: SysctlRestore, Sysctl: &c})
	case s.Value != inherited:
		d.add(phaseRestoreCopies, Op{Kind: SysctlKeep, Sysctl: &c})
	}
}

// defaultForwarding is the forwarding of "default" that the forwarding
// sysctl leader is copied onto: the value an interface appears with.
func defaultForwarding(leader string) string {
	if leader == model.IPForward {
		return "net/ipv4/conf/default/forwarding"
	}
	return "net/ipv6/conf/default/forwarding"
}

// ptr is a pointer to a copy of v, for an operation.
func ptr[T any](v T) *T { return &v }

func (d *differ) filter(have, want *model.Filter) {
	switch {
	case want == nil && have != nil:
		d.add(phaseFilterDel, Op{Kind: FilterDel})
	case want != nil && !want.Equal(have):
		d.add(phaseFilter, Op{Kind: FilterReplace, Filter: want, OldFilter: have})
	}
}
