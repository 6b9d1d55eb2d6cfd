// Package statelock keeps one tunneld at a time changing the kernel for a
// state directory: the daemon holds the lock while it runs, apply and
// down while they work. It is an flock(2) on a file in the directory, so
// the kernel releases it when its holder dies, however it dies: a crash
// or kill -9 never leaves a stale lock. The file holds the holder's pid
// and command, to name it in the error the next one gets.
package statelock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// FileName is the lock file's name inside the state directory.
const FileName = "tunneld.lock"

// Lock is a held lock.
type Lock struct {
	f    *os.File
	path string
}

// HeldError is returned by Acquire when another process holds the lock.
type HeldError struct {
	// Dir is the state directory ("" when the holder of a namespace's
	// lock did not say).
	Dir string
	// Namespace is set when the lock is the network namespace's
	// (AcquireNamespace): the holder runs with another state directory.
	Namespace bool
	// Pid and Command name the holder (0 and "" when it has not written
	// them yet).
	Pid     int
	Command string
	// Holders are the processes that hold a namespace's lock, as far as
	// /proc and SO_PEERCRED show them (none when neither does).
	Holders []Process
	// Deaf: the namespace's name is bound and nothing listens on it
	// (connecting is refused), which no tunneld does.
	Deaf bool
}

// Error names the state directory and the holder: "state directory
// /run/tunneld: in use by tunneld run (pid 1234)".
func (e *HeldError) Error() string {
	if e.Namespace && e.Pid == 0 {
		return "network namespace: " + e.Foreign()
	}
	if e.Namespace && e.Dir != "" {
		return "network namespace: in use by " + e.Holder() + ", state directory " + e.Dir
	}
	if e.Namespace {
		return "network namespace: in use by " + e.Holder()
	}
	return "state directory " + e.Dir + ": in use by " + e.Holder()
}

// Foreign says, for a namespace's lock whose holder did not answer as a
// tunneld does (Pid 0), who holds it as far as known, and how to find it:
// "lock @tunneld.lock is held by pid 1234 (uid 0, python3), which does
// not answer as a tunneld does: find it with …".
func (e *HeldError) Foreign() string {
	return "lock " + NamespaceName + " is held by " + e.holders() +
		", which does not answer as a tunneld does: find it with " + findHint() + ", and stop it or try again when it is gone"
}

// Holder names the holder: "tunneld run (pid 1234)", or "another
// tunneld" when it is not known yet.
func (e *HeldError) Holder() string {
	if e.Pid == 0 {
		return "another tunneld"
	}
	if e.Command == "" {
		return fmt.Sprintf("tunneld (pid %d)", e.Pid)
	}
	return fmt.Sprintf("tunneld %s (pid %d)", e.Command, e.Pid)
}

// Acquire takes the lock of the state directory dir (created, mode 0700,
// when missing) for command ("run", "apply", …), without waiting: when
// another process holds it, the error is a *HeldError.
func Acquire(dir, command string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	// A holder removes the file before it lets go: a file opened just
	// before that and locked just after is no longer the lock. Retry
	// with the file now at path.
	for range 10 {
		f, err := open(path)
		if err != nil {
			return nil, err
		}
		err = flock(f)
		if errors.Is(err, unix.EWOULDBLOCK) {
			b := make([]byte, 256)
			n, _ := f.ReadAt(b, 0)
			f.Close()
			return nil, held(dir, string(b[:n]))
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !current(f, path) {
			f.Close()
			continue
		}
		l := &Lock{f: f, path: path}
		if err := l.record(command); err != nil {
			l.Release()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		return l, nil
	}
	return nil, fmt.Errorf("lock %s: replaced again and again while taking it", path)
}

// open opens the lock file at path, created when missing, and only a
// regular file of one link: whoever can write the state directory (the
// service user, a hook) could have put a symbolic link, a hard link or a
// fifo there, and root's apply would truncate and write the file it leads
// to (a tester's /etc/passwd). Nothing after this goes by the path but
// current's lstat and Release's remove, which follow no link.
func open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, unix.ELOOP) {
		return nil, notLockFile(path, "a symbolic link")
	}
	if errors.Is(err, unix.EISDIR) {
		return nil, notLockFile(path, "a directory")
	}
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		f.Close()
		return nil, notLockFile(path, "not a regular file")
	case st.Nlink > 1:
		f.Close()
		return nil, notLockFile(path, fmt.Sprintf("a file with %d hard links", st.Nlink))
	}
	return f, nil
}

// notLockFile is the error for a path that tunneld did not make its lock
// file.
func notLockFile(path, what string) error {
	return fmt.Errorf("lock %s: %s, not tunneld's lock file (whoever can write the state directory put it there): remove it and try again", path, what)
}

// flock takes an exclusive lock on f without waiting, retrying when a
// signal interrupts it.
func flock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			return err
		}
	}
}

// current reports whether f is still the file at path (a link there
// since, even to f, is not).
func current(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Lstat(path)
	return err == nil && os.SameFile(fi, pi)
}

// record writes "PID COMMAND\n" into the lock file, through its
// descriptor.
func (l *Lock) record(command string) error {
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	_, err := l.f.WriteAt([]byte(strconv.Itoa(os.Getpid())+" "+command+"\n"), 0)
	return err
}

// held reads a lock file's "PID COMMAND" line into a HeldError.
func held(dir, content string) *HeldError {
	e := &HeldError{Dir: dir}
	pid, command, _ := strings.Cut(strings.TrimSpace(content), " ")
	if n, err := strconv.Atoi(pid); err == nil && n > 0 {
		e.Pid, e.Command = n, command
	}
	return e
}

// Release removes the lock file and lets go of the lock. It is safe to
// call more than once.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	// Removed while still held: nobody can take a lock on it that
	// current would not see through. Not when the file at the path is
	// no longer this one (the directory wiped, and another tunneld's
	// lock there since): that one is not ours to remove.
	var err error
	if current(l.f, l.path) {
		err = os.Remove(l.path)
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// Keep takes the lock again when its file is no longer at its path (the
// state directory wiped while its holder runs: then nothing stopped a
// second tunneld from taking a lock of its own there, and the holder's
// release would remove that one's file). It reports whether it did; an
// error, a *HeldError among them, when it could not, and l stays as it
// was.
func (l *Lock) Keep(command string) (bool, error) {
	if l == nil || l.f == nil || current(l.f, l.path) {
		return false, nil
	}
	n, err := Acquire(filepath.Dir(l.path), command)
	if err != nil {
		return false, err
	}
	l.f.Close()
	l.f = n.f
	return true, nil
}
