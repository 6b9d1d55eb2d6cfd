package nft

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/tunneld/tunneld/pkg/model"
	"golang.org/x/sys/unix"
)

// opTimeout bounds every exchange with the kernel. Without it a batch
// sent where nf_tables cannot be loaded waits forever for acks the kernel
// never sends. (A variable for tests.)
var opTimeout = 30 * time.Second

// Conn is a connection to nf_tables in one network namespace, through
// which tunneld reads and replaces its table inet tunneld. Its methods may
// be called from any goroutine; they are serialized.
type Conn struct {
	mu   sync.Mutex
	nsfd int // a duplicate of the namespace fd given to Open, or -1
	nft  *nftables.Conn
	// nl is nft's lasting socket: deadlines, buffer sizes and the
	// dumps this package decodes itself go through it.
	nl *netlink.Conn
	// last is the table as Read last dumped it; reads counts the dumps.
	last  lastRead
	reads int
	// matched remembers rules whose expressions Read found to be their
	// tag's (see matches).
	matched matched
	// wrote is the ruleset's generation once Replace last committed
	// (see ruleLine).
	wrote struct {
		valid bool
		gen   uint32
	}
}

// ErrUnavailable is in Open's error when the kernel has no nf_tables
// (nor nfnetlink), as opposed to one that refuses this user.
var ErrUnavailable = errors.New("not available")

// Open connects to nf_tables in the network namespace netNSFD refers to,
// or, when netNSFD is 0, in the calling thread's namespace. The fd is
// duplicated: the caller may close its own. Open fails when nf_tables is
// not available (the error is then ErrUnavailable).
func Open(netNSFD int) (*Conn, error) {
	c := &Conn{nsfd: -1}
	if netNSFD != 0 {
		fd, err := unix.FcntlInt(uintptr(netNSFD), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			return nil, fmt.Errorf("nftables: network namespace fd %d: %w", netNSFD, err)
		}
		c.nsfd = fd
	}
	if err := c.dial(); err != nil {
		c.closeNS()
		if errors.Is(err, unix.EPROTONOSUPPORT) {
			// No nfnetlink in this kernel at all.
			return nil, fmt.Errorf("nftables: %w: %w", ErrUnavailable, err)
		}
		return nil, fmt.Errorf("nftables: %w", err)
	}
	// A plain request fails cleanly where a batch would hang when the
	// kernel has no nf_tables (and it loads the module where it can).
	err := c.do(func() error {
		_, err := c.generation()
		return err
	})
	if err != nil {
		c.Close()
		if errors.Is(err, unix.EPERM) {
			// Present, but not to this user: "not available" would
			// send the admin looking for a kernel module.
			return nil, fmt.Errorf("nftables: %w", err)
		}
		return nil, fmt.Errorf("nftables: %w: %w", ErrUnavailable, err)
	}
	return c, nil
}

// dial opens the lasting netlink socket.
func (c *Conn) dial() error {
	var nl *netlink.Conn
	opts := []nftables.ConnOption{
		nftables.AsLasting(),
		nftables.WithSockOptions(func(s *netlink.Conn) error { nl = s; return nil }),
	}
	if c.nsfd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(c.nsfd))
	}
	n, err := nftables.New(opts...)
	if err != nil {
		return err
	}
	if nl == nil {
		n.CloseLasting()
		return errors.New("no netlink socket")
	}
	c.nft, c.nl = n, nl
	return nil
}

// Close releases the socket and the namespace handle.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	if c.nft != nil {
		err = c.nft.CloseLasting()
		c.nft, c.nl = nil, nil
	}
	c.closeNS()
	return err
}

func (c *Conn) closeNS() {
	if c.nsfd >= 0 {
		unix.Close(c.nsfd)
		c.nsfd = -1
	}
}

// do runs one operation under the lock with a deadline on the socket.
// After a timeout the socket may still hold the answers of the timed-out
// exchange, so it is replaced by a fresh one.
func (c *Conn) do(f func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nft == nil {
		return errors.New("connection closed")
	}
	if err := c.nl.SetDeadline(time.Now().Add(opTimeout)); err != nil {
		return err
	}
	err := f()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.nft.CloseLasting()
		c.nft, c.nl = nil, nil
		if derr := c.dial(); derr != nil {
			err = errors.Join(err, fmt.Errorf("reconnect: %w", derr))
		}
		return fmt.Errorf("no answer from nf_tables within %v: %w", opTimeout, err)
	}
	if derr := c.nl.SetDeadline(time.Time{}); err == nil {
		err = derr
	}
	return err
}

// opErr words the failure of op on the table, for an operation's error,
// which names the table already (plan.Op.Object).
func opErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}

// tableErr names tunneld's table in an error (read and counters, whose
// errors are not an operation's).
func tableErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("nftables table inet %s: %s: %w", model.TableName, op, err)
}
