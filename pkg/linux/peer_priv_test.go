package linux

import (
	"net/netip"
	"testing"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// peerConfig has an ip6ip6 and a gre tunnel, each with an IPv6 address
// with a peer and a route via that peer; the gre one is bound to wan0.
const peerConfig = `
[global]
firewall = false
[tunnel.s1]
mode = "ip6ip6"
local = "any"
remote = "2001:db8:a::14"
address = "fd04::1 peer fd04::2"
[tunnel.g1]
mode = "gre"
local = "192.0.2.1"
remote = "192.0.2.14"
dev = "wan0"
address = ["10.255.0.1 peer 10.255.0.2", "fd06::1 peer fd06::2"]
[[route]]
to = "fd09:33::/64"
via = "peer"
dev = "s1"
[[route]]
to = "fd09:44::/64"
via = "peer"
dev = "g1"
`

// TestPrivilegedPeerRouteIPv6: routes via the peer of an IPv6 address
// with a peer are made when tunneld creates the tunnel, after someone
// sets it down and up, and after its bound device's carrier goes and
// comes back (tunneld sets it down and up). The address was added before
// the tunnel was up, the kernel made no route to the peer, and a
// tester's apply failed on the route at every run ("no route to host").
func TestPrivilegedPeerRouteIPv6(t *testing.T) {
	k := open(t)
	if err := netnstest.VethUp("wan0", "wan0peer"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"192.0.2.1/24", "2001:db8:a::1/64"} {
		if err := netnstest.AddAddr("wan0", netip.MustParsePrefix(a)); err != nil {
			t.Fatal(err)
		}
	}
	c := parse(t, peerConfig)
	routed := func(when string) {
		t.Helper()
		converge(t, k, c) // fails on a route via a peer the kernel has no route to
		have, _, err := k.Observe(ctx, engine.Scope(c))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range have.Routes {
			if r.Dst == netip.MustParsePrefix("fd09:33::/64") || r.Dst == netip.MustParsePrefix("fd09:44::/64") {
				n++
			}
		}
		if n != 2 {
			t.Errorf("%s: %d of the 2 routes via the peers: %+v", when, n, have.Routes)
		}
	}
	routed("created")
	for _, step := range []struct {
		what string
		do   func() error
	}{
		{"s1 set down by someone", func() error { return netnstest.LinkDown("s1") }},
		{"s1 set up again by someone", func() error { return netnstest.LinkUp("s1") }},
		{"wan0's carrier gone", func() error { return netnstest.LinkDown("wan0peer") }},
		{"wan0's carrier back", func() error { return netnstest.LinkUp("wan0peer") }},
	} {
		if err := step.do(); err != nil {
			t.Fatal(err)
		}
		if step.what == "wan0's carrier gone" {
			converge(t, k, c) // g1 down, its route unreachable
			continue
		}
		routed(step.what)
	}
}

// TestPrivilegedRemoteAnyFlip: a gre tunnel's remote changed from any to
// an address and back converges, the tunnel deleted and created again
// (the kernel refuses the change in place with EINVAL); a tester's stayed
// down.
func TestPrivilegedRemoteAnyFlip(t *testing.T) {
	k := open(t)
	if err := netnstest.VethUp("wan0", "wan0peer"); err != nil {
		t.Fatal(err)
	}
	if err := netnstest.AddAddr("wan0", netip.MustParsePrefix("192.0.2.1/24")); err != nil {
		t.Fatal(err)
	}
	for _, remote := range []string{"any", "192.0.2.43", "any"} {
		c := parse(t, "[global]\nfirewall = false\n[tunnel.t]\nmode = \"gre\"\nlocal = \"192.0.2.1\"\nremote = \""+remote+"\"\nikey = 5\n")
		converge(t, k, c)
		have, _, err := k.Observe(ctx, engine.Scope(c))
		if err != nil {
			t.Fatal(err)
		}
		if len(have.Links) != 1 || !have.Links[0].Up || (remote == "any") == have.Links[0].Remote.IsValid() {
			t.Errorf("remote %s: %+v", remote, have.Links)
		}
	}
}
