package model

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSort(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name       string
		give, want State
	}{
		{name: "empty"},
		{
			name: "each slice by its key",
			give: State{
				Links: []Link{{Name: "t10"}, {Name: "t2"}, {Name: "t1"}},
				Addrs: []Addr{
					{Link: "b", Prefix: p("10.0.0.1/32")},
					{Link: "a", Prefix: p("10.0.0.2/24")},
					{Link: "a", Prefix: p("10.0.0.2/16")},
					{Link: "a", Prefix: p("10.0.0.1/32")},
				},
				Routes: []Route{
					{Table: 2, Dst: p("10.0.0.0/8")},
					{Table: 1, Dst: p("10.0.0.0/8"), Metric: 5},
					{Table: 1, Dst: p("10.0.0.0/8")},
				},
				Sysctls: []Sysctl{{Path: "net/ipv4/ip_forward"}, {Path: "net/ipv4/conf/wan/proxy_arp"}},
			},
			want: State{
				Links: []Link{{Name: "t1"}, {Name: "t10"}, {Name: "t2"}},
				Addrs: []Addr{
					{Link: "a", Prefix: p("10.0.0.1/32")},
					{Link: "a", Prefix: p("10.0.0.2/16")},
					{Link: "a", Prefix: p("10.0.0.2/24")},
					{Link: "b", Prefix: p("10.0.0.1/32")},
				},
				Routes: []Route{
					{Table: 1, Dst: p("10.0.0.0/8")},
					{Table: 1, Dst: p("10.0.0.0/8"), Metric: 5},
					{Table: 2, Dst: p("10.0.0.0/8")},
				},
				Sysctls: []Sysctl{{Path: "net/ipv4/conf/wan/proxy_arp"}, {Path: "net/ipv4/ip_forward"}},
			},
		},
		{
			// Rules of one priority and family keep the kernel's order.
			name: "equal keys stay in order",
			give: State{Rules: []Rule{
				{Family: 10, Priority: 100, Table: 1},
				{Family: 2, Priority: 100, Table: 3},
				{Family: 2, Priority: 100, Table: 2},
				{Family: 2, Priority: 50, Table: 9},
				{Family: 2, Priority: 100, Table: 1},
			}},
			want: State{Rules: []Rule{
				{Family: 2, Priority: 50, Table: 9},
				{Family: 2, Priority: 100, Table: 3},
				{Family: 2, Priority: 100, Table: 2},
				{Family: 2, Priority: 100, Table: 1},
				{Family: 10, Priority: 100, Table: 1},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.give
			got.Sort()
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
				cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("Sort (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSortShuffled: any order of distinct links sorts to the same slice,
// and a sorted slice is left where it is.
func TestSortShuffled(t *testing.T) {
	want := sortedLinks(500)
	for seed := range uint64(20) {
		s := State{Links: append([]Link(nil), want...)}
		r := rand.New(rand.NewPCG(seed, 1))
		r.Shuffle(len(s.Links), func(i, j int) { s.Links[i], s.Links[j] = s.Links[j], s.Links[i] })
		s.Sort()
		if diff := cmp.Diff(want, s.Links, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Fatalf("seed %d (-want +got):\n%s", seed, diff)
		}
	}
	s := State{Links: want}
	s.Sort()
	if &s.Links[0] != &want[0] {
		t.Error("a sorted slice was copied")
	}
}

// sortedLinks is n links in name order.
func sortedLinks(n int) []Link {
	out := make([]Link, n)
	for i := range out {
		out[i] = Link{Name: fmt.Sprintf("t%05d", i), Mode: ModeIPIP, MTU: 1480 + i%3}
	}
	return out
}

// BenchmarkSort sorts the links of a 1000-tunnel observation in the
// kernel's order (by index: t0, t1, t2, …, which by name is not sorted).
func BenchmarkSort(b *testing.B) {
	links := make([]Link, 1000)
	for i := range links {
		links[i] = Link{Name: fmt.Sprintf("t%d", i), Mode: ModeIPIP, Dev: "eth0", MTU: 1480}
	}
	for b.Loop() {
		s := State{Links: append([]Link(nil), links...)}
		s.Sort()
	}
}

// TestSortAddrs: SortAddrs orders as slices.SortFunc with
// netip.Addr.Compare did, for lists given and random ones (v4, v6,
// v4-mapped, zones, the zero Addr, repeats).
func TestSortAddrs(t *testing.T) {
	a := netip.MustParseAddr
	pool := []netip.Addr{{}, a("0.0.0.0"), a("10.0.0.1"), a("10.0.0.2"), a("192.0.2.1"), a("255.255.255.255"),
		a("::"), a("::1"), a("::ffff:10.0.0.1"), a("2001:db8::1"), a("2001:db8::2"), a("fe80::1%eth0"), a("fe80::1%eth1"), a("fe80::1")}
	lists := [][]netip.Addr{nil, {}, {a("10.0.0.1")}, pool, {a("10.0.0.2"), a("10.0.0.1"), a("10.0.0.2"), a("10.0.0.1")}}
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		l := make([]netip.Addr, r.IntN(40))
		for i := range l {
			l[i] = pool[r.IntN(len(pool))]
		}
		lists = append(lists, l)
	}
	for _, l := range lists {
		want := slices.Clone(l)
		slices.SortFunc(want, netip.Addr.Compare)
		got := slices.Clone(l)
		SortAddrs(got)
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Fatalf("SortAddrs(%v) (-want +got):\n%s", l, diff)
		}
	}
}

// TestSortedLinks: SortedLinks orders links with distinct names as
// pkg/desired did with slices.SortedFunc (below), leaves its argument
// alone and returns a sorted one as it is.
func TestSortedLinks(t *testing.T) {
	byName := func(a, b Link) int { return strings.Compare(a.Name, b.Name) }
	before := func(links []Link) []Link {
		if !slices.IsSortedFunc(links, byName) {
			links = slices.SortedFunc(slices.Values(links), byName)
		}
		return links
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 2, 3, 10, 100, 1000} {
		for range 10 {
			give := sortedLinks(n)
			r.Shuffle(n, func(i, j int) { give[i], give[j] = give[j], give[i] })
			keep := slices.Clone(give)
			want := before(give)
			got := SortedLinks(give)
			opt := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
			if diff := cmp.Diff(want, got, opt); diff != "" {
				t.Fatalf("%d links (-want +got):\n%s", n, diff)
			}
			if diff := cmp.Diff(keep, give, opt); diff != "" {
				t.Fatalf("%d links: the argument changed (-before +after):\n%s", n, diff)
			}
		}
	}
	sorted := sortedLinks(10)
	if got := SortedLinks(sorted); &got[0] != &sorted[0] {
		t.Error("a sorted slice was copied")
	}
}
