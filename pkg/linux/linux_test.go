package linux

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/plan"
)

var ctx = context.Background()

var opts = cmp.Options{cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}), cmpopts.EquateEmpty()}

// open enters a fresh namespace and opens the kernel there, with its
// state directory in the test's temporary directory.
func open(t *testing.T) *Kernel {
	t.Helper()
	netnstest.Enter(t)
	k, err := Open(Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// converge applies c with k; where the kernel lacks a driver c needs
// (this host: no tunnel drivers), the test skips with the kernel's words.
func converge(t *testing.T, k *Kernel, c *config.Config) engine.Report {
	t.Helper()
	rep, err := engine.Converge(ctx, k, c, nil)
	var nd *kernel.NoDriverError
	if errors.As(err, &nd) {
		netnstest.NoDriver(t, strings.Split(err.Error(), "\n")[0])
	}
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func parse(t *testing.T, src string) *config.Config {
	t.Helper()
	c, err := config.Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// foreign puts state in the namespace that is not tunneld's: devices,
// addresses, routes in main and in numbered tables, rules (one with
// tunneld's protocol outside its band), an nftables table and sysctl
// values. It returns a function that snapshots the namespace.
func foreign(t *testing.T) func() string {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(netnstest.Veth("eth0", "peer0", nil))
	must(netnstest.Veth("eth1", "peer1", nil))
	for _, d := range []string{"eth0", "peer0", "eth1", "peer1"} {
		must(netnstest.LinkUp(d))
	}
	must(netnstest.AddAddr("eth0", netip.MustParsePrefix("192.0.2.10/24")))
	must(netnstest.AddAddr("eth1", netip.MustParsePrefix("198.51.100.10/24")))
	must(netnstest.AddRoute(netnstest.Route{Table: 254, Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.1"), Proto: unix.RTPROT_STATIC}))
	must(netnstest.AddRoute(netnstest.Route{Table: 1000, Dst: netip.MustParsePrefix("10.99.0.0/16"), Via: netip.MustParseAddr("198.51.100.1"), Proto: unix.RTPROT_BOOT}))
	must(netnstest.AddRoute(netnstest.Route{Table: 42, Dst: netip.MustParsePrefix("10.98.0.0/16"), Dev: "eth1", Proto: unix.RTPROT_BOOT}))
	must(netnstest.AddRule(netnstest.Rule{Family: unix.AF_INET, Priority: 20001, Table: 1000, Proto: unix.RTPROT_BOOT, Src: netip.MustParsePrefix("10.99.0.0/16")}))
	must(netnstest.AddRule(netnstest.Rule{Family: unix.AF_INET, Priority: 100, Table: 42, Proto: model.RuleProtocol, Mark: 1}))
	must(netnstest.AddRule(netnstest.Rule{Family: unix.AF_INET6, Priority: 20500, Table: 42, Proto: unix.RTPROT_BOOT}))
	writeSysctl(t, "net/ipv4/conf/eth1/proxy_arp", "1")
	must(foreignTable())
	return func() string {
		s, err := netnstest.Snapshot()
		must(err)
		return s
	}
}

// foreignTable is fw4's table as OpenWrt has it: a forward chain whose
// policy is drop.
func foreignTable() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	tab := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "fw4"})
	drop := nftables.ChainPolicyDrop
	ch := c.AddChain(&nftables.Chain{Name: "forward", Table: tab, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &drop})
	c.AddRule(&nftables.Rule{Table: tab, Chain: ch, Exprs: []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictAccept}}})
	return c.Flush()
}

func writeSysctl(t *testing.T, p, v string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join("/proc/sys", p), []byte(v), 0); err != nil {
		t.Fatal(err)
	}
}

// withoutTunnels is everything but tunnel drivers, which this host lacks:
// routes through foreign devices in numbered tables above 255, rules,
// sysctls and the filter.
const withoutTunnels = `
[global]
ip_forward = true
proxy_arp = ["eth0"]

[tables]
far = 1000
near = 42

[[route]]
to = "10.50.0.0/16"
via = "192.0.2.1"
dev = "eth0"
table = "far"

[[route]]
to = "10.51.0.0/16"
dev = "eth1"
metric = 7

[[route]]
to = "2001:db8:5::/48"
dev = "eth1"
table = "far"

[[rule]]
from = "10.60.0.0/16"
table = "far"

[[rule]]
to = "2001:db8:6::/48"
iif = "eth1"
fwmark = "0x10/0xf0"
table = "near"

[[masquerade]]
src = "10.60.0.0/16"
oif = "eth0"

[[redirect]]
iif = "eth1"
dst = "198.51.100.10"
port = 80
to_port = 8080
`

func TestPrivilegedApplyTwiceAndTeardown(t *testing.T) {
	k := open(t)
	snap := foreign(t)
	before := snap()
	c := parse(t, withoutTunnels)

	rep, err := engine.Converge(ctx, k, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Applied) != 8 {
		t.Errorf("applied %d operations, want 8 (3 routes, 2 rules, 2 sysctls, the filter):\n%v", len(rep.Applied), rep.Applied)
	}
	// Read back exactly what was asked for.
	have, _, err := k.Observe(ctx, engine.Scope(c))
	if err != nil {
		t.Fatal(err)
	}
	want := rep.Last.Want.State
	if diff := cmp.Diff(want.Routes, have.Routes, opts); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want.Rules, have.Rules, opts); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	if !want.Filter.Equal(have.Filter) {
		t.Errorf("filter:\nwant %s\ngot  %s", want.Filter.Canonical(), have.Filter.Canonical())
	}
	for _, s := range have.Sysctls {
		if s.Value != "1" || s.Original != "0" {
			t.Errorf("sysctl %s = %q (original %q), want 1 (0)", s.Path, s.Value, s.Original)
		}
	}
	if out, err := exec.Command("nft", "list", "table", "inet", "tunneld").CombinedOutput(); err == nil {
		if !strings.Contains(string(out), `oifname "eth0" ip saddr 10.60.0.0/16 masquerade`) {
			t.Errorf("nft list table inet tunneld:\n%s", out)
		}
	} else if !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("nft: %v\n%s", err, out)
	}

	// Twice: nothing to do.
	rep, err = engine.Converge(ctx, k, c, nil)
	if err != nil || len(rep.Applied) != 0 {
		t.Fatalf("second converge applied %v, %v", rep.Applied, err)
	}

	// A changed configuration: foreign state still untouched.
	c2 := parse(t, strings.Replace(withoutTunnels, `to = "10.51.0.0/16"`, `to = "10.52.0.0/16"`, 1))
	if _, err := engine.Converge(ctx, k, c2, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Down(ctx, k, c2); err != nil {
		t.Fatal(err)
	}
	if after := snap(); after != before {
		t.Errorf("after down, the namespace differs:\n%s", cmp.Diff(before, after))
	}
}

// TestPrivilegedForeignRouteInTheWay: tunneld does not take over a route
// that is not its own, and says so.
func TestPrivilegedForeignRouteInTheWay(t *testing.T) {
	k := open(t)
	foreign(t)
	if err := netnstest.AddRoute(netnstest.Route{Table: 254, Dst: netip.MustParsePrefix("10.51.0.0/16"), Dev: "eth0", Metric: 7, Proto: unix.RTPROT_BOOT}); err != nil {
		t.Fatal(err)
	}
	_, err := engine.Converge(ctx, k, parse(t, withoutTunnels), nil)
	var ae *kernel.ApplyError
	if !errors.As(err, &ae) || len(ae.Failed) != 1 || !strings.HasPrefix(ae.Failed[0].Error(), "route 10.51.0.0/16 table main metric 7: a route not owned by tunneld") {
		t.Fatalf("error = %v", err)
	}
	_, in, err := k.Observe(ctx, model.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := model.Lookup(in.Routes, netip.MustParseAddr("10.51.0.1")); !ok || u.Dev != "eth0" || u.Metric != 7 {
		t.Errorf("the foreign route was changed: %+v", u)
	}
}

// TestPrivilegedSysctlRestoredAfterCrash: the original is on disk before
// the first write, so a new process restores it.
func TestPrivilegedSysctlRestoredAfterCrash(t *testing.T) {
	netnstest.Enter(t)
	dir := t.TempDir()
	k1, err := Open(Options{StateDir: dir, NoFilter: true})
	if err != nil {
		t.Fatal(err)
	}
	writeSysctl(t, "net/ipv4/ip_forward", "0")
	c := parse(t, "[global]\nip_forward = true\n")
	if _, err := engine.Converge(ctx, k1, c, nil); err != nil {
		t.Fatal(err)
	}
	k1.Close() // "crash": nothing restored
	k2, err := Open(Options{StateDir: dir, NoFilter: true})
	if err != nil {
		t.Fatal(err)
	}
	defer k2.Close()
	// The new configuration no longer sets it: it is restored.
	if _, err := engine.Converge(ctx, k2, parse(t, "[global]\n"), nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(b) != "0\n" {
		t.Fatalf("ip_forward = %q after restore", b)
	}
	if _, err := os.Stat(filepath.Join(dir, sysctlFile)); !os.IsNotExist(err) {
		t.Fatalf("the record of originals is still there: %v", err)
	}
}

// TestPrivilegedSysctlRecordOutlivesAWipe: a state directory wiped under
// a running daemon (by hand, or by a clean-up of /run) loses no
// original: the process that wrote the record keeps it, restores from it,
// and writes it again at its next apply, so that a new process after a
// crash restores it too (a tester's wiped directory lost them without a
// word).
func TestPrivilegedSysctlRecordOutlivesAWipe(t *testing.T) {
	netnstest.Enter(t)
	for _, tt := range []struct {
		name  string
		crash bool
	}{{"the same process restores", false}, {"a new one after a crash restores", true}} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			k1, err := Open(Options{StateDir: dir, NoFilter: true})
			if err != nil {
				t.Fatal(err)
			}
			defer k1.Close()
			writeSysctl(t, "net/ipv4/ip_forward", "0")
			writeSysctl(t, "net/ipv4/conf/lo/proxy_arp", "0")
			if _, err := engine.Converge(ctx, k1, parse(t, "[global]\nip_forward = true\n"), nil); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			k := k1
			if tt.crash {
				// Another change first (its apply writes the record
				// again), then the crash.
				if _, err := engine.Converge(ctx, k1, parse(t, "[global]\nip_forward = true\nproxy_arp = [\"lo\"]\n"), nil); err != nil {
					t.Fatal(err)
				}
				k1.Close()
				if k, err = Open(Options{StateDir: dir, NoFilter: true}); err != nil {
					t.Fatal(err)
				}
				defer k.Close()
			}
			if _, err := engine.Converge(ctx, k, parse(t, "[global]\n"), nil); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{"net/ipv4/ip_forward", "net/ipv4/conf/lo/proxy_arp"} {
				if b, _ := os.ReadFile("/proc/sys/" + p); string(b) != "0\n" {
					t.Errorf("%s = %q after the restore, want 0", p, b)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, sysctlFile)); !os.IsNotExist(err) {
				t.Errorf("the record of originals is still there: %v", err)
			}
		})
	}
}

// TestPrivilegedSysctlRestoredUnrecorded: a state directory that cannot
// be written at the teardown does not keep the originals from being put
// back, from memory (a tester's stop left ip_forward on). A full one
// (the record's writes fail, its removal works) is no failure: the
// teardown's last write removes the record (a tester's stop said the
// teardown was incomplete, and exited 1). One whose record cannot be
// removed either (a file in its place) fails with the record's failure
// alone (kernel.RecordError), the kernel's state restored.
func TestPrivilegedSysctlRestoredUnrecorded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spoil   func(t *testing.T, k *Kernel, dir string)
		wantErr string // "" for none
	}{
		{"full", func(t *testing.T, k *Kernel, dir string) {
			k.writeRecord = func(f *os.File, _ []byte) error {
				return &os.PathError{Op: "write", Path: f.Name(), Err: unix.ENOSPC}
			}
		}, ""},
		{"a file in its place", func(t *testing.T, k *Kernel, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "put back in the kernel, but the state record could not be updated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			netnstest.Enter(t)
			dir := filepath.Join(t.TempDir(), "state")
			k, err := Open(Options{StateDir: dir, NoFilter: true})
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			writeSysctl(t, "net/ipv4/ip_forward", "0")
			writeSysctl(t, "net/ipv4/conf/lo/proxy_arp", "0")
			c := parse(t, "[global]\nip_forward = true\nproxy_arp = [\"lo\"]\n")
			if _, err := engine.Converge(ctx, k, c, nil); err != nil {
				t.Fatal(err)
			}
			tc.spoil(t, k, dir)
			_, err = engine.Down(ctx, k, c)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (!strings.Contains(got, tc.wantErr) || !kernel.OnlyRecords(err)) {
				t.Errorf("down: %v, want %q", err, tc.wantErr)
			}
			for _, p := range []string{"net/ipv4/ip_forward", "net/ipv4/conf/lo/proxy_arp"} {
				if b, _ := os.ReadFile("/proc/sys/" + p); string(b) != "0\n" {
					t.Errorf("%s = %q after down, want 0 put back", p, b)
				}
			}
			if tc.wantErr == "" {
				left, _ := filepath.Glob(filepath.Join(dir, "*"))
				if len(left) != 0 {
					t.Errorf("the state directory after down: %q, want nothing (no record, no temporary file)", left)
				}
			}
		})
	}
}

// TestPrivilegedObserveInputs: what is not tunneld's is read as inputs
// (devices, their addresses, underlay routes, the rules in its band),
// never as owned state. A rule of tunneld's protocol in the band with
// another action than its lookup (a blackhole) is tunneld's, turned into
// that by someone (Extra: the plan deletes it; a tester's overrode
// tunneld's rule as someone else's); one outside the band is none of
// either, and neither is a multicast routing rule.
func TestPrivilegedObserveInputs(t *testing.T) {
	k := open(t)
	foreign(t)
	// By netlink: the VMs' busybox ip knows neither protocol nor -6 rules.
	for _, r := range []netnstest.Rule{
		{Family: unix.AF_INET, Priority: 20700, Proto: model.RuleProtocol, Action: unix.FR_ACT_BLACKHOLE},
		{Family: unix.AF_INET6, Priority: 20001, Src: netip.MustParsePrefix("2001:db8:9::/48"), Table: 100},
	} {
		if err := netnstest.AddRule(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := exec.Command("ip", "mrule", "add", "priority", "20800", "iif", "lo", "table", "100").CombinedOutput(); err != nil {
		t.Logf("no multicast routing rule (ip mrule add: %v)", err)
	}
	have, in, err := k.Observe(ctx, model.Scope{Band: model.RuleBand{Min: 20000, Max: 20999}})
	if err != nil {
		t.Fatal(err)
	}
	if len(have.Addrs) != 0 || len(have.Routes) != 0 || len(have.Rules) != 1 || have.Rules[0].Priority != 20700 || have.Rules[0].Extra != "blackhole" {
		t.Errorf("foreign state observed as owned, or the blackhole of protocol 116 not as tunneld's: %+v", have)
	}
	eth0 := in.Devices["eth0"]
	if !eth0.Up || len(eth0.Addrs) != 1 || eth0.Addrs[0] != netip.MustParsePrefix("192.0.2.10/24") || eth0.Kind != "veth" {
		t.Errorf("eth0 = %+v", eth0)
	}
	u, ok := model.Lookup(in.Routes, netip.MustParseAddr("203.0.113.1"))
	if !ok || u.Via != netip.MustParseAddr("192.0.2.1") || u.Dev != "eth0" {
		t.Errorf("underlay lookup = %+v, %v (routes %+v)", u, ok, in.Routes)
	}
	want := []model.ForeignRule{{Priority: 20001, Family: 4}, {Priority: 20001, Family: 6}, {Priority: 20500, Family: 6}}
	if diff := cmp.Diff(want, in.ForeignRules); diff != "" {
		t.Errorf("foreign rules in the band (-want +got):\n%s", diff)
	}
}

// TestPrivilegedObserveForeignDropRoutes: a route in main that drops
// (an admin's blackhole or unreachable) is read among the inputs with
// its type, so that tunneld's own routes know its key is taken (a
// tester's blackhole host route to the remote made every apply fail with
// "file exists"); the underlay lookup passes it by.
func TestPrivilegedObserveForeignDropRoutes(t *testing.T) {
	k := open(t)
	foreign(t)
	ipCmd(t, "route", "add", "blackhole", "203.0.113.1/32")
	ipCmd(t, "route", "add", "unreachable", "198.51.100.0/24", "metric", "5")
	_, in, err := k.Observe(ctx, model.Scope{Band: model.RuleBand{Min: 20000, Max: 20999}})
	if err != nil {
		t.Fatal(err)
	}
	var drops []model.UnderlayRoute
	for _, u := range in.Routes {
		if u.Type != model.RouteUnicast {
			drops = append(drops, u)
		}
	}
	want := []model.UnderlayRoute{
		{Dst: mustPrefix("203.0.113.1/32"), Proto: unix.RTPROT_BOOT, Type: model.RouteBlackhole},
		{Dst: mustPrefix("198.51.100.0/24"), Metric: 5, Proto: unix.RTPROT_BOOT, Type: model.RouteUnreachable},
	}
	less := func(a, b model.UnderlayRoute) int { return a.Dst.Addr().Compare(b.Dst.Addr()) }
	slices.SortFunc(drops, less)
	slices.SortFunc(want, less)
	if diff := cmp.Diff(want, drops, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("dropping routes in main (-want +got):\n%s", diff)
	}
	u, ok := model.Lookup(in.Routes, netip.MustParseAddr("203.0.113.1"))
	if !ok || u.Type != model.RouteUnicast || u.Dev != "eth0" {
		t.Errorf("underlay lookup = %+v, %v: want the unicast route by eth0", u, ok)
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// TestPrivilegedObserveUnusable: an IPv6 address in duplicate address
// detection, or one that failed it, is not among a device's addresses
// but among its unusable ones, with which it is. eth0's peer is down, so
// that its address stays tentative; eth1's peer has the same address,
// so that its detection fails.
func TestPrivilegedObserveUnusable(t *testing.T) {
	k := open(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(netnstest.Veth("eth0", "peer0", nil))
	must(netnstest.Veth("eth1", "peer1", nil))
	for _, d := range []string{"eth0", "eth1", "peer1"} {
		must(netnstest.LinkUp(d))
	}
	must(netnstest.AddAddr("peer1", mustPrefix("2001:db8:1::5/64")))
	must(netnstest.AddAddrDAD("eth0", mustPrefix("2001:db8::5/64")))
	must(netnstest.AddAddrDAD("eth1", mustPrefix("2001:db8:1::5/64")))
	want := map[string][]model.UnusableAddr{
		"eth0": {{Prefix: mustPrefix("2001:db8::5/64")}},
		"eth1": {{Prefix: mustPrefix("2001:db8:1::5/64"), Failed: true}},
	}
	var got map[string][]model.UnusableAddr
	// One probe, a second: eth1's address is tentative until then.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, in, err := k.Observe(ctx, model.Scope{})
		must(err)
		got = map[string][]model.UnusableAddr{}
		for _, name := range []string{"eth0", "eth1"} {
			d := in.Devices[name]
			if len(d.Addrs) != 0 {
				t.Fatalf("%s's usable addresses: %v, want none", name, d.Addrs)
			}
			got[name] = d.Unusable
		}
		if cmp.Equal(want, got, opts) || time.Now().After(deadline) {
			break
		}
	}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("unusable addresses (-want +got):\n%s", diff)
	}
}

// TestPrivilegedObserveLinkLocal: a device with only a link-local IPv6
// address has no address to follow, and that one is its LinkLocal (the
// kernel gives fe80::/10 link scope), for the reason of a tunnel that
// follows it. A global address beside it is followed.
func TestPrivilegedObserveLinkLocal(t *testing.T) {
	k := open(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(netnstest.Veth("eth0", "peer0", nil))
	must(netnstest.AddAddr("eth0", mustPrefix("fe80::5/64")))
	_, in, err := k.Observe(ctx, model.Scope{})
	must(err)
	d := in.Devices["eth0"]
	if len(d.Addrs) != 0 || d.LinkLocal != netip.MustParseAddr("fe80::5") {
		t.Errorf("eth0: addresses %v, link-local %v; want none and fe80::5", d.Addrs, d.LinkLocal)
	}
	must(netnstest.AddAddr("eth0", mustPrefix("2001:db8::5/64")))
	_, in, err = k.Observe(ctx, model.Scope{})
	must(err)
	if d := in.Devices["eth0"]; len(d.Addrs) != 1 || d.Addrs[0] != mustPrefix("2001:db8::5/64") {
		t.Errorf("eth0's addresses %v, want 2001:db8::5/64", d.Addrs)
	}
}

// TestPrivilegedDeviceAddrs: the addresses read alone are those an
// observation gives the devices (secondary and IPv6 ones included,
// primary first), and reading them leaves the observed device indexes
// Apply uses as they were.
func TestPrivilegedDeviceAddrs(t *testing.T) {
	k := open(t)
	foreign(t)
	for _, p := range []string{"192.0.2.11/24", "198.18.0.1/15", "2001:db8::1/64"} {
		if err := netnstest.AddAddr("eth0", mustPrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
	_, in, err := k.Observe(ctx, model.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	indexes := k.observedIndexes()
	got, err := k.DeviceAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]model.AddrList{}
	for _, d := range in.Devices {
		if len(d.Addrs) > 0 {
			want[d.Index] = model.AddrList{Addrs: d.Addrs, Secondary: d.Secondary, Deprecated: d.Deprecated}
		}
	}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("DeviceAddrs (-observed +got):\n%s", diff)
	}
	if d := in.Devices["eth0"]; d.Secondary != 1 || d.Deprecated != 0 {
		t.Errorf("eth0: %d secondary and %d deprecated addresses, want 1 and 0", d.Secondary, d.Deprecated)
	}
	eth0 := got[in.Devices["eth0"].Index].Addrs
	if len(eth0) != 4 || eth0[0] != mustPrefix("192.0.2.10/24") || eth0[3] != mustPrefix("192.0.2.11/24") {
		t.Errorf("eth0's addresses = %v, want 192.0.2.10/24 first, the secondary 192.0.2.11/24 last", eth0)
	}
	if diff := cmp.Diff(indexes, k.observedIndexes()); diff != "" {
		t.Errorf("observed indexes (-before +after):\n%s", diff)
	}
}

// TestPrivilegedObserveCounters: the link dump (which leaves protocol
// statistics out) still carries the device counters status shows.
func TestPrivilegedObserveCounters(t *testing.T) {
	k := open(t)
	if err := netnstest.LinkUp("lo"); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", "127.0.0.1:9")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c.Write([]byte("tunneld"))
	}
	c.Close()
	_, in, err := k.Observe(ctx, model.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	if got := in.Devices["lo"].Stats.TxPackets; got < 3 {
		t.Errorf("lo sent %d packets, want at least 3", got)
	}
}

// BenchmarkLook times one re-read and plan of a small namespace (a
// device, an owned route): what the daemon does for every event. Run on
// the host, it is the native counterpart of the re-read times the VM
// benchmarks report (BENCHMARKS.md):
//
//	TUNNELD_PRIVILEGED=1 go test -run '^$' -bench Look ./pkg/linux
func BenchmarkLook(b *testing.B) {
	netnstest.Enter(b)
	k, err := Open(Options{StateDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	if err := netnstest.Veth("wan", "peer0", nil); err != nil {
		b.Fatal(err)
	}
	netnstest.LinkUp("wan")
	netnstest.AddAddr("wan", netip.MustParsePrefix("192.0.2.1/24"))
	c, err := config.Parse("b.toml", []byte("[global]\nfirewall = false\n[[route]]\nto = \"10.9.0.0/16\"\nvia = \"192.0.2.2\"\ndev = \"wan\"\n"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := engine.Converge(ctx, k, c, nil); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := engine.Look(ctx, k, c, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPrivilegedNothingAfterAFailedCreate: when a tunnel's creation
// fails (here: a device of another kind holds the name, which a plan made
// from an older observation does not know; or the kernel has no ipip),
// the plan's later operations on that name are not tried: the address,
// the link up and the route would land on the device holding the name,
// and each would repeat the one error. The creation's error is the only
// one, the others are reported as skipped; the device is left as it was.
func TestPrivilegedNothingAfterAFailedCreate(t *testing.T) {
	k := open(t)
	snap := foreign(t)
	if _, _, err := k.Observe(ctx, model.Scope{}); err != nil {
		t.Fatal(err)
	}
	// Created after the observation, as if between it and the apply.
	if err := netnstest.Veth("tun0", "tun0peer", nil); err != nil {
		t.Fatal(err)
	}
	before := snap()
	link := model.Link{Name: "tun0", Mode: model.ModeIPIP, Local: netip.MustParseAddr("192.0.2.10"),
		Remote: netip.MustParseAddr("192.0.2.20"), TTL: 64, PMTUDisc: true, MTU: 1480, Up: true}
	p := plan.Plan{Ops: []plan.Op{
		{Kind: plan.LinkAdd, Link: &link},
		{Kind: plan.AddrAdd, Addr: &model.Addr{Link: "tun0", Prefix: netip.MustParsePrefix("192.168.50.1/30")}},
		{Kind: plan.LinkUp, Name: "tun0", Link: &link},
		{Kind: plan.RouteAdd, Route: &model.Route{Table: 254, Dst: netip.MustParsePrefix("10.5.0.0/16"), Dev: "tun0"}},
	}}
	err := k.Apply(ctx, p)
	var ae *kernel.ApplyError
	if !errors.As(err, &ae) {
		t.Fatalf("apply: %v, want the creation's failure", err)
	}
	var got []string
	for _, f := range ae.Failed {
		got = append(got, f.Op.Command(nil))
	}
	if diff := cmp.Diff([]string{p.Ops[0].Command(nil)}, got); diff != "" {
		t.Errorf("failed operations (-want +got):\n%s\n%v", diff, err)
	}
	// Not tried, yet not done either: reported as skipped, so that
	// nobody takes them for done (the daemon would log them as changes).
	var skipped []string
	for _, op := range ae.Skipped {
		skipped = append(skipped, op.Command(nil))
	}
	var wantSkipped []string
	for _, op := range p.Ops[1:] {
		wantSkipped = append(wantSkipped, op.Command(nil))
	}
	if diff := cmp.Diff(wantSkipped, skipped); diff != "" {
		t.Errorf("skipped operations (-want +got):\n%s", diff)
	}
	if after := snap(); after != before {
		t.Errorf("the device holding the name was changed:\n%s", cmp.Diff(before, after))
	}
}

// TestPrivilegedRouteRefusedSays: a route the kernel refuses for its
// gateway (on none of the device's subnets, no onlink) or its source (no
// address of the box's) fails with what to change, not the kernel's
// words alone (a tester's "Nexthop has invalid gateway").
func TestPrivilegedRouteRefusedSays(t *testing.T) {
	k := open(t)
	foreign(t)
	for _, tt := range []struct{ name, conf, want string }{
		{"gateway", "[[route]]\nto = \"10.9.0.0/16\"\nvia = \"172.16.0.1\"\ndev = \"eth0\"\n",
			"route 10.9.0.0/16 table main: the gateway 172.16.0.1 is on none of eth0's subnets, or eth0 is down (fix via, bring it up, or set onlink = true if it is reachable on the link all the same): "},
		{"source", "[[route]]\nto = \"10.7.0.0/16\"\ndev = \"eth0\"\nsrc = \"10.55.0.1\"\n",
			"route 10.7.0.0/16 table main: the source 10.55.0.1 is not an address of this box (src must be one of its own): "},
		{"gateway, no dev", "[[route]]\nto = \"10.9.0.0/16\"\nvia = \"172.16.0.1\"\n",
			"route 10.9.0.0/16 table main: the gateway 172.16.0.1 is on none of the box's subnets that are up (fix via, or bring its device up): "},
		{"IPv6 gateway", "[[route]]\nto = \"2001:db8:9::/48\"\nvia = \"2001:db8:77::1\"\ndev = \"eth0\"\n",
			"route 2001:db8:9::/48 table main metric 1024: the gateway 2001:db8:77::1 is on none of eth0's subnets, or eth0 is down (fix via, bring it up, or set onlink = true if it is reachable on the link all the same): "},
		{"IPv6 source", "[[route]]\nto = \"2001:db8:7::/48\"\ndev = \"eth0\"\nsrc = \"2001:db8:55::1\"\n",
			"route 2001:db8:7::/48 table main metric 1024: the source 2001:db8:55::1 is not an address of this box (src must be one of its own): "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := engine.Converge(ctx, k, parse(t, "[global]\nfirewall = false\n"+tt.conf), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q…", err, tt.want)
			}
		})
	}
}
