package statelock

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/internal/otheruser"
)

// TestAcquire: a second Acquire, of any command, is refused naming the
// holder; after Release the lock can be taken again and the directory
// holds nothing.
func TestAcquire(t *testing.T) {
	for _, tt := range []struct{ first, second string }{
		{"run", "run"},
		{"run", "down"},
		{"apply", "run"},
	} {
		t.Run(tt.first+" then "+tt.second, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			l, err := Acquire(dir, tt.first)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Acquire(dir, tt.second)
			var he *HeldError
			if !errors.As(err, &he) {
				t.Fatalf("second Acquire: %v, want a *HeldError", err)
			}
			want := &HeldError{Dir: dir, Pid: os.Getpid(), Command: tt.first}
			if diff := cmp.Diff(want, he); diff != "" {
				t.Errorf("HeldError (-want +got):\n%s", diff)
			}
			if err := l.Release(); err != nil {
				t.Fatal(err)
			}
			if err := l.Release(); err != nil {
				t.Errorf("second Release: %v", err)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("after Release the directory holds %q", names)
			}
			l, err = Acquire(dir, tt.second)
			if err != nil {
				t.Fatalf("Acquire after Release: %v", err)
			}
			l.Release()
		})
	}
}

func TestHeldError(t *testing.T) {
	for _, tt := range []struct {
		content, want string
	}{
		{"1234 run\n", "state directory /s: in use by tunneld run (pid 1234)"},
		{"1234 \n", "state directory /s: in use by tunneld (pid 1234)"},
		{"", "state directory /s: in use by another tunneld"}, // not written yet
		{"run 1234\n", "state directory /s: in use by another tunneld"},
	} {
		if got := held("/s", tt.content).Error(); got != tt.want {
			t.Errorf("content %q: %q, want %q", tt.content, got, tt.want)
		}
	}
}

// TestCurrent: a lock file removed (by a holder letting go), replaced, or
// put behind a symbolic link after it was opened is not the lock any more.
func TestCurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	for _, tt := range []struct {
		name   string
		change func()
		want   bool
	}{
		{"unchanged", func() {}, true},
		{"removed", func() { os.Remove(path) }, false},
		{"replaced", func() { os.Remove(path); os.WriteFile(path, nil, 0o600) }, false},
		// Release would remove the link, and the file would stay locked
		// where nobody looks.
		{"a link to it", func() { os.Rename(path, path+".real"); os.Symlink(path+".real", path) }, false},
	} {
		os.Remove(path)
		os.Remove(path + ".real")
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		tt.change()
		if got := current(f, path); got != tt.want {
			t.Errorf("%s: current = %v, want %v", tt.name, got, tt.want)
		}
		f.Close()
	}
}

// TestKilledHolder: a holder killed with SIGKILL leaves its file behind
// but not its lock.
func TestKilledHolder(t *testing.T) {
	if dir := os.Getenv("STATELOCK_HOLD"); dir != "" {
		if _, err := Acquire(dir, "run"); err != nil {
			os.Stdout.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledHolder$")
	cmd.Env = append(os.Environ(), "STATELOCK_HOLD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		otheruser.SkipUnstartable(t, err)
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("holder: %q, %v", line, err)
	}
	_, err = Acquire(dir, "run")
	var he *HeldError
	if !errors.As(err, &he) || he.Pid != cmd.Process.Pid {
		t.Fatalf("Acquire while the holder (pid %d) lives: %v", cmd.Process.Pid, err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	l, err := Acquire(dir, "run")
	if err != nil {
		t.Fatalf("Acquire after the holder was killed: %v", err)
	}
	l.Release()
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestKeepAfterWipe: a lock whose file went with its directory's content
// (a wipe while the daemon runs) is taken again by Keep, under the holder's
// pid, so that another tunneld is refused again; a lock in place is left
// alone; one another process took meanwhile is its.
func TestKeepAfterWipe(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir, "run")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if kept, err := l.Keep("run"); kept || err != nil {
		t.Fatalf("Keep of a lock in place: %v, %v", kept, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if other, err := Acquire(dir, "apply"); err != nil {
		t.Fatalf("after the wipe, another could not take the lock: %v", err)
	} else {
		if kept, err := l.Keep("run"); kept || !errors.As(err, new(*HeldError)) {
			t.Errorf("Keep while another holds it: %v, %v; want its HeldError", kept, err)
		}
		other.Release()
	}
	if kept, err := l.Keep("run"); !kept || err != nil {
		t.Fatalf("Keep after the wipe: %v, %v", kept, err)
	}
	_, err = Acquire(dir, "apply")
	var he *HeldError
	if !errors.As(err, &he) || he.Pid != os.Getpid() || he.Command != "run" {
		t.Errorf("a second Acquire after Keep: %v, want held by run (pid %d)", err, os.Getpid())
	}
}

// TestNotLockFile: a symbolic link, a hard link, a fifo or a directory
// at the lock file's path (put there by whoever can write the state
// directory) is refused, naming the path and saying to remove it, and
// the file a link leads to is left as it was (a tester's root apply
// truncated /etc/passwd through a symbolic link).
func TestNotLockFile(t *testing.T) {
	for _, tt := range []struct {
		name, what string
		make       func(path, victim string) error
	}{
		{"symlink", "a symbolic link", func(path, victim string) error { return os.Symlink(victim, path) }},
		{"dangling symlink", "a symbolic link", func(path, victim string) error {
			return os.Symlink(victim+".missing", path)
		}},
		{"hard link", "a file with 2 hard links", func(path, victim string) error { return os.Link(victim, path) }},
		{"fifo", "not a regular file", func(path, _ string) error { return syscall.Mkfifo(path, 0o600) }},
		{"directory", "a directory", func(path, _ string) error { return os.Mkdir(path, 0o700) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			victim := filepath.Join(t.TempDir(), "victim")
			const content = "root:x:0:0:root:/root:/bin/sh\n"
			if err := os.WriteFile(victim, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, FileName)
			if err := tt.make(path, victim); err != nil {
				t.Fatal(err)
			}
			l, err := Acquire(dir, "apply")
			if err == nil {
				l.Release()
				t.Fatalf("Acquire took %s", tt.name)
			}
			want := "lock " + path + ": " + tt.what + ", not tunneld's lock file (whoever can write the state directory put it there): remove it and try again"
			if got := err.Error(); got != want {
				t.Errorf("error %q,\nwant  %q", got, want)
			}
			if b, _ := os.ReadFile(victim); string(b) != content {
				t.Errorf("the victim now holds %q", b)
			}
			if _, err := os.Stat(victim + ".missing"); err == nil {
				t.Errorf("a dangling link's target was created")
			}
			if _, err := os.Lstat(path); err != nil {
				t.Errorf("the path is gone: %v", err)
			}
		})
	}
}
