package e2e

import (
	"net/netip"
	"testing"
)

func TestParseOuter(t *testing.T) {
	inner := []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 192, 168, 50, 1, 192, 168, 50, 2, 8, 0, 0, 0, 0, 0, 0, 0}
	outer := append([]byte{0x45, 0, 0, 48, 0, 0, 0x40, 0, 255, 4, 0, 0, 172, 16, 10, 2, 152, 16, 10, 2}, inner...)
	p, ok := parseOuter(outer)
	want := packet{proto: 4, ttl: 255, df: true, src: netip.MustParseAddr("172.16.10.2"), dst: netip.MustParseAddr("152.16.10.2"),
		innerSrc: netip.MustParseAddr("192.168.50.1"), innerD: netip.MustParseAddr("192.168.50.2")}
	if !ok || p != want {
		t.Fatalf("ipip: %v %v, want %v", p, ok, want)
	}
	gre := append([]byte{0x45, 0, 0, 52, 0, 0, 0, 0, 64, 47, 0, 0, 172, 16, 10, 2, 152, 16, 10, 2, 0x20, 0, 0x08, 0, 0, 0, 0, 42}, inner...)
	p, ok = parseOuter(gre)
	if !ok || p.proto != 47 || p.innerD != netip.MustParseAddr("192.168.50.2") || p.df {
		t.Fatalf("gre with key: %v %v", p, ok)
	}
	if c := checksum([]byte{0x45, 0, 0, 0x1c, 0, 0, 0, 0, 0x40, 1, 0, 0, 0xc0, 0xa8, 0x32, 1, 0xc0, 0xa8, 0x32, 2}); c == 0 {
		t.Fatal("checksum")
	}
}
