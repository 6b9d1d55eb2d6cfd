package nft

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"github.com/tunneld/tunneld/pkg/internal/nlattr"
	"github.com/tunneld/tunneld/pkg/model"
	"golang.org/x/sys/unix"
)

// nlAttr is a netlink attribute of a test's making.
type nlAttr struct {
	typ uint16
	v   []byte
}

// splitAttrs splits b into its attributes, flags stripped.
func splitAttrs(t *testing.T, b []byte) []nlAttr {
	t.Helper()
	var out []nlAttr
	for len(b) > 0 {
		typ, v, rest, ok := nlattr.Next(b)
		if !ok {
			t.Fatalf("malformed attributes %x", b)
		}
		out = append(out, nlAttr{typ, v})
		b = rest
	}
	return out
}

// joinAttrs encodes attributes without flags, as the kernel dumps them.
func joinAttrs(as []nlAttr) []byte {
	var b []byte
	for _, a := range as {
		b = binary.NativeEndian.AppendUint16(b, uint16(4+len(a.v)))
		b = binary.NativeEndian.AppendUint16(b, a.typ)
		b = append(b, a.v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	return b
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// kernelForm is es as Linux 6.x dumps them (NFTA_RULE_EXPRESSIONS): no
// NLA_F_NESTED flags, each expression's attributes in reverse order (the
// kernel's order differs for some), a bitwise's NFTA_BITWISE_OP, an
// exthdr's flags and a redirect's upper port register added, and the
// counters at packets and bytes.
func kernelForm(t *testing.T, es []expr.Any, packets, bytes uint64) []byte {
	t.Helper()
	var list []nlAttr
	for _, e := range es {
		m, err := expr.Marshal(unix.NFPROTO_INET, e)
		if err != nil {
			t.Fatal(err)
		}
		raw, ok := splitExpr(m)
		if !ok {
			t.Fatalf("malformed %x", m)
		}
		data := splitAttrs(t, raw.data)
		switch raw.name {
		case "bitwise":
			data = append(data, nlAttr{nftaBitwiseOp, be32(0)})
		case "exthdr":
			data = append(data, nlAttr{unix.NFTA_EXTHDR_FLAGS, be32(0)})
		case "redir":
			data = append(data, nlAttr{unix.NFTA_REDIR_REG_PROTO_MAX, be32(unix.NFT_REG_1)})
		case "counter":
			data = []nlAttr{
				{unix.NFTA_COUNTER_BYTES, binary.BigEndian.AppendUint64(nil, bytes)},
				{unix.NFTA_COUNTER_PACKETS, binary.BigEndian.AppendUint64(nil, packets)},
			}
		}
		for i, a := range data {
			// Nested data (cmp's, bitwise's, immediate's) as dumped.
			if a.typ != unix.NFTA_EXPR_NAME && len(a.v) >= 4 && int(binary.NativeEndian.Uint16(a.v)) <= len(a.v) &&
				binary.NativeEndian.Uint16(a.v[2:])&unix.NLA_F_NESTED != 0 {
				data[i].v = joinAttrs(splitAttrs(t, a.v))
			}
		}
		slices.Reverse(data)
		list = append(list, nlAttr{unix.NFTA_LIST_ELEM, joinAttrs([]nlAttr{
			{unix.NFTA_EXPR_NAME, append([]byte(raw.name), 0)},
			{unix.NFTA_EXPR_DATA, joinAttrs(data)},
		})})
	}
	return joinAttrs(list)
}

// ruleExprs is kernelForm of Exprs(r).
func ruleExprs(t *testing.T, r model.FRule, packets, bytes uint64) []byte {
	t.Helper()
	es, err := Exprs(r)
	if err != nil {
		t.Fatal(err)
	}
	return kernelForm(t, es, packets, bytes)
}

// matchRules are the rule shapes whose expressions must match their tags:
// the goldens, an MSS clamp without a protocol (nft adds tcp), a /0
// prefix, and a rule whose tag is a prefix and a hash.
func matchRules() []model.FRule {
	var out []model.FRule
	for _, g := range goldenRules {
		out = append(out, g.rule)
	}
	long := model.FRule{IIF: "abcdefghijklmno", Dst: pfx("2001:db8:1234:5678:9abc:def0:1234:5678/128"),
		L4Proto: 6, DPort: 65535, Counter: true, Verdict: model.Verdict{Kind: model.Redirect, Port: 65534}}
	return append(out,
		model.FRule{OIF: "tun0", Verdict: v(model.ClampMSS)},
		model.FRule{Src: pfx("0.0.0.0/0"), Counter: true, Verdict: model.Verdict{Kind: model.Jump, Chain: "spoof_t1"}},
		model.FRule{Family: model.FamilyV6, Src: pfx("::/0"), Verdict: v(model.Masquerade)},
		long)
}

func TestMatchesItsTag(t *testing.T) {
	long := matchRules()[len(matchRules())-1]
	if !strings.Contains(long.Tag(), " #") {
		t.Fatalf("%q is not a hashed tag", long.Tag())
	}
	for _, r := range matchRules() {
		for _, n := range []uint64{0, 12345} {
			if !matches(r.Tag(), ruleExprs(t, r, n, 100*n)) {
				t.Errorf("%s (counter at %d): its own expressions do not match its tag", r, n)
			}
		}
	}
}

// TestMatchesEdited: expressions changed behind tunneld's back, the
// comment kept, do not match it.
func TestMatchesEdited(t *testing.T) {
	spoof := model.FRule{Src: pfx("10.9.0.0/24"), Verdict: v(model.Return)}
	edit := func(f func(*model.FRule)) []byte {
		r := spoof
		f(&r)
		return ruleExprs(t, r, 0, 0)
	}
	exprsOf := func(es ...expr.Any) []byte { return kernelForm(t, es, 0, 0) }
	own, err := Exprs(spoof)
	if err != nil {
		t.Fatal(err)
	}
	full := kernelForm(t, own, 0, 0)
	// GRE's drop of version 0: daddr, then the version match
	// (gre[4:7]), then meta l4proto.
	gre := model.FRule{Dst: pfx("192.0.2.1/32"), GREv0: true, L4Proto: 47, Counter: true, Verdict: v(model.Drop)}
	g, err := Exprs(gre)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g[5].(*expr.Bitwise); !ok {
		t.Fatalf("expression 5 of %s is %T, not the version's mask", gre, g[5])
	}
	greWith := func(i int, e expr.Any) []byte {
		es := slices.Clone(g)
		es[i] = e
		return exprsOf(es...)
	}
	unversioned := gre
	unversioned.GREv0 = false
	// A bitwise operation other than mask and xor needs a mask: a /23.
	shifted := model.FRule{Src: pfx("10.9.0.0/23"), Verdict: v(model.Return)}
	for _, c := range []struct {
		name  string
		tag   string
		exprs []byte
	}{
		{"any source", spoof.Tag(), edit(func(r *model.FRule) { r.Src = pfx("0.0.0.0/0") })},
		{"wider prefix", spoof.Tag(), edit(func(r *model.FRule) { r.Src = pfx("10.0.0.0/8") })},
		{"accept", spoof.Tag(), edit(func(r *model.FRule) { r.Verdict = v(model.Accept) })},
		{"no family match", spoof.Tag(), exprsOf(own[2:]...)},
		{"no address match", spoof.Tag(), exprsOf(own[0], own[1], own[4])},
		{"a match more", spoof.Tag(), exprsOf(append(slices.Clone(own[:4]), append(l4protoMatch(6), own[4])...)...)},
		{"counter added", spoof.Tag(), edit(func(r *model.FRule) { r.Counter = true })},
		{"another interface", `iifname tun0 jump spoof_tun0`,
			ruleExprs(t, model.FRule{IIF: "tun1", Verdict: model.Verdict{Kind: model.Jump, Chain: "spoof_tun0"}}, 0, 0)},
		{"another chain", `iifname tun0 jump spoof_tun0`,
			ruleExprs(t, model.FRule{IIF: "tun0", Verdict: model.Verdict{Kind: model.Jump, Chain: "spoof_tun1"}}, 0, 0)},
		{"another register", spoof.Tag(), exprsOf(own[0], own[1],
			&expr.Payload{DestRegister: 2, Base: expr.PayloadBaseNetworkHeader, Offset: ip4SaddrOff, Len: 3},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 2, Data: []byte{10, 9, 0}}, own[4])},
		{"not equal", spoof.Tag(), exprsOf(own[0], own[1], own[2],
			&expr.Cmp{Op: expr.CmpOpNeq, Register: reg, Data: []byte{10, 9, 0}}, own[4])},
		{"shift", shifted.Tag(), bitwiseOp(t, shifted, 1)},
		{"gre version 1", gre.Tag(), greWith(6, &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{1}})},
		{"gre version and flags", gre.Tag(), greWith(5, &expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 1, Mask: []byte{0x0f}, Xor: []byte{0}})},
		{"gre first byte", gre.Tag(), greWith(4, &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1})},
		{"gre version in the network header", gre.Tag(), greWith(4, &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: greVersionOff, Len: 1})},
		{"gre version not equal", gre.Tag(), greWith(6, &expr.Cmp{Op: expr.CmpOpNeq, Register: reg, Data: []byte{0}})},
		{"gre version match removed", gre.Tag(), ruleExprs(t, unversioned, 0, 0)},
		{"gre version match after meta l4proto", gre.Tag(), exprsOf(append(append(slices.Clone(g[:4]), g[7], g[8], g[4], g[5], g[6]), g[9:]...)...)},
		{"gre version match added", unversioned.Tag(), ruleExprs(t, gre, 0, 0)},
		{"truncated", spoof.Tag(), full[:len(full)-4]},
		{"no expressions", spoof.Tag(), nil},
	} {
		if matches(c.tag, c.exprs) {
			t.Errorf("%s: matches %q", c.name, c.tag)
		}
	}
	if !matches(shifted.Tag(), bitwiseOp(t, shifted, 0)) {
		t.Errorf("NFT_BITWISE_BOOL, as the kernel dumps it, does not match")
	}
}

// bitwiseOp is r's expressions with its bitwise's NFTA_BITWISE_OP at op.
func bitwiseOp(t *testing.T, r model.FRule, op uint32) []byte {
	t.Helper()
	b := ruleExprs(t, r, 0, 0)
	es, ok := listExprs(b)
	if !ok {
		t.Fatal("malformed")
	}
	for _, e := range es {
		if e.name == "bitwise" {
			for d := e.data; len(d) > 0; {
				typ, v, rest, _ := nlattr.Next(d)
				if typ == nftaBitwiseOp {
					binary.BigEndian.PutUint32(v, op)
					return b
				}
				d = rest
			}
		}
	}
	t.Fatal("no bitwise operation")
	return nil
}

// TestMatchedCountersAndEdits: the remembered matches ignore counter
// values but not an edit.
func TestMatchedCountersAndEdits(t *testing.T) {
	r := model.FRule{IIF: "tun0", Src: pfx("10.9.0.0/24"), Counter: true, Verdict: v(model.Drop)}
	m := matched{}
	for _, n := range []uint64{0, 7, 1 << 40} {
		if !m.matches(r.Tag(), ruleExprs(t, r, n, 3*n)) {
			t.Fatalf("counter at %d: no match", n)
		}
	}
	if len(m) != 1 {
		t.Fatalf("%d remembered, want 1", len(m))
	}
	e := r
	e.Src = pfx("0.0.0.0/0")
	if m.matches(r.Tag(), ruleExprs(t, e, 5, 5)) {
		t.Fatal("an edited rule matches once its tag was remembered")
	}
	if !m.matches(r.Tag(), ruleExprs(t, r, 9, 9)) {
		t.Fatal("the rule no longer matches after an edited one was seen")
	}
}
