package desired

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// rules puts the configuration's rules into the desired state, each at
// its own priority or, without one, at the lowest free one of the band in
// file order (config.Config.RulePriorities): free of the file's other
// rules and of the rules tunneld does not own in the band
// (Inputs.ForeignRules). Beside one of those, a rule of tunneld's would
// share its priority, and which of the two the kernel looks at first
// would depend on which was added first (the foreign one, after a
// restart of tunneld; the other one, after a restart of whatever added
// it). The placement depends only on the configuration and the
// priorities the foreign rules hold: applied again, it changes nothing;
// a foreign rule that comes (or goes) later moves the rules placed past
// it once. Warnings say where foreign rules change what the file alone
// gives: a rule placed past them, an explicit priority one of them
// shares, a rule they leave no room for.
func (b *builder) rules() {
	held := foreignPriorities(b.in.ForeignRules)
	prios := b.c.RulePriorities(held)
	explicit := map[uint32]bool{}
	for _, r := range b.c.Rules {
		if r.Priority != 0 {
			explicit[r.Priority] = true
		}
	}
	from := b.c.Global.RulePriorityMin // where the next placement's search began
	for i, prio := range prios {
		r := &b.c.Rules[i]
		switch {
		case prio == 0:
			b.leftOut(r, held, explicit)
			continue
		case r.Priority != 0:
			b.sharedPriority(r)
		default:
			b.placedPast(r, prio, from, held, explicit)
			from = prio + 1
		}
		b.res.State.Rules = append(b.res.State.Rules, ruleOf(r, prio))
	}
	b.res.Warnings = append(b.res.Warnings, StrayRuleWarnings(b.c.Global.RulePriorityMin, b.c.Global.RulePriorityMax, b.in.StrayRules, b.c.Rules)...)
}

// ruleOf is the kernel's rule for the configuration's r at prio.
func ruleOf(r *config.Rule, prio uint32) model.Rule {
	return model.Rule{
		Family: r.Family, Priority: prio, Src: config.Selector(r.From), Dst: config.Selector(r.To), IIF: r.IIF, OIF: r.OIF,
		Mark: r.Mark, Mask: r.Mask, HasMark: r.MatchesMark(), Table: r.Table,
	}
}

// StrayRuleWarnings names each rule of stray (model.Inputs.StrayRules:
// tunneld's protocol, a priority outside every band it owns) in a
// warning: it is not tunneld's and stays, it may be a leftover of an
// earlier band whose record was lost (the tester's: the state directory
// wiped, the band then edited, and every rule of the file was in the
// kernel twice, status saying "drift: none" and down leaving the old
// ones), and the command that deletes exactly it. One with the
// selectors and table of a rule of configured says so: what that rule
// matches is looked up in its table twice. min and max are the
// configuration's band; nil for no stray rule.
func StrayRuleWarnings(min, max uint32, stray []model.Rule, configured []config.Rule) []string {
	if len(stray) == 0 {
		return nil
	}
	n := len(stray)
	if n > maxStrayWarnings {
		n = maxStrayWarnings + 1
	}
	out := make([]string, 0, n)
	for i, s := range stray {
		if i == maxStrayWarnings {
			// A lost record of a large band: the rest in one line.
			rest := stray[i:]
			out = append(out, fmt.Sprintf("and %d more rules of protocol %d outside tunneld's rule band, at priorities %d–%d: ip rule show proto %d and ip -6 rule show proto %d list them (busybox's ip shows no protocol: ip rule show, at those priorities)",
				len(rest), model.RuleProtocol, rest[0].Priority, rest[len(rest)-1].Priority, model.RuleProtocol, model.RuleProtocol))
			break
		}
		// The kernel deletes the first rule at the priority that a
		// deletion's words match; an earlier one (stray keeps the
		// kernel's order within a priority) with all of this one's
		// selectors and more matches them too (a tester's command for
		// a copy deleted someone's narrower rule before it).
		first := ""
		for _, o := range stray[:i] {
			if o.Priority == s.Priority && o.Family == s.Family && matchesDeletion(s, o) {
				first = fmt.Sprintf(" (the kernel deletes the first rule at priority %d that these words match, and one before it matches them too: delete that one first, with its own command, else this one deletes it instead)", s.Priority)
				break
			}
		}
		twin := ""
		for i := range configured {
			c := ruleOf(&configured[i], s.Priority)
			if s.Extra == "" && c == s {
				twin = fmt.Sprintf("; it has the selectors and table of rule[%d]: what rule[%d] matches is looked up in table %s twice",
					configured[i].Index, configured[i].Index, model.TableWord(s.Table))
				break
			}
		}
		if i > 0 {
			// The first says why; the others are one line each (a
			// tester's hundred made 41 KB of status).
			out = append(out, fmt.Sprintf("IPv%d rule at priority %d: protocol %d outside the band too, left alone%s; delete it: %s%s",
				s.Family, s.Priority, model.RuleProtocol, twin, plan.RuleCommand("del", s), first))
			continue
		}
		out = append(out, fmt.Sprintf("IPv%d rule at priority %d has tunneld's protocol %d but lies outside its rule band %d–%d and every band it recorded as used: "+
			"it is not tunneld's, and tunneld leaves it alone (a rule of an earlier band whose record, %s in the state directory, was lost, or someone else's)%s; "+
			"unless it is someone else's, delete it: %s%s",
			s.Family, s.Priority, model.RuleProtocol, min, max, bandsRecord, twin+BusyboxRuleDel, plan.RuleCommand("del", s), first))
	}
	return out
}

// BusyboxRuleDel ends the first stray rule's warning: OpenWrt's busybox
// ip has no protocol selector (a tester's command was refused there).
const BusyboxRuleDel = "; busybox's ip knows no protocol: leave out the protocol words of the commands below, and each deletes the first rule at its priority with its selectors, whatever its protocol"

// maxStrayWarnings is how many stray rules StrayRuleWarnings names one
// by one; the rest are counted in one more warning.
const maxStrayWarnings = 20

// matchesDeletion reports whether o has every selector, the table and
// every word of what narrows it (Extra) that s, deleted by its own
// command, names (not its '#' words, which the command leaves out): the
// kernel would take o for it.
func matchesDeletion(s, o model.Rule) bool {
	if s.Src.IsValid() && o.Src != s.Src || s.Dst.IsValid() && o.Dst != s.Dst ||
		s.IIF != "" && o.IIF != s.IIF || s.OIF != "" && o.OIF != s.OIF ||
		s.HasMark && (!o.HasMark || o.Mark != s.Mark || o.Mask != s.Mask) || o.Table != s.Table {
		return false
	}
	words := strings.Fields(o.Extra)
	for _, w := range strings.Fields(s.Extra) {
		// What ip(8) has no word for (an attribute, a nat rule's
		// action) is not in the command, and narrows nothing.
		if !strings.HasPrefix(w, "#") && !slices.Contains(words, w) {
			return false
		}
	}
	return true
}

// bandsRecord is the kernel seam's record of the rule bands tunneld
// used, in the state directory (the Linux seam's bandsFile).
const bandsRecord = "rule-bands.json"

// foreignPriorities are the priorities rules holds (nil for none).
func foreignPriorities(rules []model.ForeignRule) map[uint32]bool {
	if len(rules) == 0 {
		return nil
	}
	held := make(map[uint32]bool, len(rules))
	for _, f := range rules {
		held[f.Priority] = true
	}
	return held
}

// placedPast warns when r, placed at prio, passed over priorities from
// prio's search that only foreign rules hold (one the file gives a rule
// of its own would have been passed over anyway).
func (b *builder) placedPast(r *config.Rule, prio, from uint32, held, explicit map[uint32]bool) {
	var past []uint32
	for p := from; p < prio; p++ {
		if held[p] && !explicit[p] {
			past = append(past, p)
		}
	}
	if len(past) == 0 {
		return
	}
	n := 0
	for _, f := range b.in.ForeignRules {
		if f.Priority >= from && f.Priority < prio && !explicit[f.Priority] {
			n++
		}
	}
	which, that := "a rule tunneld does not own holds", "that rule"
	if n > 1 {
		which, that = "rules tunneld does not own hold", "those rules"
	}
	b.res.Warnings = append(b.res.Warnings, fmt.Sprintf("rule[%d]: placed at priority %d, past %s, which %s in tunneld's rule band %s (move %s out of the band, or the band: global.rule_priority_min/max)",
		r.Index, prio, words(past), which, b.band(), that))
}

// sharedPriority warns when r's own priority is also held by foreign
// rules of its family: the kernel keeps a list of rules per family, so
// only those come before or after r by the order they were added in.
func (b *builder) sharedPriority(r *config.Rule) {
	n := 0
	for _, f := range b.in.ForeignRules {
		if f.Priority == r.Priority && f.Family == r.Family {
			n++
		}
	}
	if n == 0 {
		return
	}
	what, them := fmt.Sprintf("an IPv%d rule", r.Family), "the two"
	if n > 1 {
		what, them = fmt.Sprintf("%d IPv%d rules", n, r.Family), "them"
	}
	b.res.Warnings = append(b.res.Warnings, fmt.Sprintf("rule[%d]: priority %d is also held by %s tunneld does not own: the kernel looks at %s in the order they were added (give rule[%d] another priority, or none: tunneld then gives it one no other rule holds)",
		r.Index, r.Priority, what, them, r.Index))
}

// leftOut warns about r, which found no free priority left in the band:
// it is not in the desired state. A configuration Load read has room in
// the band for every rule (see config's rulesFit), so foreign rules hold
// the rest; only the admin can make room (Result.RulesLeftOut).
func (b *builder) leftOut(r *config.Rule, held, explicit map[uint32]bool) {
	b.res.RulesLeftOut = append(b.res.RulesLeftOut, r.Index)
	n := 0
	for p := range held {
		if b.c.Global.RulePriorityMin <= p && p <= b.c.Global.RulePriorityMax && !explicit[p] {
			n++
		}
	}
	if n == 0 {
		b.res.Warnings = append(b.res.Warnings, fmt.Sprintf("rule[%d]: left out: no free priority left in tunneld's rule band %s (widen it: global.rule_priority_min/max)",
			r.Index, b.band()))
		return
	}
	b.res.Warnings = append(b.res.Warnings, fmt.Sprintf("rule[%d]: left out: no free priority left in tunneld's rule band %s, %d of whose priorities rules tunneld does not own hold (move those rules out of the band, or widen it: global.rule_priority_min/max)",
		r.Index, b.band(), n))
}

// band is the configuration's rule band as config's messages write it.
func (b *builder) band() string {
	return fmt.Sprintf("%d–%d", b.c.Global.RulePriorityMin, b.c.Global.RulePriorityMax)
}

// words lists priorities as a sentence does: 20001; 20001 and 20003;
// 20001, 20002 and 20003.
func words(ps []uint32) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.FormatUint(uint64(p), 10)
	}
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
