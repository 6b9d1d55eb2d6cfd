package linux

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
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
	var m ruleMsg
	if err := m.UnmarshalBinary([]byte{2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 8, 0, 6, 0, 1}); err == nil {
		t.Error("a rule message with a cut attribute decoded")
	}
}
