package config

import "net/netip"

// RulePriorities is each rule's priority, in c.Rules' order: its own, or
// the lowest one of the band (global.rule_priority_min/max) that no rule
// has, in file order; 0 for a rule that finds the band full (a file read
// by Load refuses it).
func (c *Config) RulePriorities() []uint32 {
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
		for used[next] && next <= hi {
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
