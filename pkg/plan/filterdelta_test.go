package plan

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

// TestFilterDelta counts rules added, removed and kept chain by chain,
// the same rule in another chain as another rule, a repeated rule as
// many as it is there, and a table read back (its canonical text alone)
// as the rules it holds.
func TestFilterDelta(t *testing.T) {
	rule := func(src string) model.FRule {
		return model.FRule{Family: model.FamilyAny, Src: netip.MustParsePrefix(src), L4Proto: 4, Verdict: model.Verdict{Kind: model.Accept}}
	}
	drop := model.FRule{Family: model.FamilyAny, L4Proto: 4, Counter: true, Verdict: model.Verdict{Kind: model.Drop}}
	input := func(rules ...model.FRule) model.Chain {
		return model.Chain{Name: "input", Type: "filter", Hook: "input", Rules: rules}
	}
	forward := func(rules ...model.FRule) model.Chain {
		return model.Chain{Name: "forward", Type: "filter", Hook: "forward", Rules: rules}
	}
	a, b, c := rule("198.51.100.1/32"), rule("198.51.100.2/32"), rule("198.51.100.3/32")
	before := &model.Filter{Chains: []model.Chain{input(a, b, drop), forward(a)}}
	readBack := &model.Filter{Observed: before.Canonical()}
	type counts struct{ Added, Removed, Kept int }
	for _, tt := range []struct {
		name          string
		before, after *model.Filter
		want          counts
	}{
		{"first table", nil, before, counts{4, 0, 0}},
		{"unchanged", before, before, counts{0, 0, 4}},
		{"one remote moved", before, &model.Filter{Chains: []model.Chain{input(a, c, drop), forward(a)}}, counts{1, 1, 3}},
		{"moved to another chain", before, &model.Filter{Chains: []model.Chain{input(a, b, drop), forward(b)}}, counts{1, 1, 3}},
		{"repeated", before, &model.Filter{Chains: []model.Chain{input(a, a, b, drop), forward(a)}}, counts{1, 0, 4}},
		{"read back", readBack, &model.Filter{Chains: []model.Chain{input(a, drop)}}, counts{0, 2, 2}},
		{"to none", before, nil, counts{0, 4, 0}},
	} {
		var got counts
		got.Added, got.Removed, got.Kept = FilterDelta(tt.before, tt.after)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	op := Op{Kind: FilterReplace, OldFilter: before, Filter: &model.Filter{Chains: []model.Chain{input(a, c, drop), forward(a)}}}
	if got, want := op.FilterSummary(), "1 rule added, 1 removed, 3 kept"; got != want {
		t.Errorf("FilterSummary = %q, want %q", got, want)
	}
}
