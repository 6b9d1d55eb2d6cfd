package linux

import (
	"encoding"
	"errors"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// request sends one rtnetlink message and waits for its answer (the ack,
// or the dump's messages).
func (k *Kernel) request(typ uint16, flags netlink.HeaderFlags, m encoding.BinaryMarshaler) ([]netlink.Message, error) {
	data, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return k.nl.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(typ), Flags: netlink.Request | flags},
		Data:   data,
	})
}

// dump reads a whole table of objects.
func (k *Kernel) dump(typ uint16, m encoding.BinaryMarshaler) ([]netlink.Message, error) {
	msgs, err := k.request(typ, netlink.Dump, m)
	return msgs, unwrap(err)
}

// unwrap turns netlink's *OpError into the plain errno plus the kernel's
// extended-ack message, if any ("file exists", "invalid argument: …").
func unwrap(err error) error {
	var oe *netlink.OpError
	if !errors.As(err, &oe) {
		return err
	}
	if oe.Message != "" {
		return &kernelError{errno: oe.Err, msg: oe.Message}
	}
	return oe.Err
}

type kernelError struct {
	errno error
	msg   string
}

func (e *kernelError) Error() string { return e.errno.Error() + ": " + e.msg }
func (e *kernelError) Unwrap() error { return e.errno }

func isExist(err error) bool { return errors.Is(err, unix.EEXIST) }
func isNotExist(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EADDRNOTAVAIL)
}
