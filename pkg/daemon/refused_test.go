package daemon

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
	"github.com/tunneld/tunneld/pkg/watch"
)

// TestRefusedTunnelRoutesHeld: while the kernel refuses to create the
// tunnel again (someone deleted it, and the driver is gone), the routes
// through it stand as unreachable routes after each converge, not absent
// while the daemon retries; the facts give the refusal as the tunnel's
// reason and those routes as held, which status shows, and mark it
// refused, which status plans with (engine.LookRefused).
func TestRefusedTunnelRoutesHeld(t *testing.T) {
	h := start(t, baseConfig)
	h.k.SetFail(func(op plan.Op) error {
		if op.Kind == plan.LinkAdd {
			return &kernel.NoDriverError{Mode: op.Link.Mode}
		}
		return nil
	})
	h.k.DelDevice("moe")
	h.event(watch.Link)
	var unreachable []model.Route
	for _, r := range h.k.Routes {
		if r.Proto == model.RouteProtocol && r.Type == model.RouteUnreachable {
			unreachable = append(unreachable, r.Route)
		}
	}
	f := h.d.Facts()
	if len(f.Tunnels) != 1 || f.Tunnels[0].Up || !f.Tunnels[0].Refused || f.Tunnels[0].Reason != "creating it failed: kernel has no ipip support (load module ipip; on OpenWrt install kmod-ipip)" {
		t.Fatalf("tunnels = %+v, want moe down, its creation refused", f.Tunnels)
	}
	if len(f.Tunnels[0].Held) == 0 {
		t.Error("no route through moe held")
	}
	for _, r := range f.Tunnels[0].Held {
		found := false
		for _, u := range unreachable {
			found = found || u.Key() == r.Key()
		}
		if !found {
			t.Errorf("held %s is not in the kernel; its unreachable routes: %v", r.ID(), unreachable)
		}
	}
	if diff := cmp.Diff(len(f.Tunnels[0].Held), len(unreachable)); diff != "" {
		t.Errorf("unreachable routes (-held +in the kernel):\n%s", diff)
	}
}
