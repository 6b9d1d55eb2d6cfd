package model

import (
	"cmp"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// Sort puts every slice of s in key order, so that two states holding the
// same objects compare equal, keeping the order of equal keys. A slice
// already in order (rules come from the kernel by priority) costs one pass
// of comparisons; any other is ordered by sorting indices, so that each
// large element is copied once rather than at every step of the sort.
func (s *State) Sort() {
	s.Links = SortedLinks(s.Links)
	s.Addrs = ordered(s.Addrs, func(a, b *Addr) bool { return CompareAddr(a, b) < 0 })
	s.Routes = ordered(s.Routes, func(a, b *Route) bool { return CompareRoute(a, b) < 0 })
	s.Rules = ordered(s.Rules, func(a, b *Rule) bool {
		if a.Priority != b.Priority {
			return a.Priority < b.Priority
		}
		return a.Family < b.Family
	})
	s.Sysctls = ordered(s.Sysctls, func(a, b *Sysctl) bool { return a.Path < b.Path })
}

// ordered returns s in the order less gives, equal elements in their
// original order: s itself when it already is in that order, else a new
// slice.
func ordered[T any](s []T, less func(a, b *T) bool) []T {
	i := 1
	for i < len(s) && !less(&s[i], &s[i-1]) {
		i++
	}
	if i >= len(s) {
		return s
	}
	idx := make([]int, len(s))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return less(&s[idx[i]], &s[idx[j]]) })
	out := make([]T, len(s))
	for i, j := range idx {
		out[i] = s[j]
	}
	return out
}

// SortedLinks returns links in name order, equal names in their original
// order: links itself when it already is in that order, else a new slice
// (links is left as it was).
func SortedLinks(links []Link) []Link {
	return ordered(links, func(a, b *Link) bool { return a.Name < b.Name })
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
// (as State.Sort leaves them): its index, and whether it is there.
func LinkNamed(links []Link, name string) (int, bool) {
	return slices.BinarySearchFunc(links, name, func(l Link, name string) int { return strings.Compare(l.Name, name) })
}
