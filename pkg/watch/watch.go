// Package watch turns kernel notifications into hints for the daemon: a
// dedicated rtnetlink socket joined to the link, address, route, rule and
// netconf groups (and an nfnetlink socket for nftables changes). Events
// carry no state (an address hint names its device and whether the
// address is a secondary one, no more): the daemon re-reads the kernel
// when one arrives. A lost event (socket overflow) is reported as
// Overflow, which asks for a full re-read, and again, Drained, once the
// kernel stops dropping them (see Event.Drained).
//
// The netconf groups catch a change of the sysctls the kernel announces
// (RTM_NEWNETCONF): forwarding (net.ipv4.ip_forward, IPv6 forwarding and
// each device's), proxy_neigh (proxy_arp, proxy_ndp), rp_filter,
// mc_forwarding and ignore_routes_with_linkdown, for "all", "default" and
// every device; the kernel also sends one when a device appears or goes
// (RTM_DELNETCONF). Other sysctls (accept_ra, for one) send nothing: a
// change of them is found by the daemon's periodic resync only. The kernel
// sends a netconf notification only when a value changes, and with no
// port id: the echoes of tunneld's own sysctl writes (and of the tunnel
// devices it creates) come back as hints, which Open's ignorePID cannot
// drop, and cost the daemon one re-read that finds nothing to do.
package watch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/internal/nlattr"
	"github.com/tunneld/tunneld/pkg/model"
)

// Kind classifies a hint.
type Kind uint8

// Hint kinds.
const (
	Link Kind = iota + 1
	Addr
	Route
	Rule
	Filter
	// Netconf is a change of a device's (or "all", "default") IPv4 or
	// IPv6 configuration the kernel announces: a sysctl such as
	// ip_forward or proxy_arp was written, or a device came or went.
	Netconf
	// Overflow means events were lost: re-read everything.
	Overflow
)

// String names the kind for logs.
func (k Kind) String() string {
	return [...]string{"", "link", "address", "route", "rule", "nftables", "netconf", "overflow"}[k]
}

// Event is one hint.
type Event struct {
	Kind Kind
	// Type is the netlink message type (RTM_NEWLINK, …), 0 for Overflow.
	Type uint16
	// Index is the device of an address hint (0 for other kinds): which
	// device to look at, not what changed.
	Index int
	// Secondary marks a hint about a secondary IPv4 address: its coming
	// or going leaves the device's primary addresses as they are (the
	// kernel promotes a secondary with a hint of its own).
	Secondary bool
	// Table and Proto are a route hint's routing table and protocol
	// (0 for other kinds, and where the message is too short to say):
	// a route in a table tunneld neither writes nor reads, by a routing
	// daemon, says nothing it compares.
	Table uint32
	Proto uint8
	// Drained marks an Overflow sent when the socket's queue was next
	// found empty after one: the kernel drops every notification from
	// an overflow until its queue is read empty, with room in it or
	// not, and tells of the overflow once (ENOBUFS). The first
	// Overflow's re-read may begin while it still drops; this one asks
	// for another, after the last loss, and tells nothing new. A
	// tester's repeated overflows came half of them untold: the queue
	// of one had not been read empty when the next began.
	Drained bool
}

// ReadBuffer is the receive buffer asked for (root gets it forced).
const ReadBuffer = 4 << 20

// Watcher owns the notification sockets.
type Watcher struct {
	rt, nf *netlink.Conn
	// Ignore, when set, drops notifications caused by requests from this
	// netlink port (tunneld's own request socket): the kernel stamps route,
	// address and rule notifications with the requester's port id.
	ignore uint32
	once   sync.Once
	// done ends Run (its context's Done): an Overflow waits for room
	// in the channel until then (see deliver).
	done <-chan struct{}
}

// Open dials and joins the groups. ignorePID is the port id of tunneld's
// request socket (0 for none). The nftables socket is optional: a kernel
// without nf_tables still gets a watcher.
func Open(ignorePID uint32) (*Watcher, error) {
	rt, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return nil, fmt.Errorf("watch rtnetlink: %w", err)
	}
	w := &Watcher{rt: rt, ignore: ignorePID}
	// The rtnetlink multicast groups watched. A literal here is a
	// read-only array; a package variable was writable data, 64 bytes of
	// the mipsle binary with its alignment.
	for _, g := range [...]uint32{
		unix.RTNLGRP_LINK,
		unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR,
		unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE,
		unix.RTNLGRP_IPV4_RULE, unix.RTNLGRP_IPV6_RULE,
		unix.RTNLGRP_IPV4_NETCONF, unix.RTNLGRP_IPV6_NETCONF,
	} {
		if err := rt.JoinGroup(g); err != nil {
			rt.Close()
			return nil, fmt.Errorf("watch rtnetlink: join group %d: %w", g, err)
		}
	}
	_ = rt.SetReadBuffer(ReadBuffer) // best effort: overflow is handled anyway
	if nf, err := netlink.Dial(unix.NETLINK_NETFILTER, nil); err == nil {
		if nf.JoinGroup(unix.NFNLGRP_NFTABLES) == nil {
			_ = nf.SetReadBuffer(ReadBuffer)
			w.nf = nf
		} else {
			nf.Close()
		}
	}
	return w, nil
}

// Close stops the watcher; Run returns.
func (w *Watcher) Close() error {
	var err error
	w.once.Do(func() {
		err = w.rt.Close()
		if w.nf != nil {
			err = errors.Join(err, w.nf.Close())
		}
	})
	return err
}

// Backlog is the room the channel given to Run should have: a change's
// hints (a renewed address and its routes are a dozen) fit whole, so the
// daemon sees which device each address hint is about.
const Backlog = 256

// Run delivers hints to out until ctx ends or the watcher is closed. It
// blocks on out for an Overflow only: a full channel already holds hints
// that will make the daemon re-read, so further ones are dropped (with
// what they said about their device), but an Overflow waits for room
// (see deliver).
func (w *Watcher) Run(ctx context.Context, out chan<- Event) error {
	w.done = ctx.Done()
	stop := context.AfterFunc(ctx, func() { w.Close() })
	defer stop()
	errc := make(chan error, 2)
	go func() { errc <- w.read(socket{w.rt}, classifyRoute, out) }()
	n := 1
	if w.nf != nil {
		n = 2
		go func() { errc <- w.read(socket{w.nf}, classifyFilter, out) }()
	}
	var first error
	for range n {
		if err := <-errc; err != nil && first == nil {
			first = err
			w.Close()
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return first
}

// source is a notification socket as read sees it. Its methods are
// unexported: an interface method named like netlink.Conn's Receive
// keeps every such method of any type in the binary (nftables' test
// socket's among them: 14 KB of the mipsle binary's code).
type source interface {
	receive() ([]netlink.Message, error)
	// empty reports whether the receive queue is empty (the kernel
	// ends an overflow's drops there), or an overflow's error.
	empty() (bool, error)
}

// socket is a netlink socket as a source.
type socket struct{ c *netlink.Conn }

func (s socket) receive() ([]netlink.Message, error) { return s.c.Receive() }

// empty peeks at the queue without waiting: a read that would block
// finds it empty, and the kernel, at such a read, ends the drops of an
// overflow (netlink_rcv_wake). An overflow's ENOBUFS, pending, comes
// first, and is taken. It costs a system call for each notification
// read while an overflow's drops last; a receive with a deadline would
// cost none, but on a slow or busy machine Go's poller can time it out
// before it reads at all (in the amd64 guest, the end of the drops was
// told with megabytes of notifications still queued).
func (s socket) empty() (bool, error) {
	rc, err := s.c.SyscallConn()
	if err != nil {
		return false, err
	}
	var perr error
	var b [unix.SizeofNlMsghdr]byte
	if err := rc.Read(func(fd uintptr) bool {
		_, _, perr = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return true
	}); err != nil {
		return false, err
	}
	if errors.Is(perr, unix.EAGAIN) {
		return true, nil
	}
	return false, perr
}

func (w *Watcher) read(c source, classify func(uint16, []byte) Kind, out chan<- Event) error {
	// dropping: an overflow was told, and its queue not yet found empty.
	dropping := false
	for {
		if dropping {
			empty, err := c.empty()
			switch {
			case errors.Is(err, unix.ENOBUFS):
				deliver(out, Event{Kind: Overflow}, w.done)
			case empty:
				dropping = false
				deliver(out, Event{Kind: Overflow, Drained: true}, w.done)
			}
		}
		msgs, err := c.receive()
		if errors.Is(err, unix.ENOBUFS) {
			deliver(out, Event{Kind: Overflow}, w.done)
			dropping = true
			continue
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("watch: %w", err)
		}
		for _, m := range msgs {
			if w.ignore != 0 && m.Header.PID == w.ignore {
				continue
			}
			if k := classify(uint16(m.Header.Type), m.Data); k != 0 {
				e := Event{Kind: k, Type: uint16(m.Header.Type)}
				e.Index, e.Secondary = addrHint(k, m.Data)
				e.Table, e.Proto = routeHint(k, m.Data)
				deliver(out, e, w.done)
			}
		}
	}
}

// addrHint reads an address notification's struct ifaddrmsg: the
// device's index, and whether the address is a secondary IPv4 one (the
// same flag bit means a temporary address in IPv6). Other kinds, or a
// short message, give 0 and false.
func addrHint(k Kind, data []byte) (index int, secondary bool) {
	if k != Addr || len(data) < unix.SizeofIfAddrmsg {
		return 0, false
	}
	family, flags := data[0], data[2]
	return int(binary.NativeEndian.Uint32(data[4:8])), family == unix.AF_INET && flags&unix.IFA_F_SECONDARY != 0
}

// routeHint reads a route notification's table and protocol: struct
// rtmsg's rtm_table and rtm_protocol, the table from RTA_TABLE when the
// message has it (a table above 255 has only that). Other kinds, or a
// short message, give 0 and 0.
func routeHint(k Kind, data []byte) (table uint32, proto uint8) {
	const rtmsgLen = 12 // struct rtmsg
	if k != Route || len(data) < rtmsgLen {
		return 0, 0
	}
	table, proto = uint32(data[4]), data[5]
	if v, ok := nlattr.Find(data[rtmsgLen:], unix.RTA_TABLE); ok && len(v) >= 4 {
		table = binary.NativeEndian.Uint32(v)
	}
	return table, proto
}

// deliver sends e without blocking; a full channel drops it (its hints
// already make the daemon re-read), but for an Overflow, which waits for
// room until done: the daemon logs each (the overflow, the end of its
// drops) and re-reads after it. A tester's daemon did not log the end
// of 3 of 10 overflows' drops: a full channel had dropped it (stop 32's
// version kept one plain Overflow for later, a Drained one not at all).
// Meanwhile the socket's queue holds the notifications that come; an
// overflow of it is told at the next read.
func deliver(out chan<- Event, e Event, done <-chan struct{}) {
	if e.Kind == Overflow {
		select {
		case out <- e:
		case <-done:
		}
		return
	}
	select {
	case out <- e:
	default:
	}
}

func classifyRoute(t uint16, _ []byte) Kind {
	switch t {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		return Link
	case unix.RTM_NEWADDR, unix.RTM_DELADDR:
		return Addr
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
		return Route
	case unix.RTM_NEWRULE, unix.RTM_DELRULE:
		return Rule
	case unix.RTM_NEWNETCONF, unix.RTM_DELNETCONF:
		return Netconf
	}
	return 0
}

// classifyFilter takes an nf_tables notification about tunneld's own
// table (inet tunneld: the table itself, or a chain, rule, set or
// element of it) as a hint, and no other. Other managers' changes to
// theirs say nothing the daemon compares: a tester's 100 set elements
// added one nft command at a time, as dnsmasq's nftset or banIP add
// them, cost the daemon 103 convergences and 2.3 s of CPU. `nft flush
// ruleset` deletes tunneld's table too, which says so.
func classifyFilter(t uint16, data []byte) Kind {
	if t>>8 != unix.NFNL_SUBSYS_NFTABLES || t&0xff == unix.NFT_MSG_NEWGEN {
		return 0 // not nf_tables, or a transaction's new generation, which names no table
	}
	if ownTable(data) {
		return Filter
	}
	return 0
}

// ownTable reports whether an nf_tables notification (struct nfgenmsg,
// then attributes) is about table inet tunneld: its family is inet and
// its attribute 1, which is the table's name in every message that
// names one (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE,
// NFTA_SET_TABLE, NFTA_SET_ELEM_LIST_TABLE, NFTA_OBJ_TABLE,
// NFTA_FLOWTABLE_TABLE), is "tunneld".
func ownTable(data []byte) bool {
	const nfgenmsgLen, tableAttr = 4, 1
	if len(data) < nfgenmsgLen || data[0] != unix.NFPROTO_INET {
		return false
	}
	name, ok := nlattr.Find(data[nfgenmsgLen:], tableAttr)
	return ok && string(name) == model.TableName+"\x00"
}
