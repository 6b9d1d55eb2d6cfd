package linux

import (
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// TestPrivilegedGatewayDevice: routes with a gateway and no dev in a
// table of their own go to the device whose subnet holds the gateway
// (desired's gatewayDevice), whatever else that table holds: a
// tester's edit, added before the default route it replaced was
// deleted, stayed on that route's device (v0), with no drift; an IPv6
// one was refused ("no route to host") at every apply while a rule sent
// lookups into its table, which held a default route through another
// gateway.
func TestPrivilegedGatewayDevice(t *testing.T) {
	k := open(t)
	for _, pair := range [][2]string{{"v0", "v0peer"}, {"br0", "br0peer"}, {"cl0", "cl0peer"}, {"dk0", "dk0peer"}} {
		if err := netnstest.VethUp(pair[0], pair[1]); err != nil {
			t.Fatal(err)
		}
	}
	// cl0: a cloud host's /32 and a host route to its gateway; dk0: a
	// Docker bridge whose /16 holds that gateway (a tester's first
	// version of this went by addresses alone, and took dk0).
	for dev, addrs := range map[string][]string{"v0": {"10.9.0.1/24", "fd09::1/64"}, "br0": {"192.168.5.1/24", "fd05::1/64"}, "cl0": {"203.0.113.10/32"}, "dk0": {"172.31.0.1/16"}} {
		for _, a := range addrs {
			if err := netnstest.AddAddr(dev, netip.MustParsePrefix(a)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := netnstest.AddRoute(netnstest.Route{Table: 254, Dst: netip.MustParsePrefix("172.31.1.1/32"), Dev: "cl0", Proto: unix.RTPROT_BOOT}); err != nil {
		t.Fatal(err)
	}
	if err := netnstest.AddRule(netnstest.Rule{Family: unix.AF_INET6, Priority: 20999, Table: 42, Proto: unix.RTPROT_STATIC}); err != nil {
		t.Fatal(err)
	}
	const (
		before = "[global]\nfirewall = false\n[[route]]\nto = \"default\"\ndev = \"v0\"\ntable = 100\n"
		after  = "[global]\nfirewall = false\n[[route]]\nto = \"198.51.100.0/24\"\nvia = \"192.168.5.9\"\ntable = 100\n" +
			"[[route]]\nto = \"::/0\"\nvia = \"fd09::2\"\ndev = \"v0\"\ntable = 42\n[[route]]\nto = \"fd10::/48\"\nvia = \"fd05::9\"\ntable = 42\n" +
			"[[route]]\nto = \"198.18.0.0/15\"\nvia = \"172.31.1.1\"\n"
	)
	c := parse(t, before)
	if _, err := engine.Converge(ctx, k, c, nil); err != nil {
		t.Fatal(err)
	}
	c = parse(t, after)
	if _, err := engine.Converge(ctx, k, c, nil); err != nil {
		t.Fatal(err)
	}
	have, _, err := k.Observe(ctx, engine.Scope(c))
	if err != nil {
		t.Fatal(err)
	}
	for dst, dev := range map[string]string{"198.51.100.0/24": "br0", "fd10::/48": "br0", "::/0": "v0", "198.18.0.0/15": "cl0"} {
		if !slices.ContainsFunc(have.Routes, func(r model.Route) bool { return r.Dst == netip.MustParsePrefix(dst) && r.Dev == dev }) {
			t.Errorf("no route to %s on %s: %+v", dst, dev, have.Routes)
		}
	}
}

// TestPrivilegedGatewayDeviceDown: a route with a gateway and no dev
// whose gateway's device goes down is left out (with a note), as one
// that names the device is, and comes back on it when it is up: a
// tester's was added again without a device while the LAN was down, and
// the kernel put it on the tunnel of its table's default route.
func TestPrivilegedGatewayDeviceDown(t *testing.T) {
	k := open(t)
	for _, pair := range [][2]string{{"v0", "v0peer"}, {"lan0", "lan0peer"}} {
		if err := netnstest.VethUp(pair[0], pair[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := netnstest.AddAddr("lan0", netip.MustParsePrefix("192.168.1.1/24")); err != nil {
		t.Fatal(err)
	}
	c := parse(t, "[global]\nfirewall = false\n[[route]]\nto = \"default\"\ndev = \"v0\"\ntable = 100\n"+
		"[[route]]\nto = \"172.16.0.0/16\"\nvia = \"192.168.1.254\"\ntable = 100\n")
	on := func(when string) (string, []string) {
		t.Helper()
		rep, err := engine.Converge(ctx, k, c, nil)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		have, _, err := k.Observe(ctx, engine.Scope(c))
		if err != nil {
			t.Fatal(err)
		}
		dev := "none"
		for _, r := range have.Routes {
			if r.Dst == netip.MustParsePrefix("172.16.0.0/16") {
				dev = r.Dev
			}
		}
		return dev, rep.Last.Want.Notes
	}
	if dev, _ := on("lan0 up"); dev != "lan0" {
		t.Errorf("lan0 up: the route is on %s, want lan0", dev)
	}
	if err := netnstest.LinkDown("lan0"); err != nil {
		t.Fatal(err)
	}
	if dev, notes := on("lan0 down"); dev != "none" || len(notes) != 1 {
		t.Errorf("lan0 down: the route is on %s with notes %q, want none and one note", dev, notes)
	}
	if err := netnstest.LinkUp("lan0"); err != nil {
		t.Fatal(err)
	}
	if dev, _ := on("lan0 up again"); dev != "lan0" {
		t.Errorf("lan0 up again: the route is on %s, want lan0", dev)
	}
}
