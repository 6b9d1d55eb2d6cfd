package engine

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// TestNarrowedRuleReplaced: a rule of tunneld's that someone replaced
// with a narrower one (protocol 116 and the priority kept, a selector
// such as `ipproto 6` added) is not tunneld's rule: one converge adds
// tunneld's rule and deletes the narrowed one, also when tunneld's rule
// is there too, before or behind it; a second converge has nothing to
// do.
func TestNarrowedRuleReplaced(t *testing.T) {
	c, err := config.Parse("rule.toml", []byte("[global]\nfirewall = false\n\n[[rule]]\nfrom = \"192.168.1.0/24\"\ntable = 42\n"))
	if err != nil {
		t.Fatal(err)
	}
	exact := model.Rule{Family: 4, Priority: 20000, Src: netip.MustParsePrefix("192.168.1.0/24"), Table: 42}
	narrowed := exact
	narrowed.Extra, narrowed.Wire = "ipproto 6", "\x00\x00\x00\x00\x00\x05\x00\x16\x00\x06\x00\x00\x00"
	for _, tt := range []struct {
		name   string
		kernel []model.Rule // in the kernel's order
		want   []plan.Kind
	}{
		{"narrowed in place of tunneld's", []model.Rule{narrowed}, []plan.Kind{plan.RuleAdd, plan.RuleDel}},
		{"narrowed before tunneld's", []model.Rule{narrowed, exact}, []plan.Kind{plan.RuleDel}},
		{"narrowed after tunneld's", []model.Rule{exact, narrowed}, []plan.Kind{plan.RuleDel}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := fakekernel.New()
			for _, r := range tt.kernel {
				k.AddForeignRule(r, model.RuleProtocol)
			}
			rep, err := Converge(ctx, k, c, nil)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []plan.Kind
			for _, op := range rep.Applied {
				kinds = append(kinds, op.Kind)
			}
			if diff := cmp.Diff(tt.want, kinds); diff != "" {
				t.Errorf("first converge (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]fakekernel.Rule{{Rule: exact, Proto: model.RuleProtocol}}, k.Rules, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("rules after one converge (-want +got):\n%s", diff)
			}
			rep, err = Converge(ctx, k, c, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Applied) != 0 {
				t.Errorf("second converge applied %v, want nothing", rep.Applied)
			}
		})
	}
	// down deletes the narrowed rule first: the kernel would take the
	// deletion of tunneld's for the narrowed rule before it.
	k := fakekernel.New()
	k.AddForeignRule(narrowed, model.RuleProtocol)
	k.AddForeignRule(exact, model.RuleProtocol)
	if _, err := Down(ctx, k, c); err != nil {
		t.Fatal(err)
	}
	if len(k.Rules) != 0 {
		t.Errorf("rules after down: %+v, want none", k.Rules)
	}
}
