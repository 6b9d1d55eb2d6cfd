package linux

import (
	"encoding/binary"
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

// TestDeviceAddrsUsable: a device's addresses, which a tunnel's local
// endpoint follows, leave out those the kernel cannot send from yet or
// ever (tentative in duplicate address detection, unless optimistic;
// failed it), and put deprecated ones after the preferred. The kernel
// lists a device's IPv6 addresses newest first, so an ISP's new prefix
// (DS-Lite's WAN) was followed while its address was still tentative,
// and one whose detection failed was followed for good, the working
// address beside it left.
func TestDeviceAddrsUsable(t *testing.T) {
	p := netip.MustParsePrefix
	a := func(prefix string, secondary, unusable, deprecated bool) observedAddr {
		return observedAddr{index: 2, addr: model.Addr{Prefix: p(prefix)}, scope: unix.RT_SCOPE_UNIVERSE,
			secondary: secondary, unusable: unusable, deprecated: deprecated}
	}
	failed := a("2001:db8:a::5/64", false, true, false) // failed DAD
	failed.dadFailed = true
	linkLocal := a("fe80::1/64", false, true, false) // tentative, not global
	linkLocal.scope = unix.RT_SCOPE_LINK
	usableLL := a("fe80::2/64", false, false, false)
	usableLL.scope = unix.RT_SCOPE_LINK
	laterLL := a("fe80::3/64", false, false, false)
	laterLL.scope = unix.RT_SCOPE_LINK
	addrs := []observedAddr{
		a("192.0.2.1/24", false, false, true),
		a("192.0.2.2/24", true, false, false),
		a("198.51.100.1/24", false, false, false),
		a("2001:db8:a::6/64", false, true, false), // tentative
		failed,
		linkLocal,
		usableLL,
		laterLL,
		a("2001:db8:a::4/64", true, false, false),  // temporary (privacy)
		a("2001:db8:a::3/64", false, false, false), // optimistic: usable
		a("2001:db8:a::2/64", false, false, true),
		a("2001:db8:a::1/64", false, false, false),
	}
	want := []netip.Prefix{
		p("198.51.100.1/24"), p("2001:db8:a::3/64"), p("2001:db8:a::1/64"), // preferred primaries
		p("192.0.2.2/24"), p("2001:db8:a::4/64"), // preferred secondaries
		p("192.0.2.1/24"), p("2001:db8:a::2/64"), // deprecated
	}
	g := deviceAddrs(addrs)
	if diff := cmp.Diff(want, g.of(2), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	// Those left out are kept apart, with why, for the reason of a
	// tunnel whose device has no usable address.
	wantUnusable := []model.UnusableAddr{{Prefix: p("2001:db8:a::6/64")}, {Prefix: p("2001:db8:a::5/64"), Failed: true}}
	if diff := cmp.Diff(wantUnusable, g.unusable[2], cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("unusable addresses (-want +got):\n%s", diff)
	}
	// The first link-local address it can send from is kept, to say why
	// a device with only those has no IPv6 address to follow.
	if got, want := g.linkLocal[2], netip.MustParseAddr("fe80::2"); got != want {
		t.Errorf("link-local address %v, want %v", got, want)
	}
}

// TestDecodeAddrFlags: decodeAddr reads the flags that make an address
// unusable as a source (tentative without optimistic, failed DAD, which
// it tells apart so that a reason can say which) or deprecated, from
// ifa_flags and from IFA_FLAGS.
func TestDecodeAddrFlags(t *testing.T) {
	msg := func(flags uint8, ext uint32) []byte {
		b := make([]byte, unix.SizeofIfAddrmsg)
		b[0], b[1], b[2], b[3] = unix.AF_INET6, 64, flags, unix.RT_SCOPE_UNIVERSE
		binary.NativeEndian.PutUint32(b[4:], 2)
		attr := func(typ uint16, v []byte) {
			b = binary.NativeEndian.AppendUint16(b, uint16(4+len(v)))
			b = append(binary.NativeEndian.AppendUint16(b, typ), v...)
		}
		attr(unix.IFA_ADDRESS, netip.MustParseAddr("2001:db8::1").AsSlice())
		attr(unix.IFA_FLAGS, binary.NativeEndian.AppendUint32(nil, ext))
		return b
	}
	for _, tt := range []struct {
		name                            string
		flags                           uint8
		ext                             uint32
		unusable, dadFailed, deprecated bool
	}{
		{"permanent", unix.IFA_F_PERMANENT, 0, false, false, false},
		{"tentative", unix.IFA_F_TENTATIVE, 0, true, false, false},
		{"optimistic", unix.IFA_F_TENTATIVE | unix.IFA_F_OPTIMISTIC, 0, false, false, false},
		{"dadfailed", unix.IFA_F_TENTATIVE | unix.IFA_F_DADFAILED, 0, true, true, false},
		{"dadfailed, optimistic", unix.IFA_F_TENTATIVE | unix.IFA_F_OPTIMISTIC | unix.IFA_F_DADFAILED, 0, true, true, false},
		{"deprecated", unix.IFA_F_DEPRECATED, 0, false, false, true},
		{"tentative in IFA_FLAGS", 0, unix.IFA_F_TENTATIVE, true, false, false},
		{"dadfailed in IFA_FLAGS", 0, unix.IFA_F_TENTATIVE | unix.IFA_F_DADFAILED, true, true, false},
	} {
		a, ok, err := decodeAddr(msg(tt.flags, tt.ext))
		if !ok || err != nil {
			t.Fatalf("%s: ok %v err %v", tt.name, ok, err)
		}
		if a.unusable != tt.unusable || a.dadFailed != tt.dadFailed || a.deprecated != tt.deprecated {
			t.Errorf("%s: unusable %v dadFailed %v deprecated %v, want %v %v %v", tt.name,
				a.unusable, a.dadFailed, a.deprecated, tt.unusable, tt.dadFailed, tt.deprecated)
		}
	}
}
