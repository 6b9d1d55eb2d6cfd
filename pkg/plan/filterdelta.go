package plan

import (
	"fmt"
	"strings"

	"github.com/tunneld/tunneld/pkg/model"
)

// FilterDelta counts, between the table before (nil: none) and after a
// FilterReplace, the rules added, removed and kept, chain by chain, by
// their canonical text (the rule tags). It is how the daemon's log tells
// of a replaced table in a line of its own size, where the whole script
// grew by some 700 bytes a tunnel and came with every WAN address move.
func FilterDelta(before, after *model.Filter) (added, removed, kept int) {
	count := func(f *model.Filter) map[string]int {
		m := map[string]int{}
		if f == nil {
			return m
		}
		chain := ""
		for _, line := range strings.Split(f.Canonical(), "\n") {
			switch {
			case line == "":
			case strings.HasPrefix(line, "\t"):
				m[chain+"\n"+line]++
			default:
				chain = line
			}
		}
		return m
	}
	have, want := count(before), count(after)
	for k, w := range want {
		h := have[k]
		kept += min(h, w)
		added += max(w-h, 0)
	}
	for k, h := range have {
		removed += max(h-want[k], 0)
	}
	return added, removed, kept
}

// FilterSummary is FilterDelta in words, for the log: "2 rules added,
// 2 removed, 14 kept".
func (o Op) FilterSummary() string {
	added, removed, kept := FilterDelta(o.OldFilter, o.Filter)
	rules := "rules"
	if added == 1 {
		rules = "rule"
	}
	return fmt.Sprintf("%d %s added, %d removed, %d kept", added, rules, removed, kept)
}
