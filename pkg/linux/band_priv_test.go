package linux

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/plan"
)

// bandRules is a configuration with two rules, in the band 20000–20999
// unless moved is set (21000–21999).
func bandRules(t *testing.T, moved bool) string {
	src := "[global]\nfirewall = false\n"
	if moved {
		src += "rule_priority_min = 21000\nrule_priority_max = 21999\n"
	}
	return src + "[[rule]]\nfrom = \"10.60.0.0/16\"\ntable = 42\n\n[[rule]]\nto = \"2001:db8:6::/48\"\ntable = 43\n"
}

// kernelRules lists the namespace's rules of protocol 116 and of the
// foreign rules' protocol (boot), as "priority/protocol".
func kernelRules(t *testing.T, k *Kernel) []string {
	t.Helper()
	msgs, err := k.listRules(nil, unix.AF_UNSPEC)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		if p := m.attrs.protocol; p == model.RuleProtocol || p == unix.RTPROT_BOOT {
			out = append(out, fmt.Sprintf("%d/%d", m.attrs.priority, p))
		}
	}
	return out
}

// TestPrivilegedRuleBandMoved: with the rule priority band moved, apply
// puts tunneld's rules in the new band and removes those in the old one,
// and down, given either configuration, removes them all; foreign rules
// (another protocol in either band, protocol 116 outside both) stay, and
// tunneld's rules are placed around the one in the new band.
func TestPrivilegedRuleBandMoved(t *testing.T) {
	tests := []struct {
		name  string
		steps []string // "apply" or "down", then "old" or "new"
		want  []string // tunneld's rules left; nil: the namespace as before
	}{
		// 21001 is the foreign rule's: tunneld's second rule is placed past it.
		{"apply in the new band", []string{"apply old", "apply new"}, []string{"21000/116", "21002/116"}},
		{"down with the new configuration", []string{"apply old", "down new"}, nil},
		{"down with the old configuration after the new", []string{"apply old", "apply new", "down old"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := open(t)
			snap := foreign(t)
			// Protocol 116 outside both bands, another protocol inside the
			// new one (foreign puts rules at 100/116, 20001 and 20500).
			for _, r := range []netnstest.Rule{
				{Family: unix.AF_INET, Priority: 22000, Table: 42, Proto: model.RuleProtocol},
				{Family: unix.AF_INET, Priority: 21001, Table: 43, Proto: unix.RTPROT_BOOT, Src: netip.MustParsePrefix("10.61.0.0/16")},
			} {
				if err := netnstest.AddRule(r); err != nil {
					t.Fatal(err)
				}
			}
			before := snap()
			foreignRules := kernelRules(t, k)
			for _, step := range tt.steps {
				job, which, _ := strings.Cut(step, " ")
				c := parse(t, bandRules(t, which == "new"))
				var err error
				if job == "apply" {
					_, err = engine.Converge(ctx, k, c, nil)
				} else {
					_, err = engine.Down(ctx, k, c)
				}
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
			}
			if tt.want == nil {
				if after := snap(); after != before {
					t.Errorf("after down (-before +after):\n%s", cmp.Diff(before, after))
				}
				return
			}
			var got []string
			for _, r := range kernelRules(t, k) {
				if !slices.Contains(foreignRules, r) {
					got = append(got, r)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("tunneld's rules (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(len(foreignRules)+len(tt.want), len(kernelRules(t, k))); diff != "" {
				t.Errorf("rules in all (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPrivilegedCrashWhileMovingRuleBand stops tunneld after each
// operation of the apply that moves the band, and has a new process with
// the same state directory take down with the new configuration: no rule
// of tunneld's is left in either band.
func TestPrivilegedCrashWhileMovingRuleBand(t *testing.T) {
	netnstest.Gate(t) // the loop below ends on a finished or failed run, not a skipped one
	old, moved := parse(t, bandRules(t, false)), parse(t, bandRules(t, true))
	for n := 0; ; n++ {
		finished := false
		t.Run(fmt.Sprint("crash after ", n), func(t *testing.T) {
			netnstest.Enter(t)
			snap := foreign(t)
			before := snap()
			dir := t.TempDir()
			k1, err := Open(Options{StateDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := engine.Converge(ctx, k1, old, nil); err != nil {
				t.Fatal(err)
			}
			_, err = engine.Converge(ctx, &crashing{Kernel: k1, left: n}, moved, nil)
			k1.Close()
			finished = downAfterCrash(t, dir, err, moved)
			if after := snap(); after != before {
				t.Fatalf("after down (-before +after):\n%s", cmp.Diff(before, after))
			}
		})
		if finished || t.Failed() {
			break
		}
	}
}

// TestPrivilegedForeignRuleInBand is the tester's case: a rule added by
// hand at the band's first priority (`ip rule add prio 20000 from
// 10.9.9.9 table 100`, protocol unspec), then tunneld's rules without a
// priority applied. They are placed past it, none sharing a priority with
// a rule that is not tunneld's, and a second apply changes nothing; the
// same after another foreign rule comes at one of tunneld's priorities
// (tunneld's rules from there on move up once), and after the first one
// goes (they move back down). Before, tunneld's first rule shared 20000
// with the tester's.
func TestPrivilegedForeignRuleInBand(t *testing.T) {
	k := open(t)
	c := parse(t, "[global]\nfirewall = false\n[tables]\nMoe = 42\n"+
		"[[rule]]\nfrom = \"198.51.100.42\"\ntable = \"Moe\"\n"+
		"[[rule]]\nfrom = \"198.51.100.43\"\ntable = \"Moe\"\n"+
		"[[rule]]\nto = \"2001:db8:6::/48\"\ntable = \"Moe\"\n")
	steps := []struct {
		name string
		ip   []string // what the admin does before the apply
		want []string // tunneld's rules, as "priority/protocol"
	}{
		{"the tester's rule at 20000", []string{"rule", "add", "prio", "20000", "from", "10.9.9.9", "table", "100"},
			[]string{"20001/116", "20002/116", "20003/116"}},
		{"another at 20002, tunneld's", []string{"rule", "add", "prio", "20002", "from", "10.9.9.10", "table", "100"},
			[]string{"20001/116", "20003/116", "20004/116"}},
		{"the tester's rule gone", []string{"rule", "del", "prio", "20000", "from", "10.9.9.9", "table", "100"},
			[]string{"20000/116", "20001/116", "20003/116"}},
	}
	for _, st := range steps {
		ipCmd(t, st.ip...)
		if _, err := engine.Converge(ctx, k, c, nil); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		msgs, err := k.listRules(nil, unix.AF_UNSPEC)
		if err != nil {
			t.Fatal(err)
		}
		var ours []string
		others := map[uint32]bool{}
		for _, m := range msgs {
			if m.attrs.protocol == model.RuleProtocol {
				ours = append(ours, fmt.Sprintf("%d/%d", m.attrs.priority, m.attrs.protocol))
			} else {
				others[m.attrs.priority] = true
			}
		}
		slices.Sort(ours)
		if diff := cmp.Diff(st.want, ours); diff != "" {
			t.Errorf("%s: tunneld's rules (-want +got):\n%s", st.name, diff)
		}
		for _, m := range msgs {
			if p := m.attrs.priority; m.attrs.protocol == model.RuleProtocol && others[p] {
				t.Errorf("%s: tunneld's rule at %d shares it with a foreign rule", st.name, p)
			}
		}
		rep, err := engine.Converge(ctx, k, c, nil)
		if err != nil || len(rep.Applied) != 0 {
			t.Errorf("%s: applied again: %v, %v", st.name, err, rep.Applied)
		}
	}
}

// TestPrivilegedBandForgottenAfterKilledDown: a down killed after it
// deleted tunneld's rules and before it forgot their band left the band
// recorded; the next down, which has no rule left to delete, forgot it
// no more (a tester's stale rule-bands.json). Now an Apply that finds
// no rule of tunneld's protocol brings the record up to date. The rules
// are deleted here through a second Kernel with a state directory of
// its own, as the killed process left them.
func TestPrivilegedBandForgottenAfterKilledDown(t *testing.T) {
	k := open(t)
	foreign(t)
	c := parse(t, withoutTunnels)
	converge(t, k, c)
	dir := k.opts.StateDir
	if _, err := os.Stat(filepath.Join(dir, bandsFile)); err != nil {
		t.Fatalf("no band recorded after apply: %v", err)
	}
	have, _, err := k.Observe(ctx, engine.Scope(c))
	if err != nil {
		t.Fatal(err)
	}
	var dels plan.Plan
	for i := range have.Rules {
		dels.Ops = append(dels.Ops, plan.Op{Kind: plan.RuleDel, Rule: &have.Rules[i]})
	}
	if len(dels.Ops) == 0 {
		t.Fatal("withoutTunnels has no rules")
	}
	killed, err := Open(Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer killed.Close()
	if err := killed.Apply(ctx, dels); err != nil {
		t.Fatal(err)
	}
	next, err := Open(Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if _, err := engine.Down(ctx, next, c); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, bandsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record after down: %q (%v), want none", b, err)
	}
}

// TestPrivilegedForgedBand: a forged band record ([{"Min": 0, "Max":
// 32766}], a tester's) makes down delete no rule of protocol 116 outside
// tunneld's band, at priority 0 neither; tunneld's own go.
func TestPrivilegedForgedBand(t *testing.T) {
	k := open(t)
	k.StateLocked()
	stray := []netnstest.Rule{
		{Family: unix.AF_INET, Priority: 0, Table: unix.RT_TABLE_MAIN, Proto: model.RuleProtocol, Src: netip.MustParsePrefix("10.57.0.0/24")},
		{Family: unix.AF_INET, Priority: 100, Table: 55, Proto: model.RuleProtocol, Src: netip.MustParsePrefix("10.55.0.0/24")},
		{Family: unix.AF_INET, Priority: 32000, Table: 56, Proto: model.RuleProtocol, Src: netip.MustParsePrefix("10.56.0.0/24")},
	}
	for _, r := range stray {
		if err := netnstest.AddRule(r); err != nil {
			t.Fatal(err)
		}
	}
	c := parse(t, bandRules(t, false))
	if _, err := engine.Converge(ctx, k, c, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(k.opts.StateDir, bandsFile)
	if err := os.WriteFile(path, []byte(`[{"Min": 0, "Max": 32766}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	k2, rep := downApart(t, k, c)
	var got []string
	for _, r := range kernelRules(t, k2) {
		if strings.HasSuffix(r, "/116") {
			got = append(got, r)
		}
	}
	if diff := cmp.Diff([]string{"0/116", "100/116", "32000/116"}, got); diff != "" {
		t.Errorf("rules of protocol 116 after down (-want +got):\n%s", diff)
	}
	if w := strings.Join(rep.Last.Want.Warnings, "\n"); !strings.Contains(w, "names rule priority band 0-32766, which no configuration makes") {
		t.Errorf("down's warnings do not name the forged band:\n%s", w)
	}
}

// downApart runs `tunneld down` of c on k's state directory as a process
// of its own does: with a kernel opened anew, holding the lock.
func downApart(t *testing.T, k *Kernel, c *config.Config) (*Kernel, engine.Report) {
	t.Helper()
	k2, err := Open(Options{StateDir: k.opts.StateDir, NoFilter: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k2.Close() })
	k2.StateLocked()
	rep, err := engine.Down(ctx, k2, c)
	if err != nil {
		t.Fatal(err)
	}
	return k2, rep
}
