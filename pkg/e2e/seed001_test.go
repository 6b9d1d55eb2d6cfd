package e2e

import (
	"net/netip"
	"testing"

	"github.com/tunneld/tunneld/pkg/netnstest"
)

const seed001 = "001_cbb9f95fb8720836"

// TestSeed001 is the SCID how-to (section 2.2): a chain of IPIP tunnels
// client → proxy → gateway with public addresses only, each tunnel bound
// to eth0, routes with onlink gateways into the tunnels, and the target on
// the gateway's LAN with a route back to the client through the gateway.
// A ping and a TCP connection from the client reach the target through
// both tunnels.
func TestSeed001(t *testing.T) {
	l := newLab(t)
	l.wire("client", "eth0", "inet", "c")
	l.wire("proxy", "eth0", "inet", "p")
	l.wire("gateway", "eth0", "inet", "g")
	// The target shares the gateway's segment in the how-to; here a veth
	// from the gateway stands for it, with a host route to the target.
	l.wire("target", "eth0", "gateway", "eth1")
	l.addr("inet", "c", "128.198.61.1/26")
	l.addr("inet", "p", "128.198.60.1/25")
	l.addr("inet", "g", "128.198.60.129/25")
	l.sysctl("inet", "net/ipv4/ip_forward", "1")
	l.addr("client", "eth0", "128.198.61.51/26")
	l.addr("proxy", "eth0", "128.198.60.42/25")
	l.addr("gateway", "eth0", "128.198.60.200/25")
	l.addr("target", "eth0", "128.198.60.201/25")
	l.route("client", "0.0.0.0/0", "128.198.61.1")
	l.route("proxy", "0.0.0.0/0", "128.198.60.1")
	l.route("gateway", "0.0.0.0/0", "128.198.60.129")
	l.in("gateway", func() error {
		return netnstest.AddRoute(netnstest.Route{Table: 254, Dst: netip.MustParsePrefix("128.198.60.201/32"), Dev: "eth1", Proto: 4})
	})
	hosts := []string{"client", "proxy", "gateway", "target"}
	before := map[string]string{}
	for _, n := range hosts {
		before[n] = l.snapshot(n)
	}
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
		l.mustTunneld(n, "down", "-c", seedFile(seed001, n))
		if got := l.snapshot(n); got != before[n] {
			t.Errorf("%s after down differs:\n--- before\n%s--- after\n%s", n, before[n], got)
		}
	}
}
