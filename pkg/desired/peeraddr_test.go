package desired

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

// TestDownTunnelPeerAddresses: a tunnel that is down has no IPv6 address
// with a peer in the desired state, its other addresses kept: setting it
// down deleted its IPv6 addresses, and one added again while it was down
// never got its route to the peer (a tester's routes via the peer
// failed for good). It comes when the tunnel is up.
func TestDownTunnelPeerAddresses(t *testing.T) {
	c := parse(t, `
[tunnel.g]
mode = "gre"
local = "192.0.2.1"
remote = "203.0.113.2"
dev = "wan0"
address = ["10.255.0.1 peer 10.255.0.2", "fd04::1 peer fd04::2", "fd05::1/64"]
`)
	all := []model.Addr{
		{Link: "g", Prefix: pfx("10.255.0.1/32"), Peer: ip("10.255.0.2")},
		{Link: "g", Prefix: pfx("fd04::1/128"), Peer: ip("fd04::2")},
		{Link: "g", Prefix: pfx("fd05::1/64")},
	}
	wan := model.Device{Name: "wan0", MTU: 1500, Up: true, Running: true, Addrs: []netip.Prefix{pfx("192.0.2.1/24")}}
	noCarrier := wan
	noCarrier.Running = false
	for _, tt := range []struct {
		name string
		wan  model.Device
		want []model.Addr
	}{
		{"up", wan, all},
		{"down: without the IPv6 one with a peer", noCarrier, []model.Addr{all[0], all[2]}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(c, model.Inputs{Devices: map[string]model.Device{"wan0": tt.wan}}, model.State{})
			if diff := cmp.Diff(tt.want, r.State.Addrs, opts); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}
		})
	}
}
