package config

import "sort"

// sort orders errors by position so they read top to bottom.
func (d *decoder) sort() {
	sort.SliceStable(d.errs, func(i, j int) bool {
		return pos{d.errs[i].Line, d.errs[i].Col}.before(pos{d.errs[j].Line, d.errs[j].Col})
	})
}

// before says whether p comes before q in the file. The position sorts
// use it with sort.SliceStable, whose stable order is the one
// slices.SortStableFunc gives too (a stable sort has one result), without
// a stable sort instantiated for each element type (about 3.5 KB of the
// mipsle binary each; sort.SliceStable is linked anyway).
func (p pos) before(q pos) bool {
	return p.Line < q.Line || p.Line == q.Line && p.Col < q.Col
}
