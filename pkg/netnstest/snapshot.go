package netnstest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Snapshot describes everything in the calling thread's network namespace
// that tunneld could touch — links, addresses, routes of every table,
// policy rules (raw), nftables tables, chains and rule handles, and the
// forwarding (every interface's too) and proxy ARP sysctls — as text, to
// compare before and after.
// Counters and timers are left out; nothing else is.
func Snapshot() (string, error) {
	var b strings.Builder
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		return "", err
	}
	defer c.Close()
	links, err := c.Link.List()
	if err != nil {
		return "", err
	}
	for _, m := range links {
		a := m.Attributes
		kind, alias := "", ""
		if a.Info != nil {
			kind = a.Info.Kind
		}
		if a.Alias != nil {
			alias = *a.Alias
		}
		fmt.Fprintf(&b, "link %d %s kind %q alias %q flags %#x mtu %d\n", m.Index, a.Name, kind, alias, m.Flags&(unix.IFF_UP|unix.IFF_NOARP|unix.IFF_POINTOPOINT), a.MTU)
	}
	addrs, err := c.Address.List()
	if err != nil {
		return "", err
	}
	// The kernel adds IPv6 link-local addresses (and their local routes)
	// by itself, seconds after a device comes up: they are not state
	// tunneld could touch, and would make snapshots depend on timing.
	kernelMade := func(ip net.IP) bool {
		return ip != nil && (ip.IsLinkLocalUnicast() && ip.To4() == nil || ip.IsMulticast())
	}
	var lines []string
	for _, a := range addrs {
		if kernelMade(a.Attributes.Address) {
			continue
		}
		lines = append(lines, fmt.Sprintf("addr %d %s local %s/%d scope %d", a.Index, a.Attributes.Address, a.Attributes.Local, a.PrefixLength, a.Scope))
	}
	routes, err := c.Route.List()
	if err != nil {
		return "", err
	}
	for _, r := range routes {
		a := r.Attributes
		if kernelMade(a.Dst) {
			continue
		}
		lines = append(lines, fmt.Sprintf("route table %d %s/%d via %s oif %d proto %d type %d scope %d metric %d src %s", a.Table, a.Dst, r.DstLength, a.Gateway, a.OutIface, r.Protocol, r.Type, r.Scope, a.Priority, a.Src))
	}
	slices.Sort(lines)
	b.WriteString(strings.Join(lines, "\n") + "\n")
	rules, err := rawRules()
	if err != nil {
		return "", err
	}
	b.WriteString(rules)
	if err := nftSnapshot(&b); err != nil {
		fmt.Fprintf(&b, "nftables: %v\n", err)
	}
	paths := []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"}
	for _, g := range []string{"/proc/sys/net/ipv4/conf/*/proxy_arp", "/proc/sys/net/ipv4/conf/*/forwarding", "/proc/sys/net/ipv6/conf/*/forwarding"} {
		more, _ := filepath.Glob(g)
		paths = append(paths, more...)
	}
	for _, p := range paths {
		v, _ := os.ReadFile(p)
		fmt.Fprintf(&b, "%s=%s", p, v)
	}
	return b.String(), nil
}

// rawRules dumps the policy rules of both families as bytes.
func rawRules() (string, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return "", err
	}
	defer c.Close()
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETRULE, Flags: netlink.Request | netlink.Dump},
		Data:   make([]byte, 12),
	})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "rule %x\n", m.Data)
	}
	return b.String(), nil
}

func nftSnapshot(b *strings.Builder) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	tables, err := c.ListTables()
	if err != nil {
		return err
	}
	for _, t := range tables {
		fmt.Fprintf(b, "nft table %d %s flags %d\n", t.Family, t.Name, t.Flags)
		chains, err := c.ListChainsOfTableFamily(t.Family)
		if err != nil {
			return err
		}
		for _, ch := range chains {
			if ch.Table.Name != t.Name {
				continue
			}
			var hook, prio string
			if ch.Hooknum != nil {
				hook = fmt.Sprint(*ch.Hooknum)
			}
			if ch.Priority != nil {
				prio = fmt.Sprint(*ch.Priority)
			}
			fmt.Fprintf(b, "nft chain %s hook %s prio %s type %s\n", ch.Name, hook, prio, ch.Type)
			rules, err := c.GetRules(t, ch)
			if err != nil {
				return err
			}
			for _, r := range rules {
				fmt.Fprintf(b, "nft rule %d exprs %d userdata %x\n", r.Handle, len(r.Exprs), r.UserData)
			}
		}
	}
	return nil
}
