package statelock

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/netnstest"
)

// TestPrivilegedForeignHolder: a process running as uid 65534 without
// capabilities that binds the namespace's name (listening or not, a
// tester's python3) does not keep root's tunneld off: it goes on with a
// warning naming the process, found through the real /proc (SO_PEERCRED,
// /proc/net/unix, /proc/PID/fd and status); once it is gone the lock is
// taken. The holder is this test binary, copied where uid 65534 may run
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
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
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
				t.Fatalf("AcquireNamespace with uid 65534 holding the name: %v, %v; want a warning", n, err)
			}
			want := fmt.Sprintf("the network namespace's lock %s is held by pid %d (uid 65534, statelock.test), which has no CAP_NET_ADMIN and so is not a tunneld: going on without it; find it with `ss -xap | grep %s`",
				NamespaceName, cmd.Process.Pid, strings.TrimPrefix(NamespaceName, "@"))
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

// copyTestBinary copies the test binary where uid 65534 may run it (go
// test's build directory is root's alone).
func copyTestBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "statelock-foreign")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	bin := filepath.Join(dir, "statelock.test")
	out, err := os.OpenFile(bin, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}
