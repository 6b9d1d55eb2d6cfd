package nft

import (
	"bytes"
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables/expr"
	"github.com/tunneld/tunneld/pkg/internal/nlattr"
	"github.com/tunneld/tunneld/pkg/model"
	"golang.org/x/sys/unix"
)

// nftaBitwiseOp is NFTA_BITWISE_OP, which golang.org/x/sys/unix lacks.
const nftaBitwiseOp = 6

// matches reports whether a rule's expressions, as the kernel dumps them
// (NFTA_RULE_EXPRESSIONS), are exactly those Exprs makes of a rule whose
// Tag is tag. The rule is decoded from the expressions (decode), its
// expressions made again by Exprs and compared with the dump attribute
// by attribute (sameExpr): a rule edited behind tunneld's back, its
// comment kept, is one whose expressions decode to another tag or to
// nothing Exprs makes. Counter values are not compared.
func matches(tag string, exprs []byte) bool {
	obs, ok := listExprs(exprs)
	if !ok {
		return false
	}
	r, ok := decode(obs)
	if !ok {
		return false
	}
	want, err := Exprs(r)
	if err != nil || len(want) != len(obs) {
		return false
	}
	for i, e := range want {
		m, err := expr.Marshal(unix.NFPROTO_INET, e)
		if err != nil {
			return false
		}
		w, ok := splitExpr(m)
		if !ok || !sameExpr(obs[i], w) {
			return false
		}
	}
	if r.Tag() == tag {
		return true
	}
	// An MSS clamp without a protocol gets nft's implicit meta l4proto
	// tcp: the same expressions as one that names it.
	if r.Verdict.Kind == model.ClampMSS && r.L4Proto == unix.IPPROTO_TCP {
		r.L4Proto = 0
		return r.Tag() == tag
	}
	return false
}

// matched maps the tags of rules found to match them (by matches) to
// their expressions, counter values zeroed: most of a read's rules are
// the ones of the read before, and matching each of 1000 tunnels' rules
// again would make every read of their table half as slow again.
type matched map[string]string

// matches is the package's matches, remembered: exprs is the rule's own
// copy of its expressions, and its counter values are zeroed in place.
func (m matched) matches(tag string, exprs []byte) bool {
	zeroCounters(exprs)
	if e, ok := m[tag]; ok && e == string(exprs) {
		return true
	}
	if !matches(tag, exprs) {
		return false
	}
	if m != nil {
		m[tag] = string(exprs)
	}
	return true
}

// zeroCounters zeroes the values of the counter expressions in an
// expression list.
func zeroCounters(b []byte) {
	for len(b) > 0 {
		_, e, rest, ok := nlattr.Next(b)
		if !ok {
			return
		}
		b = rest
		if string(attr(e, unix.NFTA_EXPR_NAME)) != "counter\x00" {
			continue
		}
		for d := attr(e, unix.NFTA_EXPR_DATA); len(d) > 0; {
			_, v, rest, ok := nlattr.Next(d)
			if !ok {
				break
			}
			clear(v)
			d = rest
		}
	}
}

// rawExpr is one expression of a dump: its name and its NFTA_EXPR_DATA.
type rawExpr struct {
	name string
	data []byte
}

// listExprs splits an expression list (NFTA_LIST_ELEM attributes); ok
// is false when it is malformed.
func listExprs(b []byte) (out []rawExpr, ok bool) {
	for len(b) > 0 {
		typ, v, rest, ok := nlattr.Next(b)
		if !ok || typ != unix.NFTA_LIST_ELEM {
			return nil, false
		}
		b = rest
		e, ok := splitExpr(v)
		if !ok {
			return nil, false
		}
		out = append(out, e)
	}
	return out, true
}

// splitExpr splits one expression's attributes into its name and data.
func splitExpr(b []byte) (e rawExpr, ok bool) {
	for len(b) > 0 {
		typ, v, rest, ok := nlattr.Next(b)
		if !ok {
			return e, false
		}
		b = rest
		switch typ {
		case unix.NFTA_EXPR_NAME:
			e.name = string(bytes.TrimRight(v, "\x00"))
		case unix.NFTA_EXPR_DATA:
			e.data = v
		}
	}
	return e, true
}

// attr is the payload of b's first attribute of type typ (nil: none).
// nlattr compares types without their flags: the kernel dumps nested
// attributes without the NLA_F_NESTED google/nftables sends them with.
func attr(b []byte, typ uint16) []byte {
	v, _ := nlattr.Find(b, typ)
	return v
}

// u32 is a big-endian 32-bit attribute value, or ^0 for another size.
func u32(v []byte) uint32 {
	if len(v) != 4 {
		return ^uint32(0)
	}
	return binary.BigEndian.Uint32(v)
}

// sameExpr compares an expression of the dump with one Exprs made,
// attribute by attribute in any order (the kernel dumps some in another
// order than google/nftables sends them). The dump may carry attributes
// the kernel adds with the value that means what was sent (defaulted); a
// counter's values are not compared.
func sameExpr(got, want rawExpr) bool {
	if got.name != want.name {
		return false
	}
	if got.name == "counter" {
		return true
	}
	return sameAttrs(got.data, want.data, func(typ uint16, v []byte) bool {
		return defaulted(got, typ, v)
	})
}

// defaulted reports whether attribute typ with value v, dumped by the
// kernel but not sent, means what its absence does: a bitwise's
// operation NFT_BITWISE_BOOL (mask and xor, Linux 5.6 and later), an
// exthdr's flags 0, a redirect's upper port register the same as its
// lower one.
func defaulted(e rawExpr, typ uint16, v []byte) bool {
	switch {
	case e.name == "bitwise" && typ == nftaBitwiseOp,
		e.name == "exthdr" && typ == unix.NFTA_EXTHDR_FLAGS:
		return u32(v) == 0
	case e.name == "redir" && typ == unix.NFTA_REDIR_REG_PROTO_MAX:
		return bytes.Equal(v, attr(e.data, unix.NFTA_REDIR_REG_PROTO_MIN))
	}
	return false
}

// sameAttrs reports whether got has each attribute of want, once, with
// the same value (nested ones compared the same way, by want's
// NLA_F_NESTED), and nothing else but what extra allows.
func sameAttrs(got, want []byte, extra func(typ uint16, v []byte) bool) bool {
	n := 0
	for w := want; len(w) > 0; n++ {
		typ, wv, rest, ok := nlattr.Next(w)
		if !ok {
			return false
		}
		nested := binary.NativeEndian.Uint16(w[2:])&unix.NLA_F_NESTED != 0
		w = rest
		gv := attr(got, typ)
		switch {
		case gv == nil:
			return false
		case nested && !sameAttrs(gv, wv, nil):
			return false
		case !nested && !bytes.Equal(gv, wv):
			return false
		}
	}
	for g := got; len(g) > 0; {
		typ, gv, rest, ok := nlattr.Next(g)
		if !ok {
			return false
		}
		g = rest
		switch {
		case attr(want, typ) != nil:
			n--
		case extra == nil || !extra(typ, gv):
			return false
		}
	}
	return n == 0
}

// decode makes the model rule of a dump's expressions, assuming they are
// the ones Exprs makes (matches checks that they are): each match is
// known by what its cmp compares, the register loaded before it.
func decode(es []rawExpr) (r model.FRule, ok bool) {
	var load rawExpr // the expression that loaded the register a cmp compares
	var mask []byte  // a bitwise's mask on it
	var port []byte  // an immediate's data, for a redirect
	for _, e := range es {
		switch e.name {
		case "meta", "payload", "ct":
			load, mask = e, nil
		case "bitwise":
			mask = attr(attr(e.data, unix.NFTA_BITWISE_MASK), unix.NFTA_DATA_VALUE)
		case "cmp":
			data := attr(attr(e.data, unix.NFTA_CMP_DATA), unix.NFTA_DATA_VALUE)
			if !decodeMatch(&r, load, mask, data) {
				return r, false
			}
		case "counter":
			r.Counter = true
		case "immediate":
			d := attr(e.data, unix.NFTA_IMMEDIATE_DATA)
			if u32(attr(e.data, unix.NFTA_IMMEDIATE_DREG)) != unix.NFT_REG_VERDICT {
				port = attr(d, unix.NFTA_DATA_VALUE)
				continue
			}
			v := attr(d, unix.NFTA_DATA_VERDICT)
			switch expr.VerdictKind(int32(u32(attr(v, unix.NFTA_VERDICT_CODE)))) {
			case expr.VerdictAccept:
				r.Verdict.Kind = model.Accept
			case expr.VerdictDrop:
				r.Verdict.Kind = model.Drop
			case expr.VerdictReturn:
				r.Verdict.Kind = model.Return
			case expr.VerdictJump:
				r.Verdict = model.Verdict{Kind: model.Jump, Chain: string(bytes.TrimRight(attr(v, unix.NFTA_VERDICT_CHAIN), "\x00"))}
			}
		case "masq":
			r.Verdict.Kind = model.Masquerade
		case "redir":
			if len(port) != 2 {
				return r, false
			}
			r.Verdict = model.Verdict{Kind: model.Redirect, Port: binary.BigEndian.Uint16(port)}
		case "exthdr":
			r.Verdict.Kind = model.ClampMSS
		}
	}
	return r, true
}

// decodeMatch sets the field of r that a cmp of data against the register
// load filled (and mask masked) stands for.
func decodeMatch(r *model.FRule, load rawExpr, mask, data []byte) bool {
	if len(data) == 0 {
		return false
	}
	switch load.name {
	case "meta":
		switch u32(attr(load.data, unix.NFTA_META_KEY)) {
		case unix.NFT_META_NFPROTO:
			switch data[0] {
			case unix.NFPROTO_IPV4:
				r.Family = model.FamilyV4
			case unix.NFPROTO_IPV6:
				r.Family = model.FamilyV6
			}
		case unix.NFT_META_IIFNAME:
			r.IIF = string(bytes.TrimRight(data, "\x00"))
		case unix.NFT_META_OIFNAME:
			r.OIF = string(bytes.TrimRight(data, "\x00"))
		case unix.NFT_META_L4PROTO:
			r.L4Proto = data[0]
		}
	case "ct":
		r.CtEstablished = true
	case "payload":
		base, off := u32(attr(load.data, unix.NFTA_PAYLOAD_BASE)), u32(attr(load.data, unix.NFTA_PAYLOAD_OFFSET))
		switch {
		case base == unix.NFT_PAYLOAD_TRANSPORT_HEADER && off == thDportOff && len(data) == 2:
			r.DPort = binary.BigEndian.Uint16(data)
		case base == unix.NFT_PAYLOAD_TRANSPORT_HEADER && off == greVersionOff:
			// Any other mask or value is not Exprs's: the
			// comparison with its expressions tells it.
			r.GREv0 = true
		case base == unix.NFT_PAYLOAD_NETWORK_HEADER:
			size := 4
			if r.Family == model.FamilyV6 {
				size = 16
			}
			if len(data) > size {
				return false
			}
			bits := 8 * len(data)
			if mask != nil {
				bits = 0
				for _, m := range mask {
					for ; m&0x80 != 0; m <<= 1 {
						bits++
					}
				}
			}
			full := make([]byte, size)
			copy(full, data)
			a, _ := netip.AddrFromSlice(full)
			p := netip.PrefixFrom(a, bits)
			switch off {
			case ip4SaddrOff, ip6SaddrOff:
				r.Src = p
			default:
				r.Dst = p
			}
		}
	}
	return true
}
