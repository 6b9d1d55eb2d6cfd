package linux

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/model"
)

// TestAddLinkAddrGenMode: the requests creating an ipip6 tunnel end with
// a follow-up setlink by its name that sets IPv6 address generation mode
// none, byte for byte what `ip link set NAME addrgenmode none` sends
// besides the name (iproute2-6.1.0 goes by index); the creation itself
// carries no IFLA_AF_SPEC, which the kernel refuses there. No other mode
// (ip6ip6 keeps its link-local address) has the attribute in any of its
// requests.
func TestAddLinkAddrGenMode(t *testing.T) {
	v4a, v4b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	links := []model.Link{
		{Name: "ds0", Mode: model.ModeIPIP6, Local: v6a, Remote: v6b, TTL: 64, EncapLimit: -1, MTU: 1460},
		{Name: "six0", Mode: model.ModeIP6IP6, Local: v6a, Remote: v6b, TTL: 64, EncapLimit: -1, MTU: 1460},
		{Name: "sit0x", Mode: model.ModeSIT, Local: v4a, Remote: v4b, TTL: 64, PMTUDisc: true, MTU: 1480},
		{Name: "gre0x", Mode: model.ModeGRE, Local: v4a, Remote: v4b, TTL: 64, PMTUDisc: true, MTU: 1476},
		{Name: "ipip0x", Mode: model.ModeIPIP, Local: v4a, Remote: v4b, TTL: 64, PMTUDisc: true, MTU: 1480},
	}
	// ifinfomsg (AF_UNSPEC, index 0), IFLA_IFNAME "ds0", then iproute2's
	// IFLA_AF_SPEC { AF_INET6 { IFLA_INET6_ADDR_GEN_MODE 1 } }.
	want, _ := hex.DecodeString("00000000000000000000000000000000" + "0800030064733000" + "10001a000c000a000500080001000000")
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		// Big-endian: the attribute headers in that order.
		want, _ = hex.DecodeString("00000000000000000000000000000000" + "0008000364733000" + "0010001a000c000a0005000801000000")
	}
	for _, l := range links {
		reqs, err := addLink(l, 0)
		if err != nil {
			t.Fatalf("%s: %v", l.Mode, err)
		}
		var withSpec []int
		for i, r := range reqs {
			b, err := r.body.MarshalBinary()
			if err != nil {
				t.Fatalf("%s: request %d: %v", l.Mode, i, err)
			}
			if hasAFSpec(t, b) {
				withSpec = append(withSpec, i)
			}
		}
		if l.Mode != model.ModeIPIP6 {
			if len(withSpec) != 0 {
				t.Errorf("%s: requests %v carry IFLA_AF_SPEC, want none", l.Mode, withSpec)
			}
			continue
		}
		last := len(reqs) - 1
		if len(withSpec) != 1 || withSpec[0] != last || last == 0 {
			t.Fatalf("%s: IFLA_AF_SPEC in requests %v of %d, want in the last alone, not the creation", l.Mode, withSpec, len(reqs))
		}
		r := reqs[last]
		if r.typ != unix.RTM_NEWLINK || r.flags != 0 || r.phase() != sendAfterOK {
			t.Errorf("%s: type %d flags %#x phase %d, want a setlink (RTM_NEWLINK, no flags) sent once the creation worked", l.Mode, r.typ, r.flags, r.phase())
		}
		got, _ := r.body.MarshalBinary()
		if !bytes.Equal(got, want) {
			t.Errorf("%s: setlink\n got %x\nwant %x", l.Mode, got, want)
		}
		// No IPv6 on the device (an MTU under 1280): nothing to turn off.
		if err := r.result(unix.EAFNOSUPPORT); err != nil {
			t.Errorf("EAFNOSUPPORT: %v, want success", err)
		}
		if err := r.result(unix.EINVAL); err == nil || !strings.Contains(err.Error(), "addrgenmode none") {
			t.Errorf("EINVAL: %v, want it named", err)
		}
	}
}

// hasAFSpec says whether the link message b (ifinfomsg, attributes) has
// an IFLA_AF_SPEC attribute.
func hasAFSpec(t *testing.T, b []byte) bool {
	t.Helper()
	as, err := netlink.UnmarshalAttributes(b[unix.SizeofIfInfomsg:])
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.Type&^(netlink.Nested|netlink.NetByteOrder) == unix.IFLA_AF_SPEC {
			return true
		}
	}
	return false
}
