package e2e

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tunneld/tunneld/pkg/netnstest"
)

func seedFile(seed, host string) string {
	return filepath.Join("..", "..", "testdata", "seeds", seed, host+".toml")
}

// skipWithoutDriver turns a kernel without the tunnel driver into a skip
// with the reason (the host here); anything else is a failure.
func skipWithoutDriver(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if strings.Contains(err.Error(), "kernel has no") {
		netnstest.NoDriver(t, firstLine(err.Error()))
	}
	t.Fatal(err)
}

func firstLine(s string) string {
	i := strings.Index(s, "\n")
	if i < 0 {
		return s
	}
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "kernel has no") {
			return l
		}
	}
	return s[:i]
}

// TestSeed000IPIP and TestSeed003GRE build host1 — router — host2 over
// veth pairs, as the how-tos do, and let tunneld make the tunnel.
func TestSeed000IPIP(t *testing.T) { seedPair(t, "000_c4416a8950d425f4", 4, 1480) }

// TestSeed003GRE is the GRE variant of the same topology.
func TestSeed003GRE(t *testing.T) { seedPair(t, "003_0e70e634d2a3a200", 47, 1476) }

func seedPair(t *testing.T, seed string, proto uint8, mtu int) {
	l := newLab(t)
	l.hostRouterHost(false) // the router's tunneld configuration turns forwarding on
	before := map[string]string{}
	for _, n := range []string{"host1", "router", "host2"} {
		before[n] = l.snapshot(n)
	}

	l.mustTunneld("router", "apply", "-c", seedFile(seed, "router"))
	_, err := l.tunneld("host1", "apply", "-c", seedFile(seed, "host1"))
	skipWithoutDriver(t, err)
	l.mustTunneld("host2", "apply", "-c", seedFile(seed, "host2"))
	for _, n := range []string{"host1", "host2", "router"} {
		if out := l.mustTunneld(n, "apply", "-c", seedFile(seed, n)); !strings.Contains(out, "nothing to do") {
			t.Errorf("second apply in %s changed something:\n%s", n, out)
		}
	}
	st := l.status("host1", seedFile(seed, "host1"))
	if len(st.Tunnels) != 1 || !st.Tunnels[0].Up || st.Tunnels[0].MTU != mtu || len(st.Drift) != 0 {
		t.Fatalf("host1 status: %+v", st)
	}

	// Ping across the tunnel while capturing on the router: the outer
	// header carries the underlay endpoints, the inner one the tunnel's.
	var fd int
	l.in("router", func() (err error) { fd, err = capture("veth1"); return err })
	if err := l.ping("host1", "192.168.50.2"); err != nil {
		t.Fatal(err)
	}
	pkts := readPackets(fd, 300*time.Millisecond)
	want := packet{proto: proto, ttl: 255, df: true,
		src: netip.MustParseAddr("172.16.10.2"), dst: netip.MustParseAddr("152.16.10.2"),
		innerSrc: netip.MustParseAddr("192.168.50.1"), innerD: netip.MustParseAddr("192.168.50.2")}
	found := false
	for _, p := range pkts {
		t.Logf("captured on router veth1: %s", p)
		found = found || p == want
	}
	if !found {
		t.Errorf("no packet %s among %d captured", want, len(pkts))
	}
	if err := l.tcp("host1", "host2", "192.168.50.2"); err != nil {
		t.Error(err)
	}
	if err := l.tcp("host2", "host1", "192.168.50.1"); err != nil {
		t.Error(err)
	}

	if proto == 4 {
		spoofed(t, l, seed)
	}

	for _, n := range []string{"host1", "host2", "router"} {
		l.downRestores(n, seedFile(seed, n), before[n])
	}
}

// spoofed sends IPIP from the router (not host1's peer) to host1 with an
// inner packet for host1's tunnel address: tunneld's filter must drop it
// and count it, and nothing may arrive on the tunnel.
func spoofed(t *testing.T, l *lab, seed string) {
	cfg := seedFile(seed, "host1")
	before := l.status("host1", cfg)
	for range 3 {
		l.in("router", func() error {
			return sendIPIP(netip.MustParseAddr("172.16.10.2"), netip.MustParseAddr("192.168.50.2"), netip.MustParseAddr("192.168.50.1"))
		})
	}
	time.Sleep(200 * time.Millisecond)
	after := l.status("host1", cfg)
	key := "input: ip daddr 172.16.10.2 meta l4proto 4 counter drop"
	if got := after.Drops[key].Packets - before.Drops[key].Packets; got != 3 {
		t.Errorf("spoofed IPIP: drop counter %q went up by %d, want 3 (counters: %+v)", key, got, after.Drops)
	}
	if after.Tunnels[0].Stats.RxPackets != before.Tunnels[0].Stats.RxPackets {
		t.Errorf("spoofed IPIP reached the tunnel: rx %d → %d", before.Tunnels[0].Stats.RxPackets, after.Tunnels[0].Stats.RxPackets)
	}
}
