package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/iptun"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// reactor is a program the reaction benchmark times: tunneld, or a
// yardstick that keeps the tunnel t0's local address on wan's primary
// address in some other way.
type reactor struct {
	impl, note string
	// tunnel: the benchmark creates t0 (up, local 192.0.2.1) before
	// starting it; tunneld creates its own.
	tunnel  bool
	command func() *exec.Cmd
	// ready, if set, reports whether it is ready for the first change;
	// otherwise the reaction case's ready does.
	ready func(t *testing.T, ns *netnstest.NS) bool
}

// floorEnv, set to 1, makes TestReaction the floor reactor's process.
const floorEnv = "TUNNELD_BENCH_FLOOR_REACTOR"

// floorReactor is the least any daemon has to do: one Go process that
// keeps wan's addresses in order from their events alone, with no
// re-read and no debounce, and sends one RTM_NEWLINK when the primary
// address changes. What it takes is what a reaction costs on this
// machine before tunneld's own work.
func floorReactor() reactor {
	return reactor{
		impl:   "floor: one Go process, events only",
		note:   "no re-read, no debounce, one request",
		tunnel: true,
		command: func() *exec.Cmd {
			cmd := exec.Command(os.Args[0], "-test.run=^TestReaction$", "-test.count=1")
			cmd.Env = append(os.Environ(), floorEnv+"=1")
			return cmd
		},
		ready: func(t *testing.T, ns *netnstest.NS) bool { return hearsAddrs(t, ns) },
	}
}

// scriptReactor is the way of the scripts tunneld replaces: iproute2's
// `ip monitor` read by a shell loop that asks `ip` for wan's primary
// address on each event and, when it moved, changes the tunnel with
// `ip link set t0 type ipip local …`.
func scriptReactor(ip string) reactor {
	const script = `ip=$1
primary() { set -- $("$ip" -4 -o addr show dev wan); echo "${4%/*}"; }
cur=$(primary)
"$ip" -o -4 monitor address dev wan | while read -r _; do
	a=$(primary)
	if [ -n "$a" ] && [ "$a" != "$cur" ]; then
		"$ip" link set t0 type ipip local "$a" && cur=$a
	fi
done`
	return reactor{
		impl:    "ip monitor + shell script",
		note:    "an `ip` process for the address on each event, one more for the change",
		tunnel:  true,
		command: func() *exec.Cmd { return exec.Command("/bin/sh", "-c", script, "sh", ip) },
		ready:   func(t *testing.T, ns *netnstest.NS) bool { return hearsAddrs(t, ns) },
	}
}

// runFloorReactor is the floor reactor's process (see floorReactor). It
// runs until it is killed.
func runFloorReactor(t *testing.T) {
	rt, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		t.Fatal(err)
	}
	wan, tun := ifindex(t, rt, "wan"), ifindex(t, rt, "t0")
	addrs, err := wanAddrs(rt, wan)
	if err != nil || len(addrs) == 0 {
		t.Fatalf("wan's addresses: %v %v", addrs, err)
	}
	local := addrs[0]
	// Subscribed only now: the benchmark changes nothing until it sees
	// the subscription (hearsAddrs), so no event falls between the two.
	ev, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{Groups: 1 << (unix.RTNLGRP_IPV4_IFADDR - 1)})
	if err != nil {
		t.Fatal(err)
	}
	for {
		msgs, err := ev.Receive()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			a, secondary, ok := addrOf(m, wan)
			if !ok {
				continue
			}
			addrs = slices.DeleteFunc(addrs, func(x netip.Addr) bool { return x == a })
			switch {
			case m.Header.Type != unix.RTM_NEWADDR:
			case secondary:
				addrs = append(addrs, a)
			default:
				addrs = slices.Insert(addrs, 0, a)
			}
		}
		if len(addrs) == 0 || addrs[0] == local {
			continue
		}
		m, err := ipipChange(tun, wan, addrs[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rt.Execute(m); err != nil {
			t.Fatalf("change t0: %v", err)
		}
		local = addrs[0]
	}
}

// wanAddrs lists the device's IPv4 addresses, the primary one first.
func wanAddrs(rt *netlink.Conn, index int) ([]netip.Addr, error) {
	req, err := (&rtnetlink.AddressMessage{Family: unix.AF_INET}).MarshalBinary()
	if err != nil {
		return nil, err
	}
	msgs, err := rt.Execute(netlink.Message{Header: netlink.Header{Type: unix.RTM_GETADDR, Flags: netlink.Request | netlink.Dump}, Data: req})
	if err != nil {
		return nil, err
	}
	var primary, secondary []netip.Addr
	for _, m := range msgs {
		if a, sec, ok := addrOf(m, index); ok && sec {
			secondary = append(secondary, a)
		} else if ok {
			primary = append(primary, a)
		}
	}
	return append(primary, secondary...), nil
}

// addrOf reads an address message of the device with the given index:
// its local address and whether it is a secondary one.
func addrOf(m netlink.Message, index int) (a netip.Addr, secondary, ok bool) {
	var am rtnetlink.AddressMessage
	if am.UnmarshalBinary(m.Data) != nil || int(am.Index) != index || am.Attributes == nil {
		return a, false, false
	}
	a, ok = netip.AddrFromSlice(am.Attributes.Local)
	return a.Unmap(), am.Flags&unix.IFA_F_SECONDARY != 0, ok
}

// hearsAddrs reports whether a rtnetlink socket in ns listens to IPv4
// address events (the benchmark's own sockets do not).
func hearsAddrs(t *testing.T, ns *netnstest.NS) bool {
	var table []byte
	if err := ns.Do(func() error {
		var err error
		table, err = os.ReadFile("/proc/thread-self/net/netlink")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	const group = 1 << (unix.RTNLGRP_IPV4_IFADDR - 1)
	sc := bufio.NewScanner(bytes.NewReader(table))
	for sc.Scan() {
		// sk Eth Pid Groups ...
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[1] != strconv.Itoa(unix.NETLINK_ROUTE) {
			continue
		}
		if g, err := strconv.ParseUint(f[3], 16, 32); err == nil && g&group != 0 {
			return true
		}
	}
	return false
}

// ipipMessage is an RTM_NEWLINK request for an ipip tunnel over the
// device with index wan, to 198.51.100.1: a new one named name when index
// is 0, else a change of the tunnel with that index.
func ipipMessage(flags netlink.HeaderFlags, index int, name string, wan int, local netip.Addr) (netlink.Message, error) {
	m := rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: uint32(index), Attributes: &rtnetlink.LinkAttributes{
		Name: name,
		Info: &rtnetlink.LinkInfo{Kind: "ipip", Data: &iptun.IPIP{Link: uint32(wan), Local: local,
			Remote: netip.MustParseAddr("198.51.100.1"), TTL: 64, PMTUDisc: true}}}}
	b, err := m.MarshalBinary()
	if err != nil {
		return netlink.Message{}, err
	}
	return netlink.Message{Header: netlink.Header{Type: unix.RTM_NEWLINK, Flags: netlink.Request | netlink.Acknowledge | flags}, Data: b}, nil
}

// ipipChange moves the local address of the tunnel with the given index.
func ipipChange(index, wan int, local netip.Addr) (netlink.Message, error) {
	return ipipMessage(0, index, "", wan, local)
}

// createTunnel makes the ipip tunnel name over wan, local 192.0.2.1, up.
func createTunnel(rt *netlink.Conn, name string, wan int) error {
	m, err := ipipMessage(netlink.Create|netlink.Excl, 0, name, wan, netip.MustParseAddr("192.0.2.1"))
	if err != nil {
		return err
	}
	if _, err := rt.Execute(m); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	return netnstest.LinkUp(name)
}
