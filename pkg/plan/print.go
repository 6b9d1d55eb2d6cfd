package plan

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/tunneld/tunneld/pkg/model"
)

// String prints the plan one command per line, as iproute2, sysctl and nft
// commands an admin could type to do the same by hand.
func (p Plan) String() string {
	var b strings.Builder
	for _, op := range p.Ops {
		b.WriteString(op.Command(p.Tables))
		b.WriteString("\n")
	}
	return b.String()
}

// Command renders one operation; tables names routing tables.
func (o Op) Command(tables map[uint32]string) string {
	switch o.Kind {
	case LinkAdd:
		// As the Linux seam creates one: marked with tunneld's alias,
		// so that a pasted plan makes tunnels tunneld owns; and an
		// ipip6 one without an IPv6 link-local address of its own,
		// whose packets it would drop as transmit errors.
		cmd := "ip link add " + linkArgs(*o.Link) + "\nip link set " + model.LinkArg(o.Link.Name) + " alias " + model.LinkAlias
		if o.Link.Mode == model.ModeIPIP6 {
			cmd += "\nip link set " + model.LinkArg(o.Link.Name) + " addrgenmode none"
		}
		return cmd
	case LinkChange:
		return "ip link change " + linkArgs(*o.Link) + undoOthers(o.Old, o.Link)
	case LinkMark:
		return "ip link set " + model.LinkArg(o.Link.Name) + " alias " + model.LinkAlias
	case LinkUp:
		return "ip link set " + model.LinkArg(o.Name) + " up"
	case LinkDown:
		return "ip link set " + model.LinkArg(o.Name) + " down"
	case LinkDel:
		return "ip link del " + model.LinkArg(o.Link.Name)
	case AddrAdd:
		return "ip address add " + addrArgs(*o.Addr)
	case AddrDel:
		return "ip address del " + addrArgs(*o.Addr)
	case RouteAdd:
		return routeCmd("add", *o.Route, tables)
	case RouteReplace:
		return routeCmd("replace", *o.Route, tables)
	case RouteDel:
		return routeCmd("del", *o.Route, tables)
	case RuleAdd:
		return "ip " + ruleArgs("add", *o.Rule, tables)
	case RuleDel:
		return "ip " + ruleArgs("del", *o.Rule, tables)
	case SysctlSet:
		return fmt.Sprintf("sysctl -w %s=%s", model.SysctlName(o.Sysctl.Path), o.Sysctl.Value)
	case SysctlRestore:
		if o.DeviceGone {
			return fmt.Sprintf("# %s went with %s: nothing to put back", model.SysctlName(o.Sysctl.Path), model.SysctlDevice(o.Sysctl.Path))
		}
		return restoreCmd(*o.Sysctl, o.From)
	case SysctlKeep:
		if l := model.SysctlLeader(o.Sysctl.Path); l != "" && o.Sysctl.Original == "" {
			// An interface tunneld has no record of: it appeared since.
			return fmt.Sprintf("# %s was set by someone else since %s was written: left at %s", model.SysctlName(o.Sysctl.Path), model.SysctlName(l), o.Sysctl.Value)
		}
		return fmt.Sprintf("# %s was changed by someone else: left at %s", model.SysctlName(o.Sysctl.Path), o.Sysctl.Value)
	case FilterReplace:
		return fmt.Sprintf("nft -f - <<'EOF'\ntable inet %s\ndelete table inet %s\n%sEOF", model.TableName, model.TableName, o.Filter)
	case FilterDel:
		return "nft delete table inet " + model.TableName
	}
	return fmt.Sprintf("# unknown operation %d", o.Kind)
}

// restoreCmd prints the write of a sysctl's value back. For a copy of a
// forwarding sysctl (see model.SysctlLeader) it says which value: the one
// before tunneld wrote the forwarding sysctl, the one someone else set
// since, which the forwarding sysctl's restore overwrote, or, for an
// interface that appeared since (from is "default"'s forwarding), the one
// "default" ends with.
func restoreCmd(s model.Sysctl, from string) string {
	if s.Value == "" {
		// Observed without a value: the file went with its device, and
		// there is nothing to write, only a record to forget.
		return fmt.Sprintf("# %s is gone with its device: its original %s is forgotten", model.SysctlName(s.Path), s.Original)
	}
	cmd := fmt.Sprintf("sysctl -w %s=%s  # ", model.SysctlName(s.Path), s.Original)
	leader := model.SysctlLeader(s.Path)
	switch {
	case leader == "":
		return cmd + "original value"
	case s.ChangedByOthers():
		return cmd + "as someone else set it, which restoring " + model.SysctlName(leader) + " overwrote"
	case from != "":
		return cmd + "as " + model.SysctlName(from) + ", whose value it took when it appeared after " + model.SysctlName(leader) + " was written"
	}
	return cmd + "as before " + model.SysctlName(leader) + " was written"
}

func linkArgs(l model.Link) string {
	a := []string{model.LinkArg(l.Name), "mtu", fmt.Sprint(l.MTU), "type", l.Mode.Kind()}
	switch l.Mode {
	case model.ModeIPIP6:
		a = append(a, "mode", "ipip6")
	case model.ModeIP6IP6:
		a = append(a, "mode", "ip6ip6")
	}
	a = append(a, "local", addrOrAny(l.Local), "remote", addrOrAny(l.Remote))
	if l.Dev != "" {
		a = append(a, "dev", l.Dev)
	}
	if l.HasIKey {
		a = append(a, "ikey", fmt.Sprint(l.IKey))
	}
	if l.HasOKey {
		a = append(a, "okey", fmt.Sprint(l.OKey))
	}
	if l.Mode.OuterIPv6() {
		a = append(a, "hoplimit", fmt.Sprint(l.TTL))
		if l.EncapLimit < 0 {
			a = append(a, "encaplimit", "none")
		} else {
			a = append(a, "encaplimit", fmt.Sprint(l.EncapLimit))
		}
		if l.TOS == 1 {
			a = append(a, "tclass", "inherit")
		} else if l.TOS != 0 {
			a = append(a, "tclass", fmt.Sprintf("0x%02x", l.TOS))
		}
		return strings.Join(a, " ")
	}
	if l.TTL == 0 {
		a = append(a, "ttl", "inherit")
	} else {
		a = append(a, "ttl", fmt.Sprint(l.TTL))
	}
	if l.TOS == 1 {
		a = append(a, "tos", "inherit")
	} else if l.TOS != 0 {
		a = append(a, "tos", fmt.Sprintf("0x%02x", l.TOS))
	}
	if l.PMTUDisc {
		a = append(a, "pmtudisc")
	} else {
		a = append(a, "nopmtudisc")
	}
	return strings.Join(a, " ")
}

// undoOthers is what a change needs besides the wanted link's arguments
// to undo the parameters tunneld does not configure (model.OtherParams)
// that old has and want has not: ip carries a tunnel's current values
// over into `ip link change`. Those ip has no word to clear are named in
// a comment (the change tunneld sends clears them all the same): an
// ip6tnl's dscp inherit and mip6, gre's checksums and sequence numbers.
// An ip6tnl's mode any needs nothing: the arguments name the mode.
func undoOthers(old, want *model.Link) string {
	if old == nil {
		return ""
	}
	o, w := old.Others, want.Others
	var a, cannot []string
	if o.FlowLabel != w.FlowLabel || o.FlowLabelInherit && !w.FlowLabelInherit {
		a = append(a, "flowlabel", fmt.Sprintf("0x%05x", w.FlowLabel))
	}
	if o.FwMark != w.FwMark || o.FwMarkInherit && !w.FwMarkInherit {
		a = append(a, "fwmark", fmt.Sprint(w.FwMark))
	}
	if o.AllowLocalRemote && !w.AllowLocalRemote {
		a = append(a, "noallow-localremote")
	}
	if o.Encap != w.Encap && w.Encap == (model.Encap{}) {
		a = append(a, "noencap")
	}
	if o.IgnoreDF && !w.IgnoreDF {
		a = append(a, "noignore-df")
	}
	for _, f := range []struct {
		old, want bool
		word      string
	}{
		{o.DSCPInherit, w.DSCPInherit, "dscp inherit"}, {o.MIP6, w.MIP6, "mip6"},
		{o.ICsum, w.ICsum, "icsum"}, {o.OCsum, w.OCsum, "ocsum"}, {o.ISeq, w.ISeq, "iseq"}, {o.OSeq, w.OSeq, "oseq"},
	} {
		if f.old && !f.want {
			cannot = append(cannot, f.word)
		}
	}
	s := ""
	if len(a) > 0 {
		s = " " + strings.Join(a, " ")
	}
	if len(cannot) > 0 {
		s += "  # also clears " + strings.Join(cannot, ", ") + ", which ip cannot"
	}
	return s
}

func addrOrAny(a interface {
	IsValid() bool
	String() string
}) string {
	if !a.IsValid() {
		return "any"
	}
	return a.String()
}

func addrArgs(a model.Addr) string {
	if a.Peer.IsValid() {
		return fmt.Sprintf("%s peer %s dev %s", a.Prefix.Addr(), a.Peer, a.Link)
	}
	return fmt.Sprintf("%s dev %s", a.Prefix, a.Link)
}

// tableArg is a table as the command names it: by number, which ip(8)
// reads without a line for the table's name in /etc/iproute2/rt_tables,
// a file tunneld neither needs nor writes (a printed `ip route add …
// table vpn`, pasted into a shell, was refused); main, local and default
// by name, which ip(8) knows.
func tableArg(n uint32) string {
	switch n {
	case model.TableMain:
		return "main"
	case model.TableLocal:
		return "local"
	case model.TableDefault:
		return "default"
	}
	return fmt.Sprint(n)
}

// tableComment names the table of a command that gives it by number, for
// the reader, after it: "  # table vpn"; "" for a table without a name
// or one ip(8) knows.
func tableComment(n uint32, tables map[uint32]string) string {
	name, ok := tables[n]
	if !ok || tableArg(n) == name {
		return ""
	}
	return "  # table " + name
}

// routeCmd prints a route operation. An IPv6 default route needs -6
// before the object (`ip -6 route add default …`): ip(8) reads "default"
// as IPv4 otherwise, and refuses "-6" after "route add".
func routeCmd(verb string, r model.Route, tables map[uint32]string) string {
	ip := "ip "
	if r.Dst.Bits() == 0 && r.Dst.Addr().Is6() {
		ip = "ip -6 "
	}
	return ip + "route " + verb + " " + routeArgs(r, tables)
}

func routeArgs(r model.Route, tables map[uint32]string) string {
	a := []string{}
	if r.Type != model.RouteUnicast {
		a = append(a, r.Type.String())
	}
	if r.Dst.Bits() == 0 {
		a = append(a, "default")
	} else {
		a = append(a, prefix(r.Dst))
	}
	if r.Via.IsValid() {
		a = append(a, "via", r.Via.String())
	}
	if r.Dev != "" {
		a = append(a, "dev", r.Dev)
	}
	if r.OnLink {
		a = append(a, "onlink")
	}
	if r.Src.IsValid() {
		a = append(a, "src", r.Src.String())
	}
	if r.Metric != 0 {
		a = append(a, "metric", fmt.Sprint(r.Metric))
	}
	a = append(a, "table", tableArg(r.Table), "proto", fmt.Sprint(model.RouteProtocol))
	return strings.Join(a, " ") + tableComment(r.Table, tables)
}

// RuleCommand prints the ip(8) command that adds or deletes (verb "add"
// or "del") the rule r of tunneld's protocol, with every selector r
// has, as a plan does: `ip rule del from 10.0.0.1 lookup 42 priority
// 25000 protocol 116`. A warning about a rule tunneld leaves alone
// gives the admin that rule's deletion by it.
func RuleCommand(verb string, r model.Rule) string {
	return "ip " + ruleArgs(verb, r, nil)
}

func ruleArgs(verb string, r model.Rule, tables map[uint32]string) string {
	a := []string{"rule", verb}
	if r.Family == 6 {
		a = []string{"-6", "rule", verb}
	}
	if r.Src.IsValid() {
		a = append(a, "from", prefix(r.Src))
	}
	if r.Dst.IsValid() {
		a = append(a, "to", prefix(r.Dst))
	}
	if r.IIF != "" {
		a = append(a, "iif", r.IIF)
	}
	if r.OIF != "" {
		a = append(a, "oif", r.OIF)
	}
	if r.HasMark {
		m := fmt.Sprintf("0x%x", r.Mark)
		// ip(8) gives a mark of 0 without a mask the kernel's mask 0
		// (every packet), so that one prints its mask.
		if r.Mask != 0xffffffff || r.Mark == 0 {
			m += fmt.Sprintf("/0x%x", r.Mask)
		}
		a = append(a, "fwmark", m)
	}
	// What someone narrowed one of tunneld's rules with (model.Rule.Extra):
	// the deletion names it, so that ip(8), as the kernel seam, deletes
	// that rule and not tunneld's beside it; what ip(8) has no words for
	// is said in a comment.
	var unnamed []string
	lookup := true
	action := ""
	for _, w := range strings.Fields(r.Extra) {
		switch {
		case strings.HasPrefix(w, "#action:"):
			action = w[len("#action:"):]
			continue
		case strings.HasPrefix(w, "#"):
			unnamed = append(unnamed, w[1:])
			continue
		case model.IsRuleAction(w):
			// Another action than tunneld's lookup, which the
			// rule then has no table for.
			lookup = false
		}
		a = append(a, w)
	}
	if lookup {
		a = append(a, "lookup", tableArg(r.Table))
	}
	a = append(a, "priority", fmt.Sprint(r.Priority), "protocol", fmt.Sprint(model.RuleProtocol))
	s := strings.Join(a, " ") + tableComment(r.Table, tables)
	if len(unnamed) > 0 {
		s = commented(s, "the rule has selectors tunneld does not write ("+strings.Join(unnamed, " ")+")")
	}
	if action != "" {
		// The kernel matches a deletion's action only where it names one.
		s = commented(s, "the rule's action "+action+" has no ip(8) word (a deprecated nat rule's, shown as masquerade or map-to): the command names none, and deletes the rule whatever its action")
	}
	return s
}

// commented adds note to the comment that ends the command s, or begins
// one.
func commented(s, note string) string {
	if strings.Contains(s, "#") {
		return s + "; " + note
	}
	return s + "  # " + note
}

// prefix prints a host prefix as a bare address, as ip(8) does.
func prefix(p netip.Prefix) string {
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().String()
	}
	return p.String()
}
