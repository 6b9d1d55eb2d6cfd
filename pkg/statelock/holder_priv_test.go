package statelock

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/internal/otheruser"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// TestPrivilegedForeignHolder: a process running as another user
// (otheruser.UID) without capabilities that binds the namespace's name
// (listening or not, as a tester's python3 did as uid 65534) does not
// keep root's tunneld off: it goes on with a warning naming the process, found through the real /proc (SO_PEERCRED,
// /proc/net/unix, /proc/PID/fd and status); once it is gone the lock is
// taken. The holder is this test binary, copied where that user may run
// it and started in the test's namespace.
func TestPrivilegedForeignHolder(t *testing.T) {
	if name := os.Getenv("STATELOCK_FOREIGN"); name != "" {
		foreignHolder(name, os.Getenv("STATELOCK_FOREIGN_LISTEN") == "1")
		return
	}
	netnstest.Enter(t)
	bin := copyTestBinary(t)
	for _, listen := range []bool{true, false} {
		t.Run(fmt.Sprintf("listen=%v", listen), func(t *testing.T) {
			testNamespaceName(t)
			cmd := exec.Command(bin, "-test.run=^TestPrivilegedForeignHolder$")
			cmd.Env = append(os.Environ(), "STATELOCK_FOREIGN="+NamespaceName, fmt.Sprintf("STATELOCK_FOREIGN_LISTEN=%d", map[bool]int{true: 1}[listen]))
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otheruser.UID, Gid: otheruser.UID, Groups: []uint32{}}}
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			// Started from this goroutine's thread: in the test's
			// namespace.
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			if line, err := bufio.NewReader(out).ReadString('\n'); line != "bound\n" {
				t.Fatalf("holder: %q, %v", line, err)
			}
			n, warning, err := AcquireNamespace("/run/tunneld", "apply")
			if err != nil || n != nil {
				n.Release()
				t.Fatalf("AcquireNamespace with uid %d holding the name: %v, %v; want a warning", otheruser.UID, n, err)
			}
			which := "has no CAP_NET_ADMIN and so is not a tunneld"
			if !listen {
				which = "does not listen on it as every tunneld does, and so is not one"
			}
			want := fmt.Sprintf("the network namespace's lock %s is held by pid %d (uid %d, statelock.test), which %s: going on without it; find it with `ss -xap | grep %s`",
				NamespaceName, cmd.Process.Pid, otheruser.UID, which, strings.TrimPrefix(NamespaceName, "@"))
			if diff := cmp.Diff(want, warning); diff != "" {
				t.Errorf("warning (-want +got):\n%s", diff)
			}
			cmd.Process.Kill()
			cmd.Wait()
			n, warning, err = AcquireNamespace("/run/tunneld", "apply")
			if err != nil || n == nil || warning != "" {
				t.Fatalf("AcquireNamespace after the holder is gone: %v, %q, %v; want the lock", n, warning, err)
			}
			n.Release()
		})
	}
}

// foreignHolder is the child of TestPrivilegedForeignHolder: it binds
// name, listens when listen is set, says so and waits to be killed.
func foreignHolder(name string, listen bool) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrUnix{Name: name})
	}
	if err == nil && listen {
		err = unix.Listen(fd, 1)
	}
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("bound")
	time.Sleep(time.Minute)
	os.Exit(0)
}

// copyTestBinary copies the test binary where otheruser.UID may run it
// (go test's build directory is root's alone). otheruser.Run waits for
// its child; this test's holds the name while the test goes on.
func copyTestBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(otheruser.Dir(t), "statelock.test")
	b, err := os.ReadFile(os.Args[0])
	if err == nil {
		err = os.WriteFile(bin, b, 0o755)
	}
	if err != nil {
		t.Fatalf("copying the test binary: %v", err)
	}
	return bin
}
