package linux

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/plan"
)

// TestPrivilegedApplyUsesObservedIndexes: Apply names the devices the
// last observation saw without dumping the links again; a device replaced
// since then fails the request (its old index is gone) instead of being
// taken for the one observed; a device the observation did not see costs
// one dump.
func TestPrivilegedApplyUsesObservedIndexes(t *testing.T) {
	k := open(t)
	veth := func(name, peer string) {
		t.Helper()
		if err := netnstest.Veth(name, peer, nil); err != nil {
			t.Fatal(err)
		}
		if err := netnstest.LinkUp(name); err != nil {
			t.Fatal(err)
		}
	}
	veth("d0", "p0")
	if _, _, err := k.Observe(ctx, model.Scope{}); err != nil {
		t.Fatal(err)
	}
	route := func(dst, dev string) plan.Plan {
		return plan.Plan{Ops: []plan.Op{{Kind: plan.RouteAdd, Route: &model.Route{Table: 100, Dst: netip.MustParsePrefix(dst), Dev: dev}}}}
	}
	dumps := k.linkDumps
	if err := k.Apply(ctx, route("10.61.0.0/24", "d0")); err != nil {
		t.Fatalf("route through an observed device: %v", err)
	}
	if k.linkDumps != dumps {
		t.Errorf("Apply took %d link dumps for a device the observation saw; want 0", k.linkDumps-dumps)
	}

	// d0 replaced behind the observation's back: same name, new index.
	if err := netnstest.DelLink("d0"); err != nil {
		t.Fatal(err)
	}
	veth("d0", "p0")
	if err := k.Apply(ctx, route("10.62.0.0/24", "d0")); !errors.Is(err, unix.ENODEV) {
		t.Errorf("route through a replaced device: err = %v, want ENODEV (the observed device is gone)", err)
	}

	// A device created after the observation: one dump finds it.
	veth("d1", "p1")
	dumps = k.linkDumps
	if err := k.Apply(ctx, route("10.63.0.0/24", "d1")); err != nil {
		t.Fatalf("route through a device created since the observation: %v", err)
	}
	if k.linkDumps != dumps+1 {
		t.Errorf("Apply took %d link dumps for a device the observation missed; want 1", k.linkDumps-dumps)
	}

	// After a new observation the replaced d0 is known again.
	if _, _, err := k.Observe(ctx, model.Scope{}); err != nil {
		t.Fatal(err)
	}
	if err := k.Apply(ctx, route("10.62.0.0/24", "d0")); err != nil {
		t.Fatalf("route through d0 after observing it again: %v", err)
	}
	s, _, err := k.Observe(ctx, model.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range s.Routes {
		got[r.Dst.String()] = r.Dev
	}
	// 10.61.0.0/24 went with the first d0.
	want := map[string]string{"10.62.0.0/24": "d0", "10.63.0.0/24": "d1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tunneld's routes (-want +got):\n%s", diff)
	}
}
