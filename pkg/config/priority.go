package config

import "net/netip"

// RulePriorities is each rule's priority, in c.Rules' order: its own, or
// the lowest one of the band (global.rule_priority_min/max) that no rule
// has and that held does not hold, in file order; 0 for a rule that
// finds the band full (a file read by Load refuses one that does with
// held empty). held are the priorities rules that are not tunneld's
// hold in the kernel (model.Inputs.ForeignRules), nil for none: a rule
// placed beside one of them would share its priority, and the kernel
// would look at the two in the order they were added. A rule's own
// priority is kept whatever holds it.
func (c *Config) RulePriorities(held map[uint32]bool) []uint32 {
	used := map[uint32]bool{}
	for _, r := range c.Rules {
		if r.Priority != 0 {
			used[r.Priority] = true
		}
	}
	out := make([]uint32, len(c.Rules))
	next, hi := c.Global.RulePriorityMin, c.Global.RulePriorityMax
	for i, r := range c.Rules {
		if r.Priority != 0 {
			out[i] = r.Priority
			continue
		}
		for (used[next] || held[next]) && next <= hi {
			next++
		}
		if next <= hi {
			out[i], used[next] = next, true
		}
	}
	return out
}

// Selector is a rule's from or to as the kernel keeps it: a prefix of
// length 0 matches every address, and the kernel holds (and reads back)
// no address at all for it, as for a rule without the selector.
func Selector(p netip.Prefix) netip.Prefix {
	if p.IsValid() && p.Bits() == 0 {
		return netip.Prefix{}
	}
	return p
}

// MatchesMark reports whether the rule selects by firewall mark as the
// kernel keeps it: a mark of 0 with mask 0 matches every packet and is
// not kept.
func (r Rule) MatchesMark() bool { return r.HasMark && (r.Mark != 0 || r.Mask != 0) }
