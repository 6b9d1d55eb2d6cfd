package bench

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func ifindex(t *testing.T, c *netlink.Conn, name string) int {
	l, ok := findLink(t, c, name)
	if !ok {
		t.Fatalf("no device %s", name)
	}
	return int(l.Index)
}

// linkUp reports whether device name exists and is up.
func linkUp(t *testing.T, c *netlink.Conn, name string) bool {
	l, ok := findLink(t, c, name)
	return ok && l.Flags&unix.IFF_UP != 0
}

func findLink(t *testing.T, c *netlink.Conn, name string) (rtnetlink.LinkMessage, bool) {
	msgs, err := c.Execute(netlink.Message{Header: netlink.Header{Type: unix.RTM_GETLINK, Flags: netlink.Request | netlink.Dump}, Data: make([]byte, 16)})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		var l rtnetlink.LinkMessage
		if l.UnmarshalBinary(m.Data) == nil && l.Attributes != nil && l.Attributes.Name == name {
			return l, true
		}
	}
	return rtnetlink.LinkMessage{}, false
}

func addrReq(c *netlink.Conn, typ uint16, index int, prefix string) error {
	p := netip.MustParsePrefix(prefix)
	m := rtnetlink.AddressMessage{Family: unix.AF_INET, PrefixLength: uint8(p.Bits()), Index: uint32(index),
		Attributes: &rtnetlink.AddressAttributes{Address: p.Addr().AsSlice(), Local: p.Addr().AsSlice()}}
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	flags := netlink.Request | netlink.Acknowledge
	if typ == unix.RTM_NEWADDR {
		flags |= netlink.Create | netlink.Excl
	}
	_, err = c.Execute(netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(typ), Flags: flags}, Data: b})
	return err
}

// waitNewLink reads link notifications until one names dev.
func waitNewLink(c *netlink.Conn, dev string) bool {
	for {
		msgs, err := c.Receive()
		if err != nil {
			return false
		}
		for _, m := range msgs {
			if m.Header.Type == unix.RTM_NEWLINK && bytes.Contains(m.Data, append([]byte(dev), 0)) {
				return true
			}
		}
	}
}

// drain reads what is queued until nothing arrives for quiet and returns
// how many messages it read. A count needs a generous quiet time: on a
// slow guest the deadline can pass before the first read is even tried.
func drain(c *netlink.Conn, quiet time.Duration) int {
	n := 0
	for {
		c.SetReadDeadline(time.Now().Add(quiet))
		msgs, err := c.Receive()
		if err != nil && !errors.Is(err, unix.ENOBUFS) {
			return n
		}
		n += len(msgs)
	}
}

// changeMonitor opens, in the calling thread's namespace, a socket that
// hears of every change to links, IPv4 addresses, routes and rules: each
// notification is a write someone made.
func changeMonitor() (*netlink.Conn, error) {
	groups := uint32(0)
	for _, g := range []uint32{unix.RTNLGRP_LINK, unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV4_RULE} {
		groups |= 1 << (g - 1)
	}
	return netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{Groups: groups})
}
