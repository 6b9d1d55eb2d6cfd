package cli

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tunneld/tunneld/pkg/linux"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// TestPrivilegedForeignRouteSameKey runs plan and apply against the real
// kernel in a fresh namespace where main holds a route tunneld does not
// own with the destination and metric of a configured one: for IPv6 a
// router advertisement's default route (proto ra, metric 1024) and
// [[route]] to = "::/0" dev = "d0", the tester's case; for IPv4 a default
// route by hand and a default route through d0, both at metric 0. plan
// warns, naming that route as the kernel lists it, and shows the
// addition; apply warns too and fails with the kernel's refusal; with the
// metric the warning suggests, apply adds the route, and warns no more.
func TestPrivilegedForeignRouteSameKey(t *testing.T) {
	for _, tc := range []struct {
		name, to string
		wanAddr  netip.Prefix
		foreign  netnstest.Route
		warning  string
		add      string
	}{
		{"IPv6, RA default route", "::/0", netip.MustParsePrefix("2001:db8:a::7/64"),
			netnstest.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("2001:db8:a::1"), Dev: "wan", Proto: model.RouteProtocolRA, Metric: 1024},
			"route[0]: route ::/0 table main metric 1024 has the same table, destination and metric as default via 2001:db8:a::1 dev wan proto ra metric 1024, a route tunneld does not own: " +
				"the kernel refuses a second route of that key, and apply cannot add it; give route[0] a metric no route there has (lower to come first, higher to back the other up, not 0: an IPv6 route without one has 1024), " +
				"or delete that route: ip -6 route del default via 2001:db8:a::1 dev wan metric 1024, after setting net.ipv6.conf.wan.accept_ra_defrtr to 0, else the next router advertisement on wan adds it again",
			"ip -6 route add default dev d0 metric 1024 table main proto 116"},
		{"IPv4, default route by hand", "0.0.0.0/0", netip.MustParsePrefix("192.0.2.7/24"),
			netnstest.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.1"), Dev: "wan", Proto: 3},
			"route[0]: route 0.0.0.0/0 table main has the same table, destination and metric as default via 192.0.2.1 dev wan proto boot metric 0, a route tunneld does not own: " +
				"the kernel refuses a second route of that key, and apply cannot add it; give route[0] a metric no route there has (higher to back the other up), " +
				"or delete that route: ip route del default via 192.0.2.1 dev wan metric 0",
			"ip route add default dev d0 table main proto 116"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			netnstest.Enter(t)
			for _, pair := range [][2]string{{"wan", "wanpeer"}, {"d0", "d0peer"}} {
				if err := netnstest.Veth(pair[0], pair[1], nil); err != nil {
					t.Fatal(err)
				}
				for _, dev := range pair {
					if err := netnstest.LinkUp(dev); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := netnstest.AddAddr("wan", tc.wanAddr); err != nil {
				t.Fatal(err)
			}
			if err := netnstest.AddRoute(tc.foreign); err != nil {
				t.Fatalf("adding the other route: %v", err)
			}
			const conf = "[global]\nfirewall = false\n[[route]]\nto = %q\ndev = \"d0\"\n"
			file := filepath.Join(t.TempDir(), "tunneld.toml")
			write := func(extra string) {
				if err := os.WriteFile(file, []byte(fmt.Sprintf(conf, tc.to)+extra), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write("")
			state := t.TempDir()
			run := linuxRun(state, file, linux.Options{})
			if code, out, errs := run("plan"); code != 0 || !strings.Contains(out, "# warning: "+tc.warning+"\n") || !strings.Contains(out, tc.add) {
				t.Errorf("plan: exit %d, want 0, the warning and %q\n%s%s", code, tc.add, out, errs)
			}
			code, out, errs := run("apply")
			if code != 1 || !strings.Contains(errs, "tunneld: warning: "+tc.warning+"\n") ||
				!strings.Contains(errs, "a route not owned by tunneld has the same table, destination and metric (") ||
				!strings.Contains(errs, "): give this route a metric no route there has, or delete that one: file exists") {
				t.Errorf("apply: exit %d, want 1, the warning and the kernel's refusal\n%s%s", code, out, errs)
			}
			write("metric = 512\n")
			if code, out, errs := run("apply"); code != 0 || strings.Contains(out+errs, "warning") || !strings.Contains(out, "route add default dev d0 metric 512 table main proto 116") {
				t.Errorf("apply with metric = 512: exit %d\n%s%s", code, out, errs)
			}
			if code, out, errs := run("down"); code != 0 {
				t.Errorf("down: exit %d\n%s%s", code, out, errs)
			}
		})
	}
}
