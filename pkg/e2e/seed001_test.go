package e2e

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/tunneld/tunneld/pkg/netnstest"
)

const seed001 = "001_cbb9f95fb8720836"

// TestSeed001 is the SCID how-to (section 2.2): a chain of IPIP tunnels
// client → proxy → gateway with public addresses only, each tunnel bound
// to eth0, routes with onlink gateways into the tunnels, and the target on
// the gateway's LAN with a route back to the client through the gateway.
// A ping and a TCP connection from the client reach the target through
// both tunnels. (The client's tunl3 leads nowhere here: proxy2 and
// gateway2 are TestSeed001Tunnel3's.)
func TestSeed001(t *testing.T) {
	l := newLab(t)
	seed001Lab(l)
	hosts := []string{"client", "proxy", "gateway", "target"}
	before := l.snapshots(hosts...)
	_, err := l.tunneld("proxy", "apply", "-c", seedFile(seed001, "proxy"))
	skipWithoutDriver(t, err)
	for _, n := range []string{"client", "gateway", "target"} {
		l.mustTunneld(n, "apply", "-c", seedFile(seed001, n))
	}
	for _, dst := range []string{"128.198.60.42", "128.198.60.200", "128.198.60.201"} {
		if err := l.ping("client", dst); err != nil {
			t.Error(err)
		}
	}
	if err := l.tcp("client", "target", "128.198.60.201"); err != nil {
		t.Error(err)
	}
	// The traffic went through both tunnels of the proxy.
	st := l.status("proxy", seedFile(seed001, "proxy"))
	for _, tun := range st.Tunnels {
		if !tun.Up || tun.Stats.RxPackets == 0 || tun.Stats.TxPackets == 0 {
			t.Errorf("proxy %s: up %v rx %d tx %d", tun.Name, tun.Up, tun.Stats.RxPackets, tun.Stats.TxPackets)
		}
	}
	for _, n := range hosts {
		l.downRestores(n, seedFile(seed001, n), before[n])
	}
}

// TestSeed001Tunnel3 is section 2.2 with its tunnel 3: besides tunl1 to
// the proxy, the client has tunl3 to proxy2 (128.198.61.100), both ipip
// from 128.198.61.51 bound to eth0, and routes gateway2 (128.198.60.199)
// through it; proxy2 and gateway2 are the proxy and the gateway again
// ("similiar" scripts). gateway2 shares the gateway's segment
// (128.198.60.128/25, a bridge here); proxy2 sits on its own segment of
// the campus network. The client reaches gateway2 through tunl3 and
// proxy2, and still the target through tunl1, the proxy and the gateway:
// each ping moves its own tunnel's counters on the client, and every
// tunnel of both proxies carried traffic both ways.
func TestSeed001Tunnel3(t *testing.T) {
	l := newLab(t)
	l.wire("client", "eth0", "inet", "c")
	l.wire("proxy", "eth0", "inet", "p")
	// The how-to names 128.198.61.1, the client's router, as proxy2's
	// gateway too, but the client's /26 (its ifconfig) does not hold
	// 128.198.61.100: proxy2 gets the next /26 and a router of its own.
	// The onlink gateway of proxy2's tunnel routes does not depend on it.
	l.wire("proxy2", "eth0", "inet", "p2")
	l.segment("inet", "br0", "gateway:eth0", "gateway2:eth0")
	l.wire("target", "eth0", "gateway", "eth1")
	l.addr("inet", "c", "128.198.61.1/26")
	l.addr("inet", "p", "128.198.60.1/25")
	l.addr("inet", "p2", "128.198.61.65/26")
	l.addr("inet", "br0", "128.198.60.129/25")
	l.sysctl("inet", "net/ipv4/ip_forward", "1")
	l.addr("client", "eth0", "128.198.61.51/26")
	l.addr("proxy", "eth0", "128.198.60.42/25")
	l.addr("proxy2", "eth0", "128.198.61.100/26")
	l.addr("gateway", "eth0", "128.198.60.200/25")
	l.addr("gateway2", "eth0", "128.198.60.199/25")
	l.addr("target", "eth0", "128.198.60.201/25")
	l.route("client", "0.0.0.0/0", "128.198.61.1")
	l.route("proxy", "0.0.0.0/0", "128.198.60.1")
	l.route("proxy2", "0.0.0.0/0", "128.198.61.65")
	l.route("gateway", "0.0.0.0/0", "128.198.60.129")
	l.route("gateway2", "0.0.0.0/0", "128.198.60.129")
	l.in("gateway", func() error {
		return netnstest.AddRoute(netnstest.Route{Table: 254, Dst: netip.MustParsePrefix("128.198.60.201/32"), Dev: "eth1", Proto: 4})
	})
	hosts := []string{"client", "proxy", "proxy2", "gateway", "gateway2", "target"}
	before := l.snapshots(hosts...)
	_, err := l.tunneld("client", "apply", "-c", seedFile(seed001, "client"))
	skipWithoutDriver(t, err)
	for _, n := range hosts[1:] {
		l.mustTunneld(n, "apply", "-c", seedFile(seed001, n))
	}
	client := seedFile(seed001, "client")
	if st := l.status("client", client); len(st.Tunnels) != 2 || len(st.Drift) != 0 {
		t.Fatalf("client status: %+v", st)
	}
	// Each destination, and the client's tunnel it must leave by.
	for _, c := range []struct{ dst, ns, tun string }{
		{"128.198.61.100", "proxy2", "tunl3"},
		{"128.198.60.199", "gateway2", "tunl3"},
		{"128.198.60.42", "proxy", "tunl1"},
		{"128.198.60.201", "target", "tunl1"},
	} {
		b := tunnelTx(l.status("client", client), c.tun)
		if err := l.ping("client", c.dst); err != nil {
			t.Error(err)
		}
		if err := l.tcp("client", c.ns, c.dst); err != nil {
			t.Error(err)
		}
		if a := tunnelTx(l.status("client", client), c.tun); a <= b {
			t.Errorf("client → %s: %s sent %d → %d packets, want more", c.dst, c.tun, b, a)
		}
	}
	for _, n := range []string{"proxy", "proxy2"} {
		for _, tun := range l.status(n, seedFile(seed001, n)).Tunnels {
			if !tun.Up || tun.Stats.RxPackets == 0 || tun.Stats.TxPackets == 0 {
				t.Errorf("%s %s: up %v rx %d tx %d", n, tun.Name, tun.Up, tun.Stats.RxPackets, tun.Stats.TxPackets)
			}
		}
	}
	for _, n := range hosts {
		l.downRestores(n, seedFile(seed001, n), before[n])
	}
}

// TestSeed001Private is section 2.4: the chain client → proxy → gateway
// of section 2.2 with private addresses on the tunnels (the client
// 192.168.4.1, the proxy 192.168.2.1 on both its tunnels, the gateway
// 192.168.3.1) over the same public underlay; the proxy's and the
// gateway's tunnels are not bound to eth0. The campus router knows no
// 192.168.x route, so whatever reaches a private address went through
// the tunnels: the client pings and connects to the proxy and the gateway,
// the gateway pings the client, and every tunnel carried traffic both
// ways.
func TestSeed001Private(t *testing.T) {
	l := newLab(t)
	campus(l)
	hosts := []string{"client", "proxy", "gateway"}
	cfg := func(n string) string { return seedFile(seed001, filepath.Join("private", n)) }
	before := l.snapshots(hosts...)
	_, err := l.tunneld("proxy", "apply", "-c", cfg("proxy"))
	skipWithoutDriver(t, err)
	for _, n := range []string{"client", "gateway"} {
		l.mustTunneld(n, "apply", "-c", cfg(n))
	}
	for _, c := range []struct{ from, to, dst string }{
		{"client", "proxy", "192.168.2.1"},
		{"client", "gateway", "192.168.3.1"},
		{"gateway", "client", "192.168.4.1"},
	} {
		if err := l.ping(c.from, c.dst); err != nil {
			t.Error(err)
		}
		if err := l.tcp(c.from, c.to, c.dst); err != nil {
			t.Error(err)
		}
	}
	for _, n := range hosts {
		st := l.status(n, cfg(n))
		if len(st.Tunnels) == 0 || len(st.Drift) != 0 {
			t.Errorf("%s status: %+v", n, st)
		}
		for _, tun := range st.Tunnels {
			if !tun.Up || tun.MTU != 1480 || tun.Stats.RxPackets == 0 || tun.Stats.TxPackets == 0 {
				t.Errorf("%s %s: up %v mtu %d rx %d tx %d", n, tun.Name, tun.Up, tun.MTU, tun.Stats.RxPackets, tun.Stats.TxPackets)
			}
		}
	}
	for _, n := range hosts {
		l.downRestores(n, cfg(n), before[n])
	}
}

// tunnelTx is the number of packets a tunnel in a status has sent (0 when
// the status has no such tunnel).
func tunnelTx(st status, name string) uint64 {
	for _, tun := range st.Tunnels {
		if tun.Name == name {
			return tun.Stats.TxPackets
		}
	}
	return 0
}

// campus is section 2.2's campus network: client (128.198.61.51),
// proxy (128.198.60.42) and gateway (128.198.60.200) on inet's segments,
// each with its default route through inet.
func campus(l *lab) {
	l.wire("client", "eth0", "inet", "c")
	l.wire("proxy", "eth0", "inet", "p")
	l.wire("gateway", "eth0", "inet", "g")
	l.addr("inet", "c", "128.198.61.1/26")
	l.addr("inet", "p", "128.198.60.1/25")
	l.addr("inet", "g", "128.198.60.129/25")
	l.sysctl("inet", "net/ipv4/ip_forward", "1")
	l.addr("client", "eth0", "128.198.61.51/26")
	l.addr("proxy", "eth0", "128.198.60.42/25")
	l.addr("gateway", "eth0", "128.198.60.200/25")
	l.route("client", "0.0.0.0/0", "128.198.61.1")
	l.route("proxy", "0.0.0.0/0", "128.198.60.1")
	l.route("gateway", "0.0.0.0/0", "128.198.60.129")
}

// seed001Lab is the campus network with the target (128.198.60.201)
// behind the gateway's eth1.
func seed001Lab(l *lab) {
	campus(l)
	// The target shares the gateway's segment in the how-to; here a veth
	// from the gateway stands for it, with a host route to the target.
	l.wire("target", "eth0", "gateway", "eth1")
	l.addr("target", "eth0", "128.198.60.201/25")
	l.in("gateway", func() error {
		return netnstest.AddRoute(netnstest.Route{Table: 254, Dst: netip.MustParsePrefix("128.198.60.201/32"), Dev: "eth1", Proto: 4})
	})
}
