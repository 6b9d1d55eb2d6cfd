package linux

import (
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// allKinds has one tunnel of every mode with non-default parameters, so
// that a wrong attribute number or byte order shows in the read-back.
const allKinds = `
[tunnel.t-ipip]
mode = "ipip"
local = "192.0.2.10"
remote = "198.51.100.1"
dev = "eth0"
ttl = 99
tos = 16
address = "10.0.0.1 peer 10.0.0.2"

[tunnel.t-gre]
mode = "gre"
local = "192.0.2.10"
remote = "198.51.100.2"
ikey = 42
okey = 4200000000
address = "10.0.1.1/30"
mtu = 1400

[tunnel.t-sit]
mode = "sit"
local = "192.0.2.10"
remote = "198.51.100.3"
ttl = "inherit"
pmtudisc = false
address = "2001:db8:1::1/64"

[tunnel.t-ipip6]
mode = "ipip6"
local = "2001:db8::10"
remote = "2001:db8::2"
encaplimit = "none"
ttl = 17
tos = "inherit"
address = "10.0.2.1/30"

[tunnel.t-ip6ip6]
mode = "ip6ip6"
local = "2001:db8::10"
remote = "2001:db8::3"
encaplimit = 7
tos = 32
address = "2001:db8:2::1/64"
`

// TestPrivilegedTunnels creates a tunnel of every kind, reads each back
// exactly, applies again (nothing to do), changes every local address in
// place (same ifindex, addresses kept) and tears down. Without the drivers
// (this host) it skips; in the VMs it must run.
func TestPrivilegedTunnels(t *testing.T) {
	k := open(t)
	foreign(t)
	if err := netnstest.AddAddr("eth0", mustPrefix("2001:db8::10/64")); err != nil {
		t.Fatal(err)
	}
	c := parse(t, allKinds)
	rep := converge(t, k, c)
	have, _, err := k.Observe(ctx, engine.Scope(c))
	if err != nil {
		t.Fatal(err)
	}
	want := rep.Last.Want.State
	if diff := cmp.Diff(want.Links, have.Links, opts); diff != "" {
		t.Errorf("links read back (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want.Addrs, have.Addrs, opts); diff != "" {
		t.Errorf("addresses read back (-want +got):\n%s", diff)
	}
	if rep, err := engine.Converge(ctx, k, c, nil); err != nil || len(rep.Applied) != 0 {
		t.Fatalf("second converge: %v, %v", rep.Applied, err)
	}
	index := map[string]int{}
	for _, l := range want.Links {
		ifc, err := net.InterfaceByName(l.Name)
		if err != nil {
			t.Fatal(err)
		}
		index[l.Name] = ifc.Index
	}

	// Every local changes (the WAN address moved): in place, one change
	// per tunnel plus the filter, nothing recreated.
	if err := netnstest.AddAddr("eth0", mustPrefix("192.0.2.11/24")); err != nil {
		t.Fatal(err)
	}
	if err := netnstest.AddAddr("eth0", mustPrefix("2001:db8::11/64")); err != nil {
		t.Fatal(err)
	}
	moved := parse(t, strings.NewReplacer("192.0.2.10", "192.0.2.11", "2001:db8::10", "2001:db8::11").Replace(allKinds))
	rep, err = engine.Converge(ctx, k, moved, nil)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, op := range rep.Applied {
		cmds = append(cmds, op.Command(nil))
	}
	// The filter first, as in every plan (it names the new addresses
	// before the tunnels take them), then the changes in place.
	if len(rep.Applied) != 6 || !strings.HasPrefix(cmds[0], "nft -f -") || !strings.HasPrefix(cmds[1], "ip link change") {
		t.Errorf("a local change applied %d operations, want the filter and 5 link changes:\n%s", len(rep.Applied), strings.Join(cmds, "\n"))
	}
	have, _, err = k.Observe(ctx, engine.Scope(moved))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rep.Last.Want.State.Links, have.Links, opts); diff != "" {
		t.Errorf("links after the change (-want +got):\n%s", diff)
	}
	if len(have.Addrs) != len(want.Addrs) {
		t.Errorf("addresses after the change: %v", have.Addrs)
	}
	for name, i := range index {
		if ifc, err := net.InterfaceByName(name); err != nil || ifc.Index != i {
			t.Errorf("%s was recreated (index %d → %v, %v)", name, i, ifc, err)
		}
	}
	if _, err := engine.Down(ctx, k, moved); err != nil {
		t.Fatal(err)
	}
	for name := range index {
		if _, err := net.InterfaceByName(name); err == nil {
			t.Errorf("%s survived down", name)
		}
	}
}

// TestPrivilegedFallbackDevicesSetDown: an up tunl0 accepts IPIP from
// anyone; tunneld sets it down when it manages ipip tunnels.
func TestPrivilegedFallbackDevicesSetDown(t *testing.T) {
	k := open(t)
	foreign(t)
	c := parse(t, allKinds)
	converge(t, k, c)
	if err := netnstest.LinkUp("tunl0"); err != nil {
		t.Fatal(err)
	}
	rep, err := engine.Converge(ctx, k, c, nil)
	if err != nil || len(rep.Applied) != 1 || rep.Applied[0].Command(nil) != "ip link set tunl0 down" {
		t.Fatalf("converge with tunl0 up: %v, %v", rep.Applied, err)
	}
	if ifc, _ := net.InterfaceByName("tunl0"); ifc.Flags&net.FlagUp != 0 {
		t.Fatal("tunl0 is still up")
	}
}

// TestPrivilegedEarlierTunnelsRemoved: every tunnel tunneld creates
// carries its alias, so that one a later configuration no longer names
// is still recognised as tunneld's and removed; foreign links stay.
func TestPrivilegedEarlierTunnelsRemoved(t *testing.T) {
	k := open(t)
	foreign(t)
	if err := netnstest.AddAddr("eth0", mustPrefix("2001:db8::10/64")); err != nil {
		t.Fatal(err)
	}
	converge(t, k, parse(t, allKinds))
	names := func(tunnels bool) map[string]string {
		links, err := k.listLinks(nil)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, l := range links {
			if tunnelKinds[l.kind] == tunnels && !strings.HasSuffix(l.name, "0") { // not the fallback devices (tunl0, gre0, …)
				out[l.name] = l.alias
			}
		}
		return out
	}
	want := map[string]string{"t-ipip": model.LinkAlias, "t-gre": model.LinkAlias, "t-sit": model.LinkAlias, "t-ipip6": model.LinkAlias, "t-ip6ip6": model.LinkAlias}
	if diff := cmp.Diff(want, names(true)); diff != "" {
		t.Fatalf("tunnels and their aliases (-want +got):\n%s", diff)
	}
	others := names(false)
	rep, err := engine.Converge(ctx, k, parse(t, "[global]\nfirewall = false\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(true); len(got) != 0 {
		t.Errorf("tunnels left after a configuration without them: %v (applied %d operations)", got, len(rep.Applied))
	}
	if diff := cmp.Diff(others, names(false)); diff != "" {
		t.Errorf("other links changed (-before +after):\n%s", diff)
	}
}
