package daemon

import (
	"context"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/linux"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/watch"
)

const privConfig = `
[global]
ip_forward = true
resync_interval = "1s"

[tables]
far = 1000

[[route]]
to = "10.51.0.0/16"
via = "192.0.2.1"
dev = "eth0"
table = "far"

[[rule]]
from = "10.60.0.0/16"
table = "far"

[[masquerade]]
src = "10.60.0.0/16"
oif = "eth0"
`

// TestPrivilegedDaemonRepairs runs the real daemon (netlink kernel,
// netlink watcher) in a fresh namespace and breaks what it owns from the
// outside: each object is back within a second or two, and 1000 flaps of
// the underlay device leave no goroutines or file descriptors behind.
//
// Everything that must live in the namespace (the daemon's loop, its
// sockets, the sysctl file used to break ip_forward) is created on the
// test's locked thread; the scenario runs on another goroutine using only
// sockets opened beforehand.
func TestPrivilegedDaemonRepairs(t *testing.T) {
	netnstest.Enter(t)
	for _, err := range []error{
		netnstest.Veth("eth0", "peer0", nil), netnstest.LinkUp("eth0"), netnstest.LinkUp("peer0"),
		netnstest.AddAddr("eth0", netip.MustParsePrefix("192.0.2.10/24")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	k, err := linux.Open(linux.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	w, err := watch.Open(k.PortID())
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rtnetlink.Dial(nil) // the "someone else" of the scenario
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	raw, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	fwd, err := os.OpenFile("/proc/sys/net/ipv4/ip_forward", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	other, err := linux.Open(linux.Options{StateDir: t.TempDir()}) // reads state from another socket
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	eth0, err := net.InterfaceByName("eth0")
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan watch.Event, 1)
	go w.Run(ctx, events)
	converged := make(chan struct{}, 1000)
	d := New(Deps{
		Kernel: k, Events: events,
		Load: func() (*config.Config, error) { return config.Parse("t.toml", []byte(privConfig)) },
		OnConverge: func(Facts) {
			select {
			case converged <- struct{}{}:
			default:
			}
		},
	})
	scope := model.Scope{Band: model.RuleBand{Min: 20000, Max: 20999}}
	observe := func() model.State {
		s, _, err := other.Observe(context.Background(), scope)
		if err != nil {
			t.Error(err)
		}
		return s
	}
	waitFor := func(what string, ok func() bool) {
		deadline := time.Now().Add(3 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Errorf("%s: not repaired within 3s", what)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	result := make(chan struct{})
	go func() {
		defer close(result)
		defer cancel()
		<-converged
		s := observe()
		if len(s.Routes) != 1 || len(s.Rules) != 1 || s.Filter == nil {
			t.Errorf("after start: %+v", s)
			return
		}
		route := s.Routes[0]
		// Delete the route as `ip route del` would.
		err := rt.Route.Delete(&rtnetlink.RouteMessage{Family: unix.AF_INET, DstLength: 16, Protocol: model.RouteProtocol,
			Type: unix.RTN_UNICAST, Attributes: rtnetlink.RouteAttributes{Dst: net.IP(route.Dst.Addr().AsSlice()), Table: 1000}})
		if err != nil {
			t.Errorf("delete route: %v", err)
		}
		waitFor("route", func() bool { return len(observe().Routes) == 1 })
		// Delete the rule.
		if err := netnstest.DelRule(raw, netnstest.Rule{Family: unix.AF_INET, Priority: 20000, Table: 1000, Proto: model.RuleProtocol,
			Src: netip.MustParsePrefix("10.60.0.0/16")}); err != nil {
			t.Errorf("delete rule: %v", err)
		}
		waitFor("rule", func() bool { return len(observe().Rules) == 1 })
		// Reset ip_forward (no event: the periodic resync finds it).
		if _, err := fwd.WriteAt([]byte("0\n"), 0); err != nil {
			t.Errorf("write ip_forward: %v", err)
		}
		waitFor("ip_forward", func() bool {
			b := make([]byte, 2)
			fwd.ReadAt(b, 0)
			return b[0] == '1'
		})
		// 1000 flaps of the device the route goes through: the kernel
		// flushes the route each time, tunneld puts it back.
		g0, fd0 := runtime.NumGoroutine(), fds()
		for i := range 1000 {
			for _, up := range []bool{false, true} {
				var flags uint32
				if up {
					flags = unix.IFF_UP
				}
				if err := rt.Link.Set(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: uint32(eth0.Index), Flags: flags, Change: unix.IFF_UP}); err != nil {
					t.Errorf("flap %d: %v", i, err)
					return
				}
			}
		}
		waitFor("route after 1000 flaps", func() bool { return len(observe().Routes) == 1 })
		time.Sleep(200 * time.Millisecond)
		if g, f := runtime.NumGoroutine(), fds(); g > g0+2 || f > fd0+2 {
			t.Errorf("after 1000 flaps: goroutines %d → %d, fds %d → %d", g0, g, fd0, f)
		}
	}()
	if err := d.Run(ctx); err != nil {
		t.Fatal(err)
	}
	<-result
	if s := observe(); len(s.Routes)+len(s.Rules) != 0 || s.Filter != nil {
		t.Errorf("after stop: %+v", s)
	}
}

func fds() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}
