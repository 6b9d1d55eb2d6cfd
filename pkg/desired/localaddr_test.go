package desired

import (
	"net/netip"
	"testing"

	"github.com/tunneld/tunneld/pkg/model"
)

// TestLocalFor: a tunnel that follows a device with several addresses
// takes the one the kernel sends to the remote from (a tester's took a
// cable modem's access address after a DHCP renew, and an upstream
// router's ULA, and was dead with status saying up).
func TestLocalFor(t *testing.T) {
	dev := func(secondary, deprecated int, addrs ...string) model.Device {
		d := model.Device{Name: "wan0", Secondary: secondary, Deprecated: deprecated}
		for _, a := range addrs {
			d.Addrs = append(d.Addrs, pfx(a))
		}
		return d
	}
	route := func(dst, via, dev, src string) model.UnderlayRoute {
		r := model.UnderlayRoute{Dst: pfx(dst), Dev: dev}
		if via != "" {
			r.Via = ip(via)
		}
		if src != "" {
			r.Src = ip(src)
		}
		return r
	}
	modem := dev(0, 0, "192.168.100.2/24", "192.0.2.5/24")
	ula := dev(0, 0, "fd00:ff::1/64", "2001:db8:ff::1/64")
	for _, tt := range []struct {
		name   string
		d      model.Device
		v6     bool
		remote string
		routes []model.UnderlayRoute
		want   string
		guess  bool
		cur    string // the tunnel's local address now
	}{
		{"IPv4: the remote on the lease's subnet, the modem's address first", modem, false, "192.0.2.2", nil, "192.0.2.5", false, ""},
		{"IPv4: by the default route's gateway", modem, false, "198.51.100.9", []model.UnderlayRoute{route("0.0.0.0/0", "192.0.2.1", "wan0", "")}, "192.0.2.5", false, ""},
		{"IPv4: by a route through the modem's subnet", modem, false, "198.51.100.9", []model.UnderlayRoute{route("0.0.0.0/0", "192.0.2.1", "wan0", ""), route("198.51.100.0/24", "192.168.100.1", "wan0", "")}, "192.168.100.2", false, ""},
		{"IPv4: the route's preferred source", modem, false, "198.51.100.9", []model.UnderlayRoute{route("0.0.0.0/0", "192.168.100.1", "wan0", "192.0.2.5")}, "192.0.2.5", false, ""},
		{"IPv4: a preferred source not the device's", modem, false, "198.51.100.9", []model.UnderlayRoute{route("0.0.0.0/0", "192.0.2.1", "wan0", "10.0.0.1")}, "192.0.2.5", false, ""},
		{"IPv4: a route by another device only: the first, a guess", modem, false, "198.51.100.9", []model.UnderlayRoute{route("0.0.0.0/0", "192.0.2.1", "lan", "")}, "192.168.100.2", true, ""},
		{"IPv4: a gateway on none of the subnets (routes read before a renew): a guess", modem, false, "198.51.100.9", []model.UnderlayRoute{route("0.0.0.0/0", "203.0.113.1", "wan0", "")}, "192.168.100.2", true, ""},
		{"IPv4: no remote known: the first, a guess", modem, false, "", nil, "192.168.100.2", true, ""},
		{"IPv4: a guess keeps the address the tunnel has", modem, false, "198.51.100.9", []model.UnderlayRoute{route("0.0.0.0/0", "203.0.113.1", "wan0", "")}, "192.0.2.5", true, "192.0.2.5"},
		{"IPv4: a guess, the tunnel's address gone: the first", modem, false, "198.51.100.9", []model.UnderlayRoute{route("0.0.0.0/0", "203.0.113.1", "wan0", "")}, "192.168.100.2", true, "192.0.2.9"},
		{"IPv4: decided, not kept", modem, false, "192.0.2.2", nil, "192.0.2.5", false, "192.168.100.2"},
		{"IPv4: one address", dev(0, 0, "192.0.2.5/24", "2001:db8::1/64"), false, "198.51.100.9", nil, "192.0.2.5", false, ""},
		{"IPv6: a global address for a global remote, not the newer ULA", ula, true, "2001:db8:aa::2", []model.UnderlayRoute{route("::/0", "fe80::1", "wan0", "")}, "2001:db8:ff::1", false, ""},
		{"IPv6: a ULA for a ULA remote", ula, true, "fd00:aa::2", nil, "fd00:ff::1", false, ""},
		{"IPv6: a preferred ULA before a deprecated global address, as the kernel", dev(0, 1, "fd00:ff::1/64", "2001:db8:ff::1/64"), true, "2001:db8:aa::2", nil, "fd00:ff::1", false, ""},
		{"IPv6: the new prefix, not the deprecated one sharing more with the remote", dev(0, 1, "2001:db8:2::1/64", "2001:db8:1::1/64"), true, "2001:db8:1::99", nil, "2001:db8:2::1", false, ""},
		{"IPv6: the longest prefix in common", dev(0, 0, "2001:db8:1::5/64", "2001:db9::5/64"), true, "2001:db9:a::1", nil, "2001:db9::5", false, ""},
		{"IPv6: public before temporary", dev(1, 0, "2001:db8::1/64", "2001:db8::abcd/64"), true, "2001:db8::abcd:1", nil, "2001:db8::1", false, ""},
		{"IPv6: the route's preferred source", ula, true, "2001:db8:aa::2", []model.UnderlayRoute{route("::/0", "fe80::1", "wan0", "fd00:ff::1")}, "fd00:ff::1", false, ""},
		{"IPv6: a tie: the kernel's order, newest first", dev(0, 0, "2001:db8:1::5/64", "2001:db8:2::5/64"), true, "2001:db9::1", nil, "2001:db8:1::5", false, ""},
		{"IPv6: an IPv4 address first in the list", dev(0, 0, "192.0.2.5/24", "fd00:ff::1/64", "2001:db8:ff::1/64"), true, "2001:db8:aa::2", nil, "2001:db8:ff::1", false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var remote netip.Addr
			if tt.remote != "" {
				remote = ip(tt.remote)
			}
			var cur netip.Addr
			if tt.cur != "" {
				cur = ip(tt.cur)
			}
			got, guess, ok := localFor(tt.d, tt.v6, remote, cur, tt.routes)
			if !ok || got != ip(tt.want) || guess != tt.guess {
				t.Errorf("localFor = %v, guess %v, %v; want %s, guess %v", got, guess, ok, tt.want, tt.guess)
			}
		})
	}
	if a, _, ok := localFor(dev(0, 0, "192.0.2.5/24"), true, ip("2001:db8::1"), netip.Addr{}, nil); ok {
		t.Errorf("no IPv6 address: got %v", a)
	}
}
