package statelock

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// NamespaceName is the abstract unix socket that one tunneld at a time
// holds in a network namespace (abstract sockets belong to the network
// namespace the socket was made in); a variable for tests.
var NamespaceName = "@tunneld.lock"

// NamespaceLock keeps a second tunneld, with another state directory,
// from changing the same network namespace: both would write protocol
// 116's routes and rules, the nftables table inet tunneld and the same
// sysctls, and each would undo the other. The state directory's lock
// cannot see it (TUNNELD_STATE_DIR is for instances in separate
// namespaces). The kernel closes the socket when its holder dies, however
// it dies.
type NamespaceLock struct {
	l    *net.UnixListener
	done chan struct{}
}

// AcquireNamespace takes the network namespace's lock for command with
// state directory dir, without waiting. When another process holds it,
// the error is a *HeldError with Namespace set, naming that process and
// its state directory (which a tunneld tells whoever connects).
//
// Abstract sockets have no permissions: any local user can bind the name
// first, and a tunneld that then refused would be kept off by anyone (a
// tester's uid 65534 did). So a holder that /proc shows cannot be a
// tunneld (no CAP_NET_ADMIN, not root) is no reason to refuse: the lock
// is not taken (nil, and the state directory's lock still keeps this
// instance one), and warning says so, for the caller to print or log once.
// One that is, or may be (/proc does not show it: a user that is not root
// cannot see other users' descriptors), still is: the error says who it
// is as far as known and how to find it.
func AcquireNamespace(dir, command string) (lock *NamespaceLock, warning string, err error) {
	// Twice: a holder found not to be a tunneld may have let go of the
	// name meanwhile (and its pid, when SO_PEERCRED gave it, be
	// another's now): then the lock is this instance's.
	for range 2 {
		n, err := listenNamespace(dir, command)
		if !errors.Is(err, syscall.EADDRINUSE) {
			return n, "", err
		}
		he := namespaceHolder()
		if he.mayBeTunneld() {
			return nil, "", he
		}
		warning = he.notTunneld()
	}
	return nil, warning, nil
}

// listenNamespace binds the namespace's name and answers whoever
// connects with "PID COMMAND DIR".
func listenNamespace(dir, command string) (*NamespaceLock, error) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: NamespaceName, Net: "unix"})
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("network namespace lock: %w", err)
	}
	n := &NamespaceLock{l: l, done: make(chan struct{})}
	info := strconv.Itoa(os.Getpid()) + " " + command + " " + dir + "\n"
	go func() {
		defer close(n.done)
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte(info))
			c.Close()
		}
	}()
	return n, nil
}

// deafWait is how long namespaceHolder waits before it connects again to
// a name bound and not listened on.
const deafWait = 50 * time.Millisecond

// NamespaceHolder names the tunneld that holds the network namespace's
// lock, without taking it (status, which only reads): nil when none does.
func NamespaceHolder() *HeldError {
	c, err := net.DialTimeout("unix", NamespaceName, time.Second)
	if err != nil {
		return nil
	}
	return holderOn(c)
}

// namespaceHolder finds who holds the namespace's lock: the processes
// /proc shows with the socket open (SocketHolders), else the one that
// made it listen (SO_PEERCRED), whose pid is no proof that it still holds
// it. Those that may be a tunneld are asked who they are; the others'
// line would be no proof, and one that never answers would hold this
// one for its read's second.
func namespaceHolder() *HeldError {
	e := &HeldError{Namespace: true}
	peer := Process{Uid: -1}
	c, err := net.DialTimeout("unix", NamespaceName, time.Second)
	if errors.Is(err, syscall.ECONNREFUSED) {
		// Bound, not listening: a tunneld listens as soon as it has
		// bound the name (net.ListenUnix), so once more past that
		// moment. A user that is not root cannot see who holds it
		// (another user's descriptors), and a tester's service user was
		// kept off by anyone's bind alone.
		time.Sleep(deafWait)
		c, err = net.DialTimeout("unix", NamespaceName, time.Second)
		e.Deaf = errors.Is(err, syscall.ECONNREFUSED)
	}
	if err == nil {
		defer c.Close()
		if cred := peerCred(c); cred != nil && cred.Pid > 0 {
			peer.Pid, peer.Uid = int(cred.Pid), int(cred.Uid)
		}
	}
	var holders []Process
	pids := SocketHolders(NamespaceName)
	if len(pids) == 0 && peer.Pid > 0 {
		pids = []int{peer.Pid}
	}
	for _, pid := range pids {
		uid := -1
		if pid == peer.Pid {
			uid = peer.Uid
		}
		holders = append(holders, process(pid, uid))
	}
	e.Holders = holders
	if c != nil && e.mayBeTunneld() {
		e = holderOn(c)
		e.Holders = holders
	}
	return e
}

// peerCred returns the credentials of the process that made the socket
// at c's other end listen, nil when the kernel does not say.
func peerCred(c net.Conn) *unix.Ucred {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil
	}
	var cred *unix.Ucred
	_ = raw.Control(func(fd uintptr) {
		cred, _ = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	return cred
}

// mayBeTunneld reports whether the holders of a namespace's lock may be
// a tunneld: nothing listens on the name (Deaf), which every tunneld
// does, or one of them could be, or none is known.
func (e *HeldError) mayBeTunneld() bool {
	if e.Deaf {
		return false
	}
	if len(e.Holders) == 0 {
		return true
	}
	for _, p := range e.Holders {
		if p.MayBeTunneld() {
			return true
		}
	}
	return false
}

// notTunneld is the warning for a namespace's lock held by processes
// that cannot be a tunneld.
func (e *HeldError) notTunneld() string {
	which := "which has no CAP_NET_ADMIN and so is not a tunneld"
	switch {
	case e.Deaf:
		which = "which does not listen on it as every tunneld does, and so is not one"
	case len(e.Holders) > 1:
		which = "none of which has CAP_NET_ADMIN, so none is a tunneld"
	}
	return "the network namespace's lock " + NamespaceName + " is held by " + e.holders() + ", " + which +
		": going on without it; find it with " + findHint()
}

// holders names the processes that hold a namespace's lock.
func (e *HeldError) holders() string {
	if len(e.Holders) == 0 && os.Geteuid() != 0 {
		return "a process this user cannot identify (root can)"
	}
	if len(e.Holders) == 0 {
		// In a pid namespace that this one's /proc does not show.
		return "a process that /proc does not show"
	}
	names := make([]string, len(e.Holders))
	for i, p := range e.Holders {
		names[i] = p.String()
	}
	return strings.Join(names, ", ")
}

// findHint is the command that shows who holds the namespace's lock
// (listening or only bound: -a, not -l).
func findHint() string {
	return "`ss -xap | grep " + strings.TrimPrefix(NamespaceName, "@") + "`"
}

// holderOn reads the holder's line from c, a connection to the
// namespace's lock, and closes it.
func holderOn(c net.Conn) *HeldError {
	e := &HeldError{Namespace: true}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	// The holder writes its one line and closes the connection.
	b, _ := io.ReadAll(io.LimitReader(c, 4096))
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.SplitN(line, " ", 3)
	if len(fields) == 3 {
		if pid, err := strconv.Atoi(fields[0]); err == nil && pid > 0 {
			e.Pid, e.Command, e.Dir = pid, fields[1], fields[2]
		}
	}
	return e
}

// Release lets go of the namespace's lock. It is safe to call more than
// once, and on a nil lock.
func (n *NamespaceLock) Release() {
	if n == nil || n.l == nil {
		return
	}
	n.l.Close()
	<-n.done
	n.l = nil
}
