// Package netnstest runs privileged tests in network namespaces of their
// own, never in the host's. Tests using it are gated: they run only as
// root with TUNNELD_PRIVILEGED=1 and skip with the reason otherwise.
package netnstest

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// EnvGate is the environment variable that enables privileged tests.
const EnvGate = "TUNNELD_PRIVILEGED"

// Gate skips t unless it may run privileged.
func Gate(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvGate) != "1" {
		t.Skipf("privileged test: set %s=1 and run as root (make test-priv)", EnvGate)
	}
	if os.Geteuid() != 0 {
		t.Skip("privileged test: needs root")
	}
}

// Enter gates t, then moves the test's goroutine, locked to its OS thread,
// into a new, empty network namespace with loopback up. When the test ends
// the thread goes back to its original namespace (or, if that fails, dies
// with the goroutine). Sockets and /proc/sys/net files opened by the test
// goroutine belong to the new namespace; other goroutines do not run in
// it, so create sockets before starting any.
func Enter(t testing.TB) {
	Gate(t)
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("unshare network namespace: %v", err)
	}
	t.Cleanup(func() {
		err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET)
		orig.Close()
		if err == nil {
			runtime.UnlockOSThread()
		}
	})
	if err := LinkUp("lo"); err != nil {
		t.Fatal(err)
	}
	// The kernel copies the initial namespace's IPv4 settings into a
	// new one (net.core.devconf_inherit_init_net 0): forwarding on in
	// the host's, by anything else running there, was on in the test's,
	// and a test that asserts the original 0 failed now and then.
	// Forwarding off, as at boot (one write: the kernel copies it onto
	// all, default and every device).
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0"), 0); err != nil {
		t.Fatal(err)
	}
}

// NewNS creates a further network namespace while the caller stays where
// it is, and returns a handle to it; Do runs a function inside it.
func NewNS(t *testing.T) *NS {
	t.Helper()
	ns := &NS{}
	err := onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return err
		}
		f, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			return err
		}
		ns.f = f
		return LinkUp("lo")
	})
	if err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// Close lets the namespace go (the kernel frees it once nothing else
// holds it). Closing twice is harmless.
func (n *NS) Close() {
	n.once.Do(func() { n.f.Close() })
}

// NS is a network namespace held open by a file descriptor.
type NS struct {
	f    *os.File
	once sync.Once
}

// FD is the namespace's file descriptor (for netlink.Config.NetNS and
// IFLA_NET_NS_FD).
func (n *NS) FD() int { return int(n.f.Fd()) }

// Do runs f on a fresh OS thread inside the namespace.
func (n *NS) Do(f func() error) error {
	return onThread(func() error {
		if err := unix.Setns(n.FD(), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("setns: %w", err)
		}
		return f()
	})
}

// onThread runs f on a goroutine locked to a thread that is thrown away
// afterwards, so a namespace change never leaks to other goroutines.
func onThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with us
		errc <- f()
	}()
	return <-errc
}

// EnvRequireDrivers, set to 1 where the kernel has every tunnel driver
// (the test VMs), turns a test's skip for a missing driver into a failure.
const EnvRequireDrivers = "TUNNELD_REQUIRE_DRIVERS"

// NoDriver skips t because the kernel lacks a tunnel driver, or fails it
// where drivers are required.
func NoDriver(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(EnvRequireDrivers) == "1" {
		t.Fatalf("%s (%s=1: this kernel must have it)", reason, EnvRequireDrivers)
	}
	t.Skipf("%s\n(the host kernel has no tunnel drivers: this test runs in the test VM, make test-vm)", reason)
}
