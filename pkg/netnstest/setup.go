package netnstest

import (
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// AddAddr adds an address to a device (IPv6 without DAD).
func AddAddr(dev string, p netip.Prefix) error {
	return addrRequest(dev, p, true, false)
}

// AddAddrDAD adds an IPv6 address that goes through duplicate address
// detection, as SLAAC's and DHCPv6's do: tentative for a second, then
// usable, or failed (dadfailed) when another node on the link has it.
func AddAddrDAD(dev string, p netip.Prefix) error {
	return addrRequest(dev, p, true, true)
}

// DelAddr removes an address from a device.
func DelAddr(dev string, p netip.Prefix) error {
	return addrRequest(dev, p, false, false)
}

func addrRequest(dev string, p netip.Prefix, add, dad bool) error {
	ifc, err := net.InterfaceByName(dev)
	if err != nil {
		return err
	}
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		return err
	}
	defer c.Close()
	ip := net.IP(p.Addr().AsSlice())
	fam := uint8(unix.AF_INET)
	if p.Addr().Is6() {
		fam = unix.AF_INET6
	}
	m := &rtnetlink.AddressMessage{Family: fam, PrefixLength: uint8(p.Bits()), Index: uint32(ifc.Index),
		Attributes: &rtnetlink.AddressAttributes{Address: ip, Local: ip}}
	if !add {
		return c.Address.Delete(m)
	}
	if !dad {
		m.Flags, m.Attributes.Flags = unix.IFA_F_NODAD, unix.IFA_F_NODAD
	}
	if err := c.Address.New(m); err != nil {
		return err
	}
	if fam == unix.AF_INET6 && !dad && ifc.Flags&net.FlagUp != 0 {
		// The kernel adds the address's local route in a work item
		// after the address, also without DAD: a test that took the
		// namespace's routes just after it met it later (a snapshot
		// before and after a test differed by it).
		waitLocal(c, ip)
	}
	return nil
}

// waitLocal waits, up to two seconds, until the kernel routes ip as one of
// its own addresses.
func waitLocal(c *rtnetlink.Conn, ip net.IP) {
	for range 200 {
		rs, err := c.Route.Get(&rtnetlink.RouteMessage{Family: unix.AF_INET6, DstLength: 128, Attributes: rtnetlink.RouteAttributes{Dst: ip}})
		if err == nil && len(rs) > 0 && rs[0].Type == unix.RTN_LOCAL {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Route describes a route to add in a test.
type Route struct {
	Table  uint32
	Dst    netip.Prefix
	Via    netip.Addr
	Dev    string
	Proto  uint8
	Metric uint32
	// Expires, in seconds, is an IPv6 route's lifetime (a router
	// advertisement's default route has one); 0 for none.
	Expires uint32
}

// AddRoute adds a route (scope link when it has no gateway).
func AddRoute(r Route) error {
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		return err
	}
	defer c.Close()
	fam := uint8(unix.AF_INET)
	if r.Dst.Addr().Is6() {
		fam = unix.AF_INET6
	}
	m := &rtnetlink.RouteMessage{Family: fam, DstLength: uint8(r.Dst.Bits()), Protocol: r.Proto,
		Scope: unix.RT_SCOPE_UNIVERSE, Type: unix.RTN_UNICAST,
		Attributes: rtnetlink.RouteAttributes{Table: r.Table, Priority: r.Metric}}
	if r.Table < 256 {
		m.Table = uint8(r.Table)
	}
	if r.Dst.Bits() > 0 {
		m.Attributes.Dst = net.IP(r.Dst.Addr().AsSlice())
	}
	if r.Expires != 0 {
		m.Attributes.Expires = &r.Expires
	}
	if r.Via.IsValid() {
		m.Attributes.Gateway = net.IP(r.Via.AsSlice())
	} else if fam == unix.AF_INET {
		m.Scope = unix.RT_SCOPE_LINK
	}
	if r.Dev != "" {
		ifc, err := net.InterfaceByName(r.Dev)
		if err != nil {
			return err
		}
		m.Attributes.OutIface = uint32(ifc.Index)
	}
	return c.Route.Add(m)
}

// Rule describes a policy rule to add in a test.
type Rule struct {
	Family   uint8 // unix.AF_INET or unix.AF_INET6
	Priority uint32
	Table    uint32
	Proto    uint8
	Src      netip.Prefix
	Mark     uint32 // 0: none
	// Action is the rule's action (unix.FR_ACT_*); 0 is lookup Table
	// (FR_ACT_TO_TBL). Any other has no table.
	Action uint8
	// TOS and Flags are the header's tos and flags (FIB_RULE_INVERT is
	// `not`); Extra are further attributes, encoded, sent as they are
	// (a selector such as FRA_IP_PROTO, which the VMs' busybox ip lacks).
	TOS   uint8
	Flags uint32
	Extra []byte
}

// AddRule adds a "lookup TABLE" rule.
func AddRule(r Rule) error {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	return ruleRequest(c, unix.RTM_NEWRULE, netlink.Create|netlink.Excl, r)
}

// AddRuleOver adds the rule as AddRule does, over c (a socket opened in
// the namespace: it may be used from any thread).
func AddRuleOver(c *netlink.Conn, r Rule) error {
	return ruleRequest(c, unix.RTM_NEWRULE, netlink.Create|netlink.Excl, r)
}

// DelRule deletes the rule that matches r, as `ip rule del` does, over c
// (a socket opened in the namespace: it may be used from any thread).
func DelRule(c *netlink.Conn, r Rule) error { return ruleRequest(c, unix.RTM_DELRULE, 0, r) }

func ruleRequest(c *netlink.Conn, typ uint16, flags netlink.HeaderFlags, r Rule) error {
	ae := netlink.NewAttributeEncoder()
	if r.Src.IsValid() {
		ae.Bytes(unix.FRA_SRC, r.Src.Addr().AsSlice())
	}
	ae.Uint32(unix.FRA_PRIORITY, r.Priority)
	action := r.Action
	if action == 0 {
		action = unix.FR_ACT_TO_TBL
		ae.Uint32(unix.FRA_TABLE, r.Table)
	}
	if r.Mark != 0 {
		ae.Uint32(unix.FRA_FWMARK, r.Mark)
		ae.Uint32(unix.FRA_FWMASK, 0xffffffff)
	}
	ae.Uint8(unix.FRA_PROTOCOL, r.Proto)
	attrs, err := ae.Encode()
	if err != nil {
		return err
	}
	attrs = append(attrs, r.Extra...)
	hdr := make([]byte, 12)
	hdr[0], hdr[3], hdr[7] = r.Family, r.TOS, action
	if r.Src.IsValid() {
		hdr[2] = uint8(r.Src.Bits())
	}
	binary.NativeEndian.PutUint32(hdr[8:], r.Flags)
	_, err = c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(typ), Flags: netlink.Request | netlink.Acknowledge | flags},
		Data:   append(hdr, attrs...),
	})
	return err
}

// DelLink deletes a device.
func DelLink(dev string) error {
	ifc, err := net.InterfaceByName(dev)
	if err != nil {
		return err
	}
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Link.Delete(uint32(ifc.Index))
}
