package linux

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/iptun"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/minijson"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/plan"
)

// readCreating is the record in dir as the file holds it, name → entry
// (nil for none).
func readCreating(t *testing.T, dir string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, creatingFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]string
	if err := minijson.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// writeCreating writes the file of the record in dir as an older
// version, or a killed apply, left it.
func writeCreating(t *testing.T, dir string, rec map[string]string) {
	t.Helper()
	b, err := minijson.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, creatingFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCreatingRecord: the tunnels a plan creates are recorded with their
// mode, endpoints, underlay device and GRE keys, added to what the record
// holds (an older version's entry, the kind alone, kept as it is); an
// Apply's end keeps only those an operation left undone (made without
// the alias, or a marking or deletion that failed) and forgets those
// whose creation failed (a device of that name is someone else's), those
// done, and those the plan did not touch; an empty record is no file.
func TestCreatingRecord(t *testing.T) {
	dir := t.TempDir()
	k := &Kernel{opts: Options{StateDir: dir}}
	t1 := model.Link{Name: "t1", Mode: model.ModeIPIP, Local: netip.MustParseAddr("192.0.2.10"), Remote: netip.MustParseAddr("203.0.113.1"), TTL: 64}
	t2 := model.Link{Name: "t2", Mode: model.ModeGRE, Remote: netip.MustParseAddr("203.0.113.2"), Dev: "eth0",
		HasIKey: true, IKey: 7, HasOKey: true, OKey: 8}
	t3 := model.Link{Name: "t3", Mode: model.ModeIPIP6, Local: netip.MustParseAddr("2001:db8::10"), Remote: netip.IPv6Unspecified()}
	old := model.Link{Name: "old", Mode: model.ModeSIT}
	writeCreating(t, dir, map[string]string{"old": "sit"})
	p := plan.Plan{Ops: []plan.Op{{Kind: plan.LinkAdd, Link: &t1}, {Kind: plan.LinkUp, Link: &t1, Name: "t1"},
		{Kind: plan.LinkAdd, Link: &t2}, {Kind: plan.LinkAdd, Link: &t3}, {Kind: plan.LinkDel, Link: &old}}}
	if err := k.recordCreating(p); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"t1": "ipip local 192.0.2.10 remote 203.0.113.1", "t2": "gre local any remote 203.0.113.2 dev eth0 ikey 7 okey 8",
		"t3": "ipip6 local 2001:db8::10 remote any", "old": "sit"}
	if diff := cmp.Diff(want, readCreating(t, dir)); diff != "" {
		t.Fatalf("record before the creations (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		name       string
		ae         *kernel.ApplyError
		notCreated map[string]bool
		want       map[string]string
	}{
		{"t1's alias failed, t2 not created, old's deletion failed", &kernel.ApplyError{Failed: []*kernel.OpError{
			{Op: plan.Op{Kind: plan.LinkAdd, Link: &t1}, Err: syscall.EPERM},
			{Op: plan.Op{Kind: plan.LinkAdd, Link: &t2}, Err: syscall.EEXIST},
			{Op: plan.Op{Kind: plan.LinkDel, Link: &old}, Err: syscall.EBUSY},
		}}, map[string]bool{"t2": true}, map[string]string{"t1": want["t1"], "old": "sit"}},
		{"t1 not marked again", &kernel.ApplyError{Skipped: []plan.Op{{Kind: plan.LinkMark, Link: &t1}}}, nil, map[string]string{"t1": want["t1"]}},
		{"only other operations failed", &kernel.ApplyError{Failed: []*kernel.OpError{
			{Op: plan.Op{Kind: plan.LinkUp, Link: &t1, Name: "t1"}, Err: syscall.EPERM}}}, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := k.settleCreating(tt.ae, tt.notCreated); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, readCreating(t, dir)); diff != "" {
				t.Errorf("record after (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, creatingFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an empty record is a file: %v", err)
	}
}

// TestCreatingEntry: an entry read back from the record is the tunnel
// recorded, the kernel's tunnel of that mode, endpoints, underlay device
// and keys is it, and any other is not; an older version's entry (the
// kind alone, from a record of name → kind) is any tunnel of its kind,
// as that version took it; words a newer version may add are skipped,
// and a mode it may add is none of this version's tunnels.
func TestCreatingEntry(t *testing.T) {
	ip := netip.MustParseAddr
	ipip := model.Link{Name: "t1", Mode: model.ModeIPIP, Local: ip("192.0.2.10"), Remote: ip("203.0.113.1")}
	gre := model.Link{Name: "t2", Mode: model.ModeGRE, Local: ip("192.0.2.10"), Remote: ip("203.0.113.2"), Dev: "eth0",
		HasIKey: true, IKey: 7, HasOKey: true, OKey: 8}
	ipip6 := model.Link{Name: "t3", Mode: model.ModeIPIP6, Local: ip("2001:db8::10"), Remote: ip("2001:db8::3")}
	hub := model.Link{Name: "t4", Mode: model.ModeSIT, Local: ip("192.0.2.10")}
	dir := t.TempDir()
	writeCreating(t, dir, map[string]string{"t1": "ipip local 192.0.2.10 remote 203.0.113.1",
		"t2": "gre local 192.0.2.10 remote 203.0.113.2 dev eth0 ikey 7 okey 8", "t3": "ipip6 local 2001:db8::10 remote 2001:db8::3",
		"t4": "sit local 192.0.2.10 remote any", "old": "ipip", "old6": "ip6tnl",
		"newer": "ipip local 192.0.2.10 remote 203.0.113.9 someday 1", "later": "ipip4 local 192.0.2.10 remote 203.0.113.9"})
	k := &Kernel{opts: Options{StateDir: dir}}
	rec, err := k.creatingRecord()
	if err != nil {
		t.Fatal(err)
	}
	with := func(l model.Link, f func(*model.Link)) model.Link { f(&l); return l }
	for _, tt := range []struct {
		name string
		kind string
		l    model.Link
		want bool
	}{
		{"t1", "ipip", ipip, true},
		{"t1", "ipip", with(ipip, func(l *model.Link) { l.TTL, l.Up = 64, true }), true}, // not what tells tunnels apart
		{"t1", "ipip", with(ipip, func(l *model.Link) { l.Remote = ip("203.0.113.99") }), false},
		{"t1", "ipip", with(ipip, func(l *model.Link) { l.Local = netip.Addr{} }), false},
		{"t1", "ipip", with(ipip, func(l *model.Link) { l.Dev = "eth0" }), false},
		{"t1", "sit", with(ipip, func(l *model.Link) { l.Mode = model.ModeSIT }), false},
		{"t2", "gre", gre, true},
		{"t2", "gre", with(gre, func(l *model.Link) { l.IKey = 6 }), false},
		{"t2", "gre", with(gre, func(l *model.Link) { l.OKey = 6 }), false},
		{"t2", "gre", with(gre, func(l *model.Link) { l.HasOKey, l.OKey = false, 0 }), false},
		{"t2", "gre", with(gre, func(l *model.Link) { l.Dev = "" }), false},
		{"t3", "ip6tnl", ipip6, true},
		{"t3", "ip6tnl", with(ipip6, func(l *model.Link) { l.Mode = model.ModeIP6IP6 }), false},
		{"t3", "ip6tnl", with(ipip6, func(l *model.Link) { l.Others.AnyProto = true }), false},
		{"t4", "sit", hub, true},
		{"t4", "sit", with(hub, func(l *model.Link) { l.Remote = ip("203.0.113.4") }), false},
		{"old", "ipip", with(ipip, func(l *model.Link) { l.Remote = ip("203.0.113.99") }), true},
		{"old", "gre", gre, false},
		{"old6", "ip6tnl", with(ipip6, func(l *model.Link) { l.Mode, l.Others.AnyProto = model.ModeIP6IP6, true }), true},
		{"newer", "ipip", with(ipip, func(l *model.Link) { l.Remote = ip("203.0.113.9") }), true},
		{"later", "ipip", with(ipip, func(l *model.Link) { l.Remote = ip("203.0.113.9") }), false},
	} {
		e, ok := rec[tt.name]
		if got := ok && e.is(tt.kind, &tt.l); got != tt.want {
			t.Errorf("entry %s (%v) is %s %+v: %v, want %v", tt.name, ok, tt.kind, tt.l, got, tt.want)
		}
	}
	// Written again, as the next recordCreating does, each entry reads
	// back the same.
	if err := k.saveCreating(rec); err != nil {
		t.Fatal(err)
	}
	k = &Kernel{opts: Options{StateDir: dir}}
	again, err := k.creatingRecord()
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(rec, again) {
		t.Errorf("record read back: %+v, written: %+v", again, rec)
	}
	if got := readCreating(t, dir)["old"]; got != "ipip" {
		t.Errorf("older version's entry written as %q, want \"ipip\"", got)
	}
	for _, bad := range []string{"", "ipip local 192.0.2.10", "ipip local 192.0.2.10 remote", "ipip local x remote any", "gre local any remote any ikey -1"} {
		writeCreating(t, dir, map[string]string{"t1": bad})
		// Unreadable: read as no record, with a warning (setAside).
		k := &Kernel{opts: Options{StateDir: dir}}
		if rec, err := k.creatingRecord(); err != nil || rec != nil || len(k.warnings) != 1 || !strings.Contains(k.warnings[0], "is unreadable") {
			t.Errorf("entry %q read as %+v, %v, warnings %q; want no record and the unreadable record's warning", bad, rec, err, k.warnings)
		}
	}
}

// TestPrivilegedCrashBeforeAlias: a tunnel tunneld created and was
// killed before giving it its alias (addLink's two requests) is found
// by the record of tunnels being created, this version's (the tunnel
// with its endpoints); an apply of a configuration without it deletes
// it, and leaves a foreign tunnel without the alias, not in the record,
// and everything else foreign as it was. Before, it stayed for good (a
// tester's kill -9 of apply in the VM). An older version's entry (its
// kind alone) takes no tunnel the configuration does not name: one
// forged by someone who could write the state directory
// ({"fo3": "ipip"}, a tester's) had apply delete a foreign tunnel; it
// is dropped with a warning, the tunnel left (TestOlderEntry has one the
// configuration names taken). The record is gone after. Skips without
// the ipip driver (this host); the VMs run it.
func TestPrivilegedCrashBeforeAlias(t *testing.T) {
	for _, job := range []string{"apply", "down"} {
		for _, older := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/older=%v", job, older), func(t *testing.T) {
				k := open(t)
				k.StateLocked() // as apply and down do
				snap := foreign(t)
				handIPIP(t, "admin0", "203.0.113.4")
				before := snap()
				if older {
					writeCreating(t, k.opts.StateDir, map[string]string{"t3": "ipip"})
				} else {
					t3 := model.Link{Name: "t3", Mode: model.ModeIPIP, Local: netip.MustParseAddr("192.0.2.10"), Remote: netip.MustParseAddr("203.0.113.3")}
					if err := k.recordCreating(plan.Plan{Ops: []plan.Op{{Kind: plan.LinkAdd, Link: &t3}}}); err != nil {
						t.Fatal(err)
					}
				}
				handIPIP(t, "t3", "203.0.113.3") // as tunneld's creation left it
				if older {
					before = snap() // foreign to it, and left
				}
				c := parse(t, withoutTunnels)
				var warnings []string
				if job == "apply" {
					rep := converge(t, k, c)
					// The seam's, said by the first round (Report.Ended).
					warnings = append(rep.Last.Want.Warnings, rep.Ended...)
					if _, ok := deviceNamed(t, k, "t3"); ok != older {
						t.Errorf("after apply, t3 is there: %v, want %v", ok, older)
					}
				}
				rep, err := engine.Down(ctx, k, c) // the rest of what apply made
				if err != nil {
					t.Fatal(err)
				}
				warnings = append(warnings, rep.Last.Want.Warnings...)
				if diff := cmp.Diff(before, snap()); diff != "" {
					t.Errorf("namespace (-before +after):\n%s", diff)
				}
				if rec := readCreating(t, k.opts.StateDir); rec != nil {
					t.Errorf("record after: %v, want none", rec)
				}
				said := strings.Contains(strings.Join(warnings, "\n"), "names tunnel t3 (ipip) in an older version's form")
				if said != older {
					t.Errorf("the older entry warned of: %v, want %v (warnings %q)", said, older, warnings)
				}
			})
		}
	}
}

// TestPrivilegedCreatingOtherTunnel: tunnels by the names an apply
// killed early was creating (the record names every tunnel of its plan
// before the first is sent), made by hand since, while tunneld was dead,
// and dropped from the file, are foreign when they are not the recorded
// tunnels: an ipip tunnel to another remote, a gre one with another
// key, an ip6tnl one of the other inner protocol. An apply or a down of
// the file without them leaves them; the apply forgets the record.
// Before, the kind alone made them tunneld's, and both deleted them
// without a word (a tester's ipip t180 in the VM). Skips without the
// tunnel drivers (this host); the VMs run it.
func TestPrivilegedCreatingOtherTunnel(t *testing.T) {
	ip := netip.MustParseAddr
	for _, job := range []string{"apply", "down"} {
		t.Run(job, func(t *testing.T) {
			k := open(t)
			snap := foreign(t)
			// The killed apply's record: none of them was made.
			recorded := []model.Link{
				{Name: "t180", Mode: model.ModeIPIP, Local: ip("192.0.2.10"), Remote: ip("203.0.113.180")},
				{Name: "g1", Mode: model.ModeGRE, Local: ip("192.0.2.10"), Remote: ip("203.0.113.2"), HasIKey: true, IKey: 5, HasOKey: true, OKey: 5},
				{Name: "v6", Mode: model.ModeIPIP6, Local: ip("2001:db8::10"), Remote: ip("2001:db8::6")},
			}
			var p plan.Plan
			for i := range recorded {
				p.Ops = append(p.Ops, plan.Op{Kind: plan.LinkAdd, Link: &recorded[i]})
			}
			if err := k.recordCreating(p); err != nil {
				t.Fatal(err)
			}
			// The admin's.
			handIPIP(t, "t180", "203.0.113.99")
			handTunnel(t, "g1", &iptun.GRE{Local: ip("192.0.2.10"), Remote: ip("203.0.113.2"),
				IFlags: iptun.GREFlagKey, IKey: 6, OFlags: iptun.GREFlagKey, OKey: 6})
			handTunnel(t, "v6", &iptun.IP6Tnl{Local: ip("2001:db8::10"), Remote: ip("2001:db8::6"), Proto: protoIPv6})
			before := snap()
			c := parse(t, withoutTunnels)
			if job == "apply" {
				converge(t, k, c)
				for _, l := range recorded {
					if d, ok := deviceNamed(t, k, l.Name); !ok || d.Tunnel == nil {
						t.Errorf("after apply, %s: %+v (%v), want the admin's tunnel, foreign", l.Name, d, ok)
					}
				}
			}
			if _, err := engine.Down(ctx, k, c); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, snap()); diff != "" {
				t.Errorf("namespace (-before +after):\n%s", diff)
			}
			// A down with nothing to remove applies nothing, and leaves
			// the record to the next Apply.
			if rec := readCreating(t, k.opts.StateDir); job == "apply" && rec != nil {
				t.Errorf("record after: %v, want none", rec)
			}
		})
	}
}

// deviceNamed finds the device name in an observation by k.
func deviceNamed(t *testing.T, k *Kernel, name string) (model.Device, bool) {
	t.Helper()
	_, in, err := k.Observe(ctx, model.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	d, ok := in.Devices[name]
	return d, ok
}

// handIPIP adds an ipip tunnel from 192.0.2.10 to remote, without
// tunneld's alias, as an admin would; it skips the test without the ipip
// driver.
func handIPIP(t *testing.T, name, remote string) {
	t.Helper()
	handTunnel(t, name, &iptun.IPIP{Local: netip.MustParseAddr("192.0.2.10"), Remote: netip.MustParseAddr(remote)})
}

// handTunnel adds the tunnel name of data's kind, without tunneld's
// alias, as an admin would; it skips the test without the kind's driver.
func handTunnel(t *testing.T, name string, data rtnetlink.LinkDriver) {
	t.Helper()
	handTunnelIndex(t, name, 0, data)
}

// handTunnelIndex is handTunnel with the device's index chosen (ip link
// add NAME index N …; 0: the kernel's choice).
func handTunnelIndex(t *testing.T, name string, index uint32, data rtnetlink.LinkDriver) {
	t.Helper()
	rt, err := rtnetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	err = rt.Link.New(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: index, Attributes: &rtnetlink.LinkAttributes{Name: name,
		Info: &rtnetlink.LinkInfo{Kind: data.Kind(), Data: data}}})
	if errors.Is(err, unix.EOPNOTSUPP) {
		netnstest.NoDriver(t, "kernel has no "+data.Kind()+" support")
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestPrivilegedForeignTunnelEndpoints: a tunnel device tunneld does not
// own comes with its endpoints among the devices (model.Device.Tunnel),
// which name it when the kernel refuses a tunnel with the same ones; the
// kernel's fallback device (tunl0) has its own, any to any; tunneld's
// own tunnels are in the state, not there.
func TestPrivilegedForeignTunnelEndpoints(t *testing.T) {
	k := open(t)
	foreign(t)
	handIPIP(t, "admin0", "203.0.113.4")
	_, in, err := k.Observe(ctx, model.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	got := in.Devices["admin0"].Tunnel
	want := model.Link{Name: "admin0", Mode: model.ModeIPIP, Local: netip.MustParseAddr("192.0.2.10"), Remote: netip.MustParseAddr("203.0.113.4")}
	if got == nil || !got.SameTunnel(want) || got.Name != "admin0" {
		t.Errorf("admin0's tunnel: %+v, want the endpoints of %+v", got, want)
	}
	if tunl0 := in.Devices["tunl0"].Tunnel; tunl0 == nil || tunl0.Local.IsValid() && !tunl0.Local.IsUnspecified() {
		t.Errorf("tunl0's tunnel: %+v, want any to any", tunl0)
	}
	// iproute2's default sit (mode any) says it carries IPv4 too.
	rt, err := rtnetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	err = rt.Link.New(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Attributes: &rtnetlink.LinkAttributes{Name: "admin6",
		Info: &rtnetlink.LinkInfo{Kind: iptun.KindSIT, Data: &iptun.SIT{Local: netip.MustParseAddr("192.0.2.10"), Remote: netip.MustParseAddr("203.0.113.6")}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, in, err = k.Observe(ctx, model.Scope{}); err != nil {
		t.Fatal(err)
	}
	if sit := in.Devices["admin6"].Tunnel; sit == nil || sit.Mode != model.ModeSIT || !sit.Others.AnyProto {
		t.Errorf("admin6's tunnel: %+v, want a sit of any protocol", sit)
	}
}

// greTap is a gretap or ip6gretap device's IFLA_INFO_DATA, its endpoints
// alone: an rtnetlink.LinkDriver for making one in a test.
type greTap struct {
	kind          string
	local, remote netip.Addr
}

func (g *greTap) New() rtnetlink.LinkDriver { return &greTap{kind: g.kind} }
func (g *greTap) Kind() string              { return g.kind }
func (g *greTap) Decode(*netlink.AttributeDecoder) error {
	return nil
}
func (g *greTap) Encode(ae *netlink.AttributeEncoder) error {
	ae.Bytes(iflaGRELocal, g.local.AsSlice())
	ae.Bytes(iflaGRERemote, g.remote.AsSlice())
	return nil
}

// TestPrivilegedForeignGRETap: another manager's gretap, ip6gretap and
// ip6gre devices (the last from one address to any remote) come with
// their endpoints among the devices, as GRE tunnels
// (model.Device.Tunnel), so that the filter lets their packets through;
// the kernel's gretap0 (any to any) does not.
func TestPrivilegedForeignGRETap(t *testing.T) {
	k := open(t)
	foreign(t)
	rt, err := rtnetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for _, g := range []*greTap{
		{"gretap", netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("203.0.113.3")},
		{"ip6gretap", netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("2001:db8::3")},
		{"ip6gre", netip.MustParseAddr("2001:db8::10"), netip.IPv6Unspecified()}, // a hub: any remote
	} {
		err := rt.Link.New(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Attributes: &rtnetlink.LinkAttributes{Name: "x" + g.kind,
			Info: &rtnetlink.LinkInfo{Kind: g.kind, Data: g}}})
		if errors.Is(err, unix.EOPNOTSUPP) {
			netnstest.NoDriver(t, "kernel has no "+g.kind+" support")
		}
		if err != nil {
			t.Fatalf("%s: %v", g.kind, err)
		}
	}
	_, in, err := k.Observe(ctx, model.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]model.Link{
		"xgretap":    {Name: "xgretap", Mode: model.ModeGRE, Local: netip.MustParseAddr("192.0.2.10"), Remote: netip.MustParseAddr("203.0.113.3")},
		"xip6gretap": {Name: "xip6gretap", Mode: model.ModeGRE, Local: netip.MustParseAddr("2001:db8::10"), Remote: netip.MustParseAddr("2001:db8::3")},
		"xip6gre":    {Name: "xip6gre", Mode: model.ModeGRE, Local: netip.MustParseAddr("2001:db8::10")},
	} {
		if got := in.Devices[name].Tunnel; got == nil || *got != want {
			t.Errorf("%s's tunnel: %+v, want %+v", name, got, want)
		}
	}
	if d, ok := in.Devices["gretap0"]; ok && d.Tunnel != nil {
		t.Errorf("gretap0's tunnel: %+v, want none", d.Tunnel)
	}
}

// TestGREAddrs reads a GRE device's endpoints, IPv4 or IPv6, the
// unspecified ones as the zero Addr.
func TestGREAddrs(t *testing.T) {
	attrs := func(local, remote netip.Addr) []byte {
		b, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: 1, Data: []byte{0, 0, 0, 2}},
			{Type: iflaGRELocal, Data: local.AsSlice()}, {Type: iflaGRERemote, Data: remote.AsSlice()}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tt := range []struct{ local, remote string }{{"192.0.2.1", "203.0.113.3"}, {"2001:db8::1", "2001:db8::3"}} {
		l, r := greAddrs(attrs(netip.MustParseAddr(tt.local), netip.MustParseAddr(tt.remote)))
		if l.String() != tt.local || r.String() != tt.remote {
			t.Errorf("greAddrs: %s, %s, want %s, %s", l, r, tt.local, tt.remote)
		}
	}
	if l, r := greAddrs(attrs(netip.IPv4Unspecified(), netip.IPv4Unspecified())); l.IsValid() || r.IsValid() {
		t.Errorf("any to any: %s, %s, want zero Addrs", l, r)
	}
}

// TestPrivilegedHandMadeOfConfiguredName is the reload tester's case: a
// configuration (a reload) that names a tunnel of the name and kind of
// one the admin made by hand, with other endpoints, and no record of
// tunneld creating it. That tunnel is not tunneld's: the converge leaves
// it as it is (it took it over, changed its remote and deleted the
// admin's address on it, and the next reload without the name deleted
// it), says the name is taken, and down leaves it too.
func TestPrivilegedHandMadeOfConfiguredName(t *testing.T) {
	k := open(t)
	snap := foreign(t)
	handIPIP(t, "moe", "203.0.113.99")
	if err := netnstest.AddAddr("moe", netip.MustParsePrefix("10.99.0.1/32")); err != nil {
		t.Fatal(err)
	}
	before := snap()
	c := parse(t, withTunnel)
	rep := converge(t, k, c)
	if d, ok := deviceNamed(t, k, "moe"); !ok || d.Tunnel == nil {
		t.Errorf("after the converge, moe: %+v (%v), want the admin's tunnel, foreign", d, ok)
	}
	i := slices.IndexFunc(rep.Last.Want.Tunnels, func(s desired.TunnelStatus) bool { return s.Name == "moe" })
	if i < 0 || rep.Last.Want.Tunnels[i].Up || !strings.Contains(rep.Last.Want.Tunnels[i].Reason, "the name moe is taken by an ipip device without tunneld's alias, which tunneld does not own") {
		t.Errorf("moe's status: %+v, want down, its name taken", rep.Last.Want.Tunnels)
	}
	if _, err := engine.Down(ctx, k, c); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, snap()); diff != "" {
		t.Errorf("namespace after down (-before +after):\n%s", diff)
	}
}

// TestPrivilegedRelabeledTunnel: a tunnel of tunneld's whose alias
// someone changed (ip link set moe alias to-branch-office: a tester's
// label, after which the tunnel was taken for one made by hand, its routes
// unreachable, and left behind at the stop) is still tunneld's to the
// process that found it its own (the daemon's): the next converge gives
// the alias back, and nothing else. To another process (apply after it)
// it is foreign, and the status says how to give the alias back.
func TestPrivilegedRelabeledTunnel(t *testing.T) {
	k := open(t)
	foreign(t)
	c := parse(t, withTunnel)
	converge(t, k, c)
	if err := setAlias(k, "moe", "to-branch-office"); err != nil {
		t.Fatal(err)
	}
	rep := converge(t, k, c)
	var kinds []plan.Kind
	for _, op := range rep.Applied {
		kinds = append(kinds, op.Kind)
	}
	if diff := cmp.Diff([]plan.Kind{plan.LinkMark}, kinds); diff != "" {
		t.Errorf("the same process's converge after the relabel (-want +got kinds):\n%s", diff)
	}
	if err := setAlias(k, "moe", "to-branch-office"); err != nil {
		t.Fatal(err)
	}
	other, err := Open(Options{StateDir: k.opts.StateDir, FilterOptional: true})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, in, err := other.Observe(ctx, engine.Scope(c))
	if err != nil {
		t.Fatal(err)
	}
	if d := in.Devices["moe"]; d.Tunnel == nil || d.Alias != "to-branch-office" {
		t.Errorf("to another process, moe: %+v, want foreign, with its alias", d)
	}
	snap := engine.Plan(model.State{}, in, c, nil)
	i := slices.IndexFunc(snap.Want.Tunnels, func(s desired.TunnelStatus) bool { return s.Name == "moe" })
	if i < 0 || !strings.Contains(snap.Want.Tunnels[i].Reason, `with the alias "to-branch-office", not tunneld's`) ||
		!strings.Contains(snap.Want.Tunnels[i].Reason, "ip link set moe alias tunneld") {
		t.Errorf("moe's status to another process: %+v", snap.Want.Tunnels)
	}
	// Told by the daemon that it keeps moe (status, with its facts'
	// Unmarked): tunneld's, unmarked.
	other.Keep(map[string]int{"moe": in.Devices["moe"].Index})
	have, _, err := other.Observe(ctx, engine.Scope(c))
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(have.Links, func(l model.Link) bool { return l.Name == "moe" }); i < 0 || !have.Links[i].Unmarked {
		t.Errorf("kept on the daemon's word, moe is not tunneld's unmarked tunnel: %+v", have.Links)
	}
}

// TestPrivilegedSameIndexMadeByHand: tunneld's tunnel deleted while the
// daemon did not look, and one made by hand under its name with its
// index (ip link add moe index N …) and other endpoints: it is not the
// tunnel the daemon found its own, and stays foreign (a tester's was
// taken, changed, and deleted at the stop).
func TestPrivilegedSameIndexMadeByHand(t *testing.T) {
	k := open(t)
	foreign(t)
	c := parse(t, withTunnel)
	converge(t, k, c)
	d, ok := deviceNamed(t, k, "moe")
	if !ok {
		t.Fatal("moe was not created")
	}
	if err := netnstest.DelLink("moe"); err != nil {
		t.Fatal(err)
	}
	handTunnelIndex(t, "moe", uint32(d.Index), &iptun.IPIP{Local: netip.MustParseAddr("192.0.2.10"), Remote: netip.MustParseAddr("203.0.113.77")})
	have, in, err := k.Observe(ctx, engine.Scope(c))
	if err != nil {
		t.Fatal(err)
	}
	if _, owned := model.LinkNamed(have.Links, "moe"); owned || in.Devices["moe"].Tunnel == nil || in.Devices["moe"].Index != d.Index {
		t.Errorf("moe made by hand with index %d: owned %v, device %+v; want foreign, of that index", d.Index, owned, in.Devices["moe"])
	}
}

// TestOlderEntry: an older version's entry of the record of tunnels
// being created (the kind alone) takes the tunnel of its name and kind
// only when the configuration names it; another is dropped, with a
// warning that names it and says how to delete it, once: from the file
// by a caller that holds the lock, from memory alone otherwise. This
// version's entry (the tunnel with its endpoints) is taken as before.
// The kernel's part (TestPrivilegedCrashBeforeAlias) needs the ipip
// driver, which this host lacks: the VMs run it.
func TestOlderEntry(t *testing.T) {
	t1 := model.Link{Mode: model.ModeIPIP, Local: netip.MustParseAddr("192.0.2.10"), Remote: netip.MustParseAddr("203.0.113.1")}
	scope := model.Scope{Links: map[string]model.Mode{"t2": model.ModeIPIP}}
	for _, locked := range []bool{false, true} {
		dir := t.TempDir()
		writeCreating(t, dir, map[string]string{"fo3": "ipip", "t2": "ipip", "t1": "ipip local 192.0.2.10 remote 203.0.113.1"})
		k := &Kernel{opts: Options{StateDir: dir}, locked: locked}
		creating, err := k.creatingRecord()
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			want bool
		}{{"fo3", false}, {"t2", true}, {"t1", true}, {"fo3", false}} {
			if got := k.createdTunnel(creating, tc.name, "ipip", &t1, scope); got != tc.want {
				t.Errorf("locked %v: %s taken: %v, want %v", locked, tc.name, got, tc.want)
			}
			creating = k.creating
		}
		if len(k.warnings) != 1 || !strings.HasPrefix(k.warnings[0], "state record "+filepath.Join(dir, creatingFile)+" names tunnel fo3 (ipip) in an older version's form") ||
			!strings.Contains(k.warnings[0], "the tunnel left alone (if it is a leftover of tunneld's, `ip link del fo3` deletes it)") {
			t.Errorf("locked %v: warnings %q, want one naming fo3", locked, k.warnings)
		}
		want := map[string]string{"t2": "ipip", "t1": "ipip local 192.0.2.10 remote 203.0.113.1"}
		if !locked {
			want["fo3"] = "ipip"
		}
		if diff := cmp.Diff(want, readCreating(t, dir)); diff != "" {
			t.Errorf("locked %v: the record after (-want +got):\n%s", locked, diff)
		}
	}
}
