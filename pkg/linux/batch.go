package linux

import (
	"encoding"
	"errors"
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

// afterOK reports whether r is a follow-up.
func (r nlreq) afterOK() bool {
	_, ok := r.body.(followUp)
	return ok
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
	// later: a pending request is afterOK.
	later bool
	// notCreated are the tunnels whose creation failed in this Apply:
	// the operations on them after it are not tried (their failure
	// would only repeat that one).
	notCreated map[string]bool
}

func (b *batcher) add(op plan.Op, reqs []nlreq) {
	b.ops = append(b.ops, op)
	b.reqs = append(b.reqs, reqs)
	b.n += len(reqs)
	for _, r := range reqs {
		b.later = b.later || r.afterOK()
	}
	if b.n >= maxBatch {
		b.flush()
	}
}

// flush sends what is pending and records each operation's result. The
// requests marked afterOK follow in a second datagram, for the operations
// whose other requests worked.
func (b *batcher) flush() {
	if b.n == 0 {
		return
	}
	errs := b.send(false, nil)
	if b.later {
		later := b.send(true, errs)
		for j := range errs {
			if errs[j] == nil {
				errs[j] = later[j]
			}
		}
	}
	for j, op := range b.ops {
		kernel.Collect(b.errs, op, errs[j])
		if op.Kind == plan.LinkAdd && errs[j] != nil {
			b.notCreated[op.Link.Name] = true
		}
	}
	b.ops, b.reqs, b.n, b.later = b.ops[:0], b.reqs[:0], 0, false
}

// send exchanges the pending requests with afterOK equal to later, of the
// operations not failed already (failed[j] == nil; failed may be nil),
// and returns each operation's first error.
func (b *batcher) send(later bool, failed []error) []error {
	opErrs := make([]error, len(b.ops))
	var msgs []netlink.Message
	var encErr error
	for j, rs := range b.reqs {
		if failed != nil && failed[j] != nil {
			continue
		}
		for _, r := range rs {
			if r.afterOK() != later {
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
		if failed != nil && failed[j] != nil {
			continue
		}
		for _, r := range rs {
			if r.afterOK() != later {
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
