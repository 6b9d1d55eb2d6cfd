package linux

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/kernel"
)

// routeTypes has an unreachable, a blackhole and a prohibit route of each
// family, in main and in numbered tables (one above 255).
const routeTypes = `
[tables]
t = 42
far = 1000

[[route]]
to = "10.60.0.0/16"
type = "unreachable"

[[route]]
to = "2001:db8:100::/48"
type = "unreachable"

[[route]]
to = "10.61.0.0/16"
type = "blackhole"
table = "t"
metric = 10

[[route]]
to = "::/0"
type = "blackhole"
table = "far"

[[route]]
to = "default"
type = "prohibit"
table = "far"

[[route]]
to = "2001:db8:200::/48"
type = "prohibit"
metric = 7

[[route]]
to = "2001:db8:201::/48"
type = "unreachable"
table = "t"
`

// ipCmd runs ip(8) in the test's namespace.
func ipCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if errors.Is(err, exec.ErrNotFound) {
		t.Skip("no ip(8)")
	}
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// routesOf lists the namespace's routes to dst, every table, in the
// kernel's order, over rtnetlink.
func routesOf(t *testing.T, dst string) []rtnetlink.RouteMessage {
	t.Helper()
	p := netip.MustParsePrefix(dst)
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	all, err := c.Route.List()
	if err != nil {
		t.Fatal(err)
	}
	var out []rtnetlink.RouteMessage
	for _, r := range all {
		a, ok := netip.AddrFromSlice(r.Attributes.Dst)
		if !ok {
			a = netip.IPv4Unspecified()
			if r.Family == unix.AF_INET6 {
				a = netip.IPv6Unspecified()
			}
		}
		if netip.PrefixFrom(a.Unmap(), int(r.DstLength)) == p {
			out = append(out, r)
		}
	}
	return out
}

// routesTo lists the namespace's routes to dst, every table, as "TYPE
// table T proto P oif DEV", sorted and joined by commas, as the kernel
// reports them: not through ip(8), whose output differs between iproute2
// and busybox.
func routesTo(t *testing.T, dst string) string {
	t.Helper()
	types := map[uint8]string{unix.RTN_UNICAST: "unicast", unix.RTN_UNREACHABLE: "unreachable", unix.RTN_BLACKHOLE: "blackhole", unix.RTN_PROHIBIT: "prohibit"}
	var out []string
	for _, r := range routesOf(t, dst) {
		oif := "0"
		if r.Attributes.OutIface != 0 {
			ifc, err := net.InterfaceByIndex(int(r.Attributes.OutIface))
			if err != nil {
				t.Fatal(err)
			}
			oif = ifc.Name
		}
		out = append(out, fmt.Sprintf("%s table %d proto %d oif %s", types[r.Type], r.Attributes.Table, r.Protocol, oif))
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// TestPrivilegedRouteTypes: unreachable, blackhole and prohibit routes of
// both families in main and other tables read back as configured (IPv6
// lists them with dev lo and an error; IPv4 without a device), so a
// second apply has nothing to do; a change of type is made in place;
// foreign unreachable routes added with ip(8) survive apply and down, and
// down removes tunneld's.
func TestPrivilegedRouteTypes(t *testing.T) {
	k := open(t)
	snap := foreign(t)
	ipCmd(t, "route", "add", "unreachable", "10.70.0.0/16", "proto", "static")
	ipCmd(t, "-6", "route", "add", "unreachable", "2001:db8:70::/48", "table", "42", "proto", "static")
	ipCmd(t, "route", "add", "blackhole", "10.71.0.0/16", "table", "1000", "proto", "boot")
	before := snap()
	c := parse(t, routeTypes)

	rep := converge(t, k, c)
	if len(rep.Applied) != 7 {
		t.Errorf("applied %d operations, want the 7 routes (no tunnel: no filter):\n%v", len(rep.Applied), rep.Applied)
	}
	have, _, err := k.Observe(ctx, engine.Scope(c))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rep.Last.Want.State.Routes, have.Routes, opts); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	for dst, want := range map[string]string{
		"2001:db8:100::/48": "unreachable table 254 proto 116 oif lo",
		"0.0.0.0/0":         "prohibit table 1000 proto 116 oif 0,unicast table 254 proto 4 oif eth0",
		"::/0":              "blackhole table 1000 proto 116 oif lo",
		"10.61.0.0/16":      "blackhole table 42 proto 116 oif 0",
	} {
		if got := routesTo(t, dst); got != want {
			t.Errorf("routes to %s: %q, want %q", dst, got, want)
		}
	}
	if rep = converge(t, k, c); len(rep.Applied) != 0 {
		t.Fatalf("second converge applied %v", rep.Applied)
	}

	// Another type for the same destinations: replaced in place.
	c2 := parse(t, strings.NewReplacer(`to = "10.60.0.0/16"
type = "unreachable"`, `to = "10.60.0.0/16"
type = "blackhole"`, `to = "2001:db8:100::/48"
type = "unreachable"`, `to = "2001:db8:100::/48"
type = "prohibit"`).Replace(routeTypes))
	rep = converge(t, k, c2)
	if len(rep.Applied) != 2 {
		t.Errorf("a change of type applied %v, want two replaces", rep.Applied)
	}
	if rep = converge(t, k, c2); len(rep.Applied) != 0 {
		t.Fatalf("converge after the change applied %v", rep.Applied)
	}
	for dst, want := range map[string]string{
		"10.60.0.0/16":      "blackhole table 254 proto 116 oif 0",
		"2001:db8:100::/48": "prohibit table 254 proto 116 oif lo",
	} {
		if got := routesTo(t, dst); got != want {
			t.Errorf("routes to %s after the change: %q, want %q", dst, got, want)
		}
	}

	if _, err := engine.Down(ctx, k, c2); err != nil {
		t.Fatal(err)
	}
	if after := snap(); after != before {
		t.Errorf("after down, the namespace differs:\n%s", cmp.Diff(before, after))
	}
}

// TestPrivilegedForeignUnreachableRouteInTheWay: a foreign unreachable
// route with the table, destination and metric of one of tunneld's is
// neither replaced nor removed.
func TestPrivilegedForeignUnreachableRouteInTheWay(t *testing.T) {
	k := open(t)
	snap := foreign(t)
	ipCmd(t, "route", "add", "unreachable", "2001:db8:100::/48", "proto", "static")
	before := snap()
	c := parse(t, routeTypes)
	_, err := engine.Converge(ctx, k, c, nil)
	var ae *kernel.ApplyError
	if !errors.As(err, &ae) || len(ae.Failed) != 1 || !strings.HasPrefix(ae.Failed[0].Error(), "route 2001:db8:100::/48 table main metric 1024: a route not owned by tunneld") {
		t.Fatalf("error = %v", err)
	}
	if got, want := routesTo(t, "2001:db8:100::/48"), "unreachable table 254 proto 4 oif lo"; got != want {
		t.Errorf("routes to 2001:db8:100::/48: %q, want %q", got, want)
	}
	if _, err := engine.Down(ctx, k, c); err != nil {
		t.Fatal(err)
	}
	if after := snap(); after != before {
		t.Errorf("after down, the namespace differs:\n%s", cmp.Diff(before, after))
	}
}
