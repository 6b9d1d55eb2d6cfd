package plan

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/tunneld/tunneld/pkg/model"
)

// BenchmarkMoveAll1000 plans 1000 tunnels that follow one WAN address
// moving to a new one: every one a change of its endpoints, none taking
// another's (orderLinks' first look finds nothing to reorder). Compared
// each with each, orderLinks made it 16 times slower.
func BenchmarkMoveAll1000(b *testing.B) {
	var have, want model.State
	for i := range 1000 {
		l := model.Link{Name: fmt.Sprintf("t%04d", i), Mode: model.ModeIPIP, Local: netip.MustParseAddr("192.0.2.1"),
			Remote: netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), TTL: 64, PMTUDisc: true, MTU: 1480, Up: true}
		have.Links = append(have.Links, l)
		l.Local = netip.MustParseAddr("192.0.2.2")
		want.Links = append(want.Links, l)
	}
	b.ResetTimer()
	for range b.N {
		Diff(have, want)
	}
}
