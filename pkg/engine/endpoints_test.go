package engine

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/plan"
)

// endpointsConfig has a tunnel that follows eth0's address, one with a
// fixed local address, a route through the first and the filter (whose
// rules name the local address too).
const endpointsConfig = `
[global]
firewall = true
[tunnel.wan]
mode = "ipip"
local = "eth0"
remote = "198.51.100.1"
[tunnel.fixed]
mode = "gre"
local = "203.0.113.11"
remote = "198.51.100.2"
[[route]]
to = "10.1.0.0/16"
dev = "wan"
`

// kernelOnly hides the fake kernel's AddrReader.
type kernelOnly struct{ kernel.Kernel }

func TestEndpoints(t *testing.T) {
	c, err := config.Parse("e.toml", []byte(endpointsConfig))
	if err != nil {
		t.Fatal(err)
	}
	fixed, err := config.Parse("f.toml", []byte("[tunnel.fixed]\nmode = \"gre\"\nlocal = \"203.0.113.11\"\nremote = \"198.51.100.2\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	renewed := netip.MustParsePrefix("203.0.113.99/24")
	for _, tc := range []struct {
		name string
		cfg  *config.Config
		// change changes the kernel after the converge.
		change   func(*fakekernel.Kernel)
		hold     Hold
		noReader bool
		// wantLocal is the wan tunnel's local address afterwards (the
		// zero Addr: no wan tunnel); wantReads the address reads;
		// wantFilter: the filter moved with it (one of wantOps).
		wantFilter bool
		wantOps    int
		wantLocal  string
		wantReads  int
	}{
		{name: "renewed", cfg: c, change: func(k *fakekernel.Kernel) { k.SetAddrs("eth0", renewed) },
			wantOps: 2, wantFilter: true, wantLocal: "203.0.113.99", wantReads: 1},
		{name: "secondary added", cfg: c,
			change:    func(k *fakekernel.Kernel) { k.SetAddrs("eth0", netip.MustParsePrefix("203.0.113.10/24"), renewed) },
			wantLocal: "203.0.113.10", wantReads: 1},
		// A renew to another subnet beside a modem's access address:
		// the routes last read name the old gateway, on none of the
		// new subnets, so the pick is a guess, left to the converge
		// (which reads the new routes) rather than a move to the
		// modem's address and back.
		{name: "renewed to another subnet beside an alias", cfg: c,
			change: func(k *fakekernel.Kernel) {
				k.SetAddrs("eth0", netip.MustParsePrefix("192.168.100.2/24"), netip.MustParsePrefix("198.18.5.5/24"))
			},
			wantLocal: "203.0.113.10", wantReads: 1},
		{name: "address gone", cfg: c, change: func(k *fakekernel.Kernel) { k.SetAddrs("eth0") },
			wantLocal: "203.0.113.10", wantReads: 1},
		{name: "held", cfg: c, change: func(k *fakekernel.Kernel) { k.SetAddrs("eth0", renewed) },
			hold: func(op plan.Op) bool { return op.Object() == `tunnel "wan"` }, wantLocal: "203.0.113.10", wantReads: 1},
		{name: "no tunnel follows a device", cfg: fixed, change: func(k *fakekernel.Kernel) { k.SetAddrs("eth1", renewed) }},
		{name: "kernel reads no addresses alone", cfg: c, noReader: true,
			change: func(k *fakekernel.Kernel) { k.SetAddrs("eth0", renewed) }, wantLocal: "203.0.113.10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fk := world()
			var k kernel.Kernel = fk
			if tc.noReader {
				k = kernelOnly{fk}
			}
			rep, err := Converge(ctx, k, tc.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			tc.change(fk)
			filter, routes, writes := fk.Filter().String(), len(fk.Routes), fk.Writes
			var hold []Hold
			if tc.hold != nil {
				hold = append(hold, tc.hold)
			}
			got, err := Endpoints(ctx, k, tc.cfg, nil, rep.Last, hold...)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Applied) != tc.wantOps || fk.Writes-writes != tc.wantOps {
				t.Errorf("applied %d ops (%d writes), want %d: %v", len(got.Applied), fk.Writes-writes, tc.wantOps, got.Applied)
			}
			for _, op := range got.Applied {
				if op.Kind != plan.LinkChange && op.Kind != plan.FilterReplace {
					t.Errorf("applied %s, want only tunnel and filter changes", op.Command(nil))
				}
			}
			// The move first, the filter after it: the reaction to
			// the hint waits for the move (a plan has the filter first).
			if n := len(got.Applied); n > 1 && got.Applied[n-1].Kind != plan.FilterReplace {
				t.Errorf("applied %v, want the filter last", got.Applied)
			}
			if tc.wantLocal != "" {
				if diff := cmp.Diff(tc.wantLocal, fk.Tunnels["wan"].Local.String()); diff != "" {
					t.Errorf("wan tunnel's local (-want +got):\n%s", diff)
				}
			}
			if fk.AddrReads != tc.wantReads {
				t.Errorf("%d address reads, want %d", fk.AddrReads, tc.wantReads)
			}
			// Once more, from what it returned (a later hint of the
			// same change): nothing more to do.
			writes = fk.Writes
			again, err := Endpoints(ctx, k, tc.cfg, nil, got.Last, hold...)
			if err != nil || len(again.Applied) != 0 || fk.Writes != writes {
				t.Errorf("a second time: applied %v (%d writes), err %v", again.Applied, fk.Writes-writes, err)
			}
			// The filter names the new address (the converge leaves it
			// as it is); the rest is left to the converge.
			moved := fk.Filter().String()
			if (moved != filter) != tc.wantFilter {
				t.Errorf("filter changed: %t, want %t:\n%s", moved != filter, tc.wantFilter, moved)
			}
			if tc.wantFilter && !strings.Contains(moved, tc.wantLocal) {
				t.Errorf("the filter does not name %s:\n%s", tc.wantLocal, moved)
			}
			if len(fk.Routes) != routes {
				t.Errorf("the routes changed: %v", fk.Routes)
			}
			if _, err := Converge(ctx, k, tc.cfg, nil, hold...); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(moved, fk.Filter().String()); tc.wantFilter && diff != "" {
				t.Errorf("the converge changed the filter the short way made (-short +converge):\n%s", diff)
			}
		})
	}
}

// TestLocalDevices lists each device once, sorted.
func TestLocalDevices(t *testing.T) {
	c, err := config.Parse("l.toml", []byte(`
[tunnel.a]
mode = "ipip"
local = "wan2"
remote = "198.51.100.1"
[tunnel.b]
mode = "gre"
local = "wan"
remote = "198.51.100.1"
[tunnel.c]
mode = "sit"
local = "wan2"
remote = "198.51.100.3"
[tunnel.d]
mode = "gre"
local = "192.0.2.1"
remote = "198.51.100.1"
`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"wan", "wan2"}, LocalDevices(c)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
