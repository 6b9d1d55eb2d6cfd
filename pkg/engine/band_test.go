package engine

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/model"
)

// bandConfig has two rules in the band min–max.
func bandConfig(t *testing.T, min, max int) *config.Config {
	t.Helper()
	src := fmt.Sprintf(`[global]
rule_priority_min = %d
rule_priority_max = %d

[[rule]]
from = "10.60.0.0/16"
table = 42

[[rule]]
from = "10.61.0.0/16"
table = 43
`, min, max)
	c, err := config.Parse("band.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rulesOf lists the fake kernel's rules as "priority/protocol".
func rulesOf(k *fakekernel.Kernel) []string {
	var out []string
	for _, r := range k.Rules {
		out = append(out, fmt.Sprintf("%d/%d", r.Priority, r.Proto))
	}
	slices.Sort(out)
	return out
}

// TestRuleBandMoved: after the configuration moves the rule priority
// band, the rules tunneld put in the old band are still its own: apply
// replaces them, down removes them, whichever configuration it is given.
// Foreign rules stay: another protocol in either band, and protocol 116
// outside every band tunneld used.
func TestRuleBandMoved(t *testing.T) {
	old, moved := bandConfig(t, 20000, 20999), bandConfig(t, 21000, 21999)
	noRules, err := config.Parse("empty.toml", []byte("[global]\n"))
	if err != nil {
		t.Fatal(err)
	}
	foreign := []string{"100/116", "20500/4", "21500/4", "22000/116"}
	apply := func(c *config.Config) func(*fakekernel.Kernel) error {
		return func(k *fakekernel.Kernel) error { _, err := Converge(ctx, k, c, nil); return err }
	}
	down := func(c *config.Config) func(*fakekernel.Kernel) error {
		return func(k *fakekernel.Kernel) error { _, err := Down(ctx, k, c); return err }
	}
	tests := []struct {
		name      string
		steps     []func(*fakekernel.Kernel) error
		wantRules []string // besides the foreign ones
		wantBands []model.RuleBand
	}{
		{"apply in the old band", []func(*fakekernel.Kernel) error{apply(old)},
			[]string{"20000/116", "20001/116"}, []model.RuleBand{{Min: 20000, Max: 20999}}},
		{"apply in the new band", []func(*fakekernel.Kernel) error{apply(old), apply(moved)},
			[]string{"21000/116", "21001/116"}, []model.RuleBand{{Min: 21000, Max: 21999}}},
		{"and back", []func(*fakekernel.Kernel) error{apply(old), apply(moved), apply(old)},
			[]string{"20000/116", "20001/116"}, []model.RuleBand{{Min: 20000, Max: 20999}}},
		{"down with the new configuration", []func(*fakekernel.Kernel) error{apply(old), down(moved)}, nil, nil},
		{"down with the old configuration after the new", []func(*fakekernel.Kernel) error{apply(old), apply(moved), down(old)}, nil, nil},
		{"a configuration without rules", []func(*fakekernel.Kernel) error{apply(old), apply(moved), apply(noRules)}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := fakekernel.New()
			for _, p := range []uint32{100, 22000} {
				k.AddForeignRule(model.Rule{Family: 4, Priority: p, Table: 42}, model.RuleProtocol)
			}
			for _, p := range []uint32{20500, 21500} {
				k.AddForeignRule(model.Rule{Family: 4, Priority: p, Table: 42, Src: netip.MustParsePrefix("10.9.0.0/16")}, 4)
			}
			for _, step := range tt.steps {
				if err := step(k); err != nil {
					t.Fatal(err)
				}
			}
			want := slices.Sorted(slices.Values(append(slices.Clone(foreign), tt.wantRules...)))
			if diff := cmp.Diff(want, rulesOf(k)); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantBands, k.Bands); diff != "" {
				t.Errorf("recorded bands (-want +got):\n%s", diff)
			}
			last := tt.steps[len(tt.steps)-1]
			writes := k.Writes
			if err := last(k); err != nil || k.Writes != writes {
				t.Errorf("the last step again: %v, %d writes", err, k.Writes-writes)
			}
		})
	}
}

// TestBand: plans and the scope take the configuration's band.
func TestBand(t *testing.T) {
	for _, tt := range []struct {
		global string
		want   model.RuleBand
	}{
		{"", model.RuleBand{Min: 20000, Max: 20999}},
		{"rule_priority_min = 100\nrule_priority_max = 199\n", model.RuleBand{Min: 100, Max: 199}},
	} {
		c, err := config.Parse("t.toml", []byte("[global]\n"+tt.global))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, Band(c)); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tt.global, diff)
		}
		if diff := cmp.Diff(tt.want, Scope(c).Band); diff != "" {
			t.Errorf("%q: scope (-want +got):\n%s", tt.global, diff)
		}
	}
}

// TestForeignRuleInBand: tunneld places its rules without a priority
// around the rules of others in its band, of either family, and never
// at a priority one of them holds; applied again, nothing changes. A
// foreign rule that comes later moves the rules placed past it, once,
// and one that goes lets them back, once: the placement depends on the
// configuration and the priorities others hold, not on what tunneld did
// before.
func TestForeignRuleInBand(t *testing.T) {
	c := bandConfig(t, 20000, 20999)
	other := func(p uint32, family int) model.Rule {
		r := model.Rule{Family: family, Priority: p, Table: 100, Src: netip.MustParsePrefix("10.9.0.0/16")}
		if family == 6 {
			r.Src = netip.MustParsePrefix("2001:db8:9::/48")
		}
		return r
	}
	remove := func(k *fakekernel.Kernel, p uint32) {
		k.Rules = slices.DeleteFunc(k.Rules, func(r fakekernel.Rule) bool { return r.Proto != model.RuleProtocol && r.Priority == p })
	}
	tests := []struct {
		name    string
		before  []model.Rule // foreign rules before the first apply
		between func(*fakekernel.Kernel)
		want    []string // all rules
	}{
		{"none", nil, nil, []string{"20000/116", "20001/116"}},
		{"the tester's: at the band's first priority", []model.Rule{other(20000, 4)}, nil,
			[]string{"20000/4", "20001/116", "20002/116"}},
		{"an IPv6 one between", []model.Rule{other(20001, 6)}, nil,
			[]string{"20000/116", "20001/4", "20002/116"}},
		{"one coming later at tunneld's second rule", nil, func(k *fakekernel.Kernel) { k.AddForeignRule(other(20001, 4), 4) },
			[]string{"20000/116", "20001/4", "20002/116"}},
		{"one coming later at tunneld's first rule", nil, func(k *fakekernel.Kernel) { k.AddForeignRule(other(20000, 4), 4) },
			[]string{"20000/4", "20001/116", "20002/116"}},
		{"one going", []model.Rule{other(20000, 4)}, func(k *fakekernel.Kernel) { remove(k, 20000) },
			[]string{"20000/116", "20001/116"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := fakekernel.New()
			for _, r := range tt.before {
				k.AddForeignRule(r, 4)
			}
			if _, err := Converge(ctx, k, c, nil); err != nil {
				t.Fatal(err)
			}
			if tt.between != nil {
				tt.between(k)
				if _, err := Converge(ctx, k, c, nil); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tt.want, rulesOf(k)); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
			writes := k.Writes
			rep, err := Converge(ctx, k, c, nil)
			if err != nil || k.Writes != writes || len(rep.Applied) != 0 {
				t.Errorf("applied again: %v, %d writes: %v", err, k.Writes-writes, rep.Applied)
			}
		})
	}
}

// strayCommands lists, for each warning about a rule of tunneld's
// protocol outside its bands, the deletion it gives, "copy: " first
// where it says the rule has a configured one's selectors and table.
func strayCommands(warnings []string) []string {
	var out []string
	for _, w := range warnings {
		i := strings.LastIndex(w, "delete it: ")
		if !strings.Contains(w, "outside its rule band") && !strings.Contains(w, "outside the band too") || i < 0 {
			continue
		}
		cmd := w[i+len("delete it: "):]
		if strings.Contains(w, "looked up in table") {
			cmd = "copy: " + cmd
		}
		out = append(out, cmd)
	}
	return out
}

// TestStrayRulesAfterLostBandRecord: the tester's case. Rules applied in
// the band 25000–25999, the record of bands lost (the state directory
// wiped), the band edited back to the default, and apply added the
// file's rules again in it: the old ones, protocol 116 outside every
// band tunneld owns, are not tunneld's and stay, but apply, status
// (Look: no drift) and down each name them in a warning with their
// deletion, apply and status saying they copy configured rules. Before,
// nothing said a word and every rule was in the kernel twice. With the
// record kept, the old ones are tunneld's: moved, and no warning.
func TestStrayRulesAfterLostBandRecord(t *testing.T) {
	old, moved := bandConfig(t, 25000, 25999), bandConfig(t, 20000, 20999)
	copies := []string{
		"copy: ip rule del from 10.60.0.0/16 lookup 42 priority 25000 protocol 116",
		"copy: ip rule del from 10.61.0.0/16 lookup 43 priority 25001 protocol 116",
	}
	left := []string{
		"ip rule del from 10.60.0.0/16 lookup 42 priority 25000 protocol 116",
		"ip rule del from 10.61.0.0/16 lookup 43 priority 25001 protocol 116",
	}
	tests := []struct {
		name      string
		lost      bool
		wantRules []string // after the apply of the moved band
		warned    []string // by that apply and by status
		afterDown []string
		downWarns []string
	}{
		{"record kept", false, []string{"20000/116", "20001/116"}, nil, nil, nil},
		{"record lost", true, []string{"20000/116", "20001/116", "25000/116", "25001/116"}, copies,
			[]string{"25000/116", "25001/116"}, left},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := fakekernel.New()
			if _, err := Converge(ctx, k, old, nil); err != nil {
				t.Fatal(err)
			}
			if tt.lost {
				k.Bands = nil
			}
			rep, err := Converge(ctx, k, moved, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantRules, rulesOf(k)); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warned, strayCommands(append(slices.Clip(rep.Ended), rep.Last.Want.Warnings...))); diff != "" {
				t.Errorf("apply's warnings (-want +got):\n%s", diff)
			}
			s, err := Look(ctx, k, moved, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !s.Plan.Empty() {
				t.Errorf("status: drift\n%s", s.Plan)
			}
			if diff := cmp.Diff(tt.warned, strayCommands(s.Want.Warnings)); diff != "" {
				t.Errorf("status's warnings (-want +got):\n%s", diff)
			}
			rep, err = Down(ctx, k, moved)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.afterDown, rulesOf(k)); diff != "" {
				t.Errorf("rules after down (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.downWarns, strayCommands(rep.Last.Want.Warnings)); diff != "" {
				t.Errorf("down's warnings (-want +got):\n%s", diff)
			}
		})
	}
}
