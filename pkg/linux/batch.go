package linux

import (
	"encoding"
	"errors"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"

	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/plan"
)

// nlreq is one rtnetlink request of an operation, with what the kernel's
// answer means for the operation.
type nlreq struct {
	typ   uint16
	flags netlink.HeaderFlags
	body  encoding.BinaryMarshaler
	// result maps the kernel's answer (nil for success) to the
	// operation's result; nil keeps it as it is.
	result func(error) error
}

// unless makes the errors pred recognises count as success ("exists" on
// an add, "not found" on a delete).
func unless(pred func(error) bool) func(error) error {
	return func(err error) error {
		if pred(err) {
			return nil
		}
		return err
	}
}

// maxBatch bounds the requests sent in one sendmsg (and the acks then
// queued on the socket).
const maxBatch = 256

// batcher sends the requests of consecutive operations several to a
// sendmsg. The kernel handles the messages of one datagram in order; a
// failed request does not stop the ones after it.
type batcher struct {
	k     *Kernel
	ops   []plan.Op
	reqs  [][]nlreq
	n     int
	errs  **kernel.ApplyError
	sends int
}

func (b *batcher) add(op plan.Op, reqs []nlreq) {
	b.ops = append(b.ops, op)
	b.reqs = append(b.reqs, reqs)
	b.n += len(reqs)
	if b.n >= maxBatch {
		b.flush()
	}
}

// flush sends what is pending and records each operation's result.
func (b *batcher) flush() {
	if b.n == 0 {
		return
	}
	msgs := make([]netlink.Message, 0, b.n)
	var encErr error
	for _, rs := range b.reqs {
		for _, r := range rs {
			data, err := r.body.MarshalBinary()
			if err != nil {
				encErr = err
			}
			msgs = append(msgs, netlink.Message{
				Header: netlink.Header{Type: netlink.HeaderType(r.typ), Flags: netlink.Request | r.flags},
				Data:   data,
			})
		}
	}
	answers := make([]error, len(msgs))
	if encErr != nil {
		for i := range answers {
			answers[i] = encErr
		}
	} else {
		b.sends++
		b.k.exchange(msgs, answers)
	}
	i := 0
	for j, rs := range b.reqs {
		var opErr error
		for _, r := range rs {
			err := answers[i]
			i++
			if r.result != nil {
				err = r.result(err)
			}
			if opErr == nil {
				opErr = err
			}
		}
		kernel.Collect(b.errs, b.ops[j], opErr)
	}
	b.ops, b.reqs, b.n = b.ops[:0], b.reqs[:0], 0
}

// exchangeTimeout bounds the wait for a batch's last answer.
const exchangeTimeout = 30 * time.Second

// exchange sends msgs in one datagram and records each one's answer in
// answers (nil for success). Only the last message asks for an
// acknowledgement: the kernel answers a failed request whether asked or
// not, and handles the datagram in order, so every failure is queued
// before the last answer and is matched to its request by sequence
// number. A thousand operations cost a few reads, not one per request.
func (k *Kernel) exchange(msgs []netlink.Message, answers []error) {
	msgs[len(msgs)-1].Header.Flags |= netlink.Acknowledge
	sent, err := k.nl.SendMessages(msgs)
	if err != nil {
		for i := range answers {
			answers[i] = unwrap(err)
		}
		return
	}
	bySeq := make(map[uint32]int, len(sent))
	for i, m := range sent {
		bySeq[m.Header.Sequence] = i
	}
	last := sent[len(sent)-1].Header.Sequence
	// The answers are queued by the time sendmsg returns; the deadline
	// only guards against waiting forever for one the kernel skipped.
	if err := k.nl.SetReadDeadline(time.Now().Add(exchangeTimeout)); err == nil {
		defer k.nl.SetReadDeadline(time.Time{})
	}
	for {
		replies, err := k.nl.Receive()
		if err != nil {
			var oe *netlink.OpError
			i, ok := 0, false
			if errors.As(err, &oe) {
				// A kernel's answer carries a bare errno and our sequence.
				_, errno := oe.Err.(syscall.Errno)
				i, ok = bySeq[oe.Sequence]
				ok = ok && errno
			}
			if !ok {
				// The socket itself failed: nothing more will come, and
				// what the kernel did with the rest is unknown.
				for i := range answers {
					if answers[i] == nil {
						answers[i] = err
					}
				}
				return
			}
			answers[i] = unwrap(err)
			if i == len(sent)-1 {
				return
			}
			continue
		}
		for _, r := range replies {
			if r.Header.Sequence == last {
				return
			}
		}
	}
}
