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

// statusOf makes ReadStatus say that every process is what status says
// (the holders in these tests are the test process itself).
func statusOf(t *testing.T, status string) {
	old := ReadStatus
	ReadStatus = func(int) ([]byte, error) { return []byte(status), nil }
	t.Cleanup(func() { ReadStatus = old })
}

const (
	// rootStatus is /proc/PID/status's for a process running as root.
	rootStatus = "Name:\ttunneld\nUid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\n"
	// nobodyStatus is one's without privileges (python3 run by uid
	// 65534, a tester's).
	nobodyStatus = "Name:\tpython3\nUid:\t65534\t65534\t65534\t65534\nCapEff:\t0000000000000000\n"
)

// TestNamespaceLock: a second tunneld in the namespace is refused with
// the holder's pid, command and state directory; once the first lets go,
// it takes the lock.
func TestNamespaceLock(t *testing.T) {
	testNamespaceName(t)
	statusOf(t, rootStatus)
	first, _, err := AcquireNamespace("/run/tunneld", "run")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = AcquireNamespace("/run/other", "apply")
	var he *HeldError
	if !errors.As(err, &he) {
		t.Fatalf("second: %v, want a HeldError", err)
	}
	want := HeldError{Dir: "/run/tunneld", Namespace: true, Pid: os.Getpid(), Command: "run",
		Holders: []Process{{Pid: os.Getpid(), Uid: 0, Comm: "tunneld", Status: true, NetAdmin: true}}}
	if diff := cmp.Diff(want, *he); diff != "" {
		t.Errorf("held error (-want +got):\n%s", diff)
	}
	if got, want := err.Error(), fmt.Sprintf("network namespace: in use by tunneld run (pid %d), state directory /run/tunneld", os.Getpid()); got != want {
		t.Errorf("error %q, want %q", got, want)
	}
	first.Release()
	first.Release() // twice is safe
	again, _, err := AcquireNamespace("/run/other", "apply")
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
	outer, _, err := AcquireNamespace("/run/tunneld", "run")
	if err != nil {
		t.Fatal(err)
	}
	defer outer.Release()
	netnstest.Enter(t)
	inner, _, err := AcquireNamespace("/run/tunneld-ns2", "run")
	if err != nil {
		t.Fatalf("in a namespace of its own: %v", err)
	}
	inner.Release()
}
