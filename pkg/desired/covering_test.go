package desired

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

func TestCovering(t *testing.T) {
	c := newCovering(0)
	for _, r := range []model.Route{
		{Table: 1, Dst: pfx("0.0.0.0/0")},
		{Table: 2, Dst: pfx("10.0.0.0/8")},
		{Table: 3, Dst: pfx("10.1.0.0/16")},
		{Table: 4, Dst: pfx("10.0.0.0/8")}, // same destination as table 2's
		{Table: 5, Dst: pfx("10.0.9.0/8")}, // the same again, not masked
		{Table: 6, Dst: pfx("2001:db8::/32")},
	} {
		c.add(r)
	}
	tables := func(a string) []uint32 {
		var out []uint32
		c.containing(ip(a), func(r *model.Route) { out = append(out, r.Table) })
		return out
	}
	for _, tt := range []struct {
		addr string
		want []uint32
	}{
		{"10.1.2.3", []uint32{1, 2, 4, 5, 3}},
		{"10.2.0.1", []uint32{1, 2, 4, 5}},
		{"192.0.2.1", []uint32{1}},
		{"2001:db8::1", []uint32{6}},
		{"2001:db9::1", nil},
	} {
		if diff := cmp.Diff(tt.want, tables(tt.addr)); diff != "" {
			t.Errorf("routes containing %s, by table (-want +got):\n%s", tt.addr, diff)
		}
	}
}
