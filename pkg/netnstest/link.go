package netnstest

import (
	"fmt"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/jsimonetti/rtnetlink/v2/driver"
	"golang.org/x/sys/unix"
)

// LinkUp sets a device up in the calling thread's namespace.
func LinkUp(name string) error { return setUp(name, true) }

// LinkDown sets a device down in the calling thread's namespace, as `ip
// link set DEV down` (or `ifconfig DEV down`) does: the kernel removes
// the routes through it.
func LinkDown(name string) error { return setUp(name, false) }

func setUp(name string, up bool) error {
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		return err
	}
	defer c.Close()
	m, err := byName(c, name)
	if err != nil {
		return err
	}
	var flags uint32
	if up {
		flags = unix.IFF_UP
	}
	return c.Link.Set(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: m.Index, Flags: flags, Change: unix.IFF_UP})
}

func byName(c *rtnetlink.Conn, name string) (rtnetlink.LinkMessage, error) {
	links, err := c.Link.List()
	if err != nil {
		return rtnetlink.LinkMessage{}, err
	}
	for _, l := range links {
		if l.Attributes != nil && l.Attributes.Name == name {
			return l, nil
		}
	}
	return rtnetlink.LinkMessage{}, fmt.Errorf("device %s: %w", name, unix.ENODEV)
}

// Veth creates a veth pair in the calling thread's namespace; when peerNS
// is not nil the peer end is moved into it. Both ends are left down.
func Veth(name, peer string, peerNS *NS) error {
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		return err
	}
	defer c.Close()
	peerAttrs := &rtnetlink.LinkAttributes{Name: peer}
	if peerNS != nil {
		peerAttrs.NetNS = rtnetlink.NetNSForFD(uint32(peerNS.FD()))
	}
	return c.Link.New(&rtnetlink.LinkMessage{
		Family:     unix.AF_UNSPEC,
		Attributes: &rtnetlink.LinkAttributes{Name: name, Info: &rtnetlink.LinkInfo{Kind: "veth", Data: &driver.Veth{PeerInfo: &rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Attributes: peerAttrs}}}},
	})
}

// VethUp creates a veth pair in the calling thread's namespace, as Veth
// does, and sets both ends up.
func VethUp(name, peer string) error {
	if err := Veth(name, peer, nil); err != nil {
		return err
	}
	if err := LinkUp(name); err != nil {
		return err
	}
	return LinkUp(peer)
}

// Bridge creates a bridge device in the calling thread's namespace, left
// down.
func Bridge(name string) error {
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Link.New(&rtnetlink.LinkMessage{
		Family:     unix.AF_UNSPEC,
		Attributes: &rtnetlink.LinkAttributes{Name: name, Info: &rtnetlink.LinkInfo{Kind: "bridge"}},
	})
}

// SetMaster enslaves a device to a master (a bridge) in the calling
// thread's namespace.
func SetMaster(dev, master string) error {
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		return err
	}
	defer c.Close()
	d, err := byName(c, dev)
	if err != nil {
		return err
	}
	m, err := byName(c, master)
	if err != nil {
		return err
	}
	return c.Link.Set(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: d.Index, Attributes: &rtnetlink.LinkAttributes{Master: &m.Index}})
}
