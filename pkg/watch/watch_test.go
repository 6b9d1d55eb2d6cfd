package watch

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/netnstest"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		typ  uint16
		want Kind
	}{
		{unix.RTM_NEWLINK, Link}, {unix.RTM_DELADDR, Addr}, {unix.RTM_NEWROUTE, Route},
		{unix.RTM_DELRULE, Rule}, {unix.RTM_NEWNETCONF, Netconf}, {unix.RTM_DELNETCONF, Netconf},
		{unix.RTM_NEWNEIGH, 0},
	}
	for _, tt := range tests {
		if got := classifyRoute(tt.typ, nil); got != tt.want {
			t.Errorf("classifyRoute(%d) = %v, want %v", tt.typ, got, tt.want)
		}
	}
}

// TestClassifyFilter: an nf_tables notification is a hint when it names
// table inet tunneld (the table, a chain, a rule, a set element), and
// not when it names another table, the same name in another family, or
// none (a new generation), nor when it is not nf_tables'.
func TestClassifyFilter(t *testing.T) {
	attr := func(typ uint16, v []byte) []byte {
		b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(v)))
		b = binary.NativeEndian.AppendUint16(b, typ)
		b = append(b, v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	msg := func(family byte, attrs ...[]byte) []byte {
		b := []byte{family, 0, 0, 0}
		for _, a := range attrs {
			b = append(b, a...)
		}
		return b
	}
	name := func(s string) []byte { return append([]byte(s), 0) }
	nft := func(m uint16) uint16 { return unix.NFNL_SUBSYS_NFTABLES<<8 | m }
	gen := binary.BigEndian.AppendUint32(nil, 7)
	for _, tt := range []struct {
		name string
		typ  uint16
		data []byte
		want Kind
	}{
		{"own table deleted", nft(unix.NFT_MSG_DELTABLE), msg(unix.NFPROTO_INET, attr(1, name("tunneld")), attr(3, []byte{0, 0, 0, 1})), Filter},
		{"rule of own table", nft(unix.NFT_MSG_NEWRULE), msg(unix.NFPROTO_INET, attr(1, name("tunneld")), attr(2, name("input"))), Filter},
		{"a flag on the attribute's type", nft(unix.NFT_MSG_DELRULE), msg(unix.NFPROTO_INET, attr(1|unix.NLA_F_NET_BYTEORDER, name("tunneld"))), Filter},
		{"element of another table's set", nft(unix.NFT_MSG_NEWSETELEM), msg(unix.NFPROTO_INET, attr(1, name("fw4")), attr(2, name("banned"))), 0},
		{"same name, other family", nft(unix.NFT_MSG_NEWTABLE), msg(unix.NFPROTO_IPV4, attr(1, name("tunneld"))), 0},
		{"a longer name", nft(unix.NFT_MSG_NEWTABLE), msg(unix.NFPROTO_INET, attr(1, name("tunneld2"))), 0},
		{"new generation", nft(unix.NFT_MSG_NEWGEN), msg(unix.NFPROTO_UNSPEC, attr(1, gen)), 0},
		{"short message", nft(unix.NFT_MSG_NEWRULE), []byte{unix.NFPROTO_INET}, 0},
		{"truncated attribute", nft(unix.NFT_MSG_NEWRULE), msg(unix.NFPROTO_INET, attr(1, name("tunneld"))[:6]), 0},
		{"conntrack", unix.NFNL_SUBSYS_CTNETLINK << 8, msg(unix.NFPROTO_INET, attr(1, name("tunneld"))), 0},
	} {
		if got := classifyFilter(tt.typ, tt.data); got != tt.want {
			t.Errorf("%s: classifyFilter = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestAddrHint reads the device of address hints, and whether the
// address is a secondary IPv4 one.
func TestAddrHint(t *testing.T) {
	msg := func(family, flags byte) []byte {
		b := []byte{family, 24, flags, 0, 0, 0, 0, 0}
		binary.NativeEndian.PutUint32(b[4:], 7)
		return b
	}
	if unix.SizeofIfAddrmsg != len(msg(0, 0)) {
		t.Fatalf("struct ifaddrmsg is %d bytes", unix.SizeofIfAddrmsg)
	}
	for _, tt := range []struct {
		name      string
		kind      Kind
		data      []byte
		index     int
		secondary bool
	}{
		{"primary", Addr, msg(unix.AF_INET, unix.IFA_F_PERMANENT), 7, false},
		{"secondary", Addr, msg(unix.AF_INET, unix.IFA_F_SECONDARY|unix.IFA_F_PERMANENT), 7, true},
		{"IPv6 temporary (the same bit)", Addr, msg(unix.AF_INET6, unix.IFA_F_TEMPORARY), 7, false},
		{"link", Link, msg(unix.AF_INET, unix.IFA_F_SECONDARY), 0, false},
		{"route", Route, msg(unix.AF_INET, 0), 0, false},
		{"short", Addr, msg(unix.AF_INET, unix.IFA_F_SECONDARY)[:7], 0, false},
	} {
		index, secondary := addrHint(tt.kind, tt.data)
		if index != tt.index || secondary != tt.secondary {
			t.Errorf("%s: addrHint = %d, %v, want %d, %v", tt.name, index, secondary, tt.index, tt.secondary)
		}
	}
}

// TestPrivilegedHints: changes made in the namespace arrive as hints,
// except those made from the ignored port.
func TestPrivilegedHints(t *testing.T) {
	netnstest.Enter(t)
	if err := netnstest.Veth("v0", "v1", nil); err != nil {
		t.Fatal(err)
	}
	req, err := rtnetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer req.Close()
	other, err := rtnetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ifc, err := net.InterfaceByName("v0")
	if err != nil {
		t.Fatal(err)
	}
	// The request socket's port id: the kernel assigned it on bind.
	_, out := watching(t)
	addr := func(c *rtnetlink.Conn, ip string) error {
		return c.Address.New(&rtnetlink.AddressMessage{Family: unix.AF_INET, PrefixLength: 24, Index: uint32(ifc.Index),
			Attributes: &rtnetlink.AddressAttributes{Address: net.ParseIP(ip).To4(), Local: net.ParseIP(ip).To4()}})
	}
	if err := addr(other, "10.1.0.1"); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-out:
		if e.Kind != Addr || e.Index != ifc.Index {
			t.Errorf("first hint = %v of device %d, want address of v0 (%d)", e.Kind, e.Index, ifc.Index)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no hint for an address added in the namespace")
	}
	// A second address in the same subnet is a secondary one.
	if err := addr(other, "10.1.0.2"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.After(5 * time.Second); ; {
		select {
		case e := <-out:
			if e.Kind != Addr || e.Type != unix.RTM_NEWADDR {
				continue // the first address's routes
			}
			if !e.Secondary || e.Index != ifc.Index {
				t.Errorf("second address's hint = %+v, want a secondary address of v0 (%d)", e, ifc.Index)
			}
		case <-deadline:
			t.Fatal("no hint for the second address")
		}
		break
	}
}

// TestPrivilegedNetconfHints: a sysctl the kernel announces, written in
// the namespace as `sysctl -w` does, arrives as a netconf hint; one it
// does not announce (accept_ra), or a write that leaves the value as it
// was, gives no hint (the daemon's resync finds the former).
func TestPrivilegedNetconfHints(t *testing.T) {
	netnstest.Enter(t)
	if err := netnstest.Veth("v0", "v1", nil); err != nil {
		t.Fatal(err)
	}
	// The /proc/sys/net files are the namespace's when opened on this
	// (the test's locked) thread.
	open := func(name string) *os.File {
		t.Helper()
		f, err := os.OpenFile("/proc/sys/"+name, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	// The veth's own netconf notifications (a new device has them) came
	// before the watcher: it sees the writes' alone.
	_, out := watching(t)
	netconf := Event{Kind: Netconf, Type: unix.RTM_NEWNETCONF}
	for _, tt := range []struct {
		name  string
		file  *os.File
		value string
		want  []Event // the distinct hints the write gives
	}{
		{"ip_forward on", open("net/ipv4/ip_forward"), "1", []Event{netconf}},
		{"proxy_arp of a device on", open("net/ipv4/conf/v0/proxy_arp"), "1", []Event{netconf}},
		{"ip_forward off (by hand)", open("net/ipv4/ip_forward"), "0", []Event{netconf}},
		{"proxy_arp of a device off (by hand)", open("net/ipv4/conf/v0/proxy_arp"), "0", []Event{netconf}},
		{"IPv6 forwarding on", open("net/ipv6/conf/all/forwarding"), "1", []Event{netconf}},
		{"proxy_ndp of a device on", open("net/ipv6/conf/v0/proxy_ndp"), "1", []Event{netconf}},
		{"proxy_arp written with the value it has", open("net/ipv4/conf/v0/proxy_arp"), "0", nil},
		{"accept_ra (not announced)", open("net/ipv6/conf/v0/accept_ra"), "2", nil},
	} {
		if _, err := tt.file.WriteAt([]byte(tt.value+"\n"), 0); err != nil {
			t.Fatalf("%s: write: %v", tt.name, err)
		}
		// The hints of one write come at once (ip_forward's: one for
		// "all", "default" and every device); a quiet of 300ms ends them.
		var got []Event
		for quiet := time.NewTimer(300 * time.Millisecond); ; {
			select {
			case e := <-out:
				if !slices.Contains(got, e) {
					got = append(got, e)
				}
				quiet.Reset(300 * time.Millisecond)
				continue
			case <-quiet.C:
			}
			break
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: hints (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestPrivilegedFilterHints: nf_tables changes to another table (inet
// fw4's chain and rules, a set's elements, the table deleted) give no
// hint; the same changes to table inet tunneld each give one.
func TestPrivilegedFilterHints(t *testing.T) {
	netnstest.Enter(t)
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	w, out := watching(t)
	if w.nf == nil {
		t.Skip("no nf_tables in this kernel")
	}
	// changes makes a table with a base chain, a rule and a set with an
	// element, then adds a second element and deletes the table, one
	// transaction each, and returns the Filter hints they gave.
	changes := func(family nftables.TableFamily, name string) int {
		t.Helper()
		hints := 0
		quiet := func() {
			for timer := time.NewTimer(300 * time.Millisecond); ; {
				select {
				case e := <-out:
					if e.Kind == Filter {
						hints++
					}
					timer.Reset(300 * time.Millisecond)
					continue
				case <-timer.C:
				}
				return
			}
		}
		tab := c.AddTable(&nftables.Table{Family: family, Name: name})
		ch := c.AddChain(&nftables.Chain{Table: tab, Name: "forward", Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter})
		c.AddRule(&nftables.Rule{Table: tab, Chain: ch, Exprs: []expr.Any{&expr.Counter{}}})
		set := &nftables.Set{Table: tab, Name: "banned", KeyType: nftables.TypeIPAddr}
		if err := c.AddSet(set, []nftables.SetElement{{Key: []byte{192, 0, 2, 1}}}); err != nil {
			t.Fatal(err)
		}
		for _, step := range []func() error{
			func() error { return nil },
			func() error { return c.SetAddElements(set, []nftables.SetElement{{Key: []byte{192, 0, 2, 2}}}) },
			func() error { c.DelTable(tab); return nil },
		} {
			if err := step(); err != nil {
				t.Fatal(err)
			}
			if err := c.Flush(); err != nil {
				t.Fatal(err)
			}
			quiet()
		}
		return hints
	}
	if n := changes(nftables.TableFamilyINet, "fw4"); n != 0 {
		t.Errorf("inet fw4's changes gave %d hints, want none", n)
	}
	if n := changes(nftables.TableFamilyIPv4, "tunneld"); n != 0 {
		t.Errorf("ip tunneld's changes gave %d hints, want none", n)
	}
	if n := changes(nftables.TableFamilyINet, "tunneld"); n < 3 {
		t.Errorf("inet tunneld's changes gave %d hints, want one or more for each of its 3 transactions", n)
	}
}

// TestRouteHint reads a route hint's table, from struct rtmsg or from
// RTA_TABLE when there is one, and its protocol; other kinds and short
// messages give zeros.
func TestRouteHint(t *testing.T) {
	msg := func(table, proto byte, attrs ...[]byte) []byte {
		b := []byte{unix.AF_INET, 24, 0, 0, table, proto, 0, unix.RTN_UNICAST, 0, 0, 0, 0}
		for _, a := range attrs {
			b = append(b, a...)
		}
		return b
	}
	attr := func(typ uint16, v uint32) []byte {
		b := binary.NativeEndian.AppendUint16(nil, 8)
		b = binary.NativeEndian.AppendUint16(b, typ)
		return binary.NativeEndian.AppendUint32(b, v)
	}
	dst := binary.NativeEndian.AppendUint16(nil, 8)
	dst = append(binary.NativeEndian.AppendUint16(dst, unix.RTA_DST), 10, 9, 0, 0)
	for _, tt := range []struct {
		name  string
		kind  Kind
		data  []byte
		table uint32
		proto uint8
	}{
		{"main, from rtmsg", Route, msg(254, 116), 254, 116},
		{"table 77 after another attribute", Route, msg(77, 12, dst, attr(unix.RTA_TABLE, 77)), 77, 12},
		{"a table above 255", Route, msg(unix.RT_TABLE_COMPAT, 4, dst, attr(unix.RTA_TABLE, 1000)), 1000, 4},
		{"short", Route, msg(254, 116)[:8], 0, 0},
		{"an address hint", Addr, msg(254, 116), 0, 0},
	} {
		table, proto := routeHint(tt.kind, tt.data)
		if table != tt.table || proto != tt.proto {
			t.Errorf("%s: table %d proto %d, want %d and %d", tt.name, table, proto, tt.table, tt.proto)
		}
	}
}

// TestPrivilegedRouteHints: a route added in the namespace arrives as a
// route hint with its table and protocol, table 77 and 1000 alike.
func TestPrivilegedRouteHints(t *testing.T) {
	netnstest.Enter(t)
	if err := netnstest.Veth("v0", "v1", nil); err != nil {
		t.Fatal(err)
	}
	if err := netnstest.LinkUp("v0"); err != nil {
		t.Fatal(err)
	}
	_, out := watching(t)
	for _, table := range []uint32{77, 1000} {
		r := netnstest.Route{Table: table, Dst: netip.MustParsePrefix("10.77.0.0/16"), Dev: "v0", Proto: 12}
		if err := netnstest.AddRoute(r); err != nil {
			t.Fatal(err)
		}
		for deadline := time.After(5 * time.Second); ; {
			select {
			case e := <-out:
				if e.Kind != Route {
					continue
				}
				if e.Table != table || e.Proto != 12 {
					t.Errorf("route hint %+v, want table %d proto 12", e, table)
				}
			case <-deadline:
				t.Fatalf("no hint for a route in table %d", table)
			}
			break
		}
	}
}

// watching opens a watcher in the calling test's namespace and runs it
// until the test ends (Run must then return no error); it returns the
// watcher and its hints.
func watching(t *testing.T) (*Watcher, <-chan Event) {
	t.Helper()
	w, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Event, Backlog)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return w, out
}

// TestDeliver: hints that find the channel full are dropped; an
// Overflow, plain or Drained, waits for room, and goes after what was
// there; it gives up when done closes.
func TestDeliver(t *testing.T) {
	out := make(chan Event, 2)
	done := make(chan struct{})
	deliver(out, Event{Kind: Link}, done)
	deliver(out, Event{Kind: Addr}, done)
	deliver(out, Event{Kind: Route}, done) // full: dropped
	sent := make(chan struct{})
	go func() {
		deliver(out, Event{Kind: Overflow}, done)
		deliver(out, Event{Kind: Overflow, Drained: true}, done)
		close(sent)
	}()
	var got []Event
	for len(got) < 4 {
		got = append(got, <-out)
	}
	<-sent
	want := []Event{{Kind: Link}, {Kind: Addr}, {Kind: Overflow}, {Kind: Overflow, Drained: true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	deliver(out, Event{Kind: Link}, done)
	deliver(out, Event{Kind: Link}, done)
	close(done)
	deliver(out, Event{Kind: Overflow}, done) // full, and done: given up
	if len(out) != 2 {
		t.Errorf("%d events in the channel, want 2", len(out))
	}
}
