// Package engine joins the pure core to the kernel seam: it observes,
// builds the desired state, plans and applies, repeating until the kernel
// matches the plan; and it tears down everything tunneld owns.
package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// MaxRounds bounds how often Converge re-plans: a second round picks up
// what the first made possible (a sysctl on a device it created); a third
// one only happens when something keeps changing underneath.
const MaxRounds = 3

// Scope is the ownership scope of a configuration.
func Scope(c *config.Config) model.Scope {
	s := model.Scope{
		Links: map[string]model.Mode{},
		Band:  Band(c),
	}
	for _, t := range c.Tunnels {
		s.Links[t.Name] = t.Mode
	}
	if c.Global.IPForward != nil {
		s.Sysctls = append(s.Sysctls, model.IPForward)
	}
	if c.Global.IPv6Forward != nil {
		s.Sysctls = append(s.Sysctls, model.IPv6Forward)
	}
	for _, dev := range c.Global.ProxyARP {
		s.Sysctls = append(s.Sysctls, "net/ipv4/conf/"+dev+"/proxy_arp")
	}
	s.ReadSysctls = desired.InputSysctls(c)
	return s
}

// Band is the configuration's rule priority band (a plan takes it from
// here, not from Scope, which builds a map of every tunnel).
func Band(c *config.Config) model.RuleBand {
	return model.RuleBand{Min: c.Global.RulePriorityMin, Max: c.Global.RulePriorityMax}
}

// Tables maps table numbers to configured names, for printing plans
// (shared with c: not to be changed).
func Tables(c *config.Config) map[uint32]string { return c.TableNames() }

// Snapshot is one observation and what it leads to.
type Snapshot struct {
	Have   model.State
	Inputs model.Inputs
	Want   desired.Result
	Plan   plan.Plan
}

// Look observes the kernel and plans, without changing anything.
//
// The holds are those of a running daemon (status): desired then sees
// the tunnels whose creation they hold (model.Inputs.HeldTunnels), as
// the daemon's converge does, and the plan keeps every operation (see
// HeldBack for those the daemon leaves out).
func Look(ctx context.Context, k kernel.Kernel, c *config.Config, resolved map[string][]netip.Addr, hold ...Hold) (Snapshot, error) {
	return LookRefused(ctx, k, c, resolved, nil, hold...)
}

// LookRefused is Look for a daemon whose last converge met refusals:
// refused are the tunnels (name → reason) whose creation, setting up or
// move to its endpoints the kernel refused (desired.TunnelStatus.Refused).
// The plan is then what the daemon's converges keep doing while the
// refusal lasts: a tunnel whose move was refused is tried there again,
// and stays down, its routes unreachable (see refusedTunnels), where
// Look's plan would set it up and route through it, which the kernel
// seams skip while the move fails.
func LookRefused(ctx context.Context, k kernel.Kernel, c *config.Config, resolved map[string][]netip.Addr, refused map[string]string, hold ...Hold) (Snapshot, error) {
	have, in, err := k.Observe(ctx, Scope(c))
	if err != nil {
		return Snapshot{}, err
	}
	in.HeldTunnels = heldTunnels(c, hold)
	in.Refused = refused
	return Plan(have, in, c, resolved), nil
}

// HeldBack reports, for each of ops, whether a converge with hold
// leaves it out (see dropHeld): held itself, or one that would fail
// without one held. nil without holds.
func HeldBack(ops []plan.Op, hold ...Hold) []bool {
	if len(hold) == 0 {
		return nil
	}
	kept := dropHeld(slices.Clone(ops), hold)
	out := make([]bool, len(ops))
	// kept is ops in their order, less those left out.
	j := 0
	for i := range ops {
		if j < len(kept) && opEqual(ops[i], kept[j]) {
			j++
			continue
		}
		out[i] = true
	}
	return out
}

// Plan is the pure part of Look: what the configuration wants, given an
// observation (have, in) and the current DNS answers. The observation's
// warnings (model.Inputs.Warnings) come first in Want.Warnings.
func Plan(have model.State, in model.Inputs, c *config.Config, resolved map[string][]netip.Addr) Snapshot {
	in.Resolved = resolved
	want := desired.Build(c, in, have)
	if len(in.Warnings) > 0 {
		// The seam's first (an unreadable record): said by
		// whatever says the configuration's.
		want.Warnings = append(slices.Clip(in.Warnings), want.Warnings...)
	}
	p := plan.Diff(have, want.State, want.Fallbacks...)
	p.Tables = Tables(c)
	p.RuleBand = Band(c)
	return Snapshot{Have: have, Inputs: in, Want: want, Plan: p}
}

// Report is what a Converge did.
type Report struct {
	// Applied are the operations performed, in order, over all rounds.
	Applied []plan.Op
	// Last is the final observation (its Plan is empty when converged).
	Last Snapshot
	// FirstRead is how long the first round's read (observation, desired
	// state and plan) took; Apply is the time spent applying, over all
	// rounds.
	FirstRead, Apply time.Duration
	// Ended are the first round's warnings that the last round no longer
	// gives: what the converge's own changes ended, such as rules in
	// tunneld's table that it did not write, gone with the table it
	// replaced, and the seam's, which only the observation that met
	// them gives (model.Inputs.Warnings: an unreadable record). Said by
	// apply and the daemon's log with the last round's (a tester's admin
	// lost a rule without a word).
	//
	// Down's report has no desired state: Last.Want holds only the
	// seam's warnings of all its rounds, and the last round's warnings
	// about the rules of tunneld's protocol outside its bands, which
	// stay (model.Inputs.StrayRules).
	Ended []string
	// Left are, after Down, the sysctls the configuration sets that the
	// kernel has as it sets them and that tunneld has no record of
	// (found so, or their record lost: model.Inputs.SysctlsUnknown):
	// down leaves them as they are. Each as "NAME = VALUE".
	Left []string
}

// LeftWarning says which sysctls down left as they are (Report.Left),
// for the daemon's stop and down; "" when none.
func (rep Report) LeftWarning() string {
	if len(rep.Left) == 0 {
		return ""
	}
	return "left as they are, tunneld having no record of their values before it (found so at its start, or the record lost): " +
		strings.Join(rep.Left, ", ") + "; check them (sysctl NAME) and set by hand those tunneld had set"
}

// leftSysctls are the sysctls c sets that have, in in.Sysctls (Down reads
// them as inputs), the value c sets, and no record in have (Report.Left).
func leftSysctls(c *config.Config, have model.State, in model.Inputs) []string {
	var left []string
	for _, s := range desired.ConfiguredSysctls(c) {
		v, ok := in.Sysctls[s.Path]
		if !ok || v != s.Value || slices.ContainsFunc(have.Sysctls, func(h model.Sysctl) bool { return h.Path == s.Path }) {
			continue
		}
		left = append(left, model.SysctlName(s.Path)+" = "+v)
	}
	return left
}

// ended sets rep.Ended from the first round's warnings.
func (rep *Report) ended(first []string) {
	rep.Ended = nil
	for _, w := range first {
		if !slices.Contains(rep.Last.Want.Warnings, w) {
			rep.Ended = append(rep.Ended, w)
		}
	}
}

// ErrNotConverged means the kernel still differs from the plan after
// MaxRounds rounds.
var ErrNotConverged = errors.New("kernel does not match the configuration")

// Hold tells Converge to leave an operation out for now (the daemon holds
// back repairs of an object that something else keeps changing).
type Hold func(plan.Op) bool

// Converge applies plans until the kernel matches the configuration. It
// returns the operations' failures joined, or ErrNotConverged with what
// is left when they stop making progress. Operations that hold returns
// true for are not applied and do not count as left to do.
//
// A round after one whose apply the kernel refused a tunnel's creation
// or setting up in plans with that tunnel not up (model.Inputs.Refused,
// see refusedTunnels): the routes through it stand as unreachable
// routes, and the plan tries the tunnel again. When the last round meets
// a refusal its plan did not know of (or no longer meets one it did),
// one more round follows, so that the routes are as the refusals say
// when Converge returns; that round's refusals, like every round's
// failures, are the error.
func Converge(ctx context.Context, k kernel.Kernel, c *config.Config, resolved map[string][]netip.Addr, hold ...Hold) (Report, error) {
	var rep Report
	var failures error
	var refused map[string]string
	var first []string // the first round's warnings (see Report.Ended)
	rounds := MaxRounds
	for round := 0; round < rounds; round++ {
		start := time.Now()
		have, in, err := k.Observe(ctx, Scope(c))
		if err != nil {
			return rep, err
		}
		in.HeldTunnels = heldTunnels(c, hold)
		in.Refused = refused
		s := Plan(have, in, c, resolved)
		if round == 0 {
			rep.FirstRead = time.Since(start)
		}
		s.Plan.Ops = dropHeld(s.Plan.Ops, hold)
		rep.Last = s
		if round == 0 {
			first = s.Want.Warnings
		}
		rep.ended(first)
		if s.Plan.Empty() {
			return rep, nil
		}
		start = time.Now()
		err = k.Apply(ctx, s.Plan)
		rep.Apply += time.Since(start)
		rep.Applied = append(rep.Applied, succeeded(s.Plan.Ops, err)...)
		if err != nil {
			failures = explainExists(err, s)
		}
		next := refusedTunnels(c, failures, err != nil)
		if round == MaxRounds-1 && !maps.Equal(next, refused) && ctx.Err() == nil {
			rounds++
		}
		refused = next
	}
	if failures != nil {
		return rep, failures
	}
	return rep, fmt.Errorf("%w: still to do:\n%s", ErrNotConverged, rep.Last.Plan)
}

// refusedTunnels are the configured tunnels whose creation (LinkAdd, a
// re-creation in another mode too), setting up (LinkUp) or change to
// other endpoints (plan.Op.MovesEndpoints: another tunnel holds them)
// failed in err, the failures of an apply (when failed; nil when the
// apply worked), with the reason a tunnel's status gives: "creating it
// failed: …", "setting it up failed: …", "moving it to its endpoints
// failed: …" (the daemon's wording for a tunnel the kernel does not
// have, or has down). Such a tunnel is missing, down, or where it was,
// with a peer the configuration no longer names, and the routes through
// it would be refused (or skipped), absent, or lead to that peer: the
// next round plans it as not up. Both kernel seams leave a tunnel whose
// move failed as it was in the rest of that apply, not set up, addressed
// or routed through (kernel.ApplyError.Skipped): so the first round of
// the next converge, which tries the move again, does not put it up or
// its routes back through it before the round after takes them away
// again. Another change that fails (an MTU) leaves the tunnel between
// the same endpoints, and up.
func refusedTunnels(c *config.Config, err error, failed bool) map[string]string {
	var ae *kernel.ApplyError
	if !failed || !errors.As(err, &ae) {
		return nil
	}
	var out map[string]string
	for _, f := range ae.Failed {
		var name, what string
		switch f.Op.Kind {
		case plan.LinkAdd:
			name, what = f.Op.Link.Name, "creating it failed: "
		case plan.LinkUp:
			name, what = f.Op.Name, "setting it up failed: "
		case plan.LinkChange:
			if !f.Op.MovesEndpoints() {
				continue
			}
			name, what = f.Op.Link.Name, "moving it to its endpoints failed: "
		default:
			continue
		}
		if c.TunnelByName(name) == nil {
			continue
		}
		if _, ok := out[name]; ok {
			continue // its creation failed, and then setting it up
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = what + f.Err.Error()
	}
	return out
}

// heldTunnels are the configured tunnels whose creation a hold would
// leave out (model.Inputs.HeldTunnels); nil when none is.
func heldTunnels(c *config.Config, hold []Hold) map[string]bool {
	if len(hold) == 0 {
		return nil
	}
	var held map[string]bool
	l := &model.Link{} // one, renamed: a hold keeps no operation it is asked about
	op := plan.Op{Kind: plan.LinkAdd, Link: l}
	for _, t := range c.Tunnels {
		l.Name = t.Name
		if slices.ContainsFunc(hold, func(h Hold) bool { return h(op) }) {
			held = setIn(held, t.Name)
		}
	}
	return held
}

// dropHeld leaves out of ops those a hold returns true for (each hold is
// asked once per operation), and those that would fail or never be done
// without them, of a tunnel whose creation is held: its addresses and
// setting up (without this, a tunnel held back because something else
// keeps deleting it failed every converge on its address), and the
// routes through it. Desired plans no route through a held tunnel that
// is missing or down (it puts unreachable routes in their place:
// model.Inputs.HeldTunnels, see heldTunnels); the routes here are those
// through a held tunnel that is up in the kernel in another mode, which
// the plan would create again (its deletion is held too) and so adds
// again, each converge, whether they are in place or not.
func dropHeld(ops []plan.Op, hold []Hold) []plan.Op {
	if len(hold) == 0 {
		return ops
	}
	var missing map[string]bool
	ops = slices.DeleteFunc(ops, func(op plan.Op) bool {
		if !slices.ContainsFunc(hold, func(h Hold) bool { return h(op) }) {
			return false
		}
		if op.Kind == plan.LinkAdd {
			missing = setIn(missing, op.Link.Name)
		}
		return true
	})
	if missing == nil {
		return ops
	}
	return slices.DeleteFunc(ops, func(op plan.Op) bool {
		switch op.Kind {
		case plan.AddrAdd:
			return missing[op.Addr.Link]
		case plan.RouteAdd, plan.RouteReplace:
			return missing[op.Route.Dev]
		case plan.LinkUp:
			return missing[op.Name]
		}
		return false
	})
}

// setIn adds k to m, made when nil.
func setIn(m map[string]bool, k string) map[string]bool {
	if m == nil {
		m = map[string]bool{}
	}
	m[k] = true
	return m
}

// succeeded drops the failed operations from ops, and those skipped
// because of a failure.
func succeeded(ops []plan.Op, err error) []plan.Op {
	var ae *kernel.ApplyError
	if !errors.As(err, &ae) {
		if err != nil {
			return nil
		}
		return ops
	}
	failed := map[int]bool{}
	notDone := func(op plan.Op) {
		for i := range ops {
			if !failed[i] && opEqual(ops[i], op) {
				failed[i] = true
				break
			}
		}
	}
	for _, f := range ae.Failed {
		notDone(f.Op)
	}
	for _, op := range ae.Skipped {
		notDone(op)
	}
	var out []plan.Op
	for i, op := range ops {
		if !failed[i] {
			out = append(out, op)
		}
	}
	return out
}

func opEqual(a, b plan.Op) bool {
	return a.Kind == b.Kind && a.Object() == b.Object() && a.Name == b.Name
}

// Down removes everything tunneld owns within c's scope (plus links it
// marked as its own, and rules in the priority bands the kernel seam
// recorded as used: c may not be the configuration that was applied) and
// restores the sysctls it changed. Rules of tunneld's protocol outside
// those bands stay, each named in a warning with its deletion
// (desired.StrayRuleWarnings).
func Down(ctx context.Context, k kernel.Kernel, c *config.Config) (Report, error) {
	var rep Report
	// Only the sysctls with a recorded original are tunneld's to restore;
	// the seam reads those whatever the scope says. With the forwarding
	// sysctls out of scope, it also reads what restoring them overwrites.
	// The configuration's are read as inputs, for what down leaves
	// (Report.Left).
	scope := Scope(c)
	scope.ReadSysctls = append(slices.Clip(scope.ReadSysctls), scope.Sysctls...)
	scope.Sysctls = nil
	var warnings []string // the seam's (see Report.Ended)
	for range MaxRounds {
		have, in, err := k.Observe(ctx, scope)
		if err != nil {
			return rep, err
		}
		warnings = append(warnings, in.Warnings...)
		p := plan.Diff(have, model.State{})
		p.Tables, p.RuleBand = Tables(c), Band(c)
		rep.Last = Snapshot{Have: have, Inputs: in, Plan: p}
		rep.Left = leftSysctls(c, have, in)
		// The rules of tunneld's protocol outside its bands stay, and
		// the last round says how to delete them (a tester's down
		// left the old band's copies of every rule without a word).
		rep.Last.Want.Warnings = append(slices.Clip(warnings), desired.StrayRuleWarnings(c.Global.RulePriorityMin, c.Global.RulePriorityMax, in.StrayRules, nil)...)
		rep.Last.Want.Warnings = append(rep.Last.Want.Warnings, unmarkedLeft(c, in)...)
		if p.Empty() {
			if d, ok := k.(Dropper); ok {
				d.DroppedAll()
			}
			return rep, nil
		}
		err = k.Apply(ctx, p)
		rep.Applied = append(rep.Applied, succeeded(p.Ops, err)...)
		if err != nil {
			return rep, err
		}
	}
	return rep, fmt.Errorf("%w: still to remove:\n%s", ErrNotConverged, rep.Last.Plan)
}

// Dropper is a kernel seam that keeps records for as long as tunneld's
// objects are in the kernel (the Linux seam's empty sysctl record): Down
// tells it when none is left.
type Dropper interface {
	// DroppedAll says that the teardown is done: nothing of tunneld's
	// is left in the kernel.
	DroppedAll()
}

// Names lists the DNS names c's tunnels need resolved.
func Names(c *config.Config) []string {
	set := map[string]bool{}
	for _, t := range c.Tunnels {
		if t.RemoteHost != "" {
			set[t.RemoteHost] = true
		}
	}
	// slices.Sorted(maps.Keys(set)), nil when empty, without their
	// iterators and instantiation.
	var names []string
	for name := range set {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// unmarkedLeft says of each tunnel of c whose name a tunnel device
// without tunneld's alias holds that down leaves it, and how to delete
// it if tunneld made it: a crash of a version that recorded no tunnels
// being created left them unmarked, and a tester's down said nothing of
// the 32 it left.
func unmarkedLeft(c *config.Config, in model.Inputs) []string {
	var out []string
	for _, t := range c.Tunnels {
		d, ok := in.Devices[t.Name]
		if !ok || d.Tunnel == nil {
			continue
		}
		out = append(out, fmt.Sprintf("tunnel %q: the %s device %s, without tunneld's alias, is left as it is: if tunneld made it (a crash of an older version left it unmarked, or someone changed its alias), delete it: ip link del %s", t.Name, d.Kind, t.Name, model.LinkArg(t.Name)))
	}
	return out
}
