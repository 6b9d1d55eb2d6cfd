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
// its state directory (which it tells whoever connects).
func AcquireNamespace(dir, command string) (*NamespaceLock, error) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: NamespaceName, Net: "unix"})
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, namespaceHolder()
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

// NamespaceHolder names the tunneld that holds the network namespace's
// lock, without taking it (status, which only reads): nil when none does.
func NamespaceHolder() *HeldError {
	c, err := net.DialTimeout("unix", NamespaceName, time.Second)
	if err != nil {
		return nil
	}
	return holderOn(c)
}

// namespaceHolder asks the holder of the namespace's lock who it is (an
// error whose holder is not known where it does not answer).
func namespaceHolder() *HeldError {
	c, err := net.DialTimeout("unix", NamespaceName, time.Second)
	if err != nil {
		return &HeldError{Namespace: true}
	}
	return holderOn(c)
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
