package model

import (
	"cmp"
	"sort"
)

// Sort puts every slice of s in key order, so that two states holding the
// same objects compare equal. It compares elements in place (the objects
// are large, and an observation holds thousands) and keeps the order of
// equal keys.
func (s *State) Sort() {
	sort.SliceStable(s.Links, func(i, j int) bool { return s.Links[i].Name < s.Links[j].Name })
	sort.SliceStable(s.Addrs, func(i, j int) bool { return CompareAddr(&s.Addrs[i], &s.Addrs[j]) < 0 })
	sort.SliceStable(s.Routes, func(i, j int) bool { return CompareRoute(&s.Routes[i], &s.Routes[j]) < 0 })
	sort.SliceStable(s.Rules, func(i, j int) bool {
		a, b := &s.Rules[i], &s.Rules[j]
		if a.Priority != b.Priority {
			return a.Priority < b.Priority
		}
		return a.Family < b.Family
	})
	sort.SliceStable(s.Sysctls, func(i, j int) bool { return s.Sysctls[i].Path < s.Sysctls[j].Path })
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
