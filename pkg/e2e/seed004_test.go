package e2e

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

const seed004 = "004_f346a18590489699"

// TestSeed004 is the Manchester how-to's section 5: doolittle on the public
// network reaches jill, a compute node on the private network behind the
// head node ps3, through an IPIP tunnel; jill sees doolittle's tunnel
// address, while jill's own traffic to the public network is masqueraded
// behind ps3. ps3 drops IPIP from anyone but doolittle and inner sources
// it does not route to.
func TestSeed004(t *testing.T) {
	l := newLab(t)
	seed004Lab(l)
	before := map[string]string{"doolittle": l.snapshot("doolittle"), "ps3": l.snapshot("ps3")}

	_, err := l.tunneld("ps3", "apply", "-c", seedFile(seed004, "ps3"))
	skipWithoutDriver(t, err)
	l.mustTunneld("doolittle", "apply", "-c", seedFile(seed004, "doolittle"))

	if err := l.ping("doolittle", "10.10.10.54"); err != nil {
		t.Fatal(err)
	}
	// jill sees doolittle's tunnel address (no masquerade into the LAN).
	if src := peerAddr(t, l, "doolittle", "jill", "10.10.10.54"); src != "10.200.100.100" {
		t.Errorf("jill sees %s, want 10.200.100.100", src)
	}
	// jill's own traffic to the public network leaves masqueraded.
	if src := peerAddr(t, l, "jill", "www", "192.0.2.80"); src != "130.88.203.56" {
		t.Errorf("www sees %s, want ps3's public 130.88.203.56", src)
	}

	// A packet from doolittle (the right peer) whose inner source is not
	// one ps3 routes into the tunnel is dropped and counted.
	cfg := seedFile(seed004, "ps3")
	b := l.status("ps3", cfg)
	l.in("doolittle", func() error {
		return sendIPIP(netip.MustParseAddr("130.88.203.56"), netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("10.10.10.54"))
	})
	time.Sleep(100 * time.Millisecond)
	a := l.status("ps3", cfg)
	key := "spoof_tunl1: counter drop"
	if a.Drops[key].Packets != b.Drops[key].Packets+1 {
		t.Errorf("inner-source spoofing: %q counted %d → %d (all: %+v)", key, b.Drops[key].Packets, a.Drops[key].Packets, a.Drops)
	}

	for _, n := range []string{"doolittle", "ps3"} {
		l.downRestores(n, seedFile(seed004, n), before[n])
	}
}

// peerAddr connects over TCP from one namespace to a listener at addr in
// another and returns the source address the listener saw.
func peerAddr(t *testing.T, l *lab, from, to, addr string) string {
	t.Helper()
	var ln net.Listener
	l.in(to, func() (err error) { ln, err = net.Listen("tcp", net.JoinHostPort(addr, "0")); return err })
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		got <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		c.Close()
	}()
	l.in(from, func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	select {
	case s := <-got:
		return s
	case <-time.After(5 * time.Second):
		t.Fatalf("%s → %s: no connection", from, to)
	}
	return ""
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// seed004Lab is seed 004's section 5: doolittle (130.88.198.58) and ps3
// (130.88.203.56) on the public network through inet, which also leads to
// www (192.0.2.80); jill (10.10.10.54) on ps3's private eth1.
func seed004Lab(l *lab) {
	l.wire("doolittle", "eth0", "inet", "d")
	l.wire("inet", "p", "ps3", "eth0")
	l.wire("inet", "w", "www", "eth0")
	l.wire("ps3", "eth1", "jill", "eth0")
	l.addr("doolittle", "eth0", "130.88.198.58/24")
	l.addr("inet", "d", "130.88.198.250/24")
	l.addr("inet", "p", "130.88.203.250/24")
	l.addr("inet", "w", "192.0.2.250/24")
	l.addr("www", "eth0", "192.0.2.80/24")
	l.addr("ps3", "eth0", "130.88.203.56/24")
	l.addr("ps3", "eth1", "10.10.10.1/24")
	l.addr("jill", "eth0", "10.10.10.54/24")
	l.route("doolittle", "0.0.0.0/0", "130.88.198.250")
	l.route("ps3", "0.0.0.0/0", "130.88.203.250")
	l.route("www", "0.0.0.0/0", "192.0.2.250")
	l.route("jill", "0.0.0.0/0", "10.10.10.1")
	l.sysctl("inet", "net/ipv4/ip_forward", "1")
}
