package desired

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

// chainRules returns the rules of one chain of the filter a configuration
// builds, as nft prints them (nil when there is no such chain).
func chainRules(t *testing.T, src, chain string) []string {
	t.Helper()
	r := Build(parse(t, src), model.Inputs{}, model.State{})
	if r.State.Filter == nil {
		return nil
	}
	var out []string
	for _, ch := range r.State.Filter.Chains {
		if ch.Name == chain {
			for _, ru := range ch.Rules {
				out = append(out, ru.String())
			}
		}
	}
	return out
}

// filterTunnel is a tunnel named Moe for the filter tests; its spoof chain
// allows the peer.
const filterTunnel = `
[tunnel.Moe]
mode = "ipip"
local = "192.0.2.1"
remote = "192.0.2.2"
address = "10.0.0.1 peer 10.0.0.2"
`

// TestForwardEstablishedBeforeDrops: established and related traffic is
// accepted before any rule of the forward chain that drops, whether a
// [[forward]] section or a tunnel's forward = "drop" drops: a [[forward]]
// drop must not cut the replies to a connection another tunnel's
// setting has nothing to do with. A chain with nothing that drops goes
// without it.
func TestForwardEstablishedBeforeDrops(t *testing.T) {
	const (
		jump  = `iifname "Moe" jump spoof_Moe`
		est   = "ct state established,related accept"
		inTCP = `iifname "Moe" meta l4proto tcp counter drop`
	)
	tests := []struct {
		name, conf string
		want       []string
	}{
		{"forward drop, tunnel accepts", filterTunnel + `
[[forward]]
tunnel = "Moe"
direction = "in"
proto = "tcp"
action = "drop"
`, []string{jump, est, inTCP}},
		{"forward accept only", filterTunnel + `
[[forward]]
tunnel = "Moe"
direction = "in"
proto = "tcp"
`, []string{jump, `iifname "Moe" meta l4proto tcp accept`}},
		{"no forward", filterTunnel, []string{jump}},
		{"tunnel drops", filterTunnel + `forward = "drop"
[[forward]]
tunnel = "Moe"
direction = "out"
proto = "udp"
`, []string{jump, est, `oifname "Moe" meta l4proto udp accept`, `iifname "Moe" counter drop`, `oifname "Moe" counter drop`}},
		{"forward drop and a tunnel that drops", filterTunnel + `
[tunnel.Larry]
mode = "ipip"
local = "192.0.2.1"
remote = "192.0.2.3"
allowed_sources = "0.0.0.0/0"
forward = "drop"
[[forward]]
tunnel = "Moe"
direction = "in"
proto = "tcp"
action = "drop"
`, []string{jump, est, inTCP, `iifname "Larry" counter drop`, `oifname "Larry" counter drop`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, chainRules(t, tt.conf, "forward")); diff != "" {
				t.Errorf("forward chain (-want +got):\n%s", diff)
			}
		})
	}
}
