package linux

import (
	"encoding"

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
// sendmsg. The kernel handles the messages of one datagram in order and
// acknowledges each in turn, so the n-th acknowledgement answers the n-th
// request; a failed request does not stop the ones after it.
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
				Header: netlink.Header{Type: netlink.HeaderType(r.typ), Flags: netlink.Request | netlink.Acknowledge | r.flags},
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

// exchange sends msgs in one datagram and reads one acknowledgement per
// message into answers (nil for success).
func (k *Kernel) exchange(msgs []netlink.Message, answers []error) {
	if _, err := k.nl.SendMessages(msgs); err != nil {
		for i := range answers {
			answers[i] = unwrap(err)
		}
		return
	}
	for got := 0; got < len(msgs); {
		replies, err := k.nl.Receive()
		if err != nil {
			if !isOpError(err) {
				// The socket itself failed: nothing more will come.
				for ; got < len(msgs); got++ {
					answers[got] = err
				}
				return
			}
			answers[got] = unwrap(err)
			got++
			continue
		}
		got += len(replies)
	}
}
