package watch

import (
	"encoding/binary"
	"errors"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/netnstest"
)

// script is a source that gives its reads and peeks in turn, then
// reports itself closed.
type script struct {
	reads []error // nil: a link notification
	peeks []error // nil: not empty; errEmpty: empty
}

var errEmpty = errors.New("empty")

func (s *script) receive() ([]netlink.Message, error) {
	if len(s.reads) == 0 {
		return nil, net.ErrClosed
	}
	err := s.reads[0]
	s.reads = s.reads[1:]
	if err != nil {
		return nil, err
	}
	return []netlink.Message{{Header: netlink.Header{Type: unix.RTM_NEWLINK}, Data: make([]byte, 16)}}, nil
}

func (s *script) empty() (bool, error) {
	if len(s.peeks) == 0 {
		return false, nil
	}
	err := s.peeks[0]
	s.peeks = s.peeks[1:]
	if err == errEmpty {
		return true, nil
	}
	return false, err
}

// TestDrained: after an overflow, the watcher peeks at the queue before
// each read and, when it finds it empty, sends a Drained Overflow; an
// ENOBUFS the peek takes is an Overflow of its own; once drained, it
// peeks no more.
func TestDrained(t *testing.T) {
	type ev struct {
		Kind    Kind
		Drained bool
	}
	for _, tc := range []struct {
		name  string
		src   script
		want  []ev
		peeks int // left unused
	}{{
		name:  "no overflow: no peek",
		src:   script{reads: []error{nil, nil}, peeks: []error{errEmpty}},
		want:  []ev{{Kind: Link}, {Kind: Link}},
		peeks: 1,
	}, {
		name:  "the queue read empty after an overflow",
		src:   script{reads: []error{unix.ENOBUFS, nil, nil, nil}, peeks: []error{nil, nil, errEmpty, errEmpty}},
		want:  []ev{{Kind: Overflow}, {Kind: Link}, {Kind: Link}, {Kind: Overflow, Drained: true}, {Kind: Link}},
		peeks: 1,
	}, {
		name: "another overflow before the queue was empty",
		src:  script{reads: []error{unix.ENOBUFS, nil, nil}, peeks: []error{nil, unix.ENOBUFS, errEmpty}},
		want: []ev{{Kind: Overflow}, {Kind: Link}, {Kind: Overflow}, {Kind: Link}, {Kind: Overflow, Drained: true}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			out := make(chan Event, 100)
			w := &Watcher{}
			if err := w.read(&tc.src, classifyRoute, out); err != nil {
				t.Fatal(err)
			}
			close(out)
			var got []ev
			for e := range out {
				got = append(got, ev{e.Kind, e.Drained})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if len(tc.src.peeks) != tc.peeks {
				t.Errorf("%d peeks left, want %d", len(tc.src.peeks), tc.peeks)
			}
		})
	}
}

// TestPrivilegedEmpty overflows a watcher's socket with 2000 addresses
// while nothing reads it: empty takes the ENOBUFS, then finds the queue
// not empty while it holds notifications, and empty once they are read.
// An address added after the ENOBUFS was taken and some notifications
// read, with room in the queue, is dropped untold (why the Drained
// Overflow); one added after the drain is queued: the drops are over.
func TestPrivilegedEmpty(t *testing.T) {
	netnstest.Enter(t)
	if err := netnstest.Bridge("d0"); err != nil {
		t.Fatal(err)
	}
	w, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.rt.SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ifc, err := net.InterfaceByName("d0")
	if err != nil {
		t.Fatal(err)
	}
	add := func(i int) {
		t.Helper()
		ip := net.IPv4(10, 100, byte(i>>8), byte(i)).To4()
		if err := c.Address.New(&rtnetlink.AddressMessage{Family: unix.AF_INET, PrefixLength: 32, Index: uint32(ifc.Index),
			Attributes: &rtnetlink.AddressAttributes{Address: ip, Local: ip}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2000 {
		add(i + 1)
	}
	s := socket{w.rt}
	if empty, err := s.empty(); empty || !errors.Is(err, unix.ENOBUFS) {
		t.Fatalf("empty after 2000 addresses unread = %v, %v; want the overflow (ENOBUFS)", empty, err)
	}
	if empty, err := s.empty(); empty || err != nil {
		t.Fatalf("empty with the notifications queued = %v, %v; want false", empty, err)
	}
	seen := map[int]bool{}
	receive := func() {
		t.Helper()
		msgs, err := w.rt.Receive()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			var a rtnetlink.AddressMessage
			if m.Header.Type == unix.RTM_NEWADDR && a.UnmarshalBinary(m.Data) == nil && a.Attributes != nil {
				ip := a.Attributes.Address.To4()
				seen[int(ip[2])<<8|int(ip[3])] = true
			}
		}
	}
	for range 20 {
		receive()
	}
	add(2500)
	for {
		if empty, err := s.empty(); err != nil {
			t.Fatal(err)
		} else if empty {
			break
		}
		receive()
	}
	if !seen[1] || seen[2500] {
		t.Errorf("the first address told: %v, the one added while the kernel dropped: %v; want true, false", seen[1], seen[2500])
	}
	add(3000)
	msgs, err := w.rt.Receive()
	if err != nil {
		t.Fatalf("the address after the drain: %v", err)
	}
	if len(msgs) == 0 || msgs[0].Header.Type != unix.RTM_NEWADDR || binary.NativeEndian.Uint32(msgs[0].Data[4:]) != uint32(ifc.Index) {
		t.Errorf("after the drain: %+v, want d0's new address", msgs)
	}
}
