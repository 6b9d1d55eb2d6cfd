package linux

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tunneld/tunneld/pkg/iptun"
	"github.com/tunneld/tunneld/pkg/model"
)

// TestIP6TnlTOSRoundTrip: an ipip6 or ip6ip6 tunnel's tos (the outer
// traffic class, or inherit) is sent to the kernel and read back as it
// was asked for. It was left out of the ip6tnl parameters, so the link
// read back never matched the desired one: every plan changed it again,
// and the daemon repaired it forever.
func TestIP6TnlTOSRoundTrip(t *testing.T) {
	for _, mode := range []model.Mode{model.ModeIPIP6, model.ModeIP6IP6} {
		for _, tos := range []uint8{0, 1, 0x10, 0xb8} {
			want := model.Link{Mode: mode, Local: netip.MustParseAddr("2001:db8::1"), Remote: netip.MustParseAddr("2001:db8::2"),
				TTL: 64, TOS: tos, EncapLimit: 4}
			data, err := tunnelData(want, 0)
			if err != nil {
				t.Fatal(err)
			}
			d := data.(*iptun.IP6Tnl)
			if tos == 1 && d.Flags&iptun.IP6TnlFlagUseOrigTClass == 0 {
				t.Errorf("%s tos inherit: flags %#x without IP6TnlFlagUseOrigTClass", mode, d.Flags)
			}
			got, ok := linkFromData(iptun.KindIP6Tnl, d, nil, mode)
			if !ok {
				t.Fatalf("%s: not decoded", mode)
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Errorf("%s tos %#x read back (-want +got):\n%s", mode, tos, diff)
			}
		}
	}
}
