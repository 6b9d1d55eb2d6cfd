package linux

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/iptun"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/plan"
)

// readCreating is the record in dir as the file holds it (nil for none).
func readCreating(t *testing.T, dir string) map[string]string {
	t.Helper()
	k := &Kernel{opts: Options{StateDir: dir}}
	rec, err := k.creatingRecord()
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestCreatingRecord: the tunnels a plan creates are recorded with their
// kind, added to what the record holds; an Apply's end keeps only those
// an operation left undone (made without the alias, or a marking or
// deletion that failed) and forgets those whose creation failed (a device
// of that name is someone else's), those done, and those the plan did
// not touch; an empty record is no file.
func TestCreatingRecord(t *testing.T) {
	dir := t.TempDir()
	k := &Kernel{opts: Options{StateDir: dir}}
	t1 := model.Link{Name: "t1", Mode: model.ModeIPIP}
	t2 := model.Link{Name: "t2", Mode: model.ModeGRE}
	t3 := model.Link{Name: "t3", Mode: model.ModeIPIP6}
	old := model.Link{Name: "old", Mode: model.ModeSIT}
	if err := k.saveCreating(map[string]string{"old": "sit"}); err != nil {
		t.Fatal(err)
	}
	p := plan.Plan{Ops: []plan.Op{{Kind: plan.LinkAdd, Link: &t1}, {Kind: plan.LinkUp, Link: &t1, Name: "t1"},
		{Kind: plan.LinkAdd, Link: &t2}, {Kind: plan.LinkAdd, Link: &t3}, {Kind: plan.LinkDel, Link: &old}}}
	if err := k.recordCreating(p); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"t1": "ipip", "t2": "gre", "t3": "ip6tnl", "old": "sit"}
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
		}}, map[string]bool{"t2": true}, map[string]string{"t1": "ipip", "old": "sit"}},
		{"t1 not marked again", &kernel.ApplyError{Skipped: []plan.Op{{Kind: plan.LinkMark, Link: &t1}}}, nil, map[string]string{"t1": "ipip"}},
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

// TestPrivilegedCrashBeforeAlias: a tunnel tunneld created and was
// killed before giving it its alias (addLink's two requests) is found
// by the record of tunnels being created; an apply of a configuration
// without it deletes it, and leaves a foreign tunnel without the alias,
// not in the record, and everything else foreign as it was. Before, it
// stayed for good (a tester's kill -9 of apply in the VM). The record
// is gone after. Skips without the ipip driver (this host); the VMs run
// it.
func TestPrivilegedCrashBeforeAlias(t *testing.T) {
	for _, job := range []string{"apply", "down"} {
		t.Run(job, func(t *testing.T) {
			k := open(t)
			snap := foreign(t)
			handIPIP(t, "admin0", "203.0.113.4")
			before := snap()
			handIPIP(t, "t3", "203.0.113.3") // as tunneld's creation left it
			if err := k.saveCreating(map[string]string{"t3": "ipip"}); err != nil {
				t.Fatal(err)
			}
			c := parse(t, withoutTunnels)
			if job == "apply" {
				converge(t, k, c)
				if _, ok := deviceNamed(t, k, "t3"); ok {
					t.Error("apply left t3")
				}
			}
			if _, err := engine.Down(ctx, k, c); err != nil { // the rest of what apply made
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, snap()); diff != "" {
				t.Errorf("namespace (-before +after):\n%s", diff)
			}
			if rec := readCreating(t, k.opts.StateDir); rec != nil {
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
	rt, err := rtnetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	err = rt.Link.New(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Attributes: &rtnetlink.LinkAttributes{Name: name,
		Info: &rtnetlink.LinkInfo{Kind: iptun.KindIPIP, Data: &iptun.IPIP{Local: netip.MustParseAddr("192.0.2.10"), Remote: netip.MustParseAddr(remote)}}}})
	if errors.Is(err, unix.EOPNOTSUPP) {
		netnstest.NoDriver(t, "kernel has no ipip support")
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
