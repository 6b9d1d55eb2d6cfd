package linux

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/model"
)

func TestDeviceAddrs(t *testing.T) {
	p := netip.MustParsePrefix
	a := func(index uint32, prefix string, scope uint8, secondary bool) observedAddr {
		return observedAddr{index: index, addr: model.Addr{Prefix: p(prefix)}, scope: scope, secondary: secondary}
	}
	// The kernel's order: IPv4 device by device, then IPv6.
	addrs := []observedAddr{
		a(1, "127.0.0.1/8", unix.RT_SCOPE_HOST, false),
		a(2, "192.0.2.1/24", unix.RT_SCOPE_UNIVERSE, false),
		a(2, "192.0.2.9/24", unix.RT_SCOPE_UNIVERSE, true),
		a(2, "198.51.100.1/24", unix.RT_SCOPE_UNIVERSE, false),
		a(3, "10.0.0.1/32", unix.RT_SCOPE_UNIVERSE, false),
		a(1, "::1/128", unix.RT_SCOPE_HOST, false),
		a(2, "2001:db8::1/64", unix.RT_SCOPE_UNIVERSE, false),
		a(2, "fe80::1/64", unix.RT_SCOPE_LINK, false),
	}
	want := map[uint32][]netip.Prefix{
		1: nil,
		2: {p("192.0.2.1/24"), p("198.51.100.1/24"), p("2001:db8::1/64"), p("192.0.2.9/24")},
		3: {p("10.0.0.1/32")},
		4: nil,
	}
	g := deviceAddrs(addrs)
	got := map[uint32][]netip.Prefix{}
	for index := range want {
		got[index] = g.of(index)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("addresses by device (-want +got):\n%s", diff)
	}
	// Each list ends where it is cut: appending to one never writes
	// into the next.
	l := g.of(2)
	_ = append(l, p("203.0.113.1/32"))
	if got := g.of(3); got[0] != p("10.0.0.1/32") {
		t.Errorf("appending to device 2's list changed device 3's: %v", got)
	}
}
