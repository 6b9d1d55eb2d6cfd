package model

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"
)

// Filter is the content of tunneld's nftables table (inet tunneld).
type Filter struct {
	Chains []Chain
	// Observed, for a table read back from the kernel, is its canonical
	// text (see Canonical) rebuilt from the chains and the rule tags; it
	// is empty in a desired table.
	Observed string `json:",omitempty"`
}

// Chain is one chain of the table. A chain with a Hook is a base chain;
// one without is a regular chain reached by jump.
type Chain struct {
	Name string
	// Type is "filter" or "nat" (base chains only).
	Type string
	// Hook is "input", "forward", "prerouting" or "postrouting"; "" for a
	// regular chain.
	Hook     string
	Priority int32
	Rules    []FRule
}

// Family limits a rule to one IP version; FamilyAny matches both.
type Family uint8

// Families a filter rule can match.
const (
	FamilyAny Family = 0
	FamilyV4  Family = 4
	FamilyV6  Family = 6
)

// VerdictKind is what a filter rule does with a matching packet.
type VerdictKind uint8

// Rule verdicts and statements.
const (
	Accept VerdictKind = iota + 1
	Drop
	Return
	Jump       // to Verdict.Chain
	Masquerade // source NAT to the outgoing interface's address
	Redirect   // destination NAT to this host, port Verdict.Port
	ClampMSS   // set TCP MSS on SYNs to the route's MTU, then continue
)

// Verdict is a rule's final statement.
type Verdict struct {
	Kind  VerdictKind
	Chain string
	Port  uint16
}

// FRule is one rule of a chain: every set field must match.
type FRule struct {
	Family   Family
	IIF, OIF string
	Src, Dst netip.Prefix
	// GREv0 matches GRE version 0 only (RFC 2784: the low 3 bits of
	// the header's second byte are zero), not PPTP's enhanced GRE,
	// version 1 (RFC 2637), which Linux hands to pptp, never to a gre
	// tunnel. It is a raw match of the transport header, by itself no
	// match of protocol 47: the rule names that with L4Proto.
	GREv0 bool
	// L4Proto is the transport (meta l4proto) protocol; 0 matches any.
	L4Proto uint8
	// DPort is the transport destination port; 0 matches any.
	DPort uint16
	// CtEstablished matches conntrack states established and related.
	CtEstablished bool
	// Counter counts matching packets and bytes.
	Counter bool
	Verdict Verdict
}

// String renders the rule the way `nft list ruleset` would show it. The
// text is also the rule's identity: the kernel seam tags each rule with it.
func (r FRule) String() string { return string(r.appendText(make([]byte, 0, 96))) }

// appendText appends String's text to b.
func (r FRule) appendText(b []byte) []byte {
	start := len(b)
	word := func(s string) []byte {
		if len(b) > start {
			b = append(b, ' ')
		}
		return append(b, s...)
	}
	if r.Family != FamilyAny && !r.Src.IsValid() && !r.Dst.IsValid() {
		b = append(word("meta nfproto "), r.Family.nfproto()...)
	}
	if r.IIF != "" {
		b = strconv.AppendQuote(word("iifname "), r.IIF)
	}
	if r.OIF != "" {
		b = strconv.AppendQuote(word("oifname "), r.OIF)
	}
	if r.Src.IsValid() {
		b = appendPrefix(append(word(ipKeyword(r.Src.Addr())), " saddr "...), r.Src)
	}
	if r.Dst.IsValid() {
		b = appendPrefix(append(word(ipKeyword(r.Dst.Addr())), " daddr "...), r.Dst)
	}
	if r.GREv0 {
		// Before meta l4proto, as nft lists it: nft 1.0.6 aborts
		// listing a masked @th match that follows meta l4proto 47
		// (an assertion in payload_expr_complete), and so would
		// `nft list ruleset` on the router.
		b = word("@th,8,8 & 0x7 == 0x0")
	}
	if r.L4Proto != 0 {
		b = append(word("meta l4proto "), ProtoName(r.L4Proto)...)
	}
	if r.DPort != 0 {
		b = strconv.AppendUint(word("th dport "), uint64(r.DPort), 10)
	}
	if r.CtEstablished {
		b = word("ct state established,related")
	}
	if r.Verdict.Kind == ClampMSS {
		b = word("tcp flags syn / syn,rst")
	}
	if r.Counter {
		b = word("counter")
	}
	if r.Verdict.Kind == Jump {
		return append(word("jump "), r.Verdict.Chain...)
	}
	return word(r.Verdict.String())
}

// String renders the verdict statement.
func (v Verdict) String() string {
	switch v.Kind {
	case Accept:
		return "accept"
	case Drop:
		return "drop"
	case Return:
		return "return"
	case Jump:
		return "jump " + v.Chain
	case Masquerade:
		return "masquerade"
	case Redirect:
		return fmt.Sprintf("redirect to :%d", v.Port)
	case ClampMSS:
		return "tcp option maxseg size set rt mtu"
	}
	return fmt.Sprintf("verdict(%d)", v.Kind)
}

func (f Family) nfproto() string {
	if f == FamilyV6 {
		return "ipv6"
	}
	return "ipv4"
}

func ipKeyword(a netip.Addr) string {
	if a.Is4() {
		return "ip"
	}
	return "ip6"
}

// appendPrefix appends p as nft prints it: a full-length prefix as the
// bare address.
func appendPrefix(b []byte, p netip.Prefix) []byte {
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().AppendTo(b)
	}
	return p.AppendTo(b)
}

// ProtoName is how a rule names an IP protocol number for nft: by one of
// nft's own keywords (icmp, tcp, udp, icmpv6), else by the number. nft
// looks any other name up in /etc/protocols, which a minimal system may
// lack: a printed plan naming "ipv6" (41) or "gre" (47) was refused there
// ("Could not resolve protocol name", TestPastedPlan in the amd64 VM).
// Besides, /etc/protocols calls 4 "ipencap" and 94 "ipip".
func ProtoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "icmpv6"
	}
	return fmt.Sprint(p)
}

// String renders the whole table as an nft script body (for a table read
// back from the kernel, its canonical text). Each rule carries its Tag as
// its comment, as tunneld installs it: the script, loaded with nft -f,
// is the table tunneld would write, and reads back as no drift.
func (f *Filter) String() string {
	if f.Observed != "" {
		return f.Observed
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", TableName)
	for i, c := range f.Chains {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "\tchain %s {\n", c.Name)
		if c.Hook != "" {
			fmt.Fprintf(&b, "\t\ttype %s hook %s priority %d; policy accept;\n", c.Type, c.Hook, c.Priority)
		}
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "\t\t%s comment \"%s\"\n", r, r.Tag())
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// Equal reports whether two tables have the same chains and rules.
func (f *Filter) Equal(g *Filter) bool {
	if f == nil || g == nil {
		return f == g
	}
	return f.Canonical() == g.Canonical()
}

// MaxTag is the longest rule tag: nft refuses a longer comment
// (NFTNL_UDATA_COMMENT_MAXLEN), so a table printed by String, or listed
// by nft, could not be loaded back. (The kernel's NFTA_RULE_USERDATA
// would take up to 254 bytes.)
const MaxTag = 128

// Tag is the identity the kernel seam stores with a rule (as an nft
// comment): its text without double quotes (nft cannot read a comment
// holding them back), or for an over-long rule a prefix plus a hash.
func (r FRule) Tag() string { return string(r.appendTag(make([]byte, 0, 96))) }

// appendTag appends Tag's text to b.
func (r FRule) appendTag(b []byte) []byte {
	start := len(b)
	b = r.appendText(b)
	n := start
	for _, c := range b[start:] {
		if c != '"' {
			b[n] = c
			n++
		}
	}
	b = b[:n]
	if n-start <= MaxTag {
		return b
	}
	h := fnv.New64a()
	h.Write(b[start:])
	return fmt.Appendf(b[:start+MaxTag-18], " #%016x", h.Sum64())
}

// ChainHeader is the canonical one-line description of a chain.
func (c Chain) ChainHeader() string { return string(c.appendHeader(nil)) }

func (c Chain) appendHeader(b []byte) []byte {
	b = append(append(b, "chain "...), c.Name...)
	if c.Hook == "" {
		return b
	}
	b = append(append(b, " type "...), c.Type...)
	b = append(append(b, " hook "...), c.Hook...)
	return strconv.AppendInt(append(b, " priority "...), int64(c.Priority), 10)
}

// Canonical is the table as compared with the kernel's: one line per
// chain header and per rule tag, chains in order.
func (f *Filter) Canonical() string {
	if f.Observed != "" {
		return f.Observed
	}
	n := 0
	for _, c := range f.Chains {
		n += 1 + len(c.Rules)
	}
	b := make([]byte, 0, 64*n)
	for _, c := range f.Chains {
		b = append(c.appendHeader(b), '\n')
		for _, r := range c.Rules {
			b = append(r.appendTag(append(b, '\t')), '\n')
		}
	}
	return string(b)
}
