// Package otheruser runs a test's own binary again as another user, for
// the tests of what a user other than root may and may not read (the
// systemd unit's dynamic user).
package otheruser

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// UID is the user (and group) the test runs as: no user of the system.
const UID = 61234

// Dir returns a temporary directory that UID can reach, and skips the
// test unless it runs as root, which it needs to run as UID.
func Dir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run as another user")
	}
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return base
}

// Run runs the test named test again as UID, from a copy of the test
// binary in dir (from Dir: the build's directory is root's), with env
// added to the environment, by which the test knows to do its other
// user's part; it returns what that printed on stdout.
func Run(t *testing.T, dir, test string, env ...string) string {
	t.Helper()
	bin := filepath.Join(dir, "otheruser.test")
	if _, err := os.Stat(bin); err != nil {
		b, err := os.ReadFile(os.Args[0])
		if err == nil {
			err = os.WriteFile(bin, b, 0o755)
		}
		if err != nil {
			t.Fatalf("copying the test binary: %v", err)
		}
	}
	cmd := exec.Command(bin, "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: UID, Gid: UID}}
	out, err := cmd.Output()
	SkipUnstartable(t, err)
	if err != nil {
		t.Fatalf("%s as uid %d: %v\n%s", test, UID, err, out)
	}
	return string(out)
}

// SkipUnstartable skips the test when err, from starting this test's
// binary again, says the kernel cannot run it: the binary is for another
// machine and runs under a user-mode emulator (make test-cross's
// qemu-user) with no binfmt_misc entry to run a second one.
func SkipUnstartable(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, syscall.ENOEXEC) {
		t.Skipf("cannot start this test binary again here (%v): another machine's binary under an emulator", err)
	}
}
