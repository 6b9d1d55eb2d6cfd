package e2e

import (
	"testing"
	"time"
)

// TestSeed004Section6 is the Manchester how-to's section 6: rfe, the
// gateway of the 'wulf cluster (eth0 to the compute nodes' 192.168.0.0/16,
// eth3 public), and doolittle, the desktop gateway (6.3), are joined by an
// IPIP tunnel; calculon (6.4) routes 192.168.104.0/24 via doolittle. On one
// campus segment (a bridge) the three hosts meet; comp000 (192.168.104.100)
// has rfe as its default gateway. As in 6.5: calculon logs in to comp000
// with its own address (doolittle does not masquerade, rfe's FORWARD lets
// calculon in from the tunnel); doolittle does with its tunnel address;
// comp000's own connections to the public network are masqueraded behind
// rfe. doolittle forwards only calculon into the tunnel.
func TestSeed004Section6(t *testing.T) {
	l := newLab(t)
	l.segment("campus", "br0", "doolittle:eth0", "calculon:eth0", "rfe:eth3")
	l.wire("rfe", "eth0", "comp000", "eth0")
	l.addr("doolittle", "eth0", "130.88.198.58/16")
	l.addr("calculon", "eth0", "130.88.196.129/16")
	l.addr("calculon", "eth0", "130.88.196.130/16") // a desktop doolittle does not forward for
	l.addr("rfe", "eth3", "130.88.200.1/16")
	l.addr("rfe", "eth0", "192.168.1.253/16")
	l.addr("comp000", "eth0", "192.168.104.100/16")
	l.route("comp000", "0.0.0.0/0", "192.168.1.253")
	hosts := []struct{ ns, cfg string }{{"rfe", "rfe"}, {"doolittle", "doolittle-gw"}, {"calculon", "calculon"}}
	before := map[string]string{}
	for _, h := range hosts {
		before[h.ns] = l.snapshot(h.ns)
	}

	_, err := l.tunneld("rfe", "apply", "-c", seedFile(seed004, "rfe"))
	skipWithoutDriver(t, err)
	l.mustTunneld("doolittle", "apply", "-c", seedFile(seed004, "doolittle-gw"))
	l.mustTunneld("calculon", "apply", "-c", seedFile(seed004, "calculon"))

	// "[root@calculon ~]# ssh 192.168.104.100": through doolittle and the
	// tunnel, and comp000 sees calculon's own address.
	if src := peerAddr(t, l, "calculon", "comp000", "192.168.104.100"); src != "130.88.196.129" {
		t.Errorf("comp000 sees %s from calculon, want 130.88.196.129", src)
	}
	// "doolittle:~# ssh 192.168.104.100": from its tunnel address.
	if src := peerAddr(t, l, "doolittle", "comp000", "192.168.104.100"); src != "10.200.200.100" {
		t.Errorf("comp000 sees %s from doolittle, want 10.200.200.100", src)
	}
	// "comp000:~ # ssh calculon.cs.man.ac.uk": masqueraded behind rfe.
	if src := peerAddr(t, l, "comp000", "calculon", "130.88.196.129"); src != "130.88.200.1" {
		t.Errorf("calculon sees %s from comp000, want rfe's 130.88.200.1", src)
	}

	// Another desktop on the segment (calculon's second address, with the
	// same route) is not forwarded into the tunnel by doolittle: dropped
	// and counted.
	cfg := seedFile(seed004, "doolittle-gw")
	key := "forward: oifname tunl1 counter drop"
	b := l.status("doolittle", cfg).Drops[key].Packets
	ln, err := l.listenEcho("comp000", "192.168.104.100:7")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := l.dialEcho("calculon", "130.88.196.130", "192.168.104.100:7", time.Second); err == nil {
		t.Errorf("130.88.196.130 → comp000 through doolittle: connected, want dropped")
	}
	if a := l.status("doolittle", cfg).Drops[key].Packets; a <= b {
		t.Errorf("130.88.196.130 → comp000: %q counted %d → %d", key, b, a)
	}
	if err := l.dialEcho("calculon", "130.88.196.129", "192.168.104.100:7", 5*time.Second); err != nil {
		t.Errorf("calculon → comp000: %v", err)
	}

	for _, h := range hosts {
		l.downRestores(h.ns, seedFile(seed004, h.cfg), before[h.ns])
	}
}
