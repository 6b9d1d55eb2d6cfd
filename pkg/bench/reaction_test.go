package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/daemon"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// TestReaction measures, 200 times, the time from a WAN address change to
// the RTM_NEWLINK that changes the tunnel's local address, with the real
// daemon: `tunneld run` (netlink watcher, default debounce) in a fresh
// namespace, measured from sockets opened there. (A daemon inside this
// process would run on the namespace's locked thread, where every
// goroutine switch is a thread hand-off: that measures the test, not
// tunneld.)
func TestReaction(t *testing.T) {
	s := setup(t)
	ns := netnstest.NewNS(t)
	defer ns.Close()
	cfg := filepath.Join(t.TempDir(), "r.toml")
	if err := os.WriteFile(cfg, []byte("[global]\nfirewall = false\n[tunnel.t0]\nmode = \"ipip\"\nlocal = \"wan\"\nremote = \"198.51.100.1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mon, rt *netlink.Conn
	var logs syncBuffer
	cmd := exec.Command(s.bin, "run", "-c", cfg, "-log-level", "debug")
	cmd.Env = append(os.Environ(), "TUNNELD_STATE_DIR="+t.TempDir())
	cmd.Stderr = &logs
	err := ns.Do(func() error {
		if err := netnstest.Veth("wan", "peer0", nil); err != nil {
			return err
		}
		for _, d := range []string{"wan", "peer0"} {
			if err := netnstest.LinkUp(d); err != nil {
				return err
			}
		}
		os.WriteFile("/proc/sys/net/ipv4/conf/wan/promote_secondaries", []byte("1"), 0)
		if err := netnstest.AddAddr("wan", mustPrefix("192.0.2.1/24")); err != nil {
			return err
		}
		var err error
		if mon, err = netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{Groups: 1 << (unix.RTNLGRP_LINK - 1)}); err != nil {
			return err
		}
		if rt, err = netlink.Dial(unix.NETLINK_ROUTE, nil); err != nil {
			return err
		}
		return cmd.Start() // forked from this thread: in the namespace
	})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	defer rt.Close()
	stop := stopper(cmd)
	defer stop()
	for deadline := time.Now().Add(time.Minute); !linkUp(t, rt, "t0"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("tunneld run did not bring t0 up within a minute:\n%s", tail(logs.String()))
		}
	}
	drain(mon, 100*time.Millisecond)
	index := ifindex(t, rt, "wan")
	var lat []float64
	for i := range 200 {
		// The address alternates between .1 and .2.
		next, prev := fmt.Sprintf("192.0.2.%d/24", 2-i%2), fmt.Sprintf("192.0.2.%d/24", 1+i%2)
		mon.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		if err := addrReq(rt, unix.RTM_NEWADDR, index, next); err != nil {
			t.Fatal(err)
		}
		if err := addrReq(rt, unix.RTM_DELADDR, index, prev); err != nil {
			t.Fatal(err)
		}
		if !waitNewLink(mon, "t0") {
			stop()
			t.Fatalf("change %d: no RTM_NEWLINK for t0 within 5s:\n%s", i, tail(logs.String()))
		}
		lat = append(lat, ms(time.Since(start)))
		time.Sleep(20 * time.Millisecond) // let the daemon settle between changes
		drain(mon, 100*time.Millisecond)
	}
	stop()
	if len(lat) == 0 {
		return
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	p := func(q float64) float64 { return sorted[int(q*float64(len(sorted)-1))] }
	report(result{Arch: s.arch, Bench: "reaction p50", Impl: "tunneld run", Value: p(0.50), Unit: "ms", Note: fmt.Sprintf("%d address changes, debounce %s", len(lat), daemon.DefaultDebounce)})
	report(result{Arch: s.arch, Bench: "reaction p99", Impl: "tunneld run", Value: p(0.99), Unit: "ms"})
	// What the reaction is made of: the daemon's own timing of its
	// converges after events (debug log), with nothing to do (one re-read)
	// and with the tunnel's change (re-read, apply, re-read to confirm).
	var idle, changed []float64
	for _, c := range converges(logs.String()) {
		switch {
		case !strings.HasPrefix(c.reason, "event:"):
		case c.ops == 0:
			idle = append(idle, c.took)
		default:
			changed = append(changed, c.took)
		}
	}
	if len(idle) == 0 || len(changed) == 0 {
		t.Fatalf("no converge timings in the daemon's log:\n%s", tail(logs.String()))
	}
	report(result{Arch: s.arch, Bench: "daemon re-read, nothing to do (p50)", Impl: "tunneld run", Value: median(idle), Unit: "ms", Note: fmt.Sprintf("%d converges after events", len(idle))})
	report(result{Arch: s.arch, Bench: "daemon re-read + change + confirm (p50)", Impl: "tunneld run", Value: median(changed), Unit: "ms", Note: fmt.Sprintf("%d converges after events", len(changed))})
}
