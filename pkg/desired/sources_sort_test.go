package desired

import (
	"cmp"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/tunneld/tunneld/pkg/config"
)

// randomPrefixes are n masked prefixes of both families drawn from a
// small pool of addresses, so that many repeat or share an address.
func randomPrefixes(r *rand.Rand, n int) []netip.Prefix {
	pool := []netip.Addr{
		netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("10.0.0.0"), netip.MustParseAddr("10.1.2.3"),
		netip.MustParseAddr("192.0.2.77"), netip.MustParseAddr("255.255.255.255"),
		netip.MustParseAddr("::"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8:1::"),
		netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ffff::"),
	}
	out := make([]netip.Prefix, n)
	for i := range out {
		a := pool[r.IntN(len(pool))]
		out[i] = netip.PrefixFrom(a, r.IntN(a.BitLen()+1)).Masked()
	}
	return out
}

// TestSortPrefixes: sortPrefixes orders as slices.SortFunc with
// comparePrefix did, repeats included.
func TestSortPrefixes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 2, 3, 12, 13, 50, 300, 2000} {
		for range 5 {
			give := randomPrefixes(r, n)
			want, got := slices.Clone(give), slices.Clone(give)
			slices.SortFunc(want, comparePrefix)
			sortPrefixes(got)
			if !slices.Equal(want, got) {
				t.Fatalf("%v:\nslices.SortFunc %v\nsortPrefixes    %v", give, want, got)
			}
		}
	}
}

// TestSortRouted: sortRouted leaves routes in the very order
// slices.SortFunc by destination did, routes to one destination through
// different tunnels included.
func TestSortRouted(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	tunnels := []*config.Tunnel{nil, {Name: "a"}, {Name: "b"}, {Name: "c"}}
	for _, n := range []int{0, 1, 2, 3, 12, 13, 50, 300, 2000} {
		for range 5 {
			give := make([]routed, n)
			for i, p := range randomPrefixes(r, n) {
				give[i] = routed{p, tunnels[r.IntN(len(tunnels))]}
			}
			want, got := slices.Clone(give), slices.Clone(give)
			slices.SortFunc(want, func(a, b routed) int { return comparePrefix(a.dst, b.dst) })
			sortRouted(got)
			if !slices.Equal(want, got) {
				t.Fatalf("%d routes: sortRouted's order is not slices.SortFunc's", n)
			}
		}
	}
}

// sortedKeys is the generic function sortedTables stands for.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestSortedTables: sortedTables gives a map's tables in slices.Sort's
// order, as sortedKeys did.
func TestSortedTables(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 2, 3, 12, 13, 50, 300} {
		m := map[uint32]bool{}
		for len(m) < n {
			m[r.Uint32()>>r.IntN(32)] = true
		}
		if got, want := sortedTables(m), sortedKeys(m); !slices.Equal(got, want) {
			t.Fatalf("sortedTables %v, sortedKeys %v", got, want)
		}
	}
}

// TestSourceIndexFrom: from gives the index slices.BinarySearchFunc by
// destination address gave, for addresses of both families, there and
// not there.
func TestSourceIndexFrom(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{0, 1, 2, 3, 12, 50, 300} {
		ix := &sourceIndex{}
		for _, p := range randomPrefixes(r, n) {
			ix.all = append(ix.all, routed{dst: p})
		}
		sortRouted(ix.all)
		for _, q := range randomPrefixes(r, 50) {
			a := q.Addr()
			want, _ := slices.BinarySearchFunc(ix.all, a, func(r routed, a netip.Addr) int { return r.dst.Addr().Compare(a) })
			if got := ix.from(a); got != want {
				t.Fatalf("%d routes, %s: %d, slices.BinarySearchFunc %d", n, a, got, want)
			}
		}
	}
}
