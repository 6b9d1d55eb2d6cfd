package linux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/model"
)

// ruleMsg is an RTM_*RULE message: struct fib_rule_hdr plus the FRA_*
// attributes tunneld uses. rtnetlink's own RuleMessage refuses a whole dump
// when it meets an attribute it does not know (FRA_DSCP on new kernels),
// so rules are encoded and decoded here, tolerantly.
type ruleMsg struct {
	family, dstLen, srcLen, tos, table, action uint8
	flags                                      uint32
	attrs                                      ruleAttrs
}

type ruleAttrs struct {
	dst, src         netip.Addr
	iif, oif         string
	priority         uint32
	mark, mask       uint32
	hasMark, hasMask bool
	table            uint32
	protocol         uint8
	// hasProtocol: the message carries FRA_PROTOCOL, as every dump of
	// a kernel since 4.17 does (older ones keep no protocol).
	hasProtocol bool
	// extra holds, whole and padded as read, the attributes tunneld's
	// rules never carry: a selector such as FRA_IP_PROTO, a setting such
	// as FRA_SUPPRESS_PREFIXLEN, or one this code does not know. The two
	// suppressions the kernel reports unset (-1) are left out.
	extra []byte
}

const fibRuleHdrLen = 12

func (m *ruleMsg) MarshalBinary() ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	a := m.attrs
	if a.dst.IsValid() {
		ae.Bytes(unix.FRA_DST, a.dst.AsSlice())
	}
	if a.src.IsValid() {
		ae.Bytes(unix.FRA_SRC, a.src.AsSlice())
	}
	if a.iif != "" {
		ae.String(unix.FRA_IIFNAME, a.iif)
	}
	if a.oif != "" {
		ae.String(unix.FRA_OIFNAME, a.oif)
	}
	ae.Uint32(unix.FRA_PRIORITY, a.priority)
	if a.hasMark {
		ae.Uint32(unix.FRA_FWMARK, a.mark)
	}
	if a.hasMask {
		ae.Uint32(unix.FRA_FWMASK, a.mask)
	}
	ae.Uint32(unix.FRA_TABLE, a.table)
	ae.Uint8(unix.FRA_PROTOCOL, a.protocol)
	attrs, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	attrs = append(attrs, a.extra...)
	b := make([]byte, fibRuleHdrLen, fibRuleHdrLen+len(attrs))
	b[0], b[1], b[2], b[3], b[4], b[7] = m.family, m.dstLen, m.srcLen, m.tos, m.table, m.action
	binary.NativeEndian.PutUint32(b[8:], m.flags)
	return append(b, attrs...), nil
}

func (m *ruleMsg) UnmarshalBinary(b []byte) error {
	if len(b) < fibRuleHdrLen {
		return errors.New("short rule message")
	}
	m.family, m.dstLen, m.srcLen, m.tos, m.table, m.action = b[0], b[1], b[2], b[3], b[4], b[7]
	m.flags = binary.NativeEndian.Uint32(b[8:])
	a := &m.attrs
	return eachAttr(b[fibRuleHdrLen:], func(typ uint16, v []byte) error {
		switch typ {
		case unix.FRA_DST:
			a.dst, _ = netip.AddrFromSlice(v)
		case unix.FRA_SRC:
			a.src, _ = netip.AddrFromSlice(v)
		case unix.FRA_IIFNAME:
			a.iif = cString(v)
		case unix.FRA_OIFNAME:
			a.oif = cString(v)
		case unix.FRA_PRIORITY:
			a.priority = u32(v)
		case unix.FRA_FWMARK:
			a.mark, a.hasMark = u32(v), true
		case unix.FRA_FWMASK:
			a.mask, a.hasMask = u32(v), true
		case unix.FRA_TABLE:
			a.table = u32(v)
		case unix.FRA_PROTOCOL:
			if len(v) > 0 {
				a.protocol, a.hasProtocol = v[0], true
			}
		case unix.FRA_SUPPRESS_PREFIXLEN, unix.FRA_SUPPRESS_IFGROUP:
			if u32(v) != 0xffffffff {
				a.extra = appendAttr(a.extra, typ, v)
			}
		case unix.FRA_PAD:
		default:
			a.extra = appendAttr(a.extra, typ, v)
		}
		return nil
	})
}

// toRuleMsg encodes a model rule the way `ip rule add` does (action
// FR_ACT_TO_TBL: with action 0 the kernel accepts the rule but lookups
// after it break).
func toRuleMsg(r model.Rule) *ruleMsg {
	m := &ruleMsg{family: unix.AF_INET, action: unix.FR_ACT_TO_TBL}
	if r.Family == 6 {
		m.family = unix.AF_INET6
	}
	if r.Table < 256 {
		m.table = uint8(r.Table)
	}
	a := &m.attrs
	if r.Src.IsValid() {
		m.srcLen, a.src = uint8(r.Src.Bits()), r.Src.Addr()
	}
	if r.Dst.IsValid() {
		m.dstLen, a.dst = uint8(r.Dst.Bits()), r.Dst.Addr()
	}
	a.iif, a.oif, a.priority, a.table, a.protocol = r.IIF, r.OIF, r.Priority, r.Table, model.RuleProtocol
	if r.HasMark {
		a.mark, a.hasMark = r.Mark, true
		a.mask, a.hasMask = r.Mask, true
	}
	// An observed rule's own header fields and attributes (see
	// fromRuleMsg), for its deletion.
	if w := r.Wire; len(w) >= ruleWireHdrLen {
		m.tos, m.flags, m.action = w[0], binary.NativeEndian.Uint32([]byte(w[1:5])), w[5]
		a.extra = []byte(w[ruleWireHdrLen:])
	}
	return m
}

// fraSportMask and fraDportMask are the masks of a rule's port ranges
// (FRA_SPORT_MASK, FRA_DPORT_MASK), which golang.org/x/sys does not name.
const (
	fraSportMask = 28
	fraDportMask = 29
)

// ruleWireHdrLen is the header of model.Rule.Wire as the Linux seam
// writes it: the rule's tos, its flags (host order) and its action; its
// extra attributes follow.
const ruleWireHdrLen = 6

// fromRuleMsg decodes a rule; ok is false for rules tunneld cannot own:
// another action than a lookup (`blackhole`, `goto`), which stays a
// foreign rule. The flags the kernel sets on a rule whose iif or oif
// names a device it doesn't have (detached: the rule waits for the
// device) are not the rule's own: without them, tunneld would not see
// its rule, add it again every round and never remove it. Whatever else
// the rule carries that tunneld's rules never do (other flags such as
// invert, a tos, extra attributes) is in Extra and Wire: someone
// narrowed one of tunneld's rules, which is not the rule it wants.
func fromRuleMsg(m *ruleMsg) (model.Rule, bool) {
	if ruleAction(m.action) == "" {
		return model.Rule{}, false
	}
	return decodeRule(m), true
}

// decodeRule decodes a rule of any action: one ip(8) has no word for
// (a deprecated `nat` rule's) is a '#' word of Extra, `#action:10`.
func decodeRule(m *ruleMsg) model.Rule {
	const detached = unix.FIB_RULE_IIF_DETACHED | unix.FIB_RULE_OIF_DETACHED
	r := model.Rule{Family: 4, Priority: m.attrs.priority, IIF: m.attrs.iif, OIF: m.attrs.oif, Table: m.attrs.table}
	if m.family == unix.AF_INET6 {
		r.Family = 6
	}
	if r.Table == 0 {
		r.Table = uint32(m.table)
	}
	if m.attrs.src.IsValid() {
		r.Src = netip.PrefixFrom(m.attrs.src, int(m.srcLen))
	}
	if m.attrs.dst.IsValid() {
		r.Dst = netip.PrefixFrom(m.attrs.dst, int(m.dstLen))
	}
	// The kernel leaves FRA_FWMARK out of a dump when the mark is 0 and
	// sends FRA_FWMASK alone (`fwmark 0x0/0xff`, `fwmark 0`).
	if m.attrs.hasMark || m.attrs.hasMask {
		r.Mark, r.HasMark, r.Mask = m.attrs.mark, true, 0xffffffff
		if m.attrs.hasMask {
			r.Mask = m.attrs.mask
		}
	}
	if flags := m.flags &^ detached; flags != 0 || m.tos != 0 || len(m.attrs.extra) > 0 || m.action != unix.FR_ACT_TO_TBL {
		w := make([]byte, ruleWireHdrLen, ruleWireHdrLen+len(m.attrs.extra))
		w[0] = m.tos
		binary.NativeEndian.PutUint32(w[1:], flags)
		w[5] = m.action
		r.Wire = string(append(w, m.attrs.extra...))
		r.Extra = ruleExtraWords(m.action, m.tos, flags, m.attrs.extra)
	}
	return r
}

// ruleAction is the ip-rule(8) word of a rule action tunneld reads:
// "lookup" for its own, another (blackhole, goto …) for one of its rules
// that someone turned into that (a tester's blackhole of protocol 116
// in the band was someone else's to tunneld, and overrode its rule); ""
// for one it does not know.
func ruleAction(a uint8) string {
	if a == unix.FR_ACT_TO_TBL {
		return "lookup"
	}
	return model.RuleActionWord(a)
}

// ruleExtraWords names what a rule carries beyond tunneld's selectors,
// its action first where it is not a lookup (`blackhole`, `goto 32766`),
// in ip-rule(8) words where ip(8) has them (`not`, `tos 0x10`,
// `ipproto 6`, `sport 1024-2047`, `dport 22`, `uidrange 0-0`,
// `suppress_prefixlength 0`, `suppress_ifgroup 3`, `l3mdev`,
// `tun_id 7`, `realms 1/2`) and as '#' words otherwise: `#flags:0x8`,
// `#attr:30` for a netlink attribute.
func ruleExtraWords(action, tos uint8, flags uint32, extra []byte) string {
	var b []byte
	word := func(s string) {
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(b, s...)
	}
	switch {
	case action == unix.FR_ACT_TO_TBL || action == unix.FR_ACT_GOTO:
		// goto is said with its target below
	case ruleAction(action) == "":
		word(fmt.Sprintf("#action:%d", action))
	default:
		word(ruleAction(action))
	}
	if flags&unix.FIB_RULE_INVERT != 0 {
		word("not")
		flags &^= unix.FIB_RULE_INVERT
	}
	if tos != 0 {
		word(fmt.Sprintf("tos 0x%02x", tos))
	}
	_ = eachAttr(extra, func(typ uint16, v []byte) error {
		switch {
		case typ == unix.FRA_IP_PROTO && len(v) >= 1:
			word(fmt.Sprintf("ipproto %d", v[0]))
		case (typ == unix.FRA_SPORT_RANGE || typ == unix.FRA_DPORT_RANGE) && len(v) >= 4:
			name := "sport "
			if typ == unix.FRA_DPORT_RANGE {
				name = "dport "
			}
			from, to := binary.NativeEndian.Uint16(v), binary.NativeEndian.Uint16(v[2:])
			if from == to {
				word(fmt.Sprintf("%s%d", name, from))
			} else {
				word(fmt.Sprintf("%s%d-%d", name, from, to))
			}
		case typ == unix.FRA_UID_RANGE && len(v) >= 8:
			word(fmt.Sprintf("uidrange %d-%d", u32(v), u32(v[4:])))
		case typ == unix.FRA_SUPPRESS_PREFIXLEN && len(v) >= 4:
			word(fmt.Sprintf("suppress_prefixlength %d", int32(u32(v))))
		case typ == unix.FRA_SUPPRESS_IFGROUP && len(v) >= 4:
			word(fmt.Sprintf("suppress_ifgroup %d", int32(u32(v))))
		case typ == unix.FRA_L3MDEV && len(v) >= 1 && v[0] != 0:
			word("l3mdev")
		case typ == unix.FRA_TUN_ID && len(v) >= 8:
			word(fmt.Sprintf("tun_id %d", binary.BigEndian.Uint64(v)))
		case typ == unix.FRA_GOTO && len(v) >= 4:
			word(fmt.Sprintf("goto %d", u32(v)))
		case (typ == fraSportMask || typ == fraDportMask) && len(v) >= 2 && binary.NativeEndian.Uint16(v) == 0xffff:
			// A port range's mask of every bit, which a kernel of
			// 6.15 and later sends with each range: the range says
			// it all.
		case typ == unix.FRA_FLOW && len(v) >= 4:
			word(fmt.Sprintf("realms %d/%d", u32(v)>>16, u32(v)&0xffff))
		default:
			word(fmt.Sprintf("#attr:%d", typ))
		}
		return nil
	})
	if flags != 0 {
		word(fmt.Sprintf("#flags:0x%x", flags))
	}
	return string(b)
}

// appendAttr appends a netlink attribute, padded, to b.
func appendAttr(b []byte, typ uint16, v []byte) []byte {
	var h [unix.SizeofNlAttr]byte
	binary.NativeEndian.PutUint16(h[:], uint16(unix.SizeofNlAttr+len(v)))
	binary.NativeEndian.PutUint16(h[2:], typ)
	b = append(append(b, h[:]...), v...)
	for len(b)%unix.NLA_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

func (k *Kernel) listRules(into []ruleMsg, family uint8) ([]ruleMsg, error) {
	out := into[:0]
	err := list(k, "rules", unix.RTM_GETRULE, ruleDumpReq(family), func() { out = out[:0] }, func(b []byte) error {
		var m ruleMsg
		err := m.UnmarshalBinary(b)
		if err == nil {
			out = append(out, m)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ruleDumpReq is a bare fib_rule_hdr: strict checking refuses attributes
// in a dump request.
type ruleDumpReq uint8

func (r ruleDumpReq) MarshalBinary() ([]byte, error) {
	b := make([]byte, fibRuleHdrLen)
	b[0] = uint8(r)
	return b, nil
}
