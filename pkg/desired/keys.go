package desired

import "sort"

// sortedTables is a map's route tables in order, with sort.Sort: equal
// numbers are alike, so the order is slices.Sort's, without a sort
// instantiated for uint32 alone (about 6 KB of the mipsle binary; sort.Sort
// is linked anyway).
func sortedTables(m map[uint32]bool) []uint32 {
	out := make(tableOrder, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Sort(out)
	return out
}

// tableOrder is sortedTables' sort.Interface.
type tableOrder []uint32

func (s tableOrder) Len() int           { return len(s) }
func (s tableOrder) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s tableOrder) Less(i, j int) bool { return s[i] < s[j] }
