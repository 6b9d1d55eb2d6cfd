package model

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
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

// sortInputs are lists of n keys for the sort tests: random with many
// repeats, and the patterns that take pdqsort down its other paths
// (sorted, reversed, all equal, sawtooth, sorted with a few swapped).
func sortInputs(r *rand.Rand) [][]int {
	var out [][]int
	for _, n := range []int{0, 1, 2, 3, 7, 12, 13, 33, 50, 100, 257, 1000, 3000} {
		for _, keys := range []int{1, 2, 5, n/2 + 1, 1 << 30} {
			l := make([]int, n)
			for i := range l {
				l[i] = r.IntN(keys)
			}
			out = append(out, l)
		}
		patterns := [][]int{make([]int, n), make([]int, n), make([]int, n), make([]int, n), make([]int, n)}
		for i := range n {
			patterns[0][i] = i
			patterns[1][i] = n - i
			patterns[2][i] = 7
			patterns[3][i] = i % 17
			patterns[4][i] = i
		}
		for range n / 20 {
			i, j := r.IntN(n), r.IntN(n)
			patterns[4][i], patterns[4][j] = patterns[4][j], patterns[4][i]
		}
		out = append(out, patterns...)
	}
	return out
}

// keyed is an element of TestSortOrderOfEquals, carrying its first
// position to tell equal keys apart.
type keyed struct{ key, pos int }

// keyedOrder sorts keyed elements by key alone.
type keyedOrder []keyed

func (s keyedOrder) Len() int           { return len(s) }
func (s keyedOrder) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s keyedOrder) Less(i, j int) bool { return s[i].key < s[j].key }

// TestSortOrderOfEquals: sort.Sort leaves elements in the very order
// slices.SortFunc does with the same comparison, equal keys included,
// which SortForeignRules and the sorts of pkg/daemon and pkg/desired
// rely on to keep the order they had with slices.SortFunc.
func TestSortOrderOfEquals(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, keys := range sortInputs(r) {
		give := make([]keyed, len(keys))
		for i, k := range keys {
			give[i] = keyed{k, i}
		}
		want := slices.Clone(give)
		slices.SortFunc(want, func(a, b keyed) int { return a.key - b.key })
		got := slices.Clone(give)
		sort.Sort(keyedOrder(got))
		if !slices.Equal(want, got) {
			t.Fatalf("%d keys %v:\nslices.SortFunc %v\nsort.Sort       %v", len(keys), keys, want, got)
		}
	}
}

// TestSortForeignRules: SortForeignRules orders as it did with
// slices.SortFunc, priority then family, equal ones (as the kernel may
// report them) included.
func TestSortForeignRules(t *testing.T) {
	before := func(rules []ForeignRule) {
		slices.SortFunc(rules, func(a, b ForeignRule) int {
			if a.Priority != b.Priority {
				if a.Priority < b.Priority {
					return -1
				}
				return 1
			}
			return a.Family - b.Family
		})
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 2, 5, 12, 13, 40, 200, 1000} {
		for _, prios := range []int{1, 3, 50, 1 << 30} {
			give := make([]ForeignRule, n)
			for i := range give {
				give[i] = ForeignRule{Priority: uint32(r.IntN(prios)) + uint32(r.IntN(2))<<31, Family: 4 + 2*r.IntN(2)}
			}
			want, got := slices.Clone(give), slices.Clone(give)
			before(want)
			SortForeignRules(got)
			if !slices.Equal(want, got) {
				t.Fatalf("%v:\nbefore %v\nnow    %v", give, want, got)
			}
		}
	}
}

// orderedBefore is the generic function State.Sort and SortedLinks used
// before order and permuted stood for it.
func orderedBefore[T any](s []T, less func(a, b *T) bool) []T {
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

// TestSortAsBefore: State.Sort orders every slice as orderedBefore did,
// equal keys included (objects with one key differ in another field),
// on random states and on ones already in order, which it returns as
// they are.
func TestSortAsBefore(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	p := func() netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(r.IntN(4))}), 24+r.IntN(3)).Masked()
	}
	opt := cmp.Options{cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })}
	for _, n := range []int{0, 1, 2, 3, 12, 13, 40, 300} {
		for range 10 {
			var s State
			for i := range n {
				s.Links = append(s.Links, Link{Name: fmt.Sprint("t", r.IntN(n/2+1)), MTU: i})
				s.Addrs = append(s.Addrs, Addr{Link: fmt.Sprint("t", r.IntN(3)), Prefix: p()})
				s.Routes = append(s.Routes, Route{Table: uint32(r.IntN(3)), Dst: p(), Metric: uint32(r.IntN(2)), Dev: fmt.Sprint("t", i)})
				s.Rules = append(s.Rules, Rule{Priority: uint32(r.IntN(4)), Family: 2 + 8*r.IntN(2), Table: uint32(i)})
				s.Sysctls = append(s.Sysctls, Sysctl{Path: fmt.Sprint("net/ipv4/conf/t", r.IntN(n/2+1), "/forwarding"), Value: fmt.Sprint(i)})
			}
			want := State{
				Links:  orderedBefore(s.Links, func(a, b *Link) bool { return a.Name < b.Name }),
				Addrs:  orderedBefore(s.Addrs, func(a, b *Addr) bool { return CompareAddr(a, b) < 0 }),
				Routes: orderedBefore(s.Routes, func(a, b *Route) bool { return CompareRoute(a, b) < 0 }),
				Rules: orderedBefore(s.Rules, func(a, b *Rule) bool {
					return a.Priority < b.Priority || a.Priority == b.Priority && a.Family < b.Family
				}),
				Sysctls: orderedBefore(s.Sysctls, func(a, b *Sysctl) bool { return a.Path < b.Path }),
			}
			got := s
			got.Sort()
			if diff := cmp.Diff(want, got, opt); diff != "" {
				t.Fatalf("%d objects each (-before +now):\n%s", n, diff)
			}
			sorted := got
			got.Sort()
			if n > 0 && (&got.Links[0] != &sorted.Links[0] || &got.Addrs[0] != &sorted.Addrs[0] || &got.Routes[0] != &sorted.Routes[0] ||
				&got.Rules[0] != &sorted.Rules[0] || &got.Sysctls[0] != &sorted.Sysctls[0]) {
				t.Fatalf("%d objects each: a sorted slice was copied", n)
			}
		}
	}
}

// TestLinkNamedAsBinarySearch: LinkNamed answers as
// slices.BinarySearchFunc by name did, for names there and not there,
// repeated ones included.
func TestLinkNamedAsBinarySearch(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{0, 1, 2, 3, 7, 8, 50, 1000} {
		links := make([]Link, n)
		for i := range links {
			links[i] = Link{Name: fmt.Sprint("t", r.IntN(2*n+1))}
		}
		links = SortedLinks(links)
		for range 3*n + 3 {
			name := fmt.Sprint("t", r.IntN(2*n+2))
			wi, wok := slices.BinarySearchFunc(links, name, func(l Link, name string) int { return strings.Compare(l.Name, name) })
			if i, ok := LinkNamed(links, name); i != wi || ok != wok {
				t.Fatalf("%d links, %q: %d, %t; slices.BinarySearchFunc %d, %t", n, name, i, ok, wi, wok)
			}
		}
	}
}
