package model

import (
	"cmp"
	"slices"
)

// Sort puts every slice of s in key order, so that two states holding the
// same objects compare equal.
func (s *State) Sort() {
	slices.SortFunc(s.Links, func(a, b Link) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(s.Addrs, CompareAddr)
	slices.SortFunc(s.Routes, CompareRoute)
	slices.SortFunc(s.Rules, func(a, b Rule) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.Family, b.Family))
	})
	slices.SortFunc(s.Sysctls, func(a, b Sysctl) int { return cmp.Compare(a.Path, b.Path) })
}

// CompareAddr orders addresses by link, then address, then prefix length.
func CompareAddr(a, b Addr) int {
	return cmp.Or(
		cmp.Compare(a.Link, b.Link),
		a.Prefix.Addr().Compare(b.Prefix.Addr()),
		cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()),
		a.Peer.Compare(b.Peer),
	)
}

// CompareRoute orders routes by table, destination and metric.
func CompareRoute(a, b Route) int {
	return cmp.Or(
		cmp.Compare(a.Table, b.Table),
		a.Dst.Addr().Compare(b.Dst.Addr()),
		cmp.Compare(a.Dst.Bits(), b.Dst.Bits()),
		cmp.Compare(a.Metric, b.Metric),
	)
}
