package linux

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// boundConfig has two tunnels, each bound to its WAN, and a default route
// in table 100 through the one over wan0, with a failover through the one
// over wan1 (a tester's two-WAN router).
const boundConfig = `
[global]
firewall = false
[tunnel.tun0]
mode = "ipip"
local = "wan0"
dev = "wan0"
remote = "203.0.113.2"
address = "10.255.0.1 peer 10.255.0.2"
[tunnel.tun1]
mode = "ipip"
local = "wan1"
dev = "wan1"
remote = "203.0.113.3"
address = "10.255.1.1 peer 10.255.1.2"
[[route]]
to = "default"
via = "peer"
dev = "tun0"
table = 100
[[route]]
to = "default"
via = "peer"
dev = "tun1"
table = 100
metric = 100
`

// TestPrivilegedBoundWANDown: a tunnel bound to a WAN whose carrier goes
// (its veth peer down), or which is set down with its address kept, is
// set down, and the default route through it gives way to the failover
// through the other WAN's tunnel; both come back with the WAN. A
// tester's stayed up, and the LAN's packets died in it.
func TestPrivilegedBoundWANDown(t *testing.T) {
	k := open(t)
	for i, a := range []string{"192.0.2.1/24", "198.51.100.1/24"} {
		wan := fmt.Sprintf("wan%d", i)
		if err := netnstest.VethUp(wan, wan+"peer"); err != nil {
			t.Fatal(err)
		}
		if err := netnstest.AddAddr(wan, netip.MustParsePrefix(a)); err != nil {
			t.Fatal(err)
		}
	}
	c := parse(t, boundConfig)
	// state is tun0's up state and table 100's routes' devices.
	state := func() (bool, []string) {
		t.Helper()
		converge(t, k, c)
		have, _, err := k.Observe(ctx, engine.Scope(c))
		if err != nil {
			t.Fatal(err)
		}
		up := false
		for _, l := range have.Links {
			if l.Name == "tun0" {
				up = l.Up
			}
		}
		var devs []string
		for _, r := range have.Routes {
			if r.Table == 100 {
				devs = append(devs, fmt.Sprintf("%s %s metric %d", r.Type, r.Dev, r.Metric))
			}
		}
		slices.Sort(devs)
		return up, devs
	}
	both := []string{"unicast tun0 metric 0", "unicast tun1 metric 100"}
	failover := []string{"unicast tun1 metric 100"}
	for _, step := range []struct {
		what   string
		do     func() error
		up     bool
		routes []string
	}{
		{"both WANs up", func() error { return nil }, true, both},
		{"wan0's carrier gone", func() error { return netnstest.LinkDown("wan0peer") }, false, failover},
		{"wan0's carrier back", func() error { return netnstest.LinkUp("wan0peer") }, true, both},
		{"wan0 set down, its address kept", func() error { return netnstest.LinkDown("wan0") }, false, failover},
		{"wan0 set up", func() error { return netnstest.LinkUp("wan0") }, true, both},
	} {
		if err := step.do(); err != nil {
			t.Fatal(err)
		}
		up, routes := state()
		if up != step.up || !slices.Equal(routes, step.routes) {
			t.Errorf("%s: tun0 up %v, table 100 %q; want up %v, %q", step.what, up, routes, step.up, step.routes)
		}
	}
}
