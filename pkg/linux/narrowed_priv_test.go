package linux

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/plan"
)

// TestPrivilegedNarrowedRule: someone replaces tunneld's rule with a
// narrower one that keeps protocol 116 and the priority (`ip rule add
// prio 20000 from … ipproto tcp lookup 42 proto 116`, then `ip rule del`
// of tunneld's, which deletes the first rule it matches). One converge
// puts tunneld's rule back and deletes the narrowed one, and only that
// one: also when tunneld's rule is still there, before the narrowed one
// (the kernel's list order, which a deletion without the narrowed rule's
// selectors would take tunneld's rule for) or after it. Then exactly
// tunneld's rule is left, and a second converge has nothing to do.
func TestPrivilegedNarrowedRule(t *testing.T) {
	attr := func(f func(ae *netlink.AttributeEncoder)) []byte {
		ae := netlink.NewAttributeEncoder()
		f(ae)
		b, err := ae.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pair := func(a, b uint32, size int) []byte {
		v := make([]byte, 2*size)
		if size == 2 {
			binary.NativeEndian.PutUint16(v, uint16(a))
			binary.NativeEndian.PutUint16(v[2:], uint16(b))
		} else {
			binary.NativeEndian.PutUint32(v, a)
			binary.NativeEndian.PutUint32(v[4:], b)
		}
		return v
	}
	variants := []struct {
		name, extra string
		attrs       []byte
		tos         uint8
		flags       uint32
		orders      []string // nil: all three
		// action, when set, is the narrowed rule's instead of a lookup
		// (it then has no table).
		action uint8
	}{
		// The kernel takes a rule without a tos, or one without `not`,
		// for one that exists when they differ in that alone (EEXIST):
		// a rule with `not` is never beside tunneld's, one with a tos
		// only after it. tunneld's addition is refused as long as
		// they are there: it takes a second round of the converge.
		{"tos", "tos 0x10", nil, 0x10, 0, []string{"in its place", "after tunneld's"}, 0},
		{"not", "not", nil, 0, unix.FIB_RULE_INVERT, []string{"deleted, then in its place"}, 0},
		{"ipproto tcp", "ipproto 6", attr(func(ae *netlink.AttributeEncoder) { ae.Uint8(unix.FRA_IP_PROTO, unix.IPPROTO_TCP) }), 0, 0, nil, 0},
		{"uidrange 0-0", "uidrange 0-0", attr(func(ae *netlink.AttributeEncoder) { ae.Bytes(unix.FRA_UID_RANGE, pair(0, 0, 4)) }), 0, 0, nil, 0},
		{"suppress_prefixlength 0", "suppress_prefixlength 0", attr(func(ae *netlink.AttributeEncoder) { ae.Uint32(unix.FRA_SUPPRESS_PREFIXLEN, 0) }), 0, 0, nil, 0},
		{"dport 1000-2000", "dport 1000-2000 ipproto 17", attr(func(ae *netlink.AttributeEncoder) {
			ae.Uint8(unix.FRA_IP_PROTO, unix.IPPROTO_UDP)
			ae.Bytes(unix.FRA_DPORT_RANGE, pair(1000, 2000, 2))
		}), 0, 0, nil, 0},
		// Another action (a tester's blackhole and goto of protocol
		// 116 in the band were someone else's rules to tunneld, placed
		// before its own and overriding it).
		{"blackhole", "blackhole", nil, 0, 0, nil, unix.FR_ACT_BLACKHOLE},
		{"goto", "goto 32766", attr(func(ae *netlink.AttributeEncoder) { ae.Uint32(unix.FRA_GOTO, 32766) }), 0, 0, nil, unix.FR_ACT_GOTO},
	}
	families := []struct {
		family uint8
		src    string
	}{{unix.AF_INET, "192.168.1.0/24"}, {unix.AF_INET6, "2001:db8:1::/64"}}
	for _, v := range variants {
		for _, f := range families {
			orders := v.orders
			if orders == nil {
				orders = []string{"in its place", "after tunneld's", "before tunneld's"}
			}
			for _, order := range orders {
				t.Run(fmt.Sprintf("%s/%s/%s", v.name, f.src, order), func(t *testing.T) {
					k := open(t)
					c := parse(t, fmt.Sprintf("[global]\nfirewall = false\n\n[[rule]]\nfrom = %q\ntable = 42\n", f.src))
					converge(t, k, c)
					raw, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
					if err != nil {
						t.Fatal(err)
					}
					defer raw.Close()
					plain := netnstest.Rule{Family: f.family, Priority: 20000, Table: 42, Proto: model.RuleProtocol, Src: netip.MustParsePrefix(f.src)}
					narrowed := plain
					narrowed.Extra, narrowed.TOS, narrowed.Flags = v.attrs, v.tos, v.flags
					if v.action != 0 {
						narrowed.Action, narrowed.Table = v.action, 0
					}
					deleted := order == "deleted, then in its place"
					if deleted {
						if err := netnstest.DelRule(raw, plain); err != nil {
							t.Fatalf("delete tunneld's rule: %v", err)
						}
						order = "in its place"
					}
					// The kernel adds a rule after those at its priority:
					// tunneld's, then the narrowed one.
					if err := netnstest.AddRuleOver(raw, narrowed); err != nil {
						t.Fatalf("add the narrowed rule: %v", err)
					}
					switch order {
					case "in its place", "before tunneld's":
						if deleted {
							break
						}
						if err := netnstest.DelRule(raw, plain); err != nil {
							t.Fatalf("delete tunneld's rule: %v", err)
						}
					}
					if order == "before tunneld's" {
						if err := netnstest.AddRuleOver(raw, plain); err != nil {
							t.Fatalf("add tunneld's rule again: %v", err)
						}
					}
					have, _, err := k.Observe(ctx, engine.Scope(c))
					if err != nil {
						t.Fatal(err)
					}
					extras := []string{}
					for _, r := range have.Rules {
						extras = append(extras, r.Extra)
					}
					want := map[string][]string{"in its place": {v.extra}, "after tunneld's": {"", v.extra}, "before tunneld's": {v.extra, ""}}[order]
					if diff := cmp.Diff(want, extras); diff != "" {
						t.Errorf("the rules observed, by Extra (-want +got):\n%s", diff)
					}
					// One round: tunneld's rule added where it is
					// missing, the narrowed one deleted. Where the kernel
					// would refuse tunneld's rule while the narrowed one
					// is there (tos, not), the narrowed one goes first
					// (plan's clashes): one round still, and a pasted
					// plan works.
					wantOps := []plan.Kind{plan.RuleDel}
					if order == "in its place" {
						wantOps = []plan.Kind{plan.RuleAdd, plan.RuleDel}
						if v.tos != 0 || v.flags != 0 {
							wantOps = []plan.Kind{plan.RuleDel, plan.RuleAdd}
						}
					}
					var ops []plan.Kind
					for _, op := range converge(t, k, c).Applied {
						ops = append(ops, op.Kind)
					}
					if diff := cmp.Diff(wantOps, ops); diff != "" {
						t.Errorf("the converge's operations (-want +got):\n%s", diff)
					}
					have, in, err := k.Observe(ctx, engine.Scope(c))
					if err != nil {
						t.Fatal(err)
					}
					exact := model.Rule{Family: 4, Priority: 20000, Src: netip.MustParsePrefix(f.src), Table: 42}
					if f.family == unix.AF_INET6 {
						exact.Family = 6
					}
					if diff := cmp.Diff([]model.Rule{exact}, have.Rules, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
						t.Errorf("tunneld's rules after one converge (-want +got):\n%s", diff)
					}
					if len(in.ForeignRules) != 0 {
						t.Errorf("other rules in the band: %+v", in.ForeignRules)
					}
					if rep := converge(t, k, c); len(rep.Applied) != 0 {
						t.Errorf("second converge applied %v, want nothing", rep.Applied)
					}
				})
			}
		}
	}
}
