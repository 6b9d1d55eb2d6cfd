package linux

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// TestRuleMessageRoundTrip: every field tunneld sets on a rule comes back
// from the bytes it sends (the kernel answers a dump in the same form).
func TestRuleMessageRoundTrip(t *testing.T) {
	p := netip.MustParsePrefix
	for _, r := range []model.Rule{
		{Family: 4, Priority: 100, Src: p("10.0.0.0/24"), Table: 42},
		{Family: 4, Priority: 101, Dst: p("192.0.2.0/24"), IIF: "wan", OIF: "lo", Table: 1000},
		{Family: 4, Priority: 102, Mark: 0x10, Mask: 0xf0, HasMark: true, Table: 254},
		{Family: 6, Priority: 103, Src: p("2001:db8::/64"), Dst: p("2001:db8:1::1/128"), Table: 300},
	} {
		b, err := toRuleMsg(r).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var m ruleMsg
		if err := m.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if m.attrs.protocol != model.RuleProtocol {
			t.Errorf("rule %s: protocol %d, want %d", r.ID(), m.attrs.protocol, model.RuleProtocol)
		}
		got, ok := fromRuleMsg(&m)
		if !ok {
			t.Fatalf("rule %s: not read back as a rule tunneld makes", r.ID())
		}
		if diff := cmp.Diff(r, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("rule %s (-sent +read):\n%s", r.ID(), diff)
		}
	}
	// The kernel's dump of `fwmark 0x0/0xff` carries FRA_FWMASK alone.
	kernelForm := toRuleMsg(model.Rule{Family: 4, Priority: 104, HasMark: true, Mask: 0xff, Table: 42})
	kernelForm.attrs.hasMark = false
	b, err := kernelForm.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var km ruleMsg
	if err := km.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	got, _ := fromRuleMsg(&km)
	if diff := cmp.Diff(model.Rule{Family: 4, Priority: 104, HasMark: true, Mask: 0xff, Table: 42}, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("fwmark 0x0/0xff as the kernel dumps it (-want +got):\n%s", diff)
	}
	var m ruleMsg
	if err := m.UnmarshalBinary([]byte{2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 8, 0, 6, 0, 1}); err == nil {
		t.Error("a rule message with a cut attribute decoded")
	}
}

// TestPrivilegedRulesAsTheKernelKeepsThem: rules and routes whose
// selectors the kernel stores in another form than they are written (a
// prefix of length 0, a mark of 0, a gateway without a device) converge
// in one go, and a second converge has nothing to do.
func TestPrivilegedRulesAsTheKernelKeepsThem(t *testing.T) {
	tests := []struct {
		name, conf string
	}{
		{"from 0.0.0.0/0", "[[rule]]\nfrom = \"0.0.0.0/0\"\ntable = 42\n"},
		{"to ::/0", "[[rule]]\nto = \"::/0\"\ntable = 42\n"},
		{"fwmark 0", "[[rule]]\nfwmark = 0\ntable = 42\n"},
		{"fwmark 0x0/0xff", "[[rule]]\nfwmark = \"0x0/0xff\"\ntable = 42\n"},
		{"fwmark 0x0/0x0", "[[rule]]\nfwmark = \"0x0/0x0\"\ntable = 42\n"},
		{"route via a gateway, no device", "[[route]]\nto = \"10.80.0.0/16\"\nvia = \"192.0.2.1\"\ntable = 42\n"},
		{"IPv6 route via a gateway, no device", "[[route]]\nto = \"2001:db8:80::/48\"\nvia = \"2001:db8::1\"\ntable = 42\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := open(t)
			foreign(t)
			if err := netnstest.AddAddr("eth0", mustPrefix("2001:db8::10/64")); err != nil {
				t.Fatal(err)
			}
			c := parse(t, "[global]\nfirewall = false\n"+tt.conf)
			rep, err := engine.Converge(ctx, k, c, nil)
			if err != nil {
				t.Fatalf("first converge: %v", err)
			}
			if diff := cmp.Diff(1, len(rep.Applied)); diff != "" {
				t.Errorf("first converge's operations (-want +got):\n%s\n%v", diff, rep.Applied)
			}
			rep, err = engine.Converge(ctx, k, c, nil)
			if err != nil {
				t.Fatalf("second converge: %v", err)
			}
			if diff := cmp.Diff(0, len(rep.Applied)); diff != "" {
				t.Errorf("second converge's operations (-want +got):\n%s\n%v", diff, rep.Applied)
			}
		})
	}
}
