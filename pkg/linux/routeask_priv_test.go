package linux

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/tunneld/tunneld/pkg/netnstest"
)

// TestPrivilegedUnroutable asks the kernel for routes as status does
// for each tunnel's remote: by the policy rules, with multipath and
// source-specific routes, none of which the observation reads as the
// underlay. A tester's working tunnels were called unroutable, by main's
// plain routes alone, behind a DS-Lite router's `default from PREFIX`, a
// multipath default and a default in a table a rule sends to.
func TestPrivilegedUnroutable(t *testing.T) {
	k := open(t)
	if out, err := exec.Command("ip", "-V").CombinedOutput(); err != nil || !strings.Contains(string(out), "iproute2") {
		t.Skipf("no iproute2 ip to make the routes with (%v: %s)", err, out)
	}
	for _, pair := range [][2]string{{"wan0", "wan0peer"}, {"wan1", "wan1peer"}} {
		if err := netnstest.VethUp(pair[0], pair[1]); err != nil {
			t.Fatal(err)
		}
	}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("addr", "add", "192.0.2.7/24", "dev", "wan0")
	ip("addr", "add", "198.51.100.7/24", "dev", "wan1")
	ip("-6", "addr", "add", "2001:db8:a::2/64", "dev", "wan0", "nodad")
	ip("-6", "addr", "add", "2001:db8:f::2/64", "dev", "wan1", "nodad")
	a := netip.MustParseAddr
	remote4, remote6 := a("203.0.113.9"), a("2001:db8:b::1")
	for _, step := range []struct {
		name     string
		setup    [][]string
		dst, src netip.Addr
		want     bool
	}{
		{"no route", nil, remote4, a("192.0.2.7"), true},
		{"on the subnet", nil, a("192.0.2.9"), a("192.0.2.7"), false},
		{"a default route", [][]string{{"route", "add", "default", "via", "192.0.2.1"}}, remote4, a("192.0.2.7"), false},
		{"an unreachable route before it", [][]string{{"route", "add", "unreachable", "203.0.113.0/24"}}, remote4, a("192.0.2.7"), true},
		{"multipath", [][]string{{"route", "del", "unreachable", "203.0.113.0/24"}, {"route", "del", "default"},
			{"route", "add", "default", "nexthop", "via", "192.0.2.1", "nexthop", "via", "198.51.100.1"}}, remote4, a("192.0.2.7"), false},
		{"by a rule into another table", [][]string{{"route", "del", "default"}, {"route", "add", "default", "via", "198.51.100.1", "table", "100"},
			{"rule", "add", "from", "198.51.100.7", "lookup", "100", "priority", "1000"}}, remote4, a("198.51.100.7"), false},
		{"another source, no rule", nil, remote4, a("192.0.2.7"), true},
		{"IPv6, no route", nil, remote6, a("2001:db8:a::2"), true},
		{"IPv6, from the delegated prefix", [][]string{{"-6", "route", "add", "default", "from", "2001:db8:a::/48", "via", "fe80::1", "dev", "wan0"}}, remote6, a("2001:db8:a::2"), false},
		{"IPv6, from another prefix", nil, remote6, a("2001:db8:f::2"), true},
	} {
		for _, args := range step.setup {
			ip(args...)
		}
		got, err := k.Unroutable(ctx, step.dst, step.src)
		if err != nil {
			t.Errorf("%s: %v", step.name, err)
			continue
		}
		if got != step.want {
			t.Errorf("%s: unroutable %v, want %v", step.name, got, step.want)
		}
	}
}
