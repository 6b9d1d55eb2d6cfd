package engine

import (
	"net/netip"
	"testing"

	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/model"
)

// BenchmarkPlanNoop is the pure part of a no-op resync of 1000 tunnels
// (the desired state and the plan, from an observation of the in-memory
// kernel): what the daemon's periodic re-read spends besides the kernel's
// dumps. Compare builds side by side (two test binaries, taking turns).
func BenchmarkPlanNoop(b *testing.B) {
	c := scaleConfig(b, 1000, false)
	k := fakekernel.New()
	k.AddDevice(model.Device{Name: "eth0", Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.0.1/16")}})
	if _, err := Converge(ctx, k, c, nil); err != nil {
		b.Fatal(err)
	}
	have, in, err := k.Observe(ctx, Scope(c))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s := Plan(have, in, c, nil)
		if !s.Plan.Empty() {
			b.Fatal("not empty")
		}
	}
}
