package nft

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/nftables/expr"
)

// debugText renders an expression the way libnftnl on x86_64, where the
// golden outputs were recorded, prints it for `nft --debug=netlink`
// (register data as 32-bit words in host order), so Exprs can be compared
// with nft's own output line by line on any machine. host says whether
// the data compared or masked is a host-order value (what ct state and
// rt tcpmss load), not bytes (addresses, ports, names, u8s). Only the
// expressions and fields tunneld uses are rendered; any other field
// being set shows up as a difference.
func debugText(e expr.Any, host bool) string {
	switch e := e.(type) {
	case *expr.Meta:
		if e.SourceRegister {
			return fmt.Sprintf("meta set %s with reg %d", metaKeyName(e.Key), e.Register)
		}
		return fmt.Sprintf("meta load %s => reg %d", metaKeyName(e.Key), e.Register)
	case *expr.Cmp:
		ops := map[expr.CmpOp]string{expr.CmpOpEq: "eq", expr.CmpOpNeq: "neq", expr.CmpOpLt: "lt",
			expr.CmpOpLte: "lte", expr.CmpOpGt: "gt", expr.CmpOpGte: "gte"}
		return fmt.Sprintf("cmp %s reg %d %s", ops[e.Op], e.Register, words(e.Data, host))
	case *expr.Payload:
		bases := map[expr.PayloadBase]string{expr.PayloadBaseLLHeader: "link", expr.PayloadBaseNetworkHeader: "network",
			expr.PayloadBaseTransportHeader: "transport"}
		if e.OperationType != expr.PayloadLoad || e.SourceRegister != 0 {
			return fmt.Sprintf("payload write %+v", *e)
		}
		return fmt.Sprintf("payload load %db @ %s header + %d => reg %d", e.Len, bases[e.Base], e.Offset, e.DestRegister)
	case *expr.Bitwise:
		if e.Len != uint32(len(e.Mask)) || e.Len != uint32(len(e.Xor)) {
			return fmt.Sprintf("bitwise with len %d, mask %d bytes, xor %d bytes", e.Len, len(e.Mask), len(e.Xor))
		}
		return fmt.Sprintf("bitwise reg %d = ( reg %d & %s ) ^ %s", e.DestRegister, e.SourceRegister, words(e.Mask, host), words(e.Xor, host))
	case *expr.Ct:
		if e.Key != expr.CtKeySTATE || e.SourceRegister {
			return fmt.Sprintf("ct %+v", *e)
		}
		return fmt.Sprintf("ct load state => reg %d", e.Register)
	case *expr.Counter:
		return fmt.Sprintf("counter pkts %d bytes %d", e.Packets, e.Bytes)
	case *expr.Verdict:
		names := map[expr.VerdictKind]string{expr.VerdictAccept: "accept", expr.VerdictDrop: "drop",
			expr.VerdictReturn: "return", expr.VerdictJump: "jump", expr.VerdictGoto: "goto"}
		s := "immediate reg 0 " + names[e.Kind]
		if e.Kind == expr.VerdictJump || e.Kind == expr.VerdictGoto {
			s += " -> " + e.Chain
		}
		return s
	case *expr.Immediate:
		return fmt.Sprintf("immediate reg %d %s", e.Register, words(e.Data, host))
	case *expr.Masq:
		if e.Random || e.FullyRandom || e.Persistent || e.ToPorts {
			return fmt.Sprintf("masq %+v", *e)
		}
		return "masq"
	case *expr.Redir:
		s := "redir"
		if e.RegisterProtoMin != 0 {
			s += fmt.Sprintf(" proto_min reg %d", e.RegisterProtoMin)
		}
		if e.RegisterProtoMax != 0 {
			s += fmt.Sprintf(" proto_max reg %d", e.RegisterProtoMax)
		}
		if e.Flags != 0 {
			s += fmt.Sprintf(" flags 0x%x", e.Flags)
		}
		return s
	case *expr.Rt:
		if e.Key != expr.RtTCPMSS {
			return fmt.Sprintf("rt %+v", *e)
		}
		return fmt.Sprintf("rt load tcpmss => reg %d", e.Register)
	case *expr.Byteorder:
		ops := map[expr.ByteorderOp]string{expr.ByteorderHton: "hton", expr.ByteorderNtoh: "ntoh"}
		return fmt.Sprintf("byteorder reg %d = %s(reg %d, %d, %d)", e.DestRegister, ops[e.Op], e.SourceRegister, e.Size, e.Len)
	case *expr.Exthdr:
		if e.Op != expr.ExthdrOpTcpopt || e.SourceRegister == 0 || e.DestRegister != 0 || e.Flags != 0 {
			return fmt.Sprintf("exthdr %+v", *e)
		}
		return fmt.Sprintf("exthdr write tcpopt reg %d => %db @ %d + %d", e.SourceRegister, e.Len, e.Type, e.Offset)
	}
	return fmt.Sprintf("unrendered %T %+v", e, e)
}

func metaKeyName(k expr.MetaKey) string {
	switch k {
	case expr.MetaKeyIIFNAME:
		return "iifname"
	case expr.MetaKeyOIFNAME:
		return "oifname"
	case expr.MetaKeyNFPROTO:
		return "nfproto"
	case expr.MetaKeyL4PROTO:
		return "l4proto"
	}
	return fmt.Sprintf("key%d", k)
}

// words prints data as libnftnl on x86_64 does: 32-bit words read in
// little-endian order, the last one zero-padded. A host-order value (host)
// is printed as its number, as x86_64 held it; bytes as x86_64 reads the
// same bytes, whichever this machine's byte order.
func words(b []byte, host bool) string {
	order := binary.ByteOrder(binary.LittleEndian)
	if host {
		order = binary.NativeEndian
	}
	var w []string
	for i := 0; i < len(b); i += 4 {
		var word [4]byte
		copy(word[:], b[i:])
		w = append(w, fmt.Sprintf("0x%08x", order.Uint32(word[:])))
	}
	return strings.Join(w, " ")
}

// loadsHostOrder reports whether e loads a register (ok) and whether the
// value it loads is a host-order number: ct state and rt tcpmss are;
// payloads, interface names, protocol numbers and a byteorder's result
// are bytes as the packet has them.
func loadsHostOrder(e expr.Any) (host, ok bool) {
	switch e := e.(type) {
	case *expr.Ct:
		return !e.SourceRegister, !e.SourceRegister
	case *expr.Rt:
		return true, true
	case *expr.Meta:
		return false, !e.SourceRegister
	case *expr.Payload, *expr.Byteorder:
		return false, true
	}
	return false, false
}
