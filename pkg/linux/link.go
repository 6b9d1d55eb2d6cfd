package linux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/iptun"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// observedLink is one link as listed.
type observedLink struct {
	index       uint32
	name, kind  string
	alias       string
	mtu         int
	up, running bool
	data        rtnetlink.LinkDriver // a tunnel's parameters, else nil
	stats       model.Stats
	// greLocal and greRemote are the endpoints of another kind of GRE
	// device (greKind), which tunneld never makes.
	greLocal, greRemote netip.Addr
}

// greKind reports whether kind is one of the GRE devices tunneld does
// not make but whose packets, IP protocol 47, its filter's input chain
// must let through from their remotes (desired.outerRules): an L2 gretap
// of netifd's on the WAN address was cut off (a tester's), an erspan
// too. (A switch: a map would be a package variable, writable data.)
func greKind(kind string) bool {
	switch kind {
	case "gretap", "erspan", "ip6gre", "ip6gretap", "ip6erspan":
		return true
	}
	return false
}

// The attributes of IFLA_INFO_DATA greAddrs reads (linux/if_tunnel.h).
const (
	iflaGRELocal  = 6
	iflaGRERemote = 7
)

// greAddrs reads the local and remote addresses (IFLA_GRE_LOCAL,
// IFLA_GRE_REMOTE, 4 or 16 bytes) of a GRE device's IFLA_INFO_DATA; an
// unspecified one is the zero Addr, as the iptun drivers read them.
func greAddrs(data []byte) (local, remote netip.Addr) {
	_ = eachAttr(data, func(typ uint16, v []byte) error {
		a, ok := netip.AddrFromSlice(v)
		if !ok || a.IsUnspecified() {
			return nil
		}
		switch typ {
		case iflaGRELocal:
			local = a
		case iflaGRERemote:
			remote = a
		}
		return nil
	})
	return local, remote
}

// rtextFilterSkipStats (RTEXT_FILTER_SKIP_STATS) leaves the per-protocol
// statistics (IPv6's) out of a link dump: lo's message shrinks from 1452
// to 1084 bytes; the device counters status shows stay.
const rtextFilterSkipStats = 1 << 3

// linkDump is the request for every link, without what tunneld never reads.
type linkDump struct{}

func (linkDump) MarshalBinary() ([]byte, error) {
	hdr := make([]byte, unix.SizeofIfInfomsg) // AF_UNSPEC, every link
	mask := make([]byte, 4)
	binary.NativeEndian.PutUint32(mask, rtextFilterSkipStats)
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: unix.IFLA_EXT_MASK, Data: mask}})
	return append(hdr, attrs...), err
}

// listLinks dumps every link.
func (k *Kernel) listLinks(into []observedLink) ([]observedLink, error) {
	k.linkDumps++
	out := into[:0]
	err := list(k, "links", unix.RTM_GETLINK, linkDump{}, func() { out = out[:0] }, func(b []byte) error {
		l, err := decodeLink(b)
		if err == nil && l.name != "" {
			out = append(out, l)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// decodeLink reads what tunneld uses from an RTM_NEWLINK message, and a
// tunnel's parameters only for the kinds it manages: a dump of a
// thousand links is mostly their other attributes.
func decodeLink(b []byte) (observedLink, error) {
	var l observedLink
	if len(b) < unix.SizeofIfInfomsg {
		return l, errMalformed
	}
	flags := binary.NativeEndian.Uint32(b[8:])
	l.index = binary.NativeEndian.Uint32(b[4:])
	l.up = flags&unix.IFF_UP != 0
	l.running = flags&(unix.IFF_RUNNING|unix.IFF_LOWER_UP) != 0
	var data []byte
	err := eachAttr(b[unix.SizeofIfInfomsg:], func(typ uint16, v []byte) error {
		switch typ {
		case unix.IFLA_IFNAME:
			l.name = cString(v)
		case unix.IFLA_MTU:
			l.mtu = int(u32(v))
		case unix.IFLA_IFALIAS:
			l.alias = internString(v, model.LinkAlias)
		case unix.IFLA_STATS64:
			l.stats = stats64(v)
		case unix.IFLA_LINKINFO:
			return eachAttr(v, func(typ uint16, v []byte) error {
				switch typ {
				case unix.IFLA_INFO_KIND:
					l.kind = internString(v, iptun.KindIPIP, iptun.KindGRE, iptun.KindSIT, iptun.KindIP6Tnl)
				case unix.IFLA_INFO_DATA:
					data = v
				}
				return nil
			})
		}
		return nil
	})
	if err != nil || data == nil {
		return l, err
	}
	if greKind(l.kind) {
		l.greLocal, l.greRemote = greAddrs(data)
		return l, nil
	}
	d := iptun.Driver(l.kind)
	if d == nil {
		return l, nil
	}
	l.data = d
	return l, eachAttr(data, func(typ uint16, v []byte) error { return iptun.SetAttr(d, typ, v) })
}

// stats64 reads the counters status shows from a rtnl_link_stats64.
func stats64(v []byte) model.Stats {
	if len(v) < 8*8 {
		return model.Stats{}
	}
	u := func(i int) uint64 { return binary.NativeEndian.Uint64(v[8*i:]) }
	return model.Stats{RxPackets: u(0), TxPackets: u(1), RxBytes: u(2), TxBytes: u(3),
		RxErrors: u(4), TxErrors: u(5), RxDropped: u(6), TxDropped: u(7)}
}

// addLink creates a tunnel, down, then gives it tunneld's alias. The alias
// cannot ride on the creation (the kernel applies it in setlink only); a
// setlink by name needs no index, and is sent only once the creation
// worked: by name, it would otherwise mark a device of that name that is
// not tunneld's (which would then count as its own). A crash between the
// two leaves a tunnel without the alias, still tunneld's as the one the
// record of the tunnels being created names (creatingFile): observed
// Unmarked, and marked by the next converge (plan.LinkMark). An ipip6 tunnel is given IPv6
// address generation mode none after the alias (addrGenNoneMsg).
func addLink(l model.Link, underlay uint32) ([]nlreq, error) {
	data, err := tunnelData(l, underlay)
	if err != nil {
		return nil, err
	}
	reqs := []nlreq{
		{unix.RTM_NEWLINK, netlink.Create | netlink.Excl, &rtnetlink.LinkMessage{
			Family: unix.AF_UNSPEC,
			Attributes: &rtnetlink.LinkAttributes{
				Name: l.Name,
				MTU:  uint32(l.MTU),
				Info: &rtnetlink.LinkInfo{Kind: l.Mode.Kind(), Data: data},
			},
		}, func(err error) error {
			switch {
			case errors.Is(err, unix.EOPNOTSUPP):
				return &kernel.NoDriverError{Mode: l.Mode}
			case isExist(err):
				return fmt.Errorf("the name is taken by a device tunneld does not own, or another tunnel has the same endpoints: %w", err)
			}
			return err
		}},
		{unix.RTM_NEWLINK, 0, aliasMsg{l.Name, model.LinkAlias}, nil},
	}
	if l.Mode == model.ModeIPIP6 {
		reqs = append(reqs, addrGenNone(l.Name, "created"))
	}
	return reqs, nil
}

// addrGenNone is the follow-up that gives the ipip6 tunnel name IPv6
// address generation mode none (addrGenNoneMsg), after what done says.
func addrGenNone(name, done string) nlreq {
	return nlreq{unix.RTM_NEWLINK, 0, addrGenNoneMsg{name}, func(err error) error {
		switch {
		case errors.Is(err, unix.EAFNOSUPPORT):
			return nil // no IPv6 on it (an MTU under 1280): nothing to keep quiet
		case err != nil:
			return fmt.Errorf("%s, but giving it no IPv6 link-local address (addrgenmode none) failed: %w", done, err)
		}
		return nil
	}}
}

// regainsIPv6 reports whether op, a change in place, raises an ipip6
// tunnel's MTU from under 1280 to 1280 or more. Under 1280 the kernel
// drops the device's IPv6 side, with its address generation mode; raised
// again, it builds a new one with the default mode, and a tunnel that is
// up gets a link-local address at once, whose router solicitations the
// tunnel drops as transmit errors (a tester's, after `mtu = 1200` was
// taken out, after the daemon repaired a hand change to 1200, and after
// the underlay's MTU came back from 1300, which the tunnel's follows). So
// such a change is followed by the mode none again, and the link-local
// address the kernel made is deleted (Apply, dropLinkLocal).
func regainsIPv6(op plan.Op) bool {
	return op.Kind == plan.LinkChange && op.Link.Mode == model.ModeIPIP6 && op.Old != nil &&
		op.Old.MTU < model.IPv6MinMTU && op.Link.MTU >= model.IPv6MinMTU
}

// addrGenNoneMsg is a setlink by name that gives an ipip6 tunnel IPv6
// address generation mode none (`ip link set NAME addrgenmode none`). The
// kernel gives an ip6tnl device a link-local address when it comes up,
// then sends its own IPv6 packets through it (router solicitations while
// IPv6 forwarding is off: at once, 4 s later, then ever less often), which
// an ipip6 tunnel, carrying IPv4 only, drops and counts as transmit errors,
// that status shows: in the amd64 VM, 2 tx_errors 5 s after it came up,
// idle, and none with the mode none (TestPrivilegedIPIP6Quiet). An ip6ip6
// tunnel carries IPv6 and keeps its link-local address (routing protocols
// use it); sit, gre and ipip devices are left as the kernel makes them too
// (their own packets do not fail).
//
// The kernel refuses the attribute in the creation itself, so it follows
// it, like the alias, in the same Apply: the tunnel is still down then
// (bringing it up waits for the creation's batch, follow-ups included, to
// be sent, see indexes.get), and a down device has no address and sends
// nothing, so no packet goes out before the mode is none. It is written
// at creation only: a change in place never carries it, and it is not
// observed. An ipip6 tunnel an older tunneld created (or one left by a
// crash between its creation and the follow-ups, which the next converge
// only marks) keeps its link-local address until it is created again
// (`tunneld down` then `apply`, or a restart of a daemon without
// keep_on_exit): setting the mode on it would not remove the address it
// has, and deleting that as well, for a counter, is more than a converge
// should do to a live tunnel.
type addrGenNoneMsg struct{ name string }

// followUp: the mode is set only on the device the same operation
// created, not on another of that name.
func (addrGenNoneMsg) followUp() {}

func (m addrGenNoneMsg) MarshalBinary() ([]byte, error) {
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.IFLA_IFNAME, Data: append([]byte(m.name), 0)},
		iptun.AddrGenMode(iptun.AddrGenModeNone),
	})
	return append(make([]byte, unix.SizeofIfInfomsg), attrs...), err
}

// aliasMsg is a setlink by name that writes IFLA_IFALIAS, as
// `ip link set NAME alias ALIAS` does (rtnetlink's LinkAttributes do not
// encode their Alias).
type aliasMsg struct{ name, alias string }

// followUp: the alias is written only on the device the same operation
// created.
func (aliasMsg) followUp() {}

func (m aliasMsg) MarshalBinary() ([]byte, error) {
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.IFLA_IFNAME, Data: append([]byte(m.name), 0)},
		{Type: unix.IFLA_IFALIAS, Data: []byte(m.alias)},
	})
	return append(make([]byte, unix.SizeofIfInfomsg), attrs...), err
}

// markMsg writes tunneld's alias on the tunnel of that index, observed
// without it (model.Link.Unmarked): by index, so a device put in its
// place since is not marked.
type markMsg struct{ index uint32 }

func (m markMsg) MarshalBinary() ([]byte, error) {
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: unix.IFLA_IFALIAS, Data: []byte(model.LinkAlias)}})
	hdr := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(hdr[4:], m.index)
	return append(hdr, attrs...), err
}

// changeLink changes a live tunnel in place: one RTM_NEWLINK on its
// index, without NLM_F_CREATE, carrying the full parameter set (the
// kernel's changelink resets what is left out).
func changeLink(l model.Link, index, underlay uint32) (nlreq, error) {
	data, err := tunnelData(l, underlay)
	if err != nil {
		return nlreq{}, err
	}
	return nlreq{unix.RTM_NEWLINK, 0, &rtnetlink.LinkMessage{
		Family: unix.AF_UNSPEC, Index: index,
		Attributes: &rtnetlink.LinkAttributes{
			MTU:  uint32(l.MTU),
			Info: &rtnetlink.LinkInfo{Kind: l.Mode.Kind(), Data: data},
		},
	}, nil}, nil
}

func setUp(index uint32, up bool) nlreq {
	var flags uint32
	if up {
		flags = unix.IFF_UP
	}
	return nlreq{unix.RTM_NEWLINK, 0, &rtnetlink.LinkMessage{
		Family: unix.AF_UNSPEC, Index: index, Flags: flags, Change: unix.IFF_UP,
	}, nil}
}

func delLink(index uint32) nlreq {
	return nlreq{unix.RTM_DELLINK, 0, &rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: index}, unless(isNotExist)}
}
