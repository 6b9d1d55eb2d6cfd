package engine

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/internal/scaletest"
	"github.com/tunneld/tunneld/pkg/model"
)

// scaleConfig is n IPIP tunnels, each with an address, a route in its own
// table and a source rule (the benchmark's shape), with or without
// tunneld's nftables filter.
func scaleConfig(tb testing.TB, n int, firewall bool) *config.Config {
	tb.Helper()
	c, err := config.Parse("scale.toml", []byte(scaletest.Config(n, firewall, true)))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestScale: the pure core handles 1000 tunnels, and a no-op plan's
// allocations do not grow with the number of tunnels (everything it needs
// per object is sized from the configuration or read in place): the
// guard against per-object and quadratic work sneaking back into the
// resync path, without timing anything on a shared machine.
func TestScale(t *testing.T) {
	allocs := map[int]float64{}
	for _, n := range []int{100, 1000} {
		c, have, in := converged(t, n)
		allocs[n] = testing.AllocsPerRun(5, func() {
			if s := Plan(have, in, c, nil); !s.Plan.Empty() {
				t.Fatalf("%d tunnels after converge: %d ops", n, len(s.Plan.Ops))
			}
		})
	}
	t.Logf("allocations of a no-op plan: %v", allocs)
	// A large map is made of more tables (a few allocations more);
	// one per object would be 900 more.
	if allocs[1000] > 2*allocs[100] {
		t.Errorf("a no-op plan allocates %.0f times for 1000 tunnels, %.0f for 100: something allocates per object", allocs[1000], allocs[100])
	}
}

// scaleKernel is the in-memory kernel the scale configuration's tunnels
// start from: a WAN with their local address and a default route (the
// remotes are off its subnet).
func scaleKernel() *fakekernel.Kernel {
	k := fakekernel.New()
	k.AddDevice(model.Device{Name: "eth0", Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.0.1/16")}})
	k.AddForeignRoute(model.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.0.254"), Dev: "eth0"}, 3)
	return k
}

// converged is n tunnels converged on the fake kernel, and its
// observation.
func converged(tb testing.TB, n int) (*config.Config, model.State, model.Inputs) {
	c := scaleConfig(tb, n, false)
	k := scaleKernel()
	if _, err := Converge(ctx, k, c, nil); err != nil {
		tb.Fatal(err)
	}
	have, in, err := k.Observe(ctx, Scope(c))
	if err != nil {
		tb.Fatal(err)
	}
	return c, have, in
}

// BenchmarkPlan1000 is the pure part of a no-op resync of 1000 tunnels
// (the desired state and the plan, from an observation of the fake
// kernel): what the daemon's periodic re-read spends besides the kernel's
// dumps. Compare builds side by side (two test binaries, taking turns).
func BenchmarkPlan1000(b *testing.B) {
	c, have, in := converged(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		if s := Plan(have, in, c, nil); !s.Plan.Empty() {
			b.Fatal("not empty")
		}
	}
}

// BenchmarkLook1000 is a no-op look at 1000 tunnels on the fake kernel:
// the pure core's share of a resync (desired state, plan, sorting), plus
// the fake's own observation.
func BenchmarkLook1000(b *testing.B) {
	for _, fw := range []bool{false, true} {
		b.Run(fmt.Sprintf("firewall=%t", fw), func(b *testing.B) {
			c := scaleConfig(b, 1000, fw)
			k := scaleKernel()
			if _, err := Converge(ctx, k, c, nil); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Look(ctx, k, c, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
