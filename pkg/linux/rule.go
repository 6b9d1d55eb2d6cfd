package linux

import (
	"encoding/binary"
	"errors"
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
	return m
}

// fromRuleMsg decodes a rule; ok is false for rules tunneld cannot own
// (another action, or flags such as invert). The flags the kernel sets on
// a rule whose iif or oif names a device it doesn't have (detached: the
// rule waits for the device) are not the rule's own: without them,
// tunneld would not see its rule, add it again every round and never
// remove it.
func fromRuleMsg(m *ruleMsg) (model.Rule, bool) {
	const detached = unix.FIB_RULE_IIF_DETACHED | unix.FIB_RULE_OIF_DETACHED
	if m.action != unix.FR_ACT_TO_TBL || m.flags&^detached != 0 || m.tos != 0 {
		return model.Rule{}, false
	}
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
	return r, true
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
