package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tunneld/tunneld/pkg/netnstest"
)

// TestSeed004Section4 is the Manchester how-to's noddy example: doolittle
// and calculon on one public segment, each with an unrouted address and
// a tunnel address, reach each other's through an IPIP tunnel. Then, as
// section 4.7 does by hand, doolittle's tunnel is set down: ssh stops,
// and the how-to has to set it up and add the route again, which the
// kernel dropped with the link. Under `tunneld run` both come back by
// themselves.
func TestSeed004Section4(t *testing.T) {
	l := newLab(t)
	l.wire("doolittle", "eth0", "calculon", "eth0")
	l.addr("doolittle", "eth0", "130.88.198.58/16")
	l.addr("calculon", "eth0", "130.88.196.129/16")
	before := l.snapshots("doolittle", "calculon")
	dcfg, ccfg := seedFile(seed004, "doolittle-s4"), seedFile(seed004, "calculon-s4")

	_, err := l.tunneld("calculon", "apply", "-c", ccfg)
	skipWithoutDriver(t, err)
	l.mustTunneld("doolittle", "apply", "-c", dcfg)

	// ssh 10.0.2.1: from the tunnel's address, through the tunnel.
	if src := peerAddr(t, l, "doolittle", "calculon", "10.0.2.1"); src != "10.0.1.2" {
		t.Errorf("calculon sees %s, want doolittle's tunnel address 10.0.1.2", src)
	}
	if src := peerAddr(t, l, "calculon", "doolittle", "10.0.1.1"); src != "10.0.2.2" {
		t.Errorf("doolittle sees %s, want calculon's tunnel address 10.0.2.2", src)
	}

	// Section 4.7 with the daemon on doolittle.
	d := l.daemon("doolittle", dcfg)
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(l.statusText("doolittle", dcfg), "daemon: running since"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not start:\n%s", l.statusText("doolittle", dcfg))
		}
	}
	l.in("doolittle", func() error { return netnstest.LinkDown("tunl1") })
	start := time.Now()
	for deadline := start.Add(20 * time.Second); l.tcp("doolittle", "calculon", "10.0.2.1") != nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("tunl1 set down: ssh did not come back within 20s\n%s", l.statusText("doolittle", dcfg))
		}
	}
	t.Logf("tunl1 set down: back after %s", time.Since(start).Round(10*time.Millisecond))
	if src := peerAddr(t, l, "doolittle", "calculon", "10.0.2.1"); src != "10.0.1.2" {
		t.Errorf("after the repair calculon sees %s, want 10.0.1.2 (the route with its source is back)", src)
	}

	// The daemon's stop takes doolittle down; calculon by hand.
	d.Process.Signal(syscall.SIGTERM)
	if err := d.Wait(); err != nil {
		t.Errorf("daemon exit: %v", err)
	}
	l.unchanged("the daemon's stop", map[string]string{"doolittle": before["doolittle"]})
	l.downRestores("calculon", ccfg, before["calculon"])
}
