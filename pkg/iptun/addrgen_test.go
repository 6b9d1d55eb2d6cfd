package iptun

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TestAddrGenModeIproute2 holds AddrGenMode to the IFLA_AF_SPEC attribute
// iproute2-6.1.0 sent for `ip link set gt0 addrgenmode none` (captured
// with strace -e write=all on a veth, little-endian; the rest of its
// request was the ifinfomsg with gt0's index), and to its big-endian form.
func TestAddrGenModeIproute2(t *testing.T) {
	want, _ := hex.DecodeString("10001a000c000a000500080001000000")
	if !littleEndian() {
		// The same on a big-endian machine: each attribute header's
		// length and type in its order, the mode a byte.
		want, _ = hex.DecodeString("0010001a000c000a0005000801000000")
	}
	got, err := netlink.MarshalAttributes([]netlink.Attribute{AddrGenMode(AddrGenModeNone)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("AddrGenMode(none) = %x, iproute2 sent %x", got, want)
	}
}

// TestAddrGenModeDecodes: the attribute parses as the kernel reads it,
// for every mode.
func TestAddrGenModeDecodes(t *testing.T) {
	for _, mode := range []uint8{AddrGenModeEUI64, AddrGenModeNone, AddrGenModeStablePrivacy, AddrGenModeRandom} {
		a := AddrGenMode(mode)
		if a.Type != unix.IFLA_AF_SPEC {
			t.Fatalf("type %d, want IFLA_AF_SPEC", a.Type)
		}
		fams, err := netlink.UnmarshalAttributes(a.Data)
		if err != nil || len(fams) != 1 || fams[0].Type != unix.AF_INET6 {
			t.Fatalf("mode %d: families %+v, %v; want AF_INET6 alone", mode, fams, err)
		}
		in, err := netlink.UnmarshalAttributes(fams[0].Data)
		if err != nil || len(in) != 1 || in[0].Type != unix.IFLA_INET6_ADDR_GEN_MODE || !bytes.Equal(in[0].Data, []byte{mode}) {
			t.Errorf("mode %d: AF_INET6 holds %+v, %v; want IFLA_INET6_ADDR_GEN_MODE %d", mode, in, err, mode)
		}
	}
}
