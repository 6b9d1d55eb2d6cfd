package linux

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// quietIPIP6 has two ipip6 tunnels (one with an MTU under 1280, which
// gives the device no IPv6 side at all) and an ip6ip6 one over the same
// underlay.
const quietIPIP6 = `
[global]
firewall = false

[tunnel.ds0]
mode = "ipip6"
local = "2001:db8::1"
remote = "2001:db8::2"
encaplimit = "none"
address = "192.0.0.2/29"

[tunnel.ds1]
mode = "ipip6"
local = "2001:db8::1"
remote = "2001:db8::4"
mtu = 1200

[tunnel.six0]
mode = "ip6ip6"
local = "2001:db8::1"
remote = "2001:db8::3"
address = "2001:db8:6::1/64"
`

// TestPrivilegedIPIP6Quiet: an ipip6 tunnel tunneld created has no IPv6
// address of the kernel's own, so the kernel sends none of its own IPv6
// packets into it (router solicitations, with IPv6 forwarding off), which
// the tunnel, carrying IPv4 only, would drop and count as transmit errors
// (a tester saw them grow in `tunneld status`); an ip6ip6 tunnel keeps its
// link-local address. Without the ip6_tunnel driver (this host) it skips;
// in the VMs it must run.
func TestPrivilegedIPIP6Quiet(t *testing.T) {
	k := open(t)
	soliciting(t)
	c := parse(t, quietIPIP6)
	converge(t, k, c)
	// The first solicitation goes at once, the next 4 s later.
	time.Sleep(5 * time.Second)
	_, in, err := k.Observe(ctx, model.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ds0", "ds1"} {
		d, ok := in.Devices[name]
		if !ok || !d.Up {
			t.Fatalf("%s is not up: %+v", name, d)
		}
		t.Logf("%s after 5 s: %d packets sent, %d transmit errors, %d dropped", name, d.Stats.TxPackets, d.Stats.TxErrors, d.Stats.TxDropped)
		if d.Stats.TxErrors != 0 || d.Stats.TxDropped != 0 {
			t.Errorf("%s, idle: %d transmit errors, %d dropped, want none", name, d.Stats.TxErrors, d.Stats.TxDropped)
		}
		if v6 := ipv6Addrs(t, name); len(v6) != 0 {
			t.Errorf("%s has IPv6 addresses %v, want none", name, v6)
		}
	}
	ll := false
	for _, a := range ipv6Addrs(t, "six0") {
		ll = ll || a.IsLinkLocalUnicast()
	}
	if !ll {
		t.Errorf("six0 (ip6ip6) has no link-local address: %v", ipv6Addrs(t, "six0"))
	}
	// The mode is not observed: nothing to change the next time.
	if rep := converge(t, k, c); len(rep.Applied) != 0 {
		t.Errorf("second converge applied %v", rep.Applied)
	}
}

// soliciting gives the namespace the underlay of quietIPIP6 (wan, with
// 2001:db8::1) and IPv6 forwarding off, under which alone the kernel
// solicits routers.
func soliciting(t *testing.T) {
	t.Helper()
	for _, err := range []error{
		netnstest.Veth("wan", "peer0", nil), netnstest.LinkUp("wan"), netnstest.LinkUp("peer0"),
		netnstest.AddAddr("wan", netip.MustParsePrefix("2001:db8::1/64")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	writeSysctl(t, "net/ipv6/conf/all/forwarding", "0")
}

// ipv6Addrs lists the IPv6 addresses of a device.
func ipv6Addrs(t *testing.T, name string) []netip.Addr {
	t.Helper()
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	as, err := ifc.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Is6() && !ip.Is4In6() {
				out = append(out, ip)
			}
		}
	}
	return out
}

// TestPrivilegedIPIP6QuietAfterMTU: an ipip6 tunnel whose MTU tunneld
// raises from under 1280 (the configuration's mtu = 1200 taken out, a
// hand change repaired, the underlay's MTU come back) stays without an
// IPv6 address of the kernel's own. Under 1280 the kernel drops the
// device's IPv6 side, mode and all, and raised again it gave the tunnel,
// up, a link-local address and its router solicitations at once (a
// tester saw the transmit errors come back). Without the ip6_tunnel
// driver (this host) it skips; in the VMs it must run.
func TestPrivilegedIPIP6QuietAfterMTU(t *testing.T) {
	k := open(t)
	soliciting(t)
	converge(t, k, parse(t, quietIPIP6))
	raised := parse(t, strings.Replace(quietIPIP6, "mtu = 1200\n", "", 1))
	rep := converge(t, k, raised)
	if len(rep.Applied) == 0 {
		t.Fatal("nothing applied: ds1's MTU was not raised")
	}
	ds1 := func() model.Device {
		t.Helper()
		_, in, err := k.Observe(ctx, model.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		return in.Devices["ds1"]
	}
	// The kernel sends one solicitation as the MTU is raised, before
	// tunneld can act; none after it (the next came 4 s later).
	time.Sleep(time.Second)
	first := ds1()
	time.Sleep(5 * time.Second)
	d := ds1()
	t.Logf("ds1 at mtu %d: %d transmit errors after 1 s, %d after 6 s", d.MTU, first.Stats.TxErrors, d.Stats.TxErrors)
	if d.MTU < 1280 || !d.Up {
		t.Fatalf("ds1: mtu %d, up %v; want raised and up", d.MTU, d.Up)
	}
	if first.Stats.TxErrors > 1 || d.Stats.TxErrors != first.Stats.TxErrors {
		t.Errorf("ds1, idle: %d transmit errors after 1 s, %d after 6 s; want at most the one at the raise, and no more", first.Stats.TxErrors, d.Stats.TxErrors)
	}
	if v6 := ipv6Addrs(t, "ds1"); len(v6) != 0 {
		t.Errorf("ds1 has IPv6 addresses %v, want none", v6)
	}
	if rep := converge(t, k, raised); len(rep.Applied) != 0 {
		t.Errorf("second converge applied %v", rep.Applied)
	}
}
