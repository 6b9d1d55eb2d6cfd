package e2e

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

const seed002 = "002_ff25396f952da8ec"

// TestSeed002 is the "Moe" how-to: home and colo joined by an IPIP tunnel
// with a point-to-point address, a named routing table with a source rule
// on each end, proxy ARP on the colo's LAN so that a LAN host reaches the
// home machine's address as if it were local, and step 9's firewall on the
// colo: only the test sites (here 203.0.113.7, a second address of the LAN
// host) may connect to the home machine, the home machine's own
// connections and their replies pass, and HTTP for the home machine's
// address arriving on the colo's eth0 is answered by the colo itself.
func TestSeed002(t *testing.T) {
	l := newLab(t)
	seed002Lab(l)
	before := map[string]string{"home": l.snapshot("home"), "colo": l.snapshot("colo")}

	_, err := l.tunneld("colo", "apply", "-c", seedFile(seed002, "colo"))
	skipWithoutDriver(t, err)
	l.mustTunneld("home", "apply", "-c", seedFile(seed002, "home"))
	st := l.status("home", seedFile(seed002, "home"))
	if !st.Tunnels[0].Up || st.Tunnels[0].MTU != 1480 || len(st.Drift) != 0 {
		t.Fatalf("home status: %+v", st)
	}

	if err := l.ping("home", "198.51.100.1"); err != nil {
		t.Fatal(err)
	}
	// Proxy ARP: the test site on the LAN asks for 198.51.100.42 on its
	// segment; the colo answers with its own MAC and forwards into the
	// tunnel.
	if err := l.ping("lanhost", "198.51.100.42", "-I", "203.0.113.7"); err != nil {
		t.Fatal(err)
	}
	var colo net.HardwareAddr
	l.in("colo", func() error {
		ifc, err := net.InterfaceByName("eth0")
		colo = ifc.HardwareAddr
		return err
	})
	var arp []byte
	l.in("lanhost", func() (err error) { arp, err = os.ReadFile("/proc/thread-self/net/arp"); return err })
	if !strings.Contains(string(arp), "198.51.100.42") || !strings.Contains(string(arp), colo.String()) {
		t.Errorf("the LAN host's ARP entry for 198.51.100.42 is not the colo's MAC %s:\n%s", colo, arp)
	}

	// The colo's forward policy. A test site connects to the home machine.
	ln, err := l.listenEcho("home", "198.51.100.42:7")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := l.dialEcho("lanhost", "203.0.113.7", "198.51.100.42:7", 5*time.Second); err != nil {
		t.Errorf("test site → home: %v", err)
	}
	// Any other source is dropped at the colo, and counted.
	coloCfg := seedFile(seed002, "colo")
	key := "forward: oifname Moe counter drop"
	b := l.status("colo", coloCfg).Drops[key].Packets
	if err := l.dialEcho("lanhost", "198.51.100.50", "198.51.100.42:7", time.Second); err == nil {
		t.Errorf("198.51.100.50 → home: connected, want dropped at the colo")
	}
	if a := l.status("colo", coloCfg).Drops[key].Packets; a <= b {
		t.Errorf("198.51.100.50 → home: %q counted %d → %d", key, b, a)
	}
	// The home machine's own connections from its tunnel address go out
	// through the colo, and the replies come back.
	lan, err := l.listenEcho("lanhost", "198.51.100.50:7")
	if err != nil {
		t.Fatal(err)
	}
	defer lan.Close()
	if err := l.dialEcho("home", "198.51.100.42", "198.51.100.50:7", 5*time.Second); err != nil {
		t.Errorf("home → LAN host: %v", err)
	}
	// The redirect: HTTP for 198.51.100.42 arriving on the colo's eth0 is
	// answered by the colo's own listener (from any source: it is not
	// forwarded).
	httpd, err := l.listenEcho("colo", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer httpd.Close()
	if err := l.dialEcho("lanhost", "198.51.100.50", "198.51.100.42:80", 5*time.Second); err != nil {
		t.Errorf("LAN host → 198.51.100.42:80 (the colo's httpd): %v", err)
	}

	// The source rule steers: from the tunnel address traffic takes table
	// Moe (into the tunnel); from the WAN address it takes main.
	sent := func(src string) uint64 {
		b := l.status("home", seedFile(seed002, "home")).Tunnels[0].Stats.TxPackets
		l.in("home", func() error {
			c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, &net.UDPAddr{IP: net.ParseIP("203.0.113.99"), Port: 9})
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("x"))
			return err
		})
		time.Sleep(50 * time.Millisecond)
		return l.status("home", seedFile(seed002, "home")).Tunnels[0].Stats.TxPackets - b
	}
	if n := sent("198.51.100.42"); n != 1 {
		t.Errorf("from 198.51.100.42: %d packets into the tunnel, want 1", n)
	}
	if n := sent("192.0.2.42"); n != 0 {
		t.Errorf("from 192.0.2.42: %d packets into the tunnel, want 0", n)
	}

	for _, n := range []string{"home", "colo"} {
		l.downRestores(n, seedFile(seed002, n), before[n])
	}
}

// seed002Lab is seed 002's topology: home (eth0 192.0.2.42) — colo (wan
// 192.0.2.2; eth0 198.51.100.2 on the LAN) — lanhost (198.51.100.50, and
// the test site 203.0.113.7).
func seed002Lab(l *lab) {
	l.wire("home", "eth0", "colo", "wan")
	l.wire("colo", "eth0", "lanhost", "eth0")
	l.addr("home", "eth0", "192.0.2.42/24")
	l.addr("colo", "wan", "192.0.2.2/24")
	// The colo's own LAN address is not its tunnel address 198.51.100.1:
	// the colo's source rule sends everything from that one into the
	// tunnel (the redirect's replies come from eth0's address).
	l.addr("colo", "eth0", "198.51.100.2/24")
	l.addr("lanhost", "eth0", "198.51.100.50/24")
	l.addr("lanhost", "eth0", "203.0.113.7/32") // the test site
	l.route("home", "0.0.0.0/0", "192.0.2.2")
	l.route("colo", "203.0.113.0/24", "198.51.100.50")
}
