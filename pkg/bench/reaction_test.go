package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/daemon"
	"github.com/tunneld/tunneld/pkg/linux"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/watch"
)

// TestReaction measures, 200 times, the time from a WAN address change to
// the RTM_NEWLINK that changes the tunnel's local address, with the real
// daemon (netlink watcher, default debounce) running in this process.
// The daemon's loop runs on the test's locked thread, inside the bench
// namespace; the measuring goroutine only uses sockets opened there first.
func TestReaction(t *testing.T) {
	s := setup(t)
	netnstest.Enter(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(netnstest.Veth("wan", "peer0", nil))
	must(netnstest.LinkUp("wan"))
	must(netnstest.LinkUp("peer0"))
	os.WriteFile("/proc/sys/net/ipv4/conf/wan/promote_secondaries", []byte("1"), 0)
	must(netnstest.AddAddr("wan", mustPrefix("192.0.2.1/24")))
	k, err := linux.Open(linux.Options{StateDir: t.TempDir(), NoFilter: true})
	must(err)
	defer k.Close()
	w, err := watch.Open(k.PortID())
	must(err)
	mon, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{Groups: 1 << (unix.RTNLGRP_LINK - 1)})
	must(err)
	defer mon.Close()
	rt, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	must(err)
	defer rt.Close()
	cfg := "[global]\nfirewall = false\n[tunnel.t0]\nmode = \"ipip\"\nlocal = \"wan\"\nremote = \"198.51.100.1\"\n"
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan watch.Event, 1)
	go w.Run(ctx, events)
	ready := make(chan struct{}, 1)
	d := daemon.New(daemon.Deps{Kernel: k, Events: events,
		Load: func() (*config.Config, error) { return config.Parse("b.toml", []byte(cfg)) },
		OnConverge: func(daemon.Facts) {
			select {
			case ready <- struct{}{}:
			default:
			}
		},
	})
	index := ifindex(t, rt, "wan")
	var lat []float64
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		<-ready
		for i := range 200 {
			// The address alternates between .1 and .2.
			next, prev := fmt.Sprintf("192.0.2.%d/24", 2-i%2), fmt.Sprintf("192.0.2.%d/24", 1+i%2)
			mon.SetReadDeadline(time.Now().Add(5 * time.Second))
			start := time.Now()
			if err := addrReq(rt, unix.RTM_NEWADDR, index, next); err != nil {
				t.Error(err)
				return
			}
			if err := addrReq(rt, unix.RTM_DELADDR, index, prev); err != nil {
				t.Error(err)
				return
			}
			if !waitNewLink(mon, "t0") {
				t.Errorf("change %d: no RTM_NEWLINK for t0 within 5s", i)
				return
			}
			lat = append(lat, ms(time.Since(start)))
			time.Sleep(20 * time.Millisecond) // let the daemon settle between changes
			drain(mon)
		}
	}()
	must(d.Run(ctx))
	<-done
	if len(lat) == 0 {
		return
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	p := func(q float64) float64 { return sorted[int(q*float64(len(sorted)-1))] }
	report(result{Arch: s.arch, Bench: "reaction p50", Impl: "tunneld run", Value: p(0.50), Unit: "ms", Note: fmt.Sprintf("%d address changes, debounce %s", len(lat), daemon.DefaultDebounce)})
	report(result{Arch: s.arch, Bench: "reaction p99", Impl: "tunneld run", Value: p(0.99), Unit: "ms"})
}
