package config

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortErrors: the errors' sort by position, sort.SliceStable with
// pos.before, leaves them in the order slices.SortStableFunc with
// the comparison it replaced did, errors at one position keeping theirs.
func TestSortErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 12, 13, 30, 100, 1000} {
		for _, lines := range []int{1, 3, 40} {
			d := &decoder{}
			for i := range n {
				d.errs = append(d.errs, &Error{Line: r.IntN(lines) + 1, Col: r.IntN(3) + 1, Msg: fmt.Sprint(i)})
			}
			want := slices.Clone(d.errs)
			slices.SortStableFunc(want, func(a, b *Error) int {
				return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
			})
			d.sort()
			if !slices.Equal(want, d.errs) {
				t.Fatalf("%d errors on %d lines: not in slices.SortStableFunc's order", n, lines)
			}
		}
	}
}
