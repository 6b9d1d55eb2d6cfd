package statelock

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/netnstest"
)

// testNamespaceName gives the test its own abstract socket, apart from a
// tunneld running on the machine and from other test processes.
func testNamespaceName(t *testing.T) {
	old := NamespaceName
	NamespaceName = fmt.Sprintf("@tunneld-test-%d-%s", os.Getpid(), t.Name())
	t.Cleanup(func() { NamespaceName = old })
}

// TestNamespaceLock: a second tunneld in the namespace is refused with
// the holder's pid, command and state directory; once the first lets go,
// it takes the lock.
func TestNamespaceLock(t *testing.T) {
	testNamespaceName(t)
	first, err := AcquireNamespace("/run/tunneld", "run")
	if err != nil {
		t.Fatal(err)
	}
	_, err = AcquireNamespace("/run/other", "apply")
	var he *HeldError
	if !errors.As(err, &he) {
		t.Fatalf("second: %v, want a HeldError", err)
	}
	want := HeldError{Dir: "/run/tunneld", Namespace: true, Pid: os.Getpid(), Command: "run"}
	if diff := cmp.Diff(want, *he); diff != "" {
		t.Errorf("held error (-want +got):\n%s", diff)
	}
	if got, want := err.Error(), fmt.Sprintf("network namespace: in use by tunneld run (pid %d), state directory /run/tunneld", os.Getpid()); got != want {
		t.Errorf("error %q, want %q", got, want)
	}
	first.Release()
	first.Release() // twice is safe
	again, err := AcquireNamespace("/run/other", "apply")
	if err != nil {
		t.Fatalf("after the release: %v", err)
	}
	again.Release()
}

// TestPrivilegedNamespaceLockPerNamespace: the lock is the namespace's:
// a tunneld in another network namespace takes its own.
func TestPrivilegedNamespaceLockPerNamespace(t *testing.T) {
	netnstest.Gate(t)
	testNamespaceName(t)
	outer, err := AcquireNamespace("/run/tunneld", "run")
	if err != nil {
		t.Fatal(err)
	}
	defer outer.Release()
	netnstest.Enter(t)
	inner, err := AcquireNamespace("/run/tunneld-ns2", "run")
	if err != nil {
		t.Fatalf("in a namespace of its own: %v", err)
	}
	inner.Release()
}
