package desired

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

// TestRulesAroundForeignRules: a rule without a priority is placed at the
// lowest priority of the band that neither another rule of the file nor a
// rule tunneld does not own (Inputs.ForeignRules, of either family) holds,
// with a warning naming what it was placed past; an explicit priority is
// kept, with a warning when a foreign rule of its family shares it; a rule
// foreign rules leave no room for is left out, with a warning. Before, a
// foreign rule was not looked at: the tester's `ip rule add prio 20000 from
// 10.9.9.9 table 100` and tunneld's first rule shared priority 20000, and
// which the kernel looked at first was the order they were added in.
func TestRulesAroundForeignRules(t *testing.T) {
	const two = "[tables]\nMoe = 42\n[[rule]]\nfrom = \"198.51.100.42\"\ntable = \"Moe\"\n[[rule]]\nfrom = \"198.51.100.43\"\ntable = \"Moe\"\n"
	const explicit = "[[rule]]\nfrom = \"10.0.0.1\"\ntable = 7\npriority = 20000\n[[rule]]\nfrom = \"10.0.0.2\"\ntable = 7\n"
	const explicit6 = "[[rule]]\nfrom = \"2001:db8::1\"\ntable = 7\npriority = 20000\n[[rule]]\nfrom = \"10.0.0.2\"\ntable = 7\n"
	const narrow = "rule_priority_min = 32000\nrule_priority_max = 32001\n[[rule]]\nfrom = \"10.0.0.1\"\ntable = 7\n[[rule]]\nfrom = \"10.0.0.2\"\ntable = 7\n"
	v4 := func(p uint32) model.ForeignRule { return model.ForeignRule{Priority: p, Family: 4} }
	v6 := func(p uint32) model.ForeignRule { return model.ForeignRule{Priority: p, Family: 6} }
	tests := []struct {
		name     string
		conf     string
		foreign  []model.ForeignRule
		want     []uint32
		warnings []string
		leftOut  []int
	}{
		{"no foreign rule", two, nil, []uint32{20000, 20001}, nil, nil},
		{"the tester's: one at the band's first priority", two, []model.ForeignRule{v4(20000)}, []uint32{20001, 20002},
			[]string{"rule[0]: placed at priority 20001, past 20000, which a rule tunneld does not own holds in tunneld's rule band 20000–20999 (move that rule out of the band, or the band: global.rule_priority_min/max)"}, nil},
		{"one between the file's", two, []model.ForeignRule{v4(20001)}, []uint32{20000, 20002},
			[]string{"rule[1]: placed at priority 20002, past 20001, which a rule tunneld does not own holds in tunneld's rule band 20000–20999 (move that rule out of the band, or the band: global.rule_priority_min/max)"}, nil},
		{"one past the file's: no warning", two, []model.ForeignRule{v4(20500)}, []uint32{20000, 20001}, nil, nil},
		{"one outside the band is not an input, and changes nothing", two, []model.ForeignRule{v4(19999), v4(21000)}, []uint32{20000, 20001}, nil, nil},
		{"an IPv6 one is passed over too", two, []model.ForeignRule{v6(20000)}, []uint32{20001, 20002},
			[]string{"rule[0]: placed at priority 20001, past 20000, which a rule tunneld does not own holds in tunneld's rule band 20000–20999 (move that rule out of the band, or the band: global.rule_priority_min/max)"}, nil},
		{"three at two priorities", two, []model.ForeignRule{v4(20000), v6(20000), v4(20001)}, []uint32{20002, 20003},
			[]string{"rule[0]: placed at priority 20002, past 20000 and 20001, which rules tunneld does not own hold in tunneld's rule band 20000–20999 (move those rules out of the band, or the band: global.rule_priority_min/max)"}, nil},
		{"an explicit priority is kept beside one of its family", explicit, []model.ForeignRule{v4(20000)}, []uint32{20000, 20001},
			[]string{"rule[0]: priority 20000 is also held by an IPv4 rule tunneld does not own: the kernel looks at the two in the order they were added (give rule[0] another priority, or none: tunneld then gives it one no other rule holds)"}, nil},
		{"an explicit priority beside two of its family", explicit, []model.ForeignRule{v4(20000), v4(20000)}, []uint32{20000, 20001},
			[]string{"rule[0]: priority 20000 is also held by 2 IPv4 rules tunneld does not own: the kernel looks at them in the order they were added (give rule[0] another priority, or none: tunneld then gives it one no other rule holds)"}, nil},
		{"an explicit priority beside one of the other family: no warning", explicit6, []model.ForeignRule{v4(20000)}, []uint32{20000, 20001}, nil, nil},
		{"foreign rules leave a rule no room", narrow, []model.ForeignRule{v4(32001)}, []uint32{32000},
			[]string{"rule[1]: left out: no free priority left in tunneld's rule band 32000–32001, 1 of whose priorities rules tunneld does not own hold (move those rules out of the band, or widen it: global.rule_priority_min/max)"}, []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parse(t, "[global]\nfirewall = false\n"+tt.conf)
			if len(c.Rules) == 0 {
				t.Fatal("no rules")
			}
			r := Build(c, model.Inputs{ForeignRules: tt.foreign}, model.State{})
			var got []uint32
			for _, ru := range r.State.Rules {
				got = append(got, ru.Priority)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("priorities (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, r.Warnings, opts); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.leftOut, r.RulesLeftOut, opts); diff != "" {
				t.Errorf("rules left out (-want +got):\n%s", diff)
			}
			if len(r.Notes) != 0 {
				t.Errorf("notes: %q", r.Notes)
			}
		})
	}
}

// TestStrayRuleWarnings: each rule of tunneld's protocol outside every
// band it owns (Inputs.StrayRules) is named in a warning that says it is
// not tunneld's and stays, and gives the command that deletes exactly
// it (its family, selectors, what someone narrowed it with, priority);
// one with a configured rule's selectors and table says so. The tester
// lost the band record, edited the band, and had every rule twice, with
// status saying "drift: none"; the rules placed in the band are as they
// were, the stray ones not being in it.
func TestStrayRuleWarnings(t *testing.T) {
	const conf = "[[rule]]\nfrom = \"10.100.2.1\"\ntable = 102\n[[rule]]\nfrom = \"10.100.4.1\"\ntable = 101\n[[rule]]\nfrom = \"2001:db8:2::/64\"\ntable = 102\n"
	v4 := func(p uint32, src string, table uint32) model.Rule {
		return model.Rule{Family: 4, Priority: p, Src: netip.MustParsePrefix(src), Table: table}
	}
	const not = "IPv%d rule at priority %d has tunneld's protocol 116 but lies outside its rule band 20000–20999 and every band it recorded as used: " +
		"it is not tunneld's, and tunneld leaves it alone (a rule of an earlier band whose record, rule-bands.json in the state directory, was lost, or someone else's)"
	// The ones after the first, which says why.
	const short = "IPv%d rule at priority %d: protocol 116 outside the band too, left alone"
	tests := []struct {
		name     string
		stray    []model.Rule
		warnings []string
	}{
		{"none", nil, nil},
		{"the tester's: the old band's copies of the file's rules", []model.Rule{v4(25000, "10.100.2.1/32", 102), v4(25001, "10.100.4.1/32", 101),
			{Family: 6, Priority: 25002, Src: netip.MustParsePrefix("2001:db8:2::/64"), Table: 102}},
			[]string{
				fmt.Sprintf(not, 4, 25000) + "; it has the selectors and table of rule[0]: what rule[0] matches is looked up in table 102 twice" + BusyboxRuleDel + "; " +
					"unless it is someone else's, delete it: ip rule del from 10.100.2.1 lookup 102 priority 25000 protocol 116",
				fmt.Sprintf(short, 4, 25001) + "; it has the selectors and table of rule[1]: what rule[1] matches is looked up in table 101 twice; " +
					"delete it: ip rule del from 10.100.4.1 lookup 101 priority 25001 protocol 116",
				fmt.Sprintf(short, 6, 25002) + "; it has the selectors and table of rule[2]: what rule[2] matches is looked up in table 102 twice; " +
					"delete it: ip -6 rule del from 2001:db8:2::/64 lookup 102 priority 25002 protocol 116",
			}},
		{"another table is no copy", []model.Rule{v4(100, "10.100.2.1/32", 7)}, []string{
			fmt.Sprintf(not, 4, 100) + BusyboxRuleDel + "; unless it is someone else's, delete it: ip rule del from 10.100.2.1 lookup 7 priority 100 protocol 116"}},
		{"two at one priority: each deleted by its selectors", []model.Rule{v4(30000, "10.9.0.0/16", 7), {Family: 4, Priority: 30000, HasMark: true, Mark: 1, Mask: 1, Table: 7}}, []string{
			fmt.Sprintf(not, 4, 30000) + BusyboxRuleDel + "; unless it is someone else's, delete it: ip rule del from 10.9.0.0/16 lookup 7 priority 30000 protocol 116",
			fmt.Sprintf(short, 4, 30000) + "; delete it: ip rule del fwmark 0x1/0x1 lookup 7 priority 30000 protocol 116"}},
		{"a narrower one first at the priority: the copy's command would take it", []model.Rule{
			{Family: 4, Priority: 25000, Src: netip.MustParsePrefix("10.1.1.7/32"), Table: 200, Extra: "sport 1000-2000"}, v4(25000, "10.1.1.7/32", 200)}, []string{
			fmt.Sprintf(not, 4, 25000) + BusyboxRuleDel + "; unless it is someone else's, delete it: ip rule del from 10.1.1.7 sport 1000-2000 lookup 200 priority 25000 protocol 116",
			fmt.Sprintf(short, 4, 25000) + "; delete it: ip rule del from 10.1.1.7 lookup 200 priority 25000 protocol 116" +
				" (the kernel deletes the first rule at priority 25000 that these words match, and one before it matches them too: delete that one first, with its own command, else this one deletes it instead)"}},
		// A plain rule first, then a nat rule of the same selectors (a
		// tester's): the nat rule's command names no action (ip(8) has
		// no word to delete it by), and takes the plain rule first.
		{"a plain rule, then a nat one of the same selectors", []model.Rule{
			v4(25009, "10.1.1.8/32", 254), {Family: 4, Priority: 25009, Src: netip.MustParsePrefix("10.1.1.8/32"), Table: 254, Extra: "#action:10"}}, []string{
			fmt.Sprintf(not, 4, 25009) + BusyboxRuleDel + "; unless it is someone else's, delete it: ip rule del from 10.1.1.8 lookup main priority 25009 protocol 116",
			fmt.Sprintf(short, 4, 25009) + "; delete it: ip rule del from 10.1.1.8 lookup main priority 25009 protocol 116" +
				"  # the rule's action 10 has no ip(8) word (a deprecated nat rule's, shown as masquerade or map-to): the command names none, and deletes the rule whatever its action" +
				" (the kernel deletes the first rule at priority 25009 that these words match, and one before it matches them too: delete that one first, with its own command, else this one deletes it instead)"}},
		{"narrowed: no copy, deleted with what narrows it", []model.Rule{{Family: 4, Priority: 25000, Src: netip.MustParsePrefix("10.100.2.1/32"), Table: 102, Extra: "ipproto 6"}}, []string{
			fmt.Sprintf(not, 4, 25000) + BusyboxRuleDel + "; unless it is someone else's, delete it: ip rule del from 10.100.2.1 ipproto 6 lookup 102 priority 25000 protocol 116"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parse(t, "[global]\nfirewall = false\n"+conf)
			r := Build(c, model.Inputs{StrayRules: tt.stray}, model.State{})
			if diff := cmp.Diff(tt.warnings, r.Warnings, opts); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			var got []uint32
			for _, ru := range r.State.Rules {
				got = append(got, ru.Priority)
			}
			if diff := cmp.Diff([]uint32{20000, 20001, 20002}, got); diff != "" {
				t.Errorf("priorities (-want +got):\n%s", diff)
			}
		})
	}
	// Past twenty, the rest are counted in one warning.
	var many []model.Rule
	for p := uint32(30000); p < 30025; p++ {
		many = append(many, v4(p, "10.9.0.0/16", 7))
	}
	r := Build(parse(t, "[global]\nfirewall = false\n"+conf), model.Inputs{StrayRules: many}, model.State{})
	if n := len(r.Warnings); n != 21 || r.Warnings[20] != "and 5 more rules of protocol 116 outside tunneld's rule band, at priorities 30020–30024: ip rule show proto 116 and ip -6 rule show proto 116 list them (busybox's ip shows no protocol: ip rule show, at those priorities)" {
		t.Errorf("25 stray rules: %d warnings, the last %q; want 21, the last counting 5 more", n, r.Warnings[n-1])
	}
}
