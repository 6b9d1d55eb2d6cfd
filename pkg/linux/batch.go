package linux

import (
	"encoding"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

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

// followUp marks a request body that is sent only once the operation's
// other requests are known to have worked, in a datagram after theirs: a
// request by name that must not reach a device another request failed to
// create.
type followUp interface{ followUp() }

// putBack marks a request body that is sent only once one of the
// operation's other requests is known to have failed, in a datagram after
// theirs: it puts back what an earlier request of the operation deleted
// to make room for the one that failed.
type putBack interface{ putBack() }

// phase is when a request is sent: with the operation's others
// (sendFirst), once they worked (sendAfterOK: a followUp), or once one of
// them failed (sendIfFailed: a putBack).
type phase int

const (
	sendFirst phase = iota
	sendAfterOK
	sendIfFailed
)

// phase says when r is sent.
func (r nlreq) phase() phase {
	switch r.body.(type) {
	case followUp:
		return sendAfterOK
	case putBack:
		return sendIfFailed
	}
	return sendFirst
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

// maxBatch bounds the requests sent in one sendmsg: every one of them may
// fail, and its error, which carries a copy of the request, must fit in
// the socket's receive buffer with the others (256 failed link creations
// overflow the default 208 KiB; 64 leave room).
const maxBatch = 64

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
	// later, ifFailed: a pending request is sent in that phase.
	later, ifFailed bool
	// notCreated are the tunnels whose creation failed in this Apply:
	// the operations on them after it are not tried (their failure
	// would only repeat that one).
	notCreated map[string]bool
	// notMoved are the tunnels whose change to other endpoints failed
	// in this Apply: they are not set up, addressed or routed through
	// after it (indexes.moveFailed).
	notMoved map[string]bool
}

func (b *batcher) add(op plan.Op, reqs []nlreq) {
	b.ops = append(b.ops, op)
	b.reqs = append(b.reqs, reqs)
	b.n += len(reqs)
	for _, r := range reqs {
		b.later = b.later || r.phase() == sendAfterOK
		b.ifFailed = b.ifFailed || r.phase() == sendIfFailed
	}
	if b.n >= maxBatch {
		b.flush()
	}
}

// flush sends what is pending and records each operation's result. The
// requests marked afterOK follow in a second datagram, for the operations
// whose other requests worked; then those that put back what a failed
// operation deleted, in a third. An operation that failed stays failed;
// if putting back failed too, its error says so.
func (b *batcher) flush() {
	if b.n == 0 {
		return
	}
	errs := b.send(sendFirst, nil)
	for j, op := range b.ops {
		// Not created: the creation itself failed. One whose alias
		// failed after it (sendAfterOK) exists, tunneld's unmarked.
		if op.Kind == plan.LinkAdd && errs[j] != nil {
			b.notCreated[op.Link.Name] = true
		}
		if op.MovesEndpoints() && errs[j] != nil {
			b.notMoved[op.Link.Name] = true
		}
	}
	if b.later {
		later := b.send(sendAfterOK, errs)
		for j := range errs {
			if errs[j] == nil {
				errs[j] = later[j]
			}
		}
	}
	if b.ifFailed {
		back := b.send(sendIfFailed, errs)
		for j := range errs {
			if errs[j] != nil && back[j] != nil {
				errs[j] = fmt.Errorf("%w; what it deleted to make room could not be put back: %w", errs[j], back[j])
			}
		}
	}
	for j, op := range b.ops {
		kernel.Collect(b.errs, op, errs[j])
	}
	b.ops, b.reqs, b.n, b.later, b.ifFailed = b.ops[:0], b.reqs[:0], 0, false, false
}

// send exchanges the pending requests of phase ph: for sendFirst every
// operation's, for sendAfterOK those of the operations not failed
// (failed[j] == nil), for sendIfFailed those of the operations failed;
// and returns each operation's first error.
func (b *batcher) send(ph phase, failed []error) []error {
	skip := func(j int) bool {
		switch ph {
		case sendAfterOK:
			return failed[j] != nil
		case sendIfFailed:
			return failed[j] == nil
		}
		return false
	}
	opErrs := make([]error, len(b.ops))
	var msgs []netlink.Message
	var encErr error
	for j, rs := range b.reqs {
		if skip(j) {
			continue
		}
		for _, r := range rs {
			if r.phase() != ph {
				continue
			}
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
	if len(msgs) == 0 {
		return opErrs
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
		if skip(j) {
			continue
		}
		for _, r := range rs {
			if r.phase() != ph {
				continue
			}
			err := answers[i]
			i++
			if r.result != nil {
				err = r.result(err)
			}
			if opErrs[j] == nil {
				opErrs[j] = err
			}
		}
	}
	return opErrs
}

// exchangeTimeout bounds the wait for a batch's last answer; after the
// socket overflowed, overflowWait bounds the wait for what is still queued.
const (
	exchangeTimeout = 30 * time.Second
	overflowWait    = 200 * time.Millisecond
)

// errAnswerLost is the result of a request whose answer the kernel could
// not queue (the socket's buffer was full): it may or may not have been
// done; the next observation tells.
var errAnswerLost = errors.New("the kernel's answer was lost (netlink socket buffer full)")

// exchange sends msgs in one datagram and records each one's answer in
// answers (nil for success). Only the last message asks for an
// acknowledgement: the kernel answers a failed request whether asked or
// not, and handles the datagram in order, so every failure is queued
// before the last answer and is matched to its request by sequence
// number. A thousand operations cost a few reads, not one per request.
// Whatever happens, the batch's answers are read off the socket before
// it returns, so that no stale answer meets the next request.
func (k *Kernel) exchange(msgs []netlink.Message, answers []error) {
	msgs[len(msgs)-1].Header.Flags |= netlink.Acknowledge
	bySeq := make(map[uint32]int, len(msgs))
	var b []byte
	for i := range msgs {
		msgs[i].Header.Sequence = k.nextSeq()
		bySeq[msgs[i].Header.Sequence] = i
		b = appendMessage(b, msgs[i])
	}
	if err := k.w.send(b); err != nil {
		for i := range answers {
			answers[i] = err
		}
		return
	}
	answered := make([]bool, len(msgs))
	// The answers are queued by the time sendmsg returns; the deadline
	// only guards against waiting forever for one the kernel skipped.
	if err := k.nl.SetReadDeadline(time.Now().Add(exchangeTimeout)); err == nil {
		defer k.nl.SetReadDeadline(time.Time{})
	}
	overflow := false
	for !answered[len(msgs)-1] {
		d, err := k.w.recv()
		if err == nil {
			err = eachMessage(d, func(h netlink.Header, data []byte) {
				// Anything but an answer to this batch is stale.
				if i, ok := bySeq[h.Sequence]; ok && h.Type == netlink.Error {
					answers[i], answered[i] = unwrap(answerError(h, data)), true
				}
			})
		}
		if err == nil {
			continue
		}
		if errors.Is(err, unix.ENOBUFS) {
			// Answers were dropped; the rest are queued already.
			overflow = true
			k.nl.SetReadDeadline(time.Now().Add(overflowWait))
			continue
		}
		if !overflow || !errors.Is(err, os.ErrDeadlineExceeded) {
			// The socket itself failed: what the kernel did with the
			// unanswered requests is unknown.
			for i := range answers {
				if !answered[i] {
					answers[i] = err
				}
			}
			return
		}
		break // everything queued after the overflow has been read
	}
	if overflow {
		// A request without an answer may have failed silently.
		for i := range answers {
			if !answered[i] {
				answers[i] = errAnswerLost
			}
		}
	}
}
