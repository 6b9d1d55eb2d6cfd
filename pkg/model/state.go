package model

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// State is a set of kernel objects owned by tunneld: what the configuration
// wants (desired) or what the kernel has (observed). Slices are kept sorted
// by each object's key (see Sort) so that states compare with cmp.Diff.
type State struct {
	Links   []Link
	Addrs   []Addr
	Routes  []Route
	Rules   []Rule
	Sysctls []Sysctl
	// Filter is the content of the nftables table; nil means no table.
	Filter *Filter
}

// Link is a tunnel network device.
type Link struct {
	Name string
	Mode Mode
	// Local and Remote are the outer addresses; the zero Addr means any.
	Local, Remote netip.Addr
	// Dev is the underlay device the tunnel is bound to ("" for none).
	Dev string
	// TTL is the outer TTL or hop limit; 0 means inherit.
	TTL uint8
	// TOS is the outer TOS as the kernel holds it: 1 means inherit.
	TOS uint8
	// PMTUDisc is path-MTU discovery (the DF bit on outer packets).
	PMTUDisc bool
	// IKey and OKey are GRE keys, present when HasIKey / HasOKey.
	IKey, OKey       uint32
	HasIKey, HasOKey bool
	// EncapLimit is the ip6tnl encapsulation limit; -1 means none.
	EncapLimit int
	// Others are the parameters tunneld does not configure, as the
	// kernel holds them.
	Others OtherParams
	// MTU of the tunnel device.
	MTU int
	// Up is the administrative state.
	Up bool
	// Unmarked is set on an observed tunnel that lacks tunneld's alias
	// (LinkAlias) and is tunneld's only as the tunnel it was creating
	// (the kernel seam's record of them): a process stopped between
	// creating the tunnel and writing the alias leaves one. The desired
	// state never sets it.
	Unmarked bool `json:",omitempty"`
}

// OtherParams are the tunnel parameters tunneld does not configure.
// It creates and changes every tunnel with the zero value, so anything
// else the kernel holds was set by hand (ip tunnel change, ip link set
// NAME type KIND …): drift, which a change in place undoes.
type OtherParams struct {
	// AnyProto is an ipip6 or ip6ip6 tunnel whose inner protocol is
	// any (ip's mode any, IFLA_IPTUN_PROTO 0): it carries IPv4 and
	// IPv6 both, whatever its mode.
	AnyProto bool
	// FlowLabel is an ipip6 or ip6ip6 tunnel's fixed outer flow label
	// (ip's flowlabel).
	FlowLabel uint32
	// FlowLabelInherit, DSCPInherit, FwMarkInherit, AllowLocalRemote
	// and MIP6 are the flags of an ipip6 or ip6ip6 tunnel besides
	// those EncapLimit and TOS stand for (IP6_TNL_F_*: ip's flowlabel
	// inherit, dscp inherit, fwmark inherit, allow-localremote; mip6,
	// which only Mobile IPv6 daemons set).
	FlowLabelInherit, DSCPInherit, FwMarkInherit, AllowLocalRemote, MIP6 bool
	// ICsum, OCsum, ISeq and OSeq are a gre tunnel's checksums and
	// sequence numbers, received and sent (ip's icsum, ocsum, iseq and
	// oseq; csum and seq are both).
	ICsum, OCsum, ISeq, OSeq bool
	// IgnoreDF is a gre tunnel's ignore-df (it fragments outer packets
	// whatever the inner one's DF); the kernel refuses pmtudisc while
	// it is set, even in the change that clears it.
	IgnoreDF bool
	// FwMark is the mark of the outer packets' route lookup (ip's
	// fwmark).
	FwMark uint32
	// Encap is the tunnel's UDP encapsulation (ip's encap fou|gue).
	Encap Encap
}

// Encap is a tunnel's UDP encapsulation (TUNNEL_ENCAP_*): its type (1
// FOU, 2 GUE; the zero Encap is none), flags and ports.
type Encap struct {
	Type, Flags, SPort, DPort uint16
}

// SameTunnel reports whether the kernel takes l and o for one tunnel,
// and so refuses to hold both (EEXIST): one kind, local and remote, and
// but for ip6tnl (which looks at the addresses only) the same underlay
// device and GRE input key. Their names are not compared.
func (l Link) SameTunnel(o Link) bool {
	if l.Mode.Kind() != o.Mode.Kind() || l.Local != o.Local || l.Remote != o.Remote {
		return false
	}
	return l.Mode.OuterIPv6() || l.Dev == o.Dev && l.HasIKey == o.HasIKey && (!l.HasIKey || l.IKey == o.IKey)
}

// SameAs reports whether l and o are one tunnel as tunneld makes it:
// SameTunnel, of one mode (and, for sit, one inner protocol: not any),
// with the same GRE keys both ways. Their names and other parameters
// are not compared.
func (l Link) SameAs(o Link) bool {
	return l.Mode == o.Mode && l.Others.AnyProto == o.Others.AnyProto && l.SameTunnel(o) &&
		l.HasIKey == o.HasIKey && l.IKey == o.IKey && l.HasOKey == o.HasOKey && l.OKey == o.OKey
}

// Params returns l without the fields a kernel change cannot reach in place
// (none besides the name and mode), without Up and without Unmarked, for
// comparing parameters.
func (l Link) Params() Link {
	l.Up, l.Unmarked = false, false
	return l
}

// ID names the link for messages.
func (l Link) ID() string { return fmt.Sprintf("tunnel %q", l.Name) }

// Addr is an interface address on a tunnel device: Prefix is the local
// address with its prefix length; Peer, when valid, is the other end of a
// point-to-point link (`ip address add A/32 peer B`).
type Addr struct {
	Link   string
	Prefix netip.Prefix
	Peer   netip.Addr
}

// ID names the address for messages.
func (a Addr) ID() string {
	if a.Peer.IsValid() {
		return fmt.Sprintf("address %s peer %s dev %s", a.Prefix, a.Peer, a.Link)
	}
	return fmt.Sprintf("address %s dev %s", a.Prefix, a.Link)
}

// Route is a route tunneld owns (it carries RouteProtocol).
type Route struct {
	Table uint32
	Dst   netip.Prefix
	// Via is the gateway; the zero Addr means a direct (scope link) route.
	Via    netip.Addr
	Dev    string
	OnLink bool
	Metric uint32
	// Src is the preferred source address (RTA_PREFSRC).
	Src netip.Addr
	// Type is unicast (the zero value) or a type that drops what it
	// matches; those have no Via, Dev, OnLink or Src.
	Type RouteType
}

// RouteType is a route's type (rtm_type): unicast forwards; unreachable
// and prohibit drop with an ICMP error (host unreachable,
// administratively prohibited); blackhole drops silently.
type RouteType uint8

// The route types tunneld configures; unicast is the zero value.
const (
	RouteUnicast RouteType = iota
	RouteUnreachable
	RouteBlackhole
	RouteProhibit
)

var routeTypeNames = [...]string{"unicast", "unreachable", "blackhole", "prohibit"}

// String is the type's name in ip-route(8) and the configuration.
func (t RouteType) String() string {
	if int(t) < len(routeTypeNames) {
		return routeTypeNames[t]
	}
	return fmt.Sprintf("type%d", uint8(t))
}

// ParseRouteType reads a type's name.
func ParseRouteType(s string) (RouteType, bool) {
	for i, n := range routeTypeNames {
		if n == s {
			return RouteType(i), true
		}
	}
	return 0, false
}

// Key is what makes a route unique in the kernel: table, destination and
// metric (family is part of the destination).
type RouteKey struct {
	Table  uint32
	Dst    netip.Prefix
	Metric uint32
}

// Key returns the route's identity.
func (r Route) Key() RouteKey { return RouteKey{r.Table, r.Dst, r.Metric} }

// ID names the route for messages.
func (r Route) ID() string {
	s := fmt.Sprintf("route %s table %s", r.Dst, TableWord(r.Table))
	if r.Metric != 0 {
		s += fmt.Sprintf(" metric %d", r.Metric)
	}
	return s
}

// Rule is a policy routing rule tunneld owns (it carries RuleProtocol and a
// priority in the owned band). Family is 4 or 6.
type Rule struct {
	Family   int
	Priority uint32
	Src, Dst netip.Prefix
	IIF, OIF string
	// Mark and Mask match the firewall mark when HasMark.
	Mark, Mask uint32
	HasMark    bool
	Table      uint32
	// Extra is set on an observed rule of tunneld's protocol in its band
	// that carries what tunneld's rules never do: a selector or setting
	// such as `ipproto 6`, `uidrange 0-0`, `suppress_prefixlength 0` or
	// `not` (someone narrowed tunneld's rule). It holds ip-rule(8) words,
	// as the kernel seam names them; a word that starts with '#' is
	// one ip(8) has no name for (`#attr:30`, a netlink attribute).
	// Desired rules have none, so such a rule never stands for one of
	// them: the plan adds tunneld's rule and deletes it.
	Extra string `json:",omitempty"`
	// Wire is the kernel seam's own record of what Extra names (the
	// Linux seam's: the rule's header fields and netlink attributes as
	// the kernel reported them), sent with a deletion so that the
	// kernel, which deletes the first rule a request matches, deletes
	// exactly this rule and not tunneld's beside it.
	Wire string `json:"-"`
}

// ID names the rule for messages.
func (r Rule) ID() string { return fmt.Sprintf("rule priority %d", r.Priority) }

// ruleActions are ip-rule(8)'s words for the actions a rule can have
// besides tunneld's lookup (FR_ACT_TO_TBL, 1), by the kernel's FR_ACT_*
// number.
var ruleActions = [...]string{2: "goto", 3: "nop", 6: "blackhole", 7: "unreachable", 8: "prohibit"}

// RuleActionWord names a rule's action other than a lookup as ip(8)
// does ("" for a lookup or a number ip(8) has no word for).
func RuleActionWord(action uint8) string {
	if int(action) < len(ruleActions) {
		return ruleActions[action]
	}
	return ""
}

// IsRuleAction reports whether an Extra word is an action other than a
// lookup: such a rule has no table.
func IsRuleAction(w string) bool {
	return w != "" && slices.Contains(ruleActions[:], w)
}

// Sysctl is one value under /proc/sys that tunneld sets. Path uses slashes
// relative to /proc/sys (net/ipv4/ip_forward).
type Sysctl struct {
	Path  string
	Value string
	// Original is the value found before tunneld first changed it, as
	// recorded by the kernel seam; empty in desired states.
	Original string
	// Ours are the values, as recorded by the kernel seam, that mean no
	// one else has changed the sysctl since tunneld did: the value
	// tunneld last wrote or, for a copy of a forwarding sysctl (see
	// SysctlLeader), the value the kernel copied onto it from that
	// write. Nil when the record does not say (an older version wrote
	// it): the original is put back whatever the value.
	Ours []string
}

// ChangedByOthers reports whether s has a value that is not one tunneld
// left it at: someone else wrote it since.
func (s Sysctl) ChangedByOthers() bool {
	return s.Value != "" && s.Ours != nil && !slices.Contains(s.Ours, s.Value)
}

// End is the value a recorded sysctl no longer wanted is to end with: its
// original, or the value it has when someone else changed it since.
func (s Sysctl) End() string {
	if s.ChangedByOthers() {
		return s.Value
	}
	return s.Original
}

// ID names the sysctl for messages.
func (s Sysctl) ID() string { return "sysctl " + SysctlName(s.Path) }

// SysctlName is a sysctl's path as sysctl(8) writes it: dotted
// (net.ipv4.ip_forward), or with slashes when a part has a dot of its own
// (a device like lan.5).
func SysctlName(path string) string {
	parts := strings.Split(path, "/")
	for _, p := range parts {
		if strings.Contains(p, ".") {
			return path
		}
	}
	return strings.Join(parts, ".")
}
