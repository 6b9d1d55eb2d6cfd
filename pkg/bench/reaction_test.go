package bench

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/daemon"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
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
	// kernel, if set, times the kernel's own part of the change in a
	// namespace of its own, with no reactor running.
	kernel func(t *testing.T, rt *netlink.Conn, wan int) []float64
	// yardsticks are timed side by side with tunneld.
	yardsticks []reactor
	// quiet: each implementation's namespace is made once the machine is
	// quiet (settle; in the guests, where all the load is the benchmark's).
	quiet bool
}

// TestReaction measures, 200 times, the time from a WAN address change to
// the RTM_NEWLINK that changes the tunnel's local address, with the real
// daemon: `tunneld run` (netlink watcher, default debounce) in a fresh
// namespace, measured from sockets opened there. (A daemon inside this
// process would run on the namespace's locked thread, where every
// goroutine switch is a thread hand-off: that measures the test, not
// tunneld.) Side by side, the same for two yardsticks: the floor, a
// process that does the least a reaction needs, and, where Debian's
// iproute2 is in the guest, a script around `ip monitor`; and, with
// TUNNELD_BENCH_BASELINE_BIN, another build of tunneld.
func TestReaction(t *testing.T) {
	if os.Getenv(floorEnv) == "1" {
		runFloorReactor(t)
		return
	}
	s := setup(t)
	yardsticks := []reactor{floorReactor()}
	if s.ip != "" {
		yardsticks = append(yardsticks, scriptReactor(s.ip))
	}
	reaction(t, reactionCase{
		yardsticks: yardsticks,
		arch:       s.arch,
		quiet:      true,
		config:     "[global]\nfirewall = false\n[tunnel.t0]\nmode = \"ipip\"\nlocal = \"wan\"\nremote = \"198.51.100.1\"\n",
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
	if err := createTunnel(rt, "k0", wan); err != nil {
		t.Fatal(err)
	}
	index := ifindex(t, rt, "k0")
	var out []float64
	for i := range 50 {
		m, err := ipipChange(index, wan, netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 2-i%2)))
		if err != nil {
			t.Fatal(err)
		}
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

// Each implementation is timed in reactionRounds rounds of
// reactionChanges address replacements, the implementations taking turns
// (in the opposite order every other round), so that the host's changing
// load falls on all of them alike.
const reactionRounds, reactionChanges = 2, 100

// reaction times the daemon on rc's configuration, and rc's yardsticks,
// as they follow the WAN address replaced as a DHCP renew with a new lease
// does (the new one added, the old one deleted). Each time counts from the
// old address's deletion (the event that moves the tunnel: until then the
// old address is still the device's primary one) and, for comparison,
// from the new one's addition.
func reaction(t *testing.T, rc reactionCase, s settings) {
	cfg := filepath.Join(t.TempDir(), "r.toml")
	if err := os.WriteFile(cfg, []byte(rc.config), 0o644); err != nil {
		t.Fatal(err)
	}
	reactors := []reactor{daemonReactor(t, "tunneld run", s.bin, cfg)}
	if bin := os.Getenv("TUNNELD_BENCH_BASELINE_BIN"); bin != "" {
		base := daemonReactor(t, "tunneld run, baseline "+os.Getenv("TUNNELD_BENCH_BASELINE"), bin, cfg)
		base.note = "tunneld built from that revision (TUNNELD_BENCH_BASELINE)"
		reactors = append(reactors, base)
	}
	reactors = append(reactors, rc.yardsticks...)
	got := make([]reactionTimes, len(reactors))
	var daemonLog strings.Builder
	for round := range reactionRounds {
		// Every other round goes in the opposite order, so that no
		// implementation always follows the same one.
		order := make([]int, len(reactors))
		for i := range order {
			order[i] = i
		}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, i := range order {
			r := reactors[i]
			times, log := react(t, rc, r)
			got[i].fromDel = append(got[i].fromDel, times.fromDel...)
			got[i].fromAdd = append(got[i].fromAdd, times.fromAdd...)
			if i == 0 {
				daemonLog.WriteString(log)
			}
		}
	}
	d := got[0]
	note := fmt.Sprintf("%d address changes, debounce %s%s", len(d.fromDel), daemon.DefaultDebounce, rc.note)
	report(t, result{Arch: rc.arch, Bench: "reaction p50", Impl: "tunneld run", Value: percentile(d.fromDel, 0.50), Unit: "ms", Note: note})
	report(t, result{Arch: rc.arch, Bench: "reaction p99", Impl: "tunneld run", Value: percentile(d.fromDel, 0.99), Unit: "ms"})
	report(t, result{Arch: rc.arch, Bench: "reaction p50, from the new address's addition", Impl: "tunneld run", Value: percentile(d.fromAdd, 0.50), Unit: "ms"})
	report(t, result{Arch: rc.arch, Bench: "reaction p99, from the new address's addition", Impl: "tunneld run", Value: percentile(d.fromAdd, 0.99), Unit: "ms"})
	for i, r := range reactors[1:] {
		y := got[i+1]
		for _, q := range []struct {
			name string
			q    float64
		}{{"p50", 0.50}, {"p99", 0.99}} {
			v := percentile(y.fromDel, q.q)
			report(t, result{Arch: rc.arch, Bench: "reaction " + q.name, Impl: r.impl, Value: v, Unit: "ms",
				Note: fmt.Sprintf("tunneld's %s is %.2f× this; %s", q.name, percentile(d.fromDel, q.q)/v, r.note)})
		}
	}
	// What the reaction is made of: the daemon's own timing of its
	// converges after events (debug log), with nothing to do (one re-read)
	// and with the tunnel's change (re-read, apply, re-read to confirm).
	var idle, changed, waited, read, apply, shortRead, shortApply []float64
	for _, c := range converges(daemonLog.String()) {
		switch {
		case !strings.HasPrefix(c.reason, "event:"):
		case c.short:
			if c.ops > 0 {
				shortRead, shortApply = append(shortRead, c.read), append(shortApply, c.apply)
			}
		case c.ops == 0:
			idle = append(idle, c.took)
		default:
			changed = append(changed, c.took)
			if c.waited >= 0 {
				waited, read, apply = append(waited, c.waited), append(read, c.read), append(apply, c.apply)
			}
		}
	}
	if len(idle) == 0 || len(changed)+len(shortRead) == 0 {
		t.Fatalf("no converge timings in the daemon's log:\n%s", tail(daemonLog.String()))
	}
	report(t, result{Arch: rc.arch, Bench: "daemon re-read, nothing to do (p50)", Impl: "tunneld run", Value: median(idle), Unit: "ms", Note: fmt.Sprintf("%d converges after events", len(idle))})
	if len(changed) > 0 {
		report(t, result{Arch: rc.arch, Bench: "daemon re-read + change + confirm (p50)", Impl: "tunneld run", Value: median(changed), Unit: "ms", Note: fmt.Sprintf("%d converges after events", len(changed))})
	}
	// The parts of what moved the tunnel, up to the change: for a
	// converge, the wait after the first hint, the read, the apply; for
	// the short way after an address hint, its read (addresses and plan)
	// and its apply.
	for _, p := range []struct {
		name string
		v    []float64
	}{
		{"daemon converge that moved the tunnel: wait after the first hint", waited},
		{"daemon converge that moved the tunnel: its first read", read},
		{"daemon converge that moved the tunnel: its apply", apply},
		{"short way after an address hint: address read and plan", shortRead},
		{"short way after an address hint: its apply", shortApply},
	} {
		if len(p.v) > 0 {
			report(t, result{Arch: rc.arch, Bench: p.name + " (p50)", Impl: "tunneld run", Value: median(p.v), Unit: "ms", Note: fmt.Sprintf("%d times, p99 %.1f ms", len(p.v), percentile(p.v, 0.99))})
		}
	}
	if rc.kernel != nil {
		ns := wanNS(t)
		defer ns.Close()
		var k []float64
		if err := ns.Do(func() error {
			rt, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
			if err != nil {
				return err
			}
			defer rt.Close()
			k = rc.kernel(t, rt, ifindex(t, rt, "wan"))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		report(t, result{Arch: rc.arch, Bench: "kernel alone: the same link change (p50)", Impl: "one netlink request", Value: median(k), Unit: "ms", Note: fmt.Sprintf("%d requests, no daemon", len(k))})
	}
}

// daemonReactor is `tunneld run` of the binary bin on the configuration
// file cfg, logging at debug level (its converges' timings).
func daemonReactor(t *testing.T, impl, bin, cfg string) reactor {
	return reactor{impl: impl, command: func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "-c", cfg, "-log-level", "debug")
		cmd.Env = append(os.Environ(), "TUNNELD_STATE_DIR="+t.TempDir())
		return cmd
	}}
}

// reactionTimes are one implementation's reaction times, in ms.
type reactionTimes struct{ fromDel, fromAdd []float64 }

// react starts r in a fresh namespace, waits until it is ready, replaces
// the WAN address reactionChanges times, and returns the reaction times
// and what r wrote.
func react(t *testing.T, rc reactionCase, r reactor) (reactionTimes, string) {
	if rc.quiet {
		settle(t)
	}
	ns := wanNS(t)
	defer ns.Close()
	var mon, rt *netlink.Conn
	var out syncbuf.Buffer
	cmd := r.command()
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // stopper ends r's whole group
	err := ns.Do(func() error {
		var err error
		if mon, err = rc.monitor(); err != nil {
			return err
		}
		if rt, err = netlink.Dial(unix.NETLINK_ROUTE, nil); err != nil {
			return err
		}
		if r.tunnel {
			if err := createTunnel(rt, "t0", ifindex(t, rt, "wan")); err != nil {
				return err
			}
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
	ready := func() bool { return rc.ready(t, rt) }
	if r.ready != nil {
		ready = func() bool { return r.ready(t, ns) }
	}
	for deadline := time.Now().Add(time.Minute); !ready(); {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("%s was not ready within a minute:\n%s", r.impl, tail(out.String()))
		}
		mon.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		rc.reacted(mon)
	}
	drain(mon, 100*time.Millisecond)
	index := ifindex(t, rt, "wan")
	var got reactionTimes
	for i := range reactionChanges {
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
			t.Fatalf("%s, change %d: no reaction within 5s:\n%s", r.impl, i, tail(out.String()))
		}
		got.fromDel = append(got.fromDel, ms(time.Since(deleted)))
		got.fromAdd = append(got.fromAdd, ms(time.Since(added)))
		time.Sleep(20 * time.Millisecond) // let it settle between changes
		drain(mon, 100*time.Millisecond)
	}
	stop()
	return got, out.String()
}

// wanNS makes a fresh namespace with the device wan (192.0.2.1/24, its
// secondary addresses promoted when the primary goes) and its peer up.
func wanNS(t *testing.T) *netnstest.NS {
	ns := netnstest.NewNS(t)
	err := ns.Do(func() error {
		if err := netnstest.Veth("wan", "peer0", nil); err != nil {
			return err
		}
		for _, d := range []string{"wan", "peer0"} {
			if err := netnstest.LinkUp(d); err != nil {
				return err
			}
		}
		if err := os.WriteFile("/proc/sys/net/ipv4/conf/wan/promote_secondaries", []byte("1"), 0); err != nil {
			return err
		}
		return netnstest.AddAddr("wan", mustPrefix("192.0.2.1/24"))
	})
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func percentile(v []float64, q float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[int(q*float64(len(v)-1))]
}
