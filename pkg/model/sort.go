package model

import (
	"cmp"
	"net/netip"
	"sort"
)

// Sort puts every slice of s in key order, so that two states holding the
// same objects compare equal, keeping the order of equal keys. A slice
// already in order (rules come from the kernel by priority) costs one pass
// of comparisons; any other is ordered by sorting indices, so that each
// large element is copied once rather than at every step of the sort.
func (s *State) Sort() {
	s.Links = SortedLinks(s.Links)
	a, r, u, y := s.Addrs, s.Routes, s.Rules, s.Sysctls
	s.Addrs = permuted(a, order(len(a), func(i, j int) bool { return CompareAddr(&a[i], &a[j]) < 0 }))
	s.Routes = permuted(r, order(len(r), func(i, j int) bool { return CompareRoute(&r[i], &r[j]) < 0 }))
	s.Rules = SortedRules(u)
	s.Sysctls = permuted(y, order(len(y), func(i, j int) bool { return y[i].Path < y[j].Path }))
}

// order is the permutation that puts n elements in the order less gives
// (less compares the elements at two indices), equal elements in their
// original order: nil when they already are in that order. It and
// permuted stand for one generic function, which was instantiated for
// each of the five kinds of object (about 5 KB of the mipsle binary).
func order(n int, less func(i, j int) bool) []int {
	i := 1
	for i < n && !less(i, i-1) {
		i++
	}
	if i >= n {
		return nil
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return less(idx[i], idx[j]) })
	return idx
}

// permuted returns s itself when idx is nil, else a new slice of s's
// elements in the order idx gives.
func permuted[T any](s []T, idx []int) []T {
	if idx == nil {
		return s
	}
	out := make([]T, len(s))
	for i, j := range idx {
		out[i] = s[j]
	}
	return out
}

// SortedRules returns rules by priority, then family, equal ones in
// their original order: rules itself when it already is in that order
// (as a dump gives one family), else a new slice.
func SortedRules(rules []Rule) []Rule {
	return permuted(rules, order(len(rules), func(i, j int) bool {
		if rules[i].Priority != rules[j].Priority {
			return rules[i].Priority < rules[j].Priority
		}
		return rules[i].Family < rules[j].Family
	}))
}

// SortedLinks returns links in name order, equal names in their original
// order: links itself when it already is in that order, else a new slice
// (links is left as it was).
func SortedLinks(links []Link) []Link {
	return permuted(links, order(len(links), func(i, j int) bool { return links[i].Name < links[j].Name }))
}

// SortAddrs sorts addrs in place, in netip.Addr.Compare order. It is an
// insertion sort: the addresses of a DNS name are few, and
// slices.SortFunc would link a sort instantiated for netip.Addr alone
// (about 12 KB of the mipsle binary).
func SortAddrs(addrs []netip.Addr) {
	for i := 1; i < len(addrs); i++ {
		for j := i; j > 0 && addrs[j].Less(addrs[j-1]); j-- {
			addrs[j], addrs[j-1] = addrs[j-1], addrs[j]
		}
	}
}

// CompareAddr orders addresses by link, then address, then prefix length.
func CompareAddr(a, b *Addr) int {
	if c := cmp.Compare(a.Link, b.Link); c != 0 {
		return c
	}
	if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()); c != 0 {
		return c
	}
	return a.Peer.Compare(b.Peer)
}

// CompareRoute orders routes by table, destination and metric.
func CompareRoute(a, b *Route) int {
	if c := cmp.Compare(a.Table, b.Table); c != 0 {
		return c
	}
	if c := a.Dst.Addr().Compare(b.Dst.Addr()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Dst.Bits(), b.Dst.Bits()); c != 0 {
		return c
	}
	return cmp.Compare(a.Metric, b.Metric)
}

// LinkNamed finds the link called name in links, which are in name order
// (as State.Sort leaves them): its index, and whether it is there; the
// index it would have when it is not. sort.Search probes as
// slices.BinarySearchFunc does, which was instantiated for Link alone.
func LinkNamed(links []Link, name string) (int, bool) {
	i := sort.Search(len(links), func(i int) bool { return links[i].Name >= name })
	return i, i < len(links) && links[i].Name == name
}
