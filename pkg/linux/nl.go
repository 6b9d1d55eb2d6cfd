package linux

import (
	"encoding"
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nextSeq numbers the socket's next request.
func (k *Kernel) nextSeq() uint32 {
	k.seq++
	return k.seq
}

// dump reads a whole table of objects: reset, then each with every
// object's message (valid only during the call), again from reset if the
// kernel reports the dump interrupted by a concurrent change.
func (k *Kernel) dump(typ uint16, m encoding.BinaryMarshaler, reset func(), each func([]byte) error) error {
	req, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	return unwrap(dumpWith(k.w, k.nextSeq, typ, req, reset, each))
}

// list dumps one table of objects (what names them in errors), handing
// each message to add, which decodes it, copies what it keeps and
// appends it to the caller's slice, and reset, which empties that slice
// when the dump starts again. The callers append to into[:0] of the
// slice they are given: Observe passes the array of its last
// observation, so that each re-read does not grow a thousand objects'
// array anew. (A generic list appending itself was instantiated for each
// of the five kinds of object, about 6 KB of the mipsle binary.)
func list(k *Kernel, what string, typ uint16, req encoding.BinaryMarshaler, reset func(), add func([]byte) error) error {
	err := k.dump(typ, req, reset, func(b []byte) error {
		if err := add(b); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", what, err)
	}
	return nil
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
