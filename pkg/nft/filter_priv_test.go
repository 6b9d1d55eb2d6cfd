package nft

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
	"golang.org/x/sys/unix"
)

// Privileged tests of the table pkg/desired builds, with packets: the
// host kernel has no tunnel drivers, so a veth named like the tunnel
// stands for it (the rules match by interface name).

// desiredFilter is the table tunneld builds for a configuration whose
// tunnels have literal endpoints (no device or DNS answer needed).
func desiredFilter(t *testing.T, conf string) *model.Filter {
	t.Helper()
	c, err := config.Parse("t.toml", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	f := desired.Build(c, model.Inputs{}, model.State{}).State.Filter
	if f == nil {
		t.Fatal("the configuration builds no table")
	}
	return f
}

// router builds client -- router -- server, the router's devices "lan"
// (10.1.0.1/24, client 10.1.0.2) and tun (10.0.0.1/24, server 10.0.0.2),
// forwarding IPv4, and loads table f into the router.
func router(t *testing.T, tun string, f *model.Filter) (client, rtr, server *testNS) {
	t.Helper()
	client, rtr, server = newNS(t), newNS(t), newNS(t)
	ip := func(a, b byte) net.IP { return net.IPv4(10, a, 0, b).To4() }
	for _, err := range []error{
		rtr.veth("lan", ip(1, 1), client, "eth0", ip(1, 2)),
		rtr.veth(tun, ip(0, 1), server, "eth0", ip(0, 2)),
		rtr.sysctl("ipv4/conf/all/forwarding", "1"),
		client.defaultRoute(ip(1, 1)),
		server.defaultRoute(ip(0, 1)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := rtr.open(t).Replace(f); err != nil {
		t.Fatal(err)
	}
	return client, rtr, server
}

// dial connects from inside ns to addr over TCP, listening on addr in
// to; the error is the dial's.
func dial(t *testing.T, from, to *testNS, addr string, timeout time.Duration) error {
	t.Helper()
	var ln net.Listener
	err := to.do(func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	return from.do(func() error {
		c, err := net.DialTimeout("tcp4", addr, timeout)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// TestKernelForwardDropKeepsReplies: a [[forward]] section that drops TCP
// coming in from a tunnel whose forward is "accept" drops new connections
// from the far side, but not the replies to a connection made from the
// LAN through the tunnel (the SYN-ACK comes in from the tunnel too).
func TestKernelForwardDropKeepsReplies(t *testing.T) {
	f := desiredFilter(t, `
[tunnel.Moe]
mode = "ipip"
local = "192.0.2.1"
remote = "192.0.2.2"
address = "10.0.0.1 peer 10.0.0.2"
[[forward]]
tunnel = "Moe"
direction = "in"
proto = "tcp"
action = "drop"
`)
	t.Logf("table:\n%s", f)
	client, _, server := router(t, "Moe", f)
	if err := dial(t, client, server, "10.0.0.2:8080", 5*time.Second); err != nil {
		t.Errorf("LAN to the far side through Moe: %v (the replies were dropped)", err)
	}
	if err := dial(t, server, client, "10.1.0.2:8081", time.Second); err == nil {
		t.Errorf("far side to the LAN: connected, want dropped by the [[forward]] section")
	}
}

// linkLocal waits for dev's IPv6 link-local address inside ns.
func linkLocal(t *testing.T, ns *testNS, dev string) net.IP {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var ll net.IP
		err := ns.do(func() error {
			i, err := net.InterfaceByName(dev)
			if err != nil {
				return err
			}
			addrs, err := i.Addrs()
			if err != nil {
				return err
			}
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok && n.IP.IsLinkLocalUnicast() && n.IP.To4() == nil {
					ll = n.IP
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if ll != nil {
			return ll
		}
	}
	t.Fatalf("%s has no link-local address", dev)
	return nil
}

// addAddr6 adds an IPv6 /64 to a device.
func (n *testNS) addAddr6(dev string, ip net.IP) error {
	c, err := n.rtnl()
	if err != nil {
		return err
	}
	defer c.Close()
	i, err := index(c, dev)
	if err != nil {
		return err
	}
	return c.Address.New(&rtnetlink.AddressMessage{Family: unix.AF_INET6, PrefixLength: 64, Index: i,
		Flags: unix.IFA_F_NODAD, Attributes: &rtnetlink.AddressAttributes{Address: ip, Flags: unix.IFA_F_NODAD}})
}

// udp6 sends a datagram from src in one namespace to dst (port 9000) in
// another, both on their end of the veth (zone), and reports whether it
// arrived within a second.
func udp6(t *testing.T, from *testNS, src net.IP, fromZone string, to *testNS, dst net.IP, toZone string) bool {
	t.Helper()
	var conn *net.UDPConn
	err := to.do(func() (err error) {
		conn, err = net.ListenUDP("udp6", &net.UDPAddr{IP: dst, Port: 9000, Zone: toZone})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = from.do(func() error {
		c, err := net.DialUDP("udp6", &net.UDPAddr{IP: src, Zone: fromZone}, &net.UDPAddr{IP: dst, Port: 9000, Zone: fromZone})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err = conn.Read(make([]byte, 16))
	return err == nil
}

// TestKernelSpoofLinkLocal: the anti-spoofing chain of a tunnel that
// carries IPv6 lets the peer's link-local traffic in (neighbour discovery,
// then a datagram to the router's link-local address), and still drops
// a global source that allowed_sources does not name.
func TestKernelSpoofLinkLocal(t *testing.T) {
	f := desiredFilter(t, `
[tunnel.he]
mode = "sit"
local = "192.0.2.1"
remote = "192.0.2.2"
address = "2001:db8:1::2/64"
`)
	t.Logf("table:\n%s", f)
	rtr, peer := newNS(t), newNS(t)
	for _, err := range []error{
		rtr.sysctl("ipv6/conf/default/accept_dad", "0"),
		peer.sysctl("ipv6/conf/default/accept_dad", "0"),
		rtr.veth("he", net.IPv4(10, 0, 0, 1).To4(), peer, "eth0", net.IPv4(10, 0, 0, 2).To4()),
		rtr.addAddr6("he", net.ParseIP("2001:db8:66::1")),
		peer.addAddr6("eth0", net.ParseIP("2001:db8:66::2")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := rtr.open(t).Replace(f); err != nil {
		t.Fatal(err)
	}
	rll, pll := linkLocal(t, rtr, "he"), linkLocal(t, peer, "eth0")
	if !udp6(t, peer, pll, "eth0", rtr, rll, "he") {
		t.Errorf("%s to %s%%he: dropped, want accepted", pll, rll)
	}
	if udp6(t, peer, net.ParseIP("2001:db8:66::2"), "", rtr, net.ParseIP("2001:db8:66::1"), "") {
		t.Errorf("2001:db8:66::2 to 2001:db8:66::1: accepted, want dropped (not an allowed source)")
	}
}

// defaultRoute6 adds a default IPv6 route via gw.
func (n *testNS) defaultRoute6(gw net.IP) error {
	c, err := n.rtnl()
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Route.Add(&rtnetlink.RouteMessage{Family: unix.AF_INET6, Table: unix.RT_TABLE_MAIN,
		Protocol: unix.RTPROT_BOOT, Scope: unix.RT_SCOPE_UNIVERSE, Type: unix.RTN_UNICAST,
		Attributes: rtnetlink.RouteAttributes{Gateway: gw}})
}

// udpSource sends a datagram from one namespace to dst (port 9000) in
// another and returns the source address it arrived with.
func udpSource(t *testing.T, from, to *testNS, dst net.IP) net.IP {
	t.Helper()
	var conn *net.UDPConn
	err := to.do(func() (err error) {
		conn, err = net.ListenUDP("udp", &net.UDPAddr{IP: dst, Port: 9000})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = from.do(func() error {
		c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: dst, Port: 9000})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, src, err := conn.ReadFromUDP(make([]byte, 16))
	if err != nil {
		t.Fatalf("to %s: %v", dst, err)
	}
	return src.IP
}

// TestKernelMasqueradeIPv4Only: a [[masquerade]] without src rewrites the
// source of forwarded IPv4 leaving by its interface, and leaves IPv6 as
// it is.
func TestKernelMasqueradeIPv4Only(t *testing.T) {
	f := desiredFilter(t, "[[masquerade]]\noif = \"wan\"\n")
	t.Logf("table:\n%s", f)
	client, rtr, server := newNS(t), newNS(t), newNS(t)
	v4 := func(a, b byte) net.IP { return net.IPv4(10, a, 0, b).To4() }
	v6 := func(s string) net.IP { return net.ParseIP(s) }
	for _, err := range []error{
		client.sysctl("ipv6/conf/default/accept_dad", "0"),
		rtr.sysctl("ipv6/conf/default/accept_dad", "0"),
		server.sysctl("ipv6/conf/default/accept_dad", "0"),
		rtr.veth("lan", v4(1, 1), client, "eth0", v4(1, 2)),
		rtr.veth("wan", v4(0, 1), server, "eth0", v4(0, 2)),
		rtr.addAddr6("lan", v6("2001:db8:1::1")),
		client.addAddr6("eth0", v6("2001:db8:1::2")),
		rtr.addAddr6("wan", v6("2001:db8::1")),
		server.addAddr6("eth0", v6("2001:db8::2")),
		rtr.sysctl("ipv4/conf/all/forwarding", "1"),
		rtr.sysctl("ipv6/conf/all/forwarding", "1"),
		client.defaultRoute(v4(1, 1)),
		server.defaultRoute(v4(0, 1)),
		client.defaultRoute6(v6("2001:db8:1::1")),
		server.defaultRoute6(v6("2001:db8::1")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := rtr.open(t).Replace(f); err != nil {
		t.Fatal(err)
	}
	if got := udpSource(t, client, server, v4(0, 2)); !got.Equal(v4(0, 1)) {
		t.Errorf("IPv4 arrived from %s, want the router's 10.0.0.1 (masqueraded)", got)
	}
	if got := udpSource(t, client, server, v6("2001:db8::2")); !got.Equal(v6("2001:db8:1::2")) {
		t.Errorf("IPv6 arrived from %s, want the client's 2001:db8:1::2 (not masqueraded)", got)
	}
}

// TestKernelPrintedTableLoads: the table block of a plan (what `tunneld
// plan` prints), loaded by an admin with nft -f, is the table tunneld
// would install: it reads back equal to the desired one, so the next
// apply plans nothing for it (and keeps its counters). The seeds' tables,
// and one with every kind of rule, /0 prefixes (nft masks the address
// with zeros) and rules whose tags are too long for nft's comments (128
// bytes), which are hashed. nft lists each, and its listing, loaded
// back, is the same table.
func TestKernelPrintedTableLoads(t *testing.T) {
	privileged(t)
	if !haveNft() {
		t.Skip("nft is not installed")
	}
	tables := map[string]*model.Filter{}
	for _, s := range seeds {
		tables[s.plan] = s.filter
	}
	tables["every kind"] = desiredFilter(t, `
[tunnel.long-tunnel-nam]
mode = "sit"
local = "192.0.2.1"
remote = "192.0.2.2"
address = "2001:db8:1::2/64"
forward = "drop"
[tunnel.Moe]
mode = "ipip"
local = "192.0.2.1"
remote = "192.0.2.3"
address = "10.0.0.1 peer 10.0.0.2"
[[forward]]
tunnel = "long-tunnel-nam"
direction = "in"
interface = "another-long-if"
src = "2001:db8:aaaa:bbbb:cccc:dddd:eeee:0/112"
dst = "2001:db8:ffff:eeee:dddd:cccc:bbbb:0/112"
proto = "tcp"
dport = 65535
[[forward]]
tunnel = "Moe"
direction = "in"
proto = "tcp"
action = "drop"
[[masquerade]]
oif = "eth0"
[[masquerade]]
oif = "eth0"
src = ["192.168.1.0/24", "fd00::/64"]
[[masquerade]]
oif = "eth2"
src = ["0.0.0.0/0", "::/0"]
[[redirect]]
iif = "eth1"
dst = "192.0.2.1"
port = 80
to_port = 3128
`)
	for name, f := range tables {
		t.Run(name, func(t *testing.T) {
			cmd := plan.Op{Kind: plan.FilterReplace, Filter: f}.Command(nil)
			script, ok := strings.CutPrefix(cmd, "nft -f - <<'EOF'\n")
			script, ok2 := strings.CutSuffix(script, "EOF")
			if !ok || !ok2 {
				t.Fatalf("not an nft here-document:\n%s", cmd)
			}
			ns := newNS(t)
			if _, err := ns.nft(script, "-f", "-"); err != nil {
				t.Fatalf("%v\n%s", err, script)
			}
			got := mustRead(t, ns.open(t))
			if ops := plan.Diff(model.State{Filter: got}, model.State{Filter: f}).Ops; len(ops) != 0 {
				t.Errorf("after nft -f of the printed table, tunneld plans %v\nread back:\n%s\nwant:\n%s", ops, got.Canonical(), f.Canonical())
			}
			// nft lists it (1.0.6 aborted listing a masked @th
			// match after meta l4proto 47, the order GRE's
			// version match is not in), and the listing loaded
			// back is the same table.
			list, err := ns.nft("", "list", "table", "inet", model.TableName)
			if err != nil {
				t.Fatalf("%v\n%s", err, script)
			}
			if _, err := ns.nft("delete table inet "+model.TableName+"\n"+list, "-f", "-"); err != nil {
				t.Fatalf("%v\n%s", err, list)
			}
			got = mustRead(t, ns.open(t))
			if ops := plan.Diff(model.State{Filter: got}, model.State{Filter: f}).Ops; len(ops) != 0 {
				t.Errorf("after nft -f of nft's listing, tunneld plans %v\nlisting:\n%s", ops, list)
			}
		})
	}
}

// TestKernelRedirectIPv4Only: a [[redirect]] without dst sends IPv4
// connections to the local port, and leaves IPv6 ones as they are.
func TestKernelRedirectIPv4Only(t *testing.T) {
	f := desiredFilter(t, "[[redirect]]\niif = \"lan\"\nport = 80\nto_port = 8080\n")
	t.Logf("table:\n%s", f)
	client, rtr := newNS(t), newNS(t)
	for _, err := range []error{
		client.sysctl("ipv6/conf/default/accept_dad", "0"),
		rtr.sysctl("ipv6/conf/default/accept_dad", "0"),
		rtr.veth("lan", net.IPv4(10, 1, 0, 1).To4(), client, "eth0", net.IPv4(10, 1, 0, 2).To4()),
		rtr.addAddr6("lan", net.ParseIP("2001:db8:1::1")),
		client.addAddr6("eth0", net.ParseIP("2001:db8:1::2")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := rtr.open(t).Replace(f); err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := rtr.do(func() (err error) { ln, err = net.Listen("tcp", ":8080"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	connect := func(addr string) error {
		return client.do(func() error {
			c, err := net.DialTimeout("tcp", addr, 3*time.Second)
			if err != nil {
				return err
			}
			return c.Close()
		})
	}
	if err := connect("10.1.0.1:80"); err != nil {
		t.Errorf("IPv4 to port 80: %v, want redirected to 8080", err)
	}
	if err := connect("[2001:db8:1::1]:80"); err == nil {
		t.Errorf("IPv6 to port 80: connected, want refused (not redirected)")
	}
}

// TestKernelGREDropSparesPPTP: the input chain's drop of GRE to a gre
// tunnel's local address from anyone but its remote drops and counts
// GRE version 0, what a gre tunnel would take, and lets PPTP's enhanced
// GRE (version 1) through to the host (a tester's PPTP client on the
// WAN address was cut off). A raw GRE socket on the router stands for
// pptp: it sees what the input hook let through.
func TestKernelGREDropSparesPPTP(t *testing.T) {
	f := desiredFilter(t, `
[tunnel.Moe]
mode = "gre"
local = "10.99.0.1"
remote = "192.0.2.2"
address = "10.0.0.1 peer 10.0.0.2"
`)
	t.Logf("table:\n%s", f)
	rtr, peer := newNS(t), newNS(t)
	local, other := net.IPv4(10, 99, 0, 1).To4(), net.IPv4(10, 99, 0, 2).To4()
	if err := rtr.veth("wan", local, peer, "eth0", other); err != nil {
		t.Fatal(err)
	}
	c := rtr.open(t)
	if err := c.Replace(f); err != nil {
		t.Fatal(err)
	}
	var rx int
	err := rtr.do(func() (err error) {
		rx, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_GRE)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rx)
	if err := unix.SetsockoptTimeval(rx, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5}); err != nil {
		t.Fatal(err)
	}

	// GRE version 0 carrying IPv4 (RFC 2784), and PPTP's (RFC 2637):
	// key and sequence number present, acknowledgment flag, version 1,
	// PPP, payload length 0, call ID 1, sequence number 1.
	v0 := []byte{0x00, 0x00, 0x08, 0x00}
	v1 := []byte{0x30, 0x81, 0x88, 0x0b, 0, 0, 0, 1, 0, 0, 0, 1}
	const nV0, nV1 = 3, 2
	err = peer.do(func() error {
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_GRE)
		if err != nil {
			return err
		}
		defer unix.Close(s)
		to := &unix.SockaddrInet4{Addr: [4]byte(local)}
		for _, p := range append(slices.Repeat([][]byte{v0}, nV0), slices.Repeat([][]byte{v1}, nV1)...) {
			if err := unix.Sendto(s, p, 0, to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// What reached the host, by GRE version: until the last version 1
	// packet, sent after every version 0 one (the timeout ends a wait
	// for what was dropped).
	got := map[byte]int{}
	buf := make([]byte, 1500)
	for got[1] < nV1 {
		n, _, err := unix.Recvfrom(rx, buf, 0)
		if err != nil {
			t.Logf("receive: %v", err)
			break
		}
		if hl := int(buf[0]&0x0f) * 4; n > hl+1 {
			got[buf[hl+1]&0x07]++
		}
	}
	if d := cmp.Diff(map[byte]int{1: nV1}, got); d != "" {
		t.Errorf("GRE packets that reached the router by version (-want +got):\n%s", d)
	}

	counters, err := c.Counters()
	if err != nil {
		t.Fatal(err)
	}
	drop := model.FRule{Dst: pfx("10.99.0.1/32"), GREv0: true, L4Proto: 47, Counter: true, Verdict: v(model.Drop)}
	if got := counters["input\t"+drop.Tag()].Packets; got != nV0 {
		t.Errorf("drop counter %q at %d packets, want %d (the version 0 ones); counters: %v", drop.Tag(), got, nV0, counters)
	}
}

// TestKernelReadSeesEditedGREVersion: GRE's version match edited with
// nft, its comment kept, is drift: another version, another mask, or
// the match moved after meta l4proto.
func TestKernelReadSeesEditedGREVersion(t *testing.T) {
	privileged(t)
	if !haveNft() {
		t.Skip("nft is not installed")
	}
	want := desiredFilter(t, `
[tunnel.Moe]
mode = "gre"
local = "192.0.2.1"
remote = "192.0.2.2"
address = "10.0.0.1 peer 10.0.0.2"
`)
	const rule = "ip daddr 192.0.2.1 @th,8,8 & 0x7 == 0x0 meta l4proto 47 counter drop comment"
	script := plan.Op{Kind: plan.FilterReplace, Filter: want}.Command(nil)
	if !strings.Contains(script, rule) {
		t.Fatalf("no %q in:\n%s", rule, script)
	}
	ns := newNS(t)
	c := ns.open(t)
	for _, e := range []struct{ name, as string }{
		{"version 1", "ip daddr 192.0.2.1 @th,8,8 & 0x7 == 0x1 meta l4proto 47 counter drop comment"},
		{"version and flags", "ip daddr 192.0.2.1 @th,8,8 & 0xf == 0x0 meta l4proto 47 counter drop comment"},
		{"flags byte", "ip daddr 192.0.2.1 @th,0,8 & 0x7 == 0x0 meta l4proto 47 counter drop comment"},
		{"after meta l4proto", "ip daddr 192.0.2.1 meta l4proto 47 @th,8,8 & 0x7 == 0x0 counter drop comment"},
		{"no version match", "ip daddr 192.0.2.1 meta l4proto 47 counter drop comment"},
	} {
		t.Run(e.name, func(t *testing.T) {
			if err := c.Replace(want); err != nil {
				t.Fatal(err)
			}
			wantTable(t, c, want)
			edited := strings.Replace(strings.TrimSuffix(strings.TrimPrefix(script, "nft -f - <<'EOF'\n"), "EOF"), rule, e.as, 1)
			if _, err := ns.nft(edited, "-f", "-"); err != nil {
				t.Fatalf("%v\n%s", err, edited)
			}
			got := mustRead(t, c)
			if got.Equal(want) || !strings.Contains(got.Canonical(), "?edited") {
				t.Fatalf("edited rule (%s) not seen:\n%s", e.as, got.Canonical())
			}
		})
	}
}
