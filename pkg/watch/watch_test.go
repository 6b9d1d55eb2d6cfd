package watch

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
		if got := classifyRoute(tt.typ); got != tt.want {
			t.Errorf("classifyRoute(%d) = %v, want %v", tt.typ, got, tt.want)
		}
	}
	if classifyFilter(unix.NFNL_SUBSYS_NFTABLES<<8|6) != Filter || classifyFilter(unix.NFNL_SUBSYS_CTNETLINK<<8) != 0 {
		t.Error("classifyFilter")
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
	w, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Event, 16)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, out) }()
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
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
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
	w, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Event, Backlog)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, out) }()
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
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
