package watch

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

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

// TestPrivilegedDrained overflows a watcher's socket with 2000 address
// notifications while nothing reads it. Read by hand: the ENOBUFS comes
// first; an address added after it, once some notifications are read
// and the queue has room, is dropped untold (why the Drained Overflow);
// empty finds the queue not empty, then empty once read. Then a
// watcher overflowed the same way, run: it sends the Overflow, the
// Drained one, and after that the hints of new changes again.
func TestPrivilegedDrained(t *testing.T) {
	netnstest.Enter(t)
	if err := netnstest.Bridge("d0"); err != nil {
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
	next := 0
	add := func() int {
		t.Helper()
		next++
		ip := net.IPv4(10, 100, byte(next>>8), byte(next)).To4()
		if err := c.Address.New(&rtnetlink.AddressMessage{Family: unix.AF_INET, PrefixLength: 32, Index: uint32(ifc.Index),
			Attributes: &rtnetlink.AddressAttributes{Address: ip, Local: ip}}); err != nil {
			t.Fatal(err)
		}
		return next
	}
	overflowed := func() *Watcher {
		t.Helper()
		w, err := Open(0)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.rt.SetReadBuffer(64 << 10); err != nil {
			t.Fatal(err)
		}
		for range 2000 {
			add()
		}
		return w
	}

	w := overflowed()
	defer w.Close()
	if _, err := w.rt.Receive(); !errors.Is(err, unix.ENOBUFS) {
		t.Fatalf("first receive after 2000 addresses unread: %v, want ENOBUFS", err)
	}
	seen := map[int]bool{}
	s := socket{w.rt}
	receive := func() error {
		msgs, err := s.receive()
		for _, m := range msgs {
			var a rtnetlink.AddressMessage
			if m.Header.Type == unix.RTM_NEWADDR && a.UnmarshalBinary(m.Data) == nil && a.Attributes != nil {
				ip := a.Attributes.Address.To4()
				seen[int(ip[2])<<8|int(ip[3])] = true
			}
		}
		return err
	}
	for range 20 {
		if err := receive(); err != nil {
			t.Fatal(err)
		}
	}
	dropped := add()
	if empty, err := s.empty(); empty || err != nil {
		t.Fatalf("empty with notifications queued = %v, %v; want false", empty, err)
	}
	for {
		if empty, err := s.empty(); err != nil {
			t.Fatal(err)
		} else if empty {
			break
		}
		if err := receive(); err != nil {
			t.Fatal(err)
		}
	}
	if !seen[1] || seen[dropped] {
		t.Errorf("the first address told: %v, the one added while the kernel dropped: %v; want true, false", seen[1], seen[dropped])
	}

	w2 := overflowed()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan Event, 10000)
	done := make(chan error, 1)
	go func() { done <- w2.Run(ctx, out) }()
	var overflows []bool // Drained or not, in order
	// after: -1 before the Drained Overflow, then the address added at
	// it until its hint came, then 0.
	after := -1
	for deadline := time.After(10 * time.Second); after != 0; {
		select {
		case e := <-out:
			switch {
			case e.Kind == Overflow:
				overflows = append(overflows, e.Drained)
				if e.Drained && after < 0 {
					after = add()
				}
			case e.Kind == Addr && after > 0:
				after = 0
			}
		case <-deadline:
			t.Fatalf("within 10 s: overflows %v (Drained or not), the address added after the drain told: %v", overflows, after == 0)
		}
	}
	if diff := cmp.Diff([]bool{false, true}, overflows); diff != "" {
		t.Errorf("overflows, Drained or not (-want +got):\n%s", diff)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
