package watch

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

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
		{unix.RTM_DELRULE, Rule}, {unix.RTM_NEWNEIGH, 0},
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
