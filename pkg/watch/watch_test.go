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

// TestAddrIndex reads the device of address hints only.
func TestAddrIndex(t *testing.T) {
	msg := []byte{unix.AF_INET, 24, 0, 0, 7, 0, 0, 0}
	if unix.SizeofIfAddrmsg != len(msg) {
		t.Fatalf("struct ifaddrmsg is %d bytes", unix.SizeofIfAddrmsg)
	}
	if !nativeLittle() {
		msg[4], msg[7] = 0, 7
	}
	for _, tt := range []struct {
		kind Kind
		data []byte
		want int
	}{{Addr, msg, 7}, {Link, msg, 0}, {Route, msg, 0}, {Addr, msg[:7], 0}} {
		if got := addrIndex(tt.kind, tt.data); got != tt.want {
			t.Errorf("addrIndex(%v, % x) = %d, want %d", tt.kind, tt.data, got, tt.want)
		}
	}
}

func nativeLittle() bool {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], 1)
	return b[0] == 1
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
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
