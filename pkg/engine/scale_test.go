package engine

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/model"
)

// scaleConfig is n IPIP tunnels, each with an address, a route in its own
// table and a source rule (the benchmark's shape), with or without
// tunneld's nftables filter.
func scaleConfig(tb testing.TB, n int, firewall bool) *config.Config {
	var b strings.Builder
	fmt.Fprintf(&b, "[global]\nfirewall = %t\nrule_priority_max = 29999\n[tables]\n", firewall)
	for i := range n {
		fmt.Fprintf(&b, "tab%d = %d\n", i, 1000+i)
	}
	for i := range n {
		hi, lo := (i+1)/256, (i+1)%256
		fmt.Fprintf(&b, "[tunnel.t%d]\nmode = \"ipip\"\nlocal = \"192.0.0.1\"\nremote = \"198.18.%d.%d\"\naddress = \"10.100.%d.%d/32\"\n", i, hi, lo, hi, lo)
		fmt.Fprintf(&b, "[[route]]\nto = \"10.%d.%d.0/24\"\ndev = \"t%d\"\ntable = \"tab%d\"\n", 200+hi, lo, i, i)
		fmt.Fprintf(&b, "[[rule]]\nfrom = \"10.100.%d.%d\"\ntable = \"tab%d\"\n", hi, lo, i)
	}
	c, err := config.Parse("scale.toml", []byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestScale: the pure core stays fast at 1000 tunnels (a guard against
// quadratic work sneaking in; the bound is generous, the shared machines
// are noisy).
func TestScale(t *testing.T) {
	c := scaleConfig(t, 1000, true)
	k := fakekernel.New()
	k.AddDevice(model.Device{Name: "eth0", Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.0.1/16")}})
	start := time.Now()
	if _, err := Converge(ctx, k, c, nil); err != nil {
		t.Fatal(err)
	}
	converge := time.Since(start)
	start = time.Now()
	s, err := Look(ctx, k, c, nil)
	if err != nil || !s.Plan.Empty() {
		t.Fatalf("after converge: %v, %d ops", err, len(s.Plan.Ops))
	}
	look := time.Since(start)
	t.Logf("1000 tunnels on the fake kernel: converge %s, no-op look %s", converge, look)
	if look > 5*time.Second {
		t.Errorf("a no-op look at 1000 tunnels took %s", look)
	}
}

// BenchmarkLook1000 is a no-op look at 1000 tunnels on the fake kernel:
// the pure core's share of a resync (desired state, plan, sorting), plus
// the fake's own observation.
func BenchmarkLook1000(b *testing.B) {
	for _, fw := range []bool{false, true} {
		b.Run(fmt.Sprintf("firewall=%t", fw), func(b *testing.B) {
			c := scaleConfig(b, 1000, fw)
			k := fakekernel.New()
			k.AddDevice(model.Device{Name: "eth0", Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.0.1/16")}})
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
