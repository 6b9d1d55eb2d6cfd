package plan

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

// TestRecreateWritesDeviceSysctls: a tunnel the plan deletes and creates
// again (its mode changed, or it breaks a swap of remotes) gets its
// device's sysctls written after its creation, in the same plan, even
// where the old device had the wanted value: the new one comes up with
// conf/default's. A tunnel changed in place keeps its device and its
// values, and one deleted for good needs none. The plans before this
// left proxy_arp at the kernel's default until a second round.
func TestRecreateWritesDeviceSysctls(t *testing.T) {
	arp := func(dev string) string { return "net/ipv4/conf/" + dev + "/proxy_arp" }
	moe := link("moe", model.ModeIPIP, "192.0.2.1", "192.0.2.2")
	moeGRE := moe
	moeGRE.Mode, moeGRE.MTU = model.ModeGRE, 1476
	moeMoved := moe
	moeMoved.Local = netip.MustParseAddr("192.0.2.9")
	t1 := link("t1", model.ModeIPIP, "192.0.2.1", "198.51.100.1")
	t2 := link("t2", model.ModeIPIP, "192.0.2.1", "198.51.100.2")
	t1Swapped, t2Swapped := t1, t2
	t1Swapped.Remote, t2Swapped.Remote = t2.Remote, t1.Remote
	// Observed: tunneld wrote 1 over the original 0.
	written := func(dev string) model.Sysctl { return sysctl(arp(dev), "1", "0", "1") }
	wanted := func(dev string) model.Sysctl { return model.Sysctl{Path: arp(dev), Value: "1"} }
	state := func(links []model.Link, sysctls ...model.Sysctl) model.State {
		return model.State{Links: links, Sysctls: sysctls}
	}
	for _, tt := range []struct {
		name       string
		have, want model.State
		out        string
	}{
		{"mode change: written again after the creation",
			state([]model.Link{moe}, written("moe")), state([]model.Link{moeGRE}, wanted("moe")), `
ip link del moe
ip link add moe mtu 1476 type gre local 192.0.2.1 remote 192.0.2.2 ttl 64 pmtudisc
ip link set moe alias tunneld
ip link set moe up
sysctl -w net.ipv4.conf.moe.proxy_arp=1`},
		{"mode change, the old device at another value: written once",
			state([]model.Link{moe}, sysctl(arp("moe"), "0", "0", "1")), state([]model.Link{moeGRE}, wanted("moe")), `
ip link del moe
ip link add moe mtu 1476 type gre local 192.0.2.1 remote 192.0.2.2 ttl 64 pmtudisc
ip link set moe alias tunneld
ip link set moe up
sysctl -w net.ipv4.conf.moe.proxy_arp=1`},
		{"swap: the tunnel created again is written, the one changed in place not",
			state([]model.Link{t1, t2}, written("t1"), written("t2")),
			state([]model.Link{t1Swapped, t2Swapped}, wanted("t1"), wanted("t2")), `
ip link del t1
ip link change t2 mtu 1480 type ipip local 192.0.2.1 remote 198.51.100.1 ttl 64 pmtudisc
ip link add t1 mtu 1480 type ipip local 192.0.2.1 remote 198.51.100.2 ttl 64 pmtudisc
ip link set t1 alias tunneld
ip link set t1 up
sysctl -w net.ipv4.conf.t1.proxy_arp=1`},
		{"changed in place: nothing to write",
			state([]model.Link{moe}, written("moe")), state([]model.Link{moeMoved}, wanted("moe")), `
ip link change moe mtu 1480 type ipip local 192.0.2.9 remote 192.0.2.2 ttl 64 pmtudisc`},
		{"deleted for good: nothing to write",
			state([]model.Link{moe}, written("moe")), state(nil, wanted("moe")), `
ip link del moe`},
		{"another device's sysctl beside a mode change: left alone",
			state([]model.Link{moe}, written("eth0")), state([]model.Link{moeGRE}, wanted("eth0")), `
ip link del moe
ip link add moe mtu 1476 type gre local 192.0.2.1 remote 192.0.2.2 ttl 64 pmtudisc
ip link set moe alias tunneld
ip link set moe up`},
		{"mode change, no longer wanted: the original written after the creation",
			state([]model.Link{moe}, written("moe")), state([]model.Link{moeGRE}), `
ip link del moe
ip link add moe mtu 1476 type gre local 192.0.2.1 remote 192.0.2.2 ttl 64 pmtudisc
ip link set moe alias tunneld
ip link set moe up
sysctl -w net.ipv4.conf.moe.proxy_arp=0  # original value`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := Diff(tt.have, tt.want)
			want := strings.TrimPrefix(tt.out, "\n") + "\n"
			if diff := cmp.Diff(want, p.String()); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			// The write carries the record's original: the seam keeps
			// the one found before tunneld first wrote the sysctl.
			for _, op := range p.Ops {
				if op.Kind == SysctlSet && op.Sysctl.Original != "0" {
					t.Errorf("%s: original %q, want the recorded 0", op.Object(), op.Sysctl.Original)
				}
			}
		})
	}
}
