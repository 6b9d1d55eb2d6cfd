package daemon

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/linux"
	"github.com/tunneld/tunneld/pkg/logfmt"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/plan"
	"github.com/tunneld/tunneld/pkg/watch"
)

// gatedKernel is the Linux seam with a gate before Apply: once armed, the
// next plan waits until its context ends, then goes to the seam, which
// gets the cancelled context as when a stop comes in the middle of it.
type gatedKernel struct {
	*linux.Kernel
	armed   atomic.Bool
	entered chan struct{}
}

func (g *gatedKernel) Apply(ctx context.Context, p plan.Plan) error {
	if g.armed.CompareAndSwap(true, false) {
		close(g.entered)
		<-ctx.Done()
	}
	return g.Kernel.Apply(ctx, p)
}

// TestPrivilegedStopCutsAReloadShort runs the real daemon in a fresh
// namespace and stops it (SIGTERM) while the converge of a reload
// (SIGHUP) is applying: the seam's cancelled operations are no failure
// (a tester saw `level=ERROR msg="converge failed" reason=reload
// err="context canceled"`), and the teardown leaves nothing of tunneld's.
func TestPrivilegedStopCutsAReloadShort(t *testing.T) {
	netnstest.Enter(t)
	for _, err := range []error{
		netnstest.Veth("eth0", "peer0", nil), netnstest.LinkUp("eth0"), netnstest.LinkUp("peer0"),
		netnstest.AddAddr("eth0", netip.MustParsePrefix("192.0.2.10/24")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	lk, err := linux.Open(linux.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	other, err := linux.Open(linux.Options{StateDir: t.TempDir()}) // reads state from another socket
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	k := &gatedKernel{Kernel: lk, entered: make(chan struct{})}
	var mu sync.Mutex
	file := privConfig
	var log syncbuf.Buffer
	converged := make(chan struct{}, 1)
	reload := make(chan os.Signal)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := New(Deps{
		Kernel: k, Reload: reload, Log: logfmt.New(&log, logfmt.Info),
		Load: func() (*config.Config, error) {
			mu.Lock()
			defer mu.Unlock()
			return config.Parse("t.toml", []byte(file))
		},
		OnConverge: func(Facts) {
			select {
			case converged <- struct{}{}:
			default:
			}
		},
	})
	go func() {
		defer cancel()
		select {
		case <-converged:
		case <-time.After(10 * time.Second):
			t.Error("no first convergence within 10s")
			return
		}
		mu.Lock()
		file = strings.Replace(privConfig, `to = "10.51.0.0/16"`, `to = "10.52.0.0/16"`, 1)
		mu.Unlock()
		k.armed.Store(true)
		reload <- syscall.SIGHUP
		select {
		case <-k.entered:
		case <-time.After(10 * time.Second):
			t.Error("the reload's converge did not apply within 10s")
		}
	}()
	if err := d.Run(ctx); err != nil {
		t.Errorf("Run returned %v", err)
	}
	if diff := cmp.Diff([]string(nil), levelLines(log.String(), "WARN")); diff != "" {
		t.Errorf("warn and error lines (-want +got):\n%s\nthe log:\n%s", diff, log.String())
	}
	if want := `level=INFO msg="convergence cut short: tunneld is stopping" reason=reload`; !strings.Contains(log.String(), want) {
		t.Errorf("no %q in the log:\n%s", want, log.String())
	}
	s, _, err := other.Observe(context.Background(), model.Scope{Band: model.RuleBand{Min: 20000, Max: 20999}})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Routes)+len(s.Rules) != 0 || s.Filter != nil {
		t.Errorf("after the stop: routes %v rules %v filter %v", s.Routes, s.Rules, s.Filter)
	}
}

// raceConfig routes through the gateway on eth0's prefix, and resyncs
// only after an hour: nothing but a hint, or the daemon's own retry,
// makes it look at the kernel again.
const raceConfig = `
[global]
firewall = false
resync_interval = "1h"

[tables]
far = 1000

[[route]]
to = "10.51.0.0/16"
via = "192.0.2.1"
dev = "eth0"
table = "far"
`

// TestPrivilegedRenewRace runs the real daemon in a fresh namespace
// through the race a WAN renew runs against it: the renew deletes eth0's
// address, and the kernel flushes tunneld's route through the gateway on
// its prefix; the converge the route's hint asks for comes before the
// new address and fails (the kernel refuses the gateway, no longer on a
// prefix of the box's). That is logged at warn level, not error. Once
// the new address is there, a converge, its hint's or, without one, the
// daemon's retry a second later, puts the route back; an info line says
// so, and the failure is no longer the daemon's last error but cleared
// by that convergence (a tester saw status show such an error as
// current long after).
func TestPrivilegedRenewRace(t *testing.T) {
	for _, tc := range []struct {
		name string
		// hint: the new address's hint reaches the daemon; why: the
		// reason of the converge that works.
		hint bool
		why  string
	}{
		{"hint", true, `"event: address"`},
		{"retry", false, "retry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			linuxRenewRace(t, tc.hint, tc.why)
		})
	}
}

// linuxRenewRace is TestPrivilegedRenewRace's case.
func linuxRenewRace(t *testing.T, hint bool, why string) {
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
	other, err := linux.Open(linux.Options{StateDir: t.TempDir()}) // reads state from another socket
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	rt, err := rtnetlink.Dial(nil) // the renew's DHCP client
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	eth0, err := net.InterfaceByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	addr := func(p netip.Prefix) *rtnetlink.AddressMessage {
		ip := net.IP(p.Addr().AsSlice())
		return &rtnetlink.AddressMessage{Family: unix.AF_INET, PrefixLength: uint8(p.Bits()), Index: uint32(eth0.Index),
			Flags: unix.IFA_F_NODAD, Attributes: &rtnetlink.AddressAttributes{Address: ip, Local: ip}}
	}
	routes := func() int {
		s, _, err := other.Observe(context.Background(), model.Scope{})
		if err != nil {
			t.Error(err)
		}
		return len(s.Routes)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan watch.Event, 1)
	facts := make(chan Facts, 100)
	var log syncbuf.Buffer
	d := New(Deps{
		Kernel: k, Events: events, Log: logfmt.New(&log, logfmt.Info),
		Load:       func() (*config.Config, error) { return config.Parse("t.toml", []byte(raceConfig)) },
		OnConverge: func(f Facts) { facts <- f },
	})
	var failed Facts
	go func() {
		defer cancel()
		next := func(what string) Facts {
			select {
			case f := <-facts:
				return f
			case <-time.After(10 * time.Second):
				t.Errorf("%s: no convergence within 10s", what)
				return Facts{}
			}
		}
		if next("start"); routes() != 1 {
			t.Error("the route is not there after the start")
			return
		}
		// The renew deletes the old address: the kernel flushes the route.
		if err := rt.Address.Delete(addr(netip.MustParsePrefix("192.0.2.10/24"))); err != nil {
			t.Errorf("delete the address: %v", err)
			return
		}
		events <- watch.Event{Kind: watch.Route}
		failed = next("the route's hint")
		if failed.LastError == "" || routes() != 0 {
			t.Errorf("the converge before the new address: last error %q, %d routes; want a failure and none", failed.LastError, routes())
			return
		}
		// The renew's new address.
		if err := rt.Address.New(addr(netip.MustParsePrefix("192.0.2.11/24"))); err != nil {
			t.Errorf("add the new address: %v", err)
			return
		}
		if hint {
			events <- watch.Event{Kind: watch.Addr}
		}
		f := next("the new address")
		if f.LastError != "" || routes() != 1 {
			t.Errorf("after the new address: last error %q, %d routes; want none and the route back", f.LastError, routes())
		}
		want := &ClearedError{Err: failed.LastError, At: failed.LastErrorAt, Cleared: f.LastConverge, By: "a convergence"}
		if diff := cmp.Diff(want, f.Cleared); diff != "" {
			t.Errorf("cleared error (-want +got):\n%s", diff)
		}
	}()
	if err := d.Run(ctx); err != nil {
		t.Errorf("Run returned %v", err)
	}
	var got []string
	for _, l := range levelLines(log.String(), "INFO") {
		if strings.Contains(l, "converge") {
			got = append(got, l)
		}
	}
	want := []string{
		`level=WARN msg="converge failed; trying again" reason="event: route" err="` + strings.ReplaceAll(failed.LastError, `"`, `\"`) + `"`,
		`level=INFO msg="converged again after a failure" reason=` + why,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log lines about converges (-want +got):\n%s\nthe log:\n%s", diff, log.String())
	}
}
