package daemon

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSortHolds: sortHolds leaves holds in the very order
// slices.SortFunc by object did, holds of one object included (they
// differ in their tunnel and time).
func TestSortHolds(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Unix(1e9, 0)
	for _, n := range []int{0, 1, 2, 3, 12, 13, 50, 300} {
		for _, objects := range []int{1, 3, 20, 1 << 20} {
			give := make([]Hold, n)
			for i := range give {
				give[i] = Hold{Object: fmt.Sprintf("route 10.%d.0.0/16 table main", r.IntN(objects)), Tunnel: fmt.Sprint("t", i), Until: base.Add(time.Duration(i))}
			}
			want, got := slices.Clone(give), slices.Clone(give)
			slices.SortFunc(want, func(a, b Hold) int { return strings.Compare(a.Object, b.Object) })
			sortHolds(got)
			if !slices.Equal(want, got) {
				t.Fatalf("%d holds of %d objects:\nslices.SortFunc %v\nsortHolds       %v", n, objects, want, got)
			}
		}
	}
}
