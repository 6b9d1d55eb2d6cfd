package linux

import (
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// TestPrivilegedSameKeyOutsideMain: someone else's route with the table,
// destination and metric of a configured one in a table other than main
// (where tunneld reads no one else's routes, and so cannot warn before)
// makes the add fail with what to do and how to find that route, not
// the kernel's "file exists" alone (a tester's); the route is left.
func TestPrivilegedSameKeyOutsideMain(t *testing.T) {
	k := open(t)
	foreign(t)
	for _, r := range []netnstest.Route{
		{Table: 42, Dst: netip.MustParsePrefix("10.50.0.0/16"), Dev: "eth1", Proto: unix.RTPROT_BOOT},
		{Table: 42, Dst: netip.MustParsePrefix("2001:db8:50::/48"), Dev: "eth1", Metric: 1024, Proto: unix.RTPROT_BOOT},
	} {
		if err := netnstest.AddRoute(r); err != nil {
			t.Fatal(err)
		}
	}
	c := parse(t, "[global]\nfirewall = false\n[[route]]\nto = \"10.50.0.0/16\"\ndev = \"eth0\"\ntable = 42\n[[route]]\nto = \"2001:db8:50::/48\"\ndev = \"eth0\"\ntable = 42\n")
	_, err := engine.Converge(ctx, k, c, nil)
	for _, want := range []string{
		"route 10.50.0.0/16 table 42: a route not owned by tunneld has the same table, destination and metric (ip route show table 42 10.50.0.0/16 lists it): give this route a metric no route there has, or delete that one: file exists",
		"route 2001:db8:50::/48 table 42 metric 1024: a route not owned by tunneld has the same table, destination and metric (ip -6 route show table 42 2001:db8:50::/48 lists it): give this route a metric no route there has, or delete that one: file exists",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("converge: %v\nwant it to say %q", err, want)
		}
	}
}
