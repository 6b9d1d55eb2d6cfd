package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/daemon"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

const fightConfig = `
[tunnel.tun0]
mode = "ipip"
local = "172.16.10.2"
remote = "172.16.10.9"
address = "192.168.50.1/30"

[[route]]
to = "10.9.0.0/16"
dev = "tun0"

[[route]]
to = "10.8.0.0/16"
via = "172.16.10.1"
dev = "veth0"
`

// TestTunnelFight runs the daemon with a tunnel and a route through the
// tunnel's underlay device in the kernel. The underlay set down and up
// again, over and over, loses the route to the kernel each time: it is
// put back each time and nothing is held back. A tunnel that someone
// deletes over and over is created again FightLimit+1 times, then held
// back, as the log (once) and status say, and left deleted.
func TestTunnelFight(t *testing.T) {
	l := newLab(t)
	l.wire("router", "veth0", "peer", "veth1")
	l.addr("router", "veth0", "172.16.10.2/24")
	cfg := filepath.Join(l.dir, "router.toml")
	if err := os.WriteFile(cfg, []byte(fightConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := l.tunneld("router", "apply", "-c", cfg)
	skipWithoutDriver(t, err)
	l.mustTunneld("router", "down", "-c", cfg)

	_, log := l.daemonLog("router", cfg)
	var st struct {
		Tunnels []struct{ Up bool }
		Drift   []string
		Daemon  *struct{ Held []string }
	}
	// read reads status (quietly: converged polls it).
	read := func() {
		t.Helper()
		st.Tunnels, st.Drift, st.Daemon = nil, nil, nil
		out, err := l.tunneld("router", "status", "--json", "-c", cfg)
		if err == nil {
			err = json.Unmarshal([]byte(out), &st)
		}
		if err != nil {
			t.Fatalf("status: %v\n%s", err, out)
		}
	}
	// converged waits until the daemon runs and the kernel is as the
	// configuration says.
	converged := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			read()
			if st.Daemon != nil && len(st.Drift) == 0 && len(st.Tunnels) == 1 && st.Tunnels[0].Up {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not converged within 10s: %+v\n%s", what, st, l.statusText("router", cfg))
			}
		}
	}
	converged("start")

	for i := range 3 * daemon.FightLimit {
		l.in("router", func() error { return netnstest.LinkDown("veth0") })
		l.in("router", func() error { return netnstest.LinkUp("veth0") })
		converged(fmt.Sprintf("underlay flap %d", i))
	}
	if len(st.Daemon.Held) != 0 {
		t.Fatalf("held after the underlay's flaps: %v", st.Daemon.Held)
	}

	for i := range daemon.FightLimit + 1 {
		l.in("router", func() error { return netnstest.DelLink("tun0") })
		converged(fmt.Sprintf("tunnel deleted, repair %d", i))
	}
	l.in("router", func() error { return netnstest.DelLink("tun0") })
	line := fmt.Sprintf(`level=WARN msg="giving up on tunnel \"tun0\" for %s: something else keeps changing it (%d repairs in %s)" object="tunnel \"tun0\""`,
		daemon.HoldOff, daemon.FightLimit+1, daemon.FightWindow)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(log.String(), line); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the log within 10s", line)
		}
	}
	time.Sleep(time.Second) // a repair would have come by now
	if l.ifindexOK("router", "tun0") {
		t.Error("tun0 was created again after the hold")
	}
	read()
	var held []string
	if st.Daemon != nil {
		held = st.Daemon.Held
	}
	if diff := cmp.Diff([]string{`tunnel "tun0"`}, held); diff != "" {
		t.Errorf("status's held (-want +got):\n%s", diff)
	}
	if n := strings.Count(log.String(), "giving up on"); n != 1 {
		t.Errorf("%d lines giving up, want 1", n)
	}
}
