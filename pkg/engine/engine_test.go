package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

var ctx = context.Background()

func seeds(t *testing.T) map[string]*config.Config {
	t.Helper()
	files, _ := filepath.Glob("../../testdata/seeds/*/*.toml")
	variants, _ := filepath.Glob("../../testdata/seeds/*/*/*.toml") // a section's variant, in a subdirectory
	examples, _ := filepath.Glob("../../testdata/examples/*.toml")
	files = append(files, variants...)
	files = append(files, examples...)
	files = append(files, "../../testdata/reference.toml")
	out := map[string]*config.Config{}
	for _, f := range files {
		c, err := config.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(f, "../../testdata/")] = c
	}
	return out
}

// world is a box with the devices the seed configurations name, an
// underlay default route, and foreign state tunneld must not touch.
func world() *fakekernel.Kernel {
	k := fakekernel.New()
	for i, name := range []string{"eth0", "eth1", "eth3"} {
		k.AddDevice(model.Device{Name: name, MTU: 1500, Up: true, Running: true,
			Addrs: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("203.0.113.%d/24", 10+i))}})
	}
	k.AddForeignRoute(model.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("0.0.0.0/0"),
		Via: netip.MustParseAddr("203.0.113.1"), Dev: "eth0"}, 3)
	k.AddForeignRoute(model.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("203.0.113.0/24"), Dev: "eth0"}, 2)
	k.AddForeignRoute(model.Route{Table: 42, Dst: netip.MustParsePrefix("10.9.0.0/16"), Dev: "eth1"}, 4)
	k.AddForeignRule(model.Rule{Family: 4, Priority: 20001, Table: 42, Src: netip.MustParsePrefix("10.9.0.0/16")}, 4)
	k.AddForeignRule(model.Rule{Family: 4, Priority: 100, Table: 42, HasMark: true, Mark: 1, Mask: 1}, model.RuleProtocol)
	k.Tables["inet fw4"] = "table inet fw4 { chain forward { type filter hook forward priority 0; policy drop; } }"
	k.Sysctls["net/ipv4/conf/eth1/proxy_arp"] = "1"
	// A forwarding value ip_forward's copies overwrite, put back after.
	k.Sysctls["net/ipv4/conf/eth1/forwarding"] = "1"
	return k
}

// dump is everything in the fake kernel, ownership aside, with device
// indexes (which only say in what order things were created) left out.
type dump struct {
	Devices   map[string]model.Device
	Tunnels   map[string]model.Link
	Aliases   map[string]string
	Addrs     []model.Addr
	Routes    []fakekernel.Route
	Rules     []fakekernel.Rule
	Sysctls   map[string]string
	Originals kernel.SysctlRecord
	Bands     []model.RuleBand
	Tables    map[string]string
}

func dumpOf(k *fakekernel.Kernel) dump {
	d := dump{Devices: map[string]model.Device{}, Tunnels: k.Tunnels, Aliases: k.Aliases, Sysctls: k.Sysctls, Originals: k.Originals, Bands: k.Bands, Tables: k.Tables}
	for n, dev := range k.Devices {
		c := *dev
		c.Index = 0
		d.Devices[n] = c
	}
	d.Addrs = slices.Clone(k.Addrs)
	slices.SortFunc(d.Addrs, func(a, b model.Addr) int { return model.CompareAddr(&a, &b) })
	d.Routes = slices.Clone(k.Routes)
	slices.SortFunc(d.Routes, func(a, b fakekernel.Route) int { return model.CompareRoute(&a.Route, &b.Route) })
	d.Rules = slices.Clone(k.Rules)
	slices.SortFunc(d.Rules, func(a, b fakekernel.Rule) int { return int(a.Priority) - int(b.Priority) })
	return d
}

var dumpOpts = cmp.Options{cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})}

// TestConvergeIdempotent: applying a seed configuration and planning again
// gives an empty plan, and a second converge writes nothing.
func TestConvergeIdempotent(t *testing.T) {
	for name, c := range seeds(t) {
		t.Run(name, func(t *testing.T) {
			k := world()
			rep, err := Converge(ctx, k, c, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Applied) == 0 {
				t.Fatal("first converge applied nothing")
			}
			s, err := Look(ctx, k, c, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !s.Plan.Empty() {
				t.Fatalf("plan after converge is not empty:\n%s", s.Plan)
			}
			writes := k.Writes
			rep, err = Converge(ctx, k, c, nil)
			if err != nil || len(rep.Applied) != 0 || k.Writes != writes {
				t.Fatalf("second converge: err %v, applied %d ops, %d writes", err, len(rep.Applied), k.Writes-writes)
			}
		})
	}
}

// TestAnyOrderEndsInLastState applies random sequences of the seed
// configurations and checks that the kernel ends exactly where applying
// only the last one to a fresh box leads.
func TestAnyOrderEndsInLastState(t *testing.T) {
	all := seeds(t)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range all {
			if !yield(n) {
				return
			}
		}
	})
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 60 {
		seq := make([]string, 1+r.IntN(5))
		for j := range seq {
			seq[j] = names[r.IntN(len(names))]
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			k := world()
			for _, n := range seq {
				if _, err := Converge(ctx, k, all[n], nil); err != nil {
					t.Fatalf("%s: %v", n, err)
				}
			}
			last := all[seq[len(seq)-1]]
			fresh := world()
			if _, err := Converge(ctx, fresh, last, nil); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(withoutTunnelCopies(fresh), withoutTunnelCopies(k), dumpOpts); diff != "" {
				t.Errorf("after %v (-fresh +sequence):\n%s", seq, diff)
			}
			for _, k := range []*fakekernel.Kernel{fresh, k} {
				if _, err := Down(ctx, k, last); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(dumpOf(fresh), dumpOf(k), dumpOpts); diff != "" {
				t.Errorf("after %v and down (-fresh +sequence):\n%s", seq, diff)
			}
		})
	}
}

// withoutTunnelCopies is k's dump without the record of the forwarding
// values of tunneld's tunnels (and of devices gone since): which of them
// have one depends on which existed when ip_forward was first written,
// and they are put back, if at all, just before the tunnel is deleted.
func withoutTunnelCopies(k *fakekernel.Kernel) dump {
	d := dumpOf(k)
	d.Originals = maps.Clone(d.Originals)
	for p := range d.Originals {
		dev := model.SysctlDevice(p)
		if _, exists := k.Devices[dev]; model.SysctlLeader(p) != "" && (k.Aliases[dev] == model.LinkAlias || !exists && dev != "all" && dev != "default") {
			delete(d.Originals, p)
		}
	}
	return d
}

// TestForeignStateSurvives: apply, reload with a changed configuration and
// down leave every foreign object as it was, and down restores sysctls.
func TestForeignStateSurvives(t *testing.T) {
	all := seeds(t)
	k := world()
	before := dumpOf(world())
	for _, n := range []string{"seeds/002_ff25396f952da8ec/colo.toml", "seeds/004_f346a18590489699/rfe.toml", "reference.toml"} {
		if _, err := Converge(ctx, k, all[n], nil); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if k.Tables["inet fw4"] != before.Tables["inet fw4"] {
			t.Fatalf("%s: foreign nft table changed", n)
		}
		foreign := func(d dump) []fakekernel.Route {
			return slices.DeleteFunc(slices.Clone(d.Routes), func(r fakekernel.Route) bool { return r.Proto == model.RouteProtocol })
		}
		if diff := cmp.Diff(foreign(before), foreign(dumpOf(k)), dumpOpts); diff != "" {
			t.Fatalf("%s: foreign routes changed (-before +after):\n%s", n, diff)
		}
	}
	if _, err := Down(ctx, k, all["reference.toml"]); err != nil {
		t.Fatal(err)
	}
	// Links of earlier configurations carry tunneld's alias and go too.
	if diff := cmp.Diff(before, dumpOf(k), dumpOpts); diff != "" {
		t.Errorf("after down (-before +after):\n%s", diff)
	}
}

// TestConvergeReportsEveryFailure: a failing operation does not stop the
// others, and the error names each failed object.
func TestConvergeReportsEveryFailure(t *testing.T) {
	c := seeds(t)["seeds/001_cbb9f95fb8720836/proxy.toml"]
	k := world()
	k.Fail = func(op plan.Op) error {
		if op.Kind == plan.RouteAdd && op.Route.Dst.Addr() != netip.MustParseAddr("128.198.60.201") {
			return fmt.Errorf("injected")
		}
		return nil
	}
	_, err := Converge(ctx, k, c, nil)
	want := "route 128.198.60.200/32 table main: injected\nroute 128.198.61.51/32 table main: injected"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
	if len(k.Tunnels) != 2 || len(k.Routes) != 4 {
		t.Errorf("the rest was not applied: %d tunnels, %d routes", len(k.Tunnels), len(k.Routes))
	}
}

// TestSucceededLeavesOutSkipped: the operations an apply skipped because
// one they depend on failed (those on a tunnel whose creation failed)
// were not done: reported as done, the daemon would log them as changes
// and count them as repairs, taking the failure for a fight.
func TestSucceededLeavesOutSkipped(t *testing.T) {
	link := &model.Link{Name: "Moe", Mode: model.ModeIPIP}
	add := plan.Op{Kind: plan.LinkAdd, Link: link}
	addr := plan.Op{Kind: plan.AddrAdd, Addr: &model.Addr{Link: "Moe", Prefix: netip.MustParsePrefix("198.51.100.42/32")}}
	up := plan.Op{Kind: plan.LinkUp, Name: "Moe", Link: link}
	route := plan.Op{Kind: plan.RouteAdd, Route: &model.Route{Table: 254, Dst: netip.MustParsePrefix("10.97.0.0/24"), Via: netip.MustParseAddr("10.0.0.2")}}
	ops := []plan.Op{add, addr, up, route}
	cmds := func(ops []plan.Op) []string {
		var out []string
		for _, op := range ops {
			out = append(out, op.Command(nil))
		}
		return out
	}
	failed := []*kernel.OpError{{Op: add, Err: errors.New("kernel has no ipip support")}}
	for _, tc := range []struct {
		name string
		err  error
		want []plan.Op
	}{
		{"no error", nil, ops},
		{"not an apply error", errors.New("netlink: broken"), nil},
		{"creation failed, nothing skipped", &kernel.ApplyError{Failed: failed}, []plan.Op{addr, up, route}},
		{"creation failed, its operations skipped", &kernel.ApplyError{Failed: failed, Skipped: []plan.Op{addr, up}}, []plan.Op{route}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(cmds(tc.want), cmds(succeeded(ops, tc.err))); diff != "" {
				t.Errorf("succeeded (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGREIgnoreDFByHand: a gre tunnel set to nopmtudisc ignore-df by
// hand converges back to pmtudisc in one round of two changes, ignore-df
// cleared first: the kernel (and the fake one) refuses pmtudisc while
// the tunnel has ignore-df, even in the change that clears it, so the
// one change tunneld sent before failed at every round.
func TestGREIgnoreDFByHand(t *testing.T) {
	k := world()
	c, err := config.Parse("t.toml", []byte(`
[global]
firewall = false

[tunnel.g]
mode = "gre"
local = "203.0.113.10"
remote = "198.51.100.1"
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Converge(ctx, k, c, nil); err != nil {
		t.Fatal(err)
	}
	l := k.Tunnels["g"]
	want := l
	l.PMTUDisc, l.Others.IgnoreDF = false, true
	k.Tunnels["g"] = l
	rep, err := Converge(ctx, k, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, op := range rep.Applied {
		cmds = append(cmds, op.Command(nil))
	}
	wantCmds := []string{
		"ip link change dev g mtu 1476 type gre local 203.0.113.10 remote 198.51.100.1 ttl 64 nopmtudisc noignore-df",
		"ip link change dev g mtu 1476 type gre local 203.0.113.10 remote 198.51.100.1 ttl 64 pmtudisc",
	}
	if diff := cmp.Diff(wantCmds, cmds); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, k.Tunnels["g"], cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("tunnel after (-want +got):\n%s", diff)
	}
}

// TestDropHeld: what needs a held tunnel waits with it: its address,
// routes and setting up when its creation is held; nothing of another
// device's. Its setting up held alone leaves its routes to the plan:
// desired makes none through a held tunnel that is down (see
// TestHeldTunnelNeedsNoRouteDropped).
func TestDropHeld(t *testing.T) {
	moe := &model.Link{Name: "moe"}
	ops := []plan.Op{
		{Kind: plan.LinkAdd, Link: moe},
		{Kind: plan.AddrAdd, Addr: &model.Addr{Link: "moe"}},
		{Kind: plan.AddrAdd, Addr: &model.Addr{Link: "lan"}},
		{Kind: plan.LinkUp, Link: moe, Name: "moe"},
		{Kind: plan.RouteAdd, Route: &model.Route{Dev: "moe"}},
		{Kind: plan.RouteReplace, Route: &model.Route{Dev: "moe"}},
		{Kind: plan.RouteDel, Route: &model.Route{Dev: "moe"}},
		{Kind: plan.RouteAdd, Route: &model.Route{Dev: "lan"}},
	}
	kinds := func(ops []plan.Op) (out []string) {
		for _, op := range ops {
			out = append(out, fmt.Sprint(op.Kind, " ", op.Object()))
		}
		return out
	}
	tests := []struct {
		name string
		hold Hold
		want []plan.Op
	}{
		{"nothing held", func(plan.Op) bool { return false }, ops},
		{"creation held", func(op plan.Op) bool { return op.Kind == plan.LinkAdd }, []plan.Op{ops[2], ops[6], ops[7]}},
		{"setting up held", func(op plan.Op) bool { return op.Kind == plan.LinkUp }, []plan.Op{ops[0], ops[1], ops[2], ops[4], ops[5], ops[6], ops[7]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dropHeld(slices.Clone(ops), []Hold{tt.hold})
			if diff := cmp.Diff(kinds(tt.want), kinds(got)); diff != "" {
				t.Errorf("left (-want +got):\n%s", diff)
			}
			// HeldBack marks the others, in place (status's drift).
			var notHeld []plan.Op
			for i, held := range HeldBack(ops, tt.hold) {
				if !held {
					notHeld = append(notHeld, ops[i])
				}
			}
			if diff := cmp.Diff(kinds(tt.want), kinds(notHeld)); diff != "" {
				t.Errorf("not held back (-want +got):\n%s", diff)
			}
		})
	}
}

// TestConvergeEndedWarnings: a warning the first round gives and the
// converge's own changes end (rules in tunneld's table it did not write,
// gone with the table it replaces) is in Report.Ended, for apply and the
// daemon to say; the last round's own warnings are not.
func TestConvergeEndedWarnings(t *testing.T) {
	k := world()
	k.SetFilter(&model.Filter{Observed: "chain input type filter hook input priority 0\n\t?untagged handle 6\n"})
	c, err := config.Parse("t.toml", []byte(strings.Replace(refusedConf, "%s", "gre", 1)))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Converge(context.Background(), k, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Ended) != 1 || !strings.Contains(rep.Ended[0], "holds a rule this version of tunneld did not write") {
		t.Errorf("Ended = %q, want the warning about the rule tunneld did not write", rep.Ended)
	}
	for _, w := range rep.Ended {
		if slices.Contains(rep.Last.Want.Warnings, w) {
			t.Errorf("Ended has the last round's warning %q", w)
		}
	}
}

// seamWarning is a kernel whose next observation gives warn, once, as
// the Linux seam gives an unreadable record's (model.Inputs.Warnings).
type seamWarning struct {
	kernel.Kernel
	warn []string
}

func (k *seamWarning) Observe(ctx context.Context, scope model.Scope) (model.State, model.Inputs, error) {
	s, in, err := k.Kernel.Observe(ctx, scope)
	in.Warnings, k.warn = k.warn, nil
	return s, in, err
}

// TestSeamWarnings: the seam's warnings (an unreadable record, moved
// aside) come first among the snapshot's, for plan and status; a
// converge gives each once, in Ended when a later round no longer does,
// for apply and the daemon; and Down, which plans no desired state,
// gives them in Last.Want.Warnings, for down and the daemon's teardown.
func TestSeamWarnings(t *testing.T) {
	const w = "state record /run/tunneld/sysctl.json is unreadable"
	c, err := config.Parse("t.toml", []byte(strings.Replace(refusedConf, "%s", "gre", 1)))
	if err != nil {
		t.Fatal(err)
	}
	k := &seamWarning{Kernel: world(), warn: []string{w}}
	s, err := Look(ctx, k, c, nil)
	if err != nil || len(s.Want.Warnings) == 0 || s.Want.Warnings[0] != w {
		t.Errorf("Look: warnings %q, %v; want %q first", s.Want.Warnings, err, w)
	}
	k.warn = []string{w}
	rep, err := Converge(ctx, k, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(append(rep.Ended, rep.Last.Want.Warnings...), "\n"), w); n != 1 {
		t.Errorf("Converge: %d of the seam's warning in Ended %q and the last round's %q, want 1", n, rep.Ended, rep.Last.Want.Warnings)
	}
	k.warn = []string{w}
	rep, err = Down(ctx, k, c)
	if err != nil {
		t.Fatal(err)
	}
	// world's rule of protocol 116 at priority 100, outside the band,
	// stays, and is named after the seam's warning.
	stray := desired.StrayRuleWarnings(20000, 20999, []model.Rule{{Family: 4, Priority: 100, Table: 42, HasMark: true, Mark: 1, Mask: 1}}, nil)
	if diff := cmp.Diff(append([]string{w}, stray...), rep.Last.Want.Warnings); diff != "" {
		t.Errorf("Down: warnings (-want +got):\n%s", diff)
	}
}

// TestDownSaysUnmarkedLeft: down leaves a tunnel device of a configured
// name without tunneld's alias, and says so with the command that
// deletes it (a crash of an older version, which recorded no tunnels
// being created, left a tester 32 such, and down said nothing).
func TestDownSaysUnmarkedLeft(t *testing.T) {
	c, err := config.Parse("t.toml", []byte("[global]\nfirewall = false\n[tunnel.t1]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\n[tunnel.t2]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.3\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	k := fakekernel.New()
	k.AddDevice(model.Device{Name: "t1", Kind: "ipip", MTU: 1480})
	k.Tunnels["t1"] = model.Link{Name: "t1", Mode: model.ModeIPIP, Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddr("192.0.2.2")}
	rep, err := Down(ctx, k, c)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`tunnel "t1": the ipip device t1, without tunneld's alias, is left as it is: if tunneld made it (a crash of an older version left it unmarked, or someone changed its alias), delete it: ip link del t1`}
	if diff := cmp.Diff(want, rep.Last.Want.Warnings); diff != "" {
		t.Errorf("down's warnings (-want +got):\n%s", diff)
	}
	if _, ok := k.Tunnels["t1"]; !ok {
		t.Error("down deleted t1")
	}
}
