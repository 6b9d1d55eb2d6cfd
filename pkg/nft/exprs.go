package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables/expr"
	"github.com/tunneld/tunneld/pkg/model"
	"golang.org/x/sys/unix"
)

// reg is the data register every match loads into (NFT_REG_1), as nft
// uses it for one-dimensional matches.
const reg = unix.NFT_REG_1

// ifNameSize is IFNAMSIZ: nft compares interface names NUL-padded to it.
const ifNameSize = 16

// Fixed header fields and values nft uses for the rules tunneld writes.
const (
	ip4SaddrOff, ip4DaddrOff = 12, 16 // struct iphdr
	ip6SaddrOff, ip6DaddrOff = 8, 24  // struct ipv6hdr
	thDportOff               = 2      // destination port of TCP, UDP, SCTP, DCCP
	tcpFlagsOff              = 13     // struct tcphdr: the flags byte
	tcpFlagSYN, tcpFlagRST   = 0x02, 0x04
	tcpOptMaxseg             = 2 // TCPOPT_MAXSEG
	tcpOptMaxsegOff          = 2 // the size field inside the option
	tcpOptMaxsegLen          = 2
	greVersionOff            = 1    // GRE header: the byte whose low 3 bits are the version
	greVersionMask           = 0x07 // RFC 2784's Ver field
)

// Exprs translates one rule into the expressions nft generates for the
// rule's String(), in the same order: meta nfproto (only when the rule has
// a family but no address match), iifname, oifname, the family dependency
// and the address matches, the GRE version, meta l4proto, th dport, ct state, the TCP flags
// match of an MSS clamp (preceded by nft's implicit meta l4proto tcp when
// L4Proto is 0), counter and the verdict or statement. A /0 prefix, too,
// is what nft 1.0.6 makes of it: the address loaded, masked with zeros
// and compared with zero, a no-op after its family match that keeps a
// table loaded from tunneld's printed rules (nft -f) the one it writes.
func Exprs(r model.FRule) ([]expr.Any, error) {
	out, err := exprs(r)
	if err != nil {
		return nil, fmt.Errorf("nftables rule %q: %w", r.String(), err)
	}
	return out, nil
}

func exprs(r model.FRule) ([]expr.Any, error) {
	fam, err := ruleFamily(r)
	if err != nil {
		return nil, err
	}
	var out []expr.Any
	if r.Family != model.FamilyAny && !r.Src.IsValid() && !r.Dst.IsValid() {
		out = append(out, nfprotoMatch(fam)...)
	}
	if r.IIF != "" {
		m, err := ifnameMatch(expr.MetaKeyIIFNAME, r.IIF)
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	if r.OIF != "" {
		m, err := ifnameMatch(expr.MetaKeyOIFNAME, r.OIF)
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	if r.Src.IsValid() || r.Dst.IsValid() {
		out = append(out, nfprotoMatch(fam)...)
		if r.Src.IsValid() {
			out = append(out, prefixMatch(r.Src, true)...)
		}
		if r.Dst.IsValid() {
			out = append(out, prefixMatch(r.Dst, false)...)
		}
	}
	if r.GREv0 {
		out = append(out, greV0Match()...)
	}
	if r.L4Proto != 0 {
		out = append(out, l4protoMatch(r.L4Proto)...)
	}
	if r.DPort != 0 {
		out = append(out,
			&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: thDportOff, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: binary.BigEndian.AppendUint16(nil, r.DPort)})
	}
	if r.CtEstablished {
		out = append(out, ctEstablished()...)
	}
	if r.Verdict.Kind == model.ClampMSS {
		switch r.L4Proto {
		case unix.IPPROTO_TCP:
		case 0:
			// nft adds this dependency of the tcp header match itself.
			out = append(out, l4protoMatch(unix.IPPROTO_TCP)...)
		default:
			return nil, fmt.Errorf("MSS clamping needs meta l4proto tcp, not %s", model.ProtoName(r.L4Proto))
		}
		out = append(out, synMatch()...)
	}
	if r.Counter {
		out = append(out, &expr.Counter{})
	}
	v, err := verdict(r)
	if err != nil {
		return nil, err
	}
	return append(out, v...), nil
}

// ruleFamily is the address family the rule matches: unix.NFPROTO_IPV4,
// unix.NFPROTO_IPV6, or 0 for both. Prefixes must agree with each other
// and with Family.
func ruleFamily(r model.FRule) (byte, error) {
	var fam byte
	set := func(f byte, what string) error {
		if fam != 0 && fam != f {
			return fmt.Errorf("%s belongs to another address family", what)
		}
		fam = f
		return nil
	}
	switch r.Family {
	case model.FamilyAny:
	case model.FamilyV4:
		fam = unix.NFPROTO_IPV4
	case model.FamilyV6:
		fam = unix.NFPROTO_IPV6
	default:
		return 0, fmt.Errorf("unknown family %d", r.Family)
	}
	for _, p := range []struct {
		p    netip.Prefix
		name string
	}{{r.Src, "source " + r.Src.String()}, {r.Dst, "destination " + r.Dst.String()}} {
		if !p.p.IsValid() {
			continue
		}
		f := byte(unix.NFPROTO_IPV6)
		if p.p.Addr().Is4() {
			f = unix.NFPROTO_IPV4
		}
		if err := set(f, p.name); err != nil {
			return 0, err
		}
	}
	return fam, nil
}

// nfprotoMatch is `meta nfproto ipv4|ipv6`, also the dependency nft puts
// before an ip or ip6 header match in an inet table.
func nfprotoMatch(fam byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{fam}},
	}
}

// ifnameMatch compares the interface name NUL-padded to IFNAMSIZ. The
// name is matched literally (nft would read a trailing '*' as a wildcard).
func ifnameMatch(key expr.MetaKey, name string) ([]expr.Any, error) {
	if len(name) >= ifNameSize || strings.IndexByte(name, 0) >= 0 {
		return nil, fmt.Errorf("interface name %q is not a valid Linux interface name", name)
	}
	data := make([]byte, ifNameSize)
	copy(data, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: data},
	}, nil
}

// prefixMatch matches the source (src) or destination address against a
// prefix the way nft does: a prefix on a byte boundary loads and compares
// only its whole bytes, any other (and /0) loads the full address and
// masks it.
func prefixMatch(p netip.Prefix, src bool) []expr.Any {
	p = p.Masked()
	var off uint32
	switch {
	case p.Addr().Is4() && src:
		off = ip4SaddrOff
	case p.Addr().Is4():
		off = ip4DaddrOff
	case src:
		off = ip6SaddrOff
	default:
		off = ip6DaddrOff
	}
	addr := p.Addr().AsSlice()
	bits := p.Bits()
	if bits%8 == 0 && bits > 0 {
		n := bits / 8
		return []expr.Any{
			&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(n)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: addr[:n]},
		}
	}
	mask := make([]byte, len(addr))
	for i := range mask {
		switch {
		case bits >= 8*(i+1):
			mask[i] = 0xff
		case bits > 8*i:
			mask[i] = byte(0xff << (8*(i+1) - bits))
		}
	}
	return []expr.Any{
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(len(addr))},
		&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: uint32(len(addr)), Mask: mask, Xor: make([]byte, len(addr))},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: addr},
	}
}

// l4protoMatch is `meta l4proto P`.
func l4protoMatch(p uint8) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{p}},
	}
}

// greV0Match is `@th,8,8 & 0x7 == 0x0` (what nft makes of `@th,13,3 0`):
// the GRE header's version, its second byte's low 3 bits, is 0.
func greV0Match() []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: greVersionOff, Len: 1},
		&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 1, Mask: []byte{greVersionMask}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{0}},
	}
}

// ctEstablished is `ct state established,related`: the state is a 32-bit
// bitmask in host byte order.
func ctEstablished() []expr.Any {
	bits := expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED
	return []expr.Any{
		&expr.Ct{Register: reg, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg, Data: make([]byte, 4)},
	}
}

// synMatch is `tcp flags syn / syn,rst`.
func synMatch() []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: tcpFlagsOff, Len: 1},
		&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 1, Mask: []byte{tcpFlagSYN | tcpFlagRST}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{tcpFlagSYN}},
	}
}

// natProtos are the transport protocols nft accepts before a port mapping.
var natProtos = map[uint8]bool{
	unix.IPPROTO_TCP: true, unix.IPPROTO_UDP: true, unix.IPPROTO_UDPLITE: true,
	unix.IPPROTO_SCTP: true, unix.IPPROTO_DCCP: true,
}

// verdict is the rule's final statement.
func verdict(r model.FRule) ([]expr.Any, error) {
	v := r.Verdict
	switch v.Kind {
	case model.Accept:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}, nil
	case model.Drop:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}, nil
	case model.Return:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}}, nil
	case model.Jump:
		if v.Chain == "" {
			return nil, fmt.Errorf("jump without a chain")
		}
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: v.Chain}}, nil
	case model.Masquerade:
		return []expr.Any{&expr.Masq{}}, nil
	case model.Redirect:
		if v.Port == 0 {
			return nil, fmt.Errorf("redirect without a port")
		}
		if !natProtos[r.L4Proto] {
			return nil, fmt.Errorf("a port redirect needs a meta l4proto match of tcp, udp, udplite, sctp or dccp")
		}
		// The port goes into the register in network byte order.
		return []expr.Any{
			&expr.Immediate{Register: reg, Data: binary.BigEndian.AppendUint16(nil, v.Port)},
			&expr.Redir{RegisterProtoMin: reg, Flags: unix.NF_NAT_RANGE_PROTO_SPECIFIED},
		}, nil
	case model.ClampMSS:
		// rt tcpmss is a host-order 16-bit value: nft converts it to
		// network order before writing the option.
		return []expr.Any{
			&expr.Rt{Register: reg, Key: expr.RtTCPMSS},
			&expr.Byteorder{SourceRegister: reg, DestRegister: reg, Op: expr.ByteorderHton, Len: 2, Size: 2},
			&expr.Exthdr{SourceRegister: reg, Type: tcpOptMaxseg, Offset: tcpOptMaxsegOff, Len: tcpOptMaxsegLen, Op: expr.ExthdrOpTcpopt},
		}, nil
	}
	return nil, fmt.Errorf("unknown verdict kind %d", v.Kind)
}
