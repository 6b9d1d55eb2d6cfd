package bench

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/daemon"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/iptun"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// reactionCase is what a reaction benchmark configures and watches.
type reactionCase struct {
	arch, note string
	config     string
	// monitor opens, in the namespace, the socket the reaction shows on.
	monitor func() (*netlink.Conn, error)
	// ready reports whether the daemon has converged for the first time.
	ready func(t *testing.T, rt *netlink.Conn) bool
	// reacted reads notifications until the daemon's change shows.
	reacted func(c *netlink.Conn) bool
	// kernel, if set, times the kernel's own part of the change (the
	// daemon stopped) in the namespace.
	kernel func(t *testing.T, rt *netlink.Conn, wan int) []float64
}

// TestReaction measures, 200 times, the time from a WAN address change to
// the RTM_NEWLINK that changes the tunnel's local address, with the real
// daemon: `tunneld run` (netlink watcher, default debounce) in a fresh
// namespace, measured from sockets opened there. (A daemon inside this
// process would run on the namespace's locked thread, where every
// goroutine switch is a thread hand-off: that measures the test, not
// tunneld.)
func TestReaction(t *testing.T) {
	s := setup(t)
	reaction(t, reactionCase{
		arch:   s.arch,
		config: "[global]\nfirewall = false\n[tunnel.t0]\nmode = \"ipip\"\nlocal = \"wan\"\nremote = \"198.51.100.1\"\n",
		monitor: func() (*netlink.Conn, error) {
			return netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{Groups: 1 << (unix.RTNLGRP_LINK - 1)})
		},
		ready:   func(t *testing.T, rt *netlink.Conn) bool { return linkUp(t, rt, "t0") },
		reacted: func(c *netlink.Conn) bool { return waitNewLink(c, "t0") },
		kernel:  kernelChangeLink,
	}, s)
}

// kernelChangeLink times the kernel's own part of a reaction: the same
// change of an up ipip tunnel's local address, requested directly
// (request to acknowledgement), 50 times, with no daemon running.
func kernelChangeLink(t *testing.T, rt *netlink.Conn, wan int) []float64 {
	msg := func(flags netlink.HeaderFlags, index uint32, local string) netlink.Message {
		m := rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: index, Attributes: &rtnetlink.LinkAttributes{
			Info: &rtnetlink.LinkInfo{Kind: "ipip", Data: &iptun.IPIP{Link: uint32(wan), Local: netip.MustParseAddr(local),
				Remote: netip.MustParseAddr("198.51.100.1"), TTL: 64, PMTUDisc: true}}}}
		if index == 0 {
			m.Attributes.Name = "k0"
		}
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return netlink.Message{Header: netlink.Header{Type: unix.RTM_NEWLINK, Flags: netlink.Request | netlink.Acknowledge | flags}, Data: b}
	}
	if _, err := rt.Execute(msg(netlink.Create|netlink.Excl, 0, "192.0.2.1")); err != nil {
		t.Fatalf("create k0: %v", err)
	}
	index := uint32(ifindex(t, rt, "k0"))
	if err := netnstest.LinkUp("k0"); err != nil { // up, as the daemon's tunnel is
		t.Fatal(err)
	}
	var out []float64
	for i := range 50 {
		m := msg(0, index, fmt.Sprintf("192.0.2.%d", 2-i%2))
		start := time.Now()
		if _, err := rt.Execute(m); err != nil {
			t.Fatalf("change k0: %v", err)
		}
		out = append(out, ms(time.Since(start)))
	}
	return out
}

// TestReactionNative approximates the reaction on the machine itself,
// where the VMs' emulation does not slow it down ten-fold, but where the
// kernel has no tunnel drivers (this development host): tunneld's
// nftables table names the tunnel's local address too, so the time is
// taken to the end of the table's rewrite (NFT_MSG_NEWGEN). Every
// converge there also tries, and fails, to create the tunnel: one request
// more than on a router. Only with TUNNELD_BENCH_NATIVE=1 (`make bench`
// runs it on the host).
func TestReactionNative(t *testing.T) {
	s := setup(t)
	if os.Getenv("TUNNELD_BENCH_NATIVE") != "1" {
		t.Skip("set TUNNELD_BENCH_NATIVE=1 (make bench runs it on the host)")
	}
	const newgen = unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWGEN
	var started bool
	reaction(t, reactionCase{
		arch: "native", note: ", to tunneld's nftables rewrite (no ipip driver)",
		config: "[global]\nfirewall = true\n[tunnel.t0]\nmode = \"ipip\"\nlocal = \"wan\"\nremote = \"198.51.100.1\"\n",
		monitor: func() (*netlink.Conn, error) {
			return netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{Groups: 1 << (unix.NFNLGRP_NFTABLES - 1)})
		},
		ready: func(*testing.T, *netlink.Conn) bool { return started },
		reacted: func(c *netlink.Conn) bool {
			for {
				msgs, err := c.Receive()
				if err != nil {
					return false
				}
				for _, m := range msgs {
					if m.Header.Type == newgen {
						started = true
						return true
					}
				}
			}
		},
	}, s)
}

// reaction runs the daemon on rc's configuration and replaces the WAN
// address 200 times, as a DHCP renew with a new lease does (the new one
// added, the old one deleted). Each time counts from the old address's
// deletion (the event that moves the tunnel: until then the old address
// is still the device's primary one) and, for comparison, from the new
// one's addition.
func reaction(t *testing.T, rc reactionCase, s settings) {
	ns := netnstest.NewNS(t)
	defer ns.Close()
	cfg := filepath.Join(t.TempDir(), "r.toml")
	if err := os.WriteFile(cfg, []byte(rc.config), 0o644); err != nil {
		t.Fatal(err)
	}
	var mon, rt *netlink.Conn
	var logs syncbuf.Buffer
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
		if mon, err = rc.monitor(); err != nil {
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
	for deadline := time.Now().Add(time.Minute); !rc.ready(t, rt); {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("tunneld run did not converge within a minute:\n%s", tail(logs.String()))
		}
		mon.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		rc.reacted(mon)
	}
	drain(mon, 100*time.Millisecond)
	index := ifindex(t, rt, "wan")
	var fromDel, fromAdd []float64
	for i := range 200 {
		// The address alternates between .1 and .2.
		next, prev := fmt.Sprintf("192.0.2.%d/24", 2-i%2), fmt.Sprintf("192.0.2.%d/24", 1+i%2)
		mon.SetReadDeadline(time.Now().Add(5 * time.Second))
		added := time.Now()
		if err := addrReq(rt, unix.RTM_NEWADDR, index, next); err != nil {
			t.Fatal(err)
		}
		deleted := time.Now()
		if err := addrReq(rt, unix.RTM_DELADDR, index, prev); err != nil {
			t.Fatal(err)
		}
		if !rc.reacted(mon) {
			stop()
			t.Fatalf("change %d: no reaction within 5s:\n%s", i, tail(logs.String()))
		}
		fromDel = append(fromDel, ms(time.Since(deleted)))
		fromAdd = append(fromAdd, ms(time.Since(added)))
		time.Sleep(20 * time.Millisecond) // let the daemon settle between changes
		drain(mon, 100*time.Millisecond)
	}
	stop()
	p := func(v []float64, q float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[int(q*float64(len(v)-1))]
	}
	note := fmt.Sprintf("%d address changes, debounce %s%s", len(fromDel), daemon.DefaultDebounce, rc.note)
	report(result{Arch: rc.arch, Bench: "reaction p50", Impl: "tunneld run", Value: p(fromDel, 0.50), Unit: "ms", Note: note})
	report(result{Arch: rc.arch, Bench: "reaction p99", Impl: "tunneld run", Value: p(fromDel, 0.99), Unit: "ms"})
	report(result{Arch: rc.arch, Bench: "reaction p50, from the new address's addition", Impl: "tunneld run", Value: p(fromAdd, 0.50), Unit: "ms"})
	report(result{Arch: rc.arch, Bench: "reaction p99, from the new address's addition", Impl: "tunneld run", Value: p(fromAdd, 0.99), Unit: "ms"})
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
	report(result{Arch: rc.arch, Bench: "daemon re-read, nothing to do (p50)", Impl: "tunneld run", Value: median(idle), Unit: "ms", Note: fmt.Sprintf("%d converges after events", len(idle))})
	report(result{Arch: rc.arch, Bench: "daemon re-read + change + confirm (p50)", Impl: "tunneld run", Value: median(changed), Unit: "ms", Note: fmt.Sprintf("%d converges after events", len(changed))})
	if rc.kernel != nil {
		var k []float64
		if err := ns.Do(func() error { k = rc.kernel(t, rt, index); return nil }); err != nil {
			t.Fatal(err)
		}
		report(result{Arch: rc.arch, Bench: "kernel alone: the same link change (p50)", Impl: "one netlink request", Value: median(k), Unit: "ms", Note: fmt.Sprintf("%d requests, no daemon", len(k))})
	}
}
