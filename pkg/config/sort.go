package config

import (
	"cmp"
	"slices"
)

// sort orders errors by position so they read top to bottom.
func (d *decoder) sort() {
	slices.SortStableFunc(d.errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
}
