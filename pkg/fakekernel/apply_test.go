package fakekernel

import (
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// TestCheckUniqueAsSameTunnel: the fake refuses a second tunnel with
// EEXIST exactly when model.Link.SameTunnel (the kernel's rule, which
// the plan orders by and the EEXIST wording names) takes the two for
// one: another underlay device makes another ipip, gre or sit tunnel,
// not another ip6tnl one; another GRE input key another gre tunnel.
func TestCheckUniqueAsSameTunnel(t *testing.T) {
	v4 := func(mode model.Mode) model.Link {
		return model.Link{Mode: mode, Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddr("192.0.2.2"), TTL: 64, PMTUDisc: true}
	}
	v6 := func(mode model.Mode) model.Link {
		return model.Link{Mode: mode, Local: netip.MustParseAddr("2001:db8::1"), Remote: netip.MustParseAddr("2001:db8::2"), TTL: 64}
	}
	with := func(l model.Link, f func(*model.Link)) model.Link { f(&l); return l }
	for _, tt := range []struct {
		name string
		a, b model.Link
	}{
		{"ipip, same endpoints", v4(model.ModeIPIP), v4(model.ModeIPIP)},
		{"ipip, another device", v4(model.ModeIPIP), with(v4(model.ModeIPIP), func(l *model.Link) { l.Dev = "eth1" })},
		{"sit, another device", with(v4(model.ModeSIT), func(l *model.Link) { l.Dev = "eth0" }), with(v4(model.ModeSIT), func(l *model.Link) { l.Dev = "eth1" })},
		{"gre, another input key", v4(model.ModeGRE), with(v4(model.ModeGRE), func(l *model.Link) { l.HasIKey, l.IKey = true, 5 })},
		{"gre, another output key only", v4(model.ModeGRE), with(v4(model.ModeGRE), func(l *model.Link) { l.HasOKey, l.OKey = true, 5 })},
		{"ipip and gre", v4(model.ModeIPIP), v4(model.ModeGRE)},
		{"ipip6, another device", with(v6(model.ModeIPIP6), func(l *model.Link) { l.Dev = "eth0" }), with(v6(model.ModeIPIP6), func(l *model.Link) { l.Dev = "eth1" })},
		{"ipip6 and ip6ip6", v6(model.ModeIPIP6), v6(model.ModeIP6IP6)},
		{"ipip, another remote", v4(model.ModeIPIP), with(v4(model.ModeIPIP), func(l *model.Link) { l.Remote = netip.MustParseAddr("192.0.2.3") })},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := New()
			for _, dev := range []string{"eth0", "eth1"} {
				k.AddDevice(model.Device{Name: dev, Kind: "dummy", MTU: 1500, Up: true})
			}
			tt.a.Name, tt.b.Name = "a", "b"
			if err := k.Apply(context.Background(), plan.Plan{Ops: []plan.Op{{Kind: plan.LinkAdd, Link: &tt.a}}}); err != nil {
				t.Fatal(err)
			}
			err := k.Apply(context.Background(), plan.Plan{Ops: []plan.Op{{Kind: plan.LinkAdd, Link: &tt.b}}})
			if same := tt.a.SameTunnel(tt.b); errors.Is(err, syscall.EEXIST) != same {
				t.Errorf("SameTunnel %v, creation of the second: %v", same, err)
			}
		})
	}
}

// TestRecreatedDeviceTakesDefault: a tunnel's device sysctls go with it,
// and one created again under the name comes up with conf/default's
// proxy_arp, not the value written to the old one, as on Linux.
func TestRecreatedDeviceTakesDefault(t *testing.T) {
	const arp = "net/ipv4/conf/t1/proxy_arp"
	l := model.Link{Name: "t1", Mode: model.ModeIPIP, Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddr("192.0.2.2"), TTL: 64}
	for _, dflt := range []string{"0", "1"} {
		k := New()
		k.Sysctls["net/ipv4/conf/default/proxy_arp"] = dflt
		add := plan.Plan{Ops: []plan.Op{{Kind: plan.LinkAdd, Link: &l}}}
		if err := k.Apply(context.Background(), add); err != nil {
			t.Fatal(err)
		}
		if got := k.Sysctls[arp]; got != dflt {
			t.Errorf("default %s: new device's proxy_arp %q, want %q", dflt, got, dflt)
		}
		k.Sysctls[arp] = "7" // written to the old device
		if err := k.Apply(context.Background(), plan.Plan{Ops: []plan.Op{{Kind: plan.LinkDel, Link: &l}}}); err != nil {
			t.Fatal(err)
		}
		if v, ok := k.Sysctls[arp]; ok {
			t.Errorf("default %s: proxy_arp %q left after the deletion", dflt, v)
		}
		if err := k.Apply(context.Background(), add); err != nil {
			t.Fatal(err)
		}
		if got := k.Sysctls[arp]; got != dflt {
			t.Errorf("default %s: proxy_arp of the device created again %q, want %q", dflt, got, dflt)
		}
	}
}
