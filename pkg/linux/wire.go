package linux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"syscall"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/internal/nlattr"
	"github.com/tunneld/tunneld/pkg/kernel"
)

// The request socket is dialled by mdlayher/netlink (options, port ID,
// deadlines), but its messages travel through wire: netlink.Conn starts a
// goroutine for every system call and peeks every datagram to allocate a
// buffer for it (in the VM's profile of a 1000-tunnel observation,
// receiving took 36 % of the samples, the peek and allocation alone 16 %).
// wire reads each datagram into one reused buffer and hands the messages
// to the caller, who must copy what it keeps.

// recvBufSize holds any datagram the kernel sends this socket: it fills
// dump datagrams up to the reader's buffer size, capped at 32 KiB, and
// an answer to one request is smaller than the request plus a page.
const recvBufSize = 64 << 10

// transport moves datagrams: the socket, or canned ones in tests.
type transport interface {
	send(b []byte) error
	// recv returns the next datagram; it is valid until the next call.
	recv() ([]byte, error)
}

// wire is the socket's transport, through the Go runtime's poller (read
// deadlines set on the netlink.Conn apply).
type wire struct {
	rc  syscall.RawConn
	buf []byte
}

func newWire(c *netlink.Conn) (*wire, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &wire{rc: rc, buf: make([]byte, recvBufSize)}, nil
}

func (w *wire) send(b []byte) error {
	var err error
	werr := w.rc.Write(func(fd uintptr) bool {
		err = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return err != unix.EAGAIN
	})
	if werr != nil {
		return werr
	}
	return err
}

// errTruncated means a datagram did not fit the receive buffer.
var errTruncated = errors.New("netlink datagram larger than the receive buffer")

func (w *wire) recv() ([]byte, error) {
	var n, flags int
	var err error
	rerr := w.rc.Read(func(fd uintptr) bool {
		n, _, flags, _, err = unix.Recvmsg(int(fd), w.buf, nil, 0)
		return err != unix.EAGAIN
	})
	switch {
	case rerr != nil:
		return nil, rerr
	case err != nil:
		return nil, err
	case flags&unix.MSG_TRUNC != 0:
		return nil, errTruncated
	}
	return w.buf[:n], nil
}

// appendMessage appends m's header and data, padded, to b.
func appendMessage(b []byte, m netlink.Message) []byte {
	n := unix.NLMSG_HDRLEN + len(m.Data)
	b = binary.NativeEndian.AppendUint32(b, uint32(n))
	b = binary.NativeEndian.AppendUint16(b, uint16(m.Header.Type))
	b = binary.NativeEndian.AppendUint16(b, uint16(m.Header.Flags))
	b = binary.NativeEndian.AppendUint32(b, m.Header.Sequence)
	b = binary.NativeEndian.AppendUint32(b, m.Header.PID)
	b = append(b, m.Data...)
	for range nlmsgAlign(n) - n {
		b = append(b, 0)
	}
	return b
}

func nlmsgAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// errMalformed is a datagram that does not parse as netlink messages.
var errMalformed = errors.New("malformed netlink message")

// eachMessage calls f with every message in the datagram b; data aliases
// b.
func eachMessage(b []byte, f func(h netlink.Header, data []byte)) error {
	for len(b) >= unix.NLMSG_HDRLEN {
		n := int(binary.NativeEndian.Uint32(b))
		if n < unix.NLMSG_HDRLEN || n > len(b) {
			return errMalformed
		}
		h := netlink.Header{
			Length:   uint32(n),
			Type:     netlink.HeaderType(binary.NativeEndian.Uint16(b[4:])),
			Flags:    netlink.HeaderFlags(binary.NativeEndian.Uint16(b[6:])),
			Sequence: binary.NativeEndian.Uint32(b[8:]),
			PID:      binary.NativeEndian.Uint32(b[12:]),
		}
		f(h, b[unix.NLMSG_HDRLEN:n])
		b = b[min(nlmsgAlign(n), len(b)):]
	}
	return nil
}

// answerError is the error an NLMSG_ERROR or NLMSG_DONE message carries:
// nil for an acknowledgement or a clean end of dump, else a
// *netlink.OpError with the errno and the kernel's extended-ack message,
// if it sent one.
func answerError(h netlink.Header, data []byte) error {
	if len(data) < 4 {
		if h.Type == netlink.Done {
			return nil // kernels before 4.x end a dump without an errno
		}
		return errMalformed
	}
	code := int32(binary.NativeEndian.Uint32(data))
	if code == 0 {
		return nil
	}
	oe := &netlink.OpError{Op: "receive", Err: syscall.Errno(-code), Sequence: h.Sequence}
	if h.Flags&netlink.AcknowledgeTLVs == 0 {
		return oe
	}
	tlvs := data[4:]
	if h.Type == netlink.Error {
		// The request's header (and, unless capped, its body) comes first.
		if len(tlvs) < unix.NLMSG_HDRLEN {
			return oe
		}
		skip := unix.NLMSG_HDRLEN
		if h.Flags&netlink.Capped == 0 {
			skip = int(binary.NativeEndian.Uint32(tlvs))
		}
		if skip > len(tlvs) {
			return oe
		}
		tlvs = tlvs[nlmsgAlign(skip):]
	}
	ad, err := netlink.NewAttributeDecoder(tlvs)
	if err != nil {
		return oe
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.NLMSGERR_ATTR_MSG:
			oe.Message = ad.String()
		case unix.NLMSGERR_ATTR_OFFS:
			oe.Offset = int(ad.Uint32())
		}
	}
	return oe
}

// eachAttr calls f with the type (flags masked) and value of every
// attribute in b, until f fails.
func eachAttr(b []byte, f func(typ uint16, v []byte) error) error {
	for len(b) >= unix.SizeofNlAttr {
		typ, v, rest, ok := nlattr.Next(b)
		if !ok {
			return errMalformed
		}
		if err := f(typ, v); err != nil {
			return err
		}
		b = rest
	}
	return nil
}

func nlaAlign(n int) int { return (n + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1) }

// u32 is a host-order u32 attribute value; 0 for a short one.
func u32(v []byte) uint32 {
	if len(v) < 4 {
		return 0
	}
	return binary.NativeEndian.Uint32(v)
}

// cString is a NUL-terminated attribute value as a string.
func cString(v []byte) string { return internString(v) }

// internString is cString(v), but one of known when it is one of them:
// the kinds and the alias repeat on every link of a dump, and need not be
// allocated for each.
func internString(v []byte, known ...string) string {
	if i := bytes.IndexByte(v, 0); i >= 0 {
		v = v[:i]
	}
	for _, k := range known {
		if string(v) == k {
			return k
		}
	}
	return string(v)
}

// errDumpInterrupted: the kernel's table changed during a dump, which may
// then miss or repeat objects; dumpWith starts it again, and after
// dumpRetries the error is Observe's.
var errDumpInterrupted = kernel.ErrDumpInterrupted

// dumpOnce sends a dump request with sequence number seq and calls each
// with every object's message until the dump ends. A stale answer left on
// the socket (another sequence number) is skipped.
func dumpOnce(t transport, seq uint32, typ uint16, req []byte, each func([]byte) error) error {
	m := netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(typ), Flags: netlink.Request | netlink.Dump, Sequence: seq}, Data: req}
	if err := t.send(appendMessage(nil, m)); err != nil {
		return err
	}
	var err error
	done, interrupted := false, false
	for !done {
		b, rerr := t.recv()
		if rerr != nil {
			return rerr
		}
		perr := eachMessage(b, func(h netlink.Header, data []byte) {
			if h.Sequence != seq || done {
				return
			}
			if h.Flags&netlink.DumpInterrupted != 0 {
				interrupted = true
			}
			switch h.Type {
			case netlink.Done, netlink.Error:
				done = true
				if e := answerError(h, data); e != nil && err == nil {
					err = e
				}
			case netlink.Noop, netlink.Overrun:
			default:
				if err == nil {
					err = each(data)
				}
			}
		})
		if perr != nil {
			return perr
		}
	}
	if err == nil && interrupted {
		err = errDumpInterrupted
	}
	return err
}

// dumpRetries bounds how often an interrupted dump is started again.
const dumpRetries = 5

// dumpWith runs a dump to its end, starting again (after reset) while
// the kernel reports it interrupted; seq gives each attempt its number.
func dumpWith(t transport, seq func() uint32, typ uint16, req []byte, reset func(), each func([]byte) error) error {
	for try := 0; ; try++ {
		reset()
		err := dumpOnce(t, seq(), typ, req, each)
		if !errors.Is(err, errDumpInterrupted) || try == dumpRetries {
			return err
		}
	}
}
