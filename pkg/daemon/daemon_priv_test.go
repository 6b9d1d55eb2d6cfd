package daemon

import (
	"context"
	"net"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/linux"
	"github.com/tunneld/tunneld/pkg/logfmt"
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
		// Reset ip_forward (a netconf hint; TestPrivilegedDaemonRepairsSysctls
		// shows that it, not the resync, repairs it).
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

// sysctlConfig has a resync far longer than any test: only a netlink
// hint can make the daemon look at the kernel again.
const sysctlConfig = `
[global]
ip_forward = true
proxy_arp = ["eth0"]
firewall = false
resync_interval = "1h"
`

// TestPrivilegedDaemonRepairsSysctls runs the real daemon in a fresh
// namespace and changes the sysctls it owns by hand, as `sysctl -w
// net.ipv4.ip_forward=0 net.ipv4.conf.eth0.proxy_arp=0` does: the kernel's
// netconf notifications bring them back long before the resync (an hour)
// could, with a log line giving the hint, and the echoes of tunneld's own
// writes end in a converge that finds nothing to do, not in a loop.
func TestPrivilegedDaemonRepairsSysctls(t *testing.T) {
	netnstest.Enter(t)
	// The devices stay down: a device up gets an IPv6 link-local address
	// a second later, whose hints would make the daemon re-read too.
	if err := netnstest.Veth("eth0", "peer0", nil); err != nil {
		t.Fatal(err)
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
	// The sysctl files are the namespace's: opened on the test's thread.
	files := map[string]*os.File{}
	for _, name := range []string{"net.ipv4.ip_forward", "net.ipv4.conf.eth0.proxy_arp"} {
		f, err := os.OpenFile("/proc/sys/"+strings.ReplaceAll(name, ".", "/"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files[name] = f
	}
	read := func(name string) string {
		b := make([]byte, 16)
		n, err := files[name].ReadAt(b, 0)
		if n == 0 {
			t.Errorf("read %s: %v", name, err)
		}
		return strings.TrimSpace(string(b[:n]))
	}

	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan watch.Event, watch.Backlog)
	go w.Run(ctx, events)
	var log syncbuf.Buffer
	converges := make(chan struct{}, 1000)
	d := New(Deps{
		Kernel: k, Events: events, Log: logfmt.New(&log, logfmt.Debug),
		Load: func() (*config.Config, error) { return config.Parse("t.toml", []byte(sysctlConfig)) },
		OnConverge: func(Facts) {
			select {
			case converges <- struct{}{}:
			default:
			}
		},
	})
	result := make(chan struct{})
	go func() {
		defer close(result)
		defer cancel()
		<-converges
		for name := range files {
			if v := read(name); v != "1" {
				t.Errorf("after start: %s = %s, want 1", name, v)
				return
			}
		}
		// The start's own writes echo: wait until the loop rests.
		if n, ok := rest(converges); !ok {
			t.Errorf("after start: %d converges, no rest", n)
			return
		}
		for name, f := range files {
			if _, err := f.WriteAt([]byte("0\n"), 0); err != nil {
				t.Errorf("write %s: %v", name, err)
			}
		}
		// An hour's resync cannot have run: only the hints repair them.
		deadline := time.Now().Add(30 * time.Second)
		for read("net.ipv4.ip_forward") != "1" || read("net.ipv4.conf.eth0.proxy_arp") != "1" {
			if time.Now().After(deadline) {
				t.Errorf("not repaired within 30s (the resync is an hour away): ip_forward = %s, proxy_arp = %s",
					read("net.ipv4.ip_forward"), read("net.ipv4.conf.eth0.proxy_arp"))
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		if n, ok := rest(converges); !ok {
			t.Errorf("after the repair: %d converges, no rest", n)
		}
		for name := range files {
			changed := regexp.MustCompile(`level=INFO msg=changed object="sysctl ` + regexp.QuoteMeta(name) + `" cmd="sysctl -w ` + regexp.QuoteMeta(name) + `=1" reason="event:[^"]*\bnetconf\b`)
			if !changed.MatchString(log.String()) {
				t.Errorf("no line of %s repaired on a netconf hint in the log:\n%s", name, log.String())
			}
		}
	}()
	if err := d.Run(ctx); err != nil {
		t.Fatal(err)
	}
	<-result
}

// rest waits until no converge has come for a second (within ten) and
// reports how many came before that: a loop that converges on the echoes
// of its own writes never rests.
func rest(converges <-chan struct{}) (int, bool) {
	n := 0
	for deadline := time.After(10 * time.Second); ; {
		select {
		case <-converges:
			n++
		case <-time.After(time.Second):
			return n, true
		case <-deadline:
			return n, false
		}
	}
}

func fds() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}
