package linux

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/internal/filekind"
	"github.com/tunneld/tunneld/pkg/minijson"
)

// saveRecord writes v as indented JSON to the file name in the state
// directory, atomically (a crash leaves the old or the new file, never
// half of one); when empty is set it removes the file instead.
//
// The state directory may be another user's (systemd's DynamicUser),
// who can plant a symbolic link where the record's temporary file goes:
// a tester's link at sysctl.json.tmp had root's apply write the record
// into the file it named and give that file to the directory's owner. So
// the temporary file is made anew (what was there removed first: a link
// itself, not what it names), never through a link (O_EXCL|O_NOFOLLOW),
// and given the directory's owner through the file opened, not by name.
func (k *Kernel) saveRecord(name string, empty bool, v any) error {
	path := filepath.Join(k.opts.StateDir, name)
	if empty {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := os.MkdirAll(k.opts.StateDir, 0o700); err != nil {
		return err
	}
	b, err := minijson.MarshalIndent(v, "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	write := k.writeRecord
	if write == nil {
		write = writeAll
	}
	err = write(f, append(b, '\n'))
	if err == nil {
		err = ownLikeDir(f, k.opts.StateDir)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		// Not left behind: a full directory kept a tester's empty
		// one for good.
		_ = os.Remove(tmp)
	}
	return err
}

// writeAll writes b to f (a record's temporary file).
func writeAll(f *os.File, b []byte) error {
	_, err := f.Write(b)
	return err
}

// ownLikeDir gives f, a file just made in the state directory dir, the
// directory's owner when this process is root and the directory is
// another user's: that of a service that runs as its own user (systemd's
// DynamicUser, whose directory it keeps between runs). A tester's root
// `tunneld apply` between two runs wrote records only root could read,
// and every convergence of the next start failed on them. It goes
// through the open file (fchown), never by name: a name the directory's
// owner can replace by a link to any file.
func ownLikeDir(f *os.File, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil || st.Uid == 0 {
		return nil
	}
	if err := f.Chown(int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("giving it the state directory's owner (uid %d): %w", st.Uid, err)
	}
	return nil
}

// KeepRecords writes again each record this process keeps (the sysctl
// originals, the rule bands, the tunnels being created) that is not
// empty and whose file is gone: a state directory wiped under a running
// daemon (by hand, or by a clean-up of /run) would otherwise lose the
// originals that a start after a crash, or `tunneld down`, restores. So
// is the sysctl record whose last write failed (a full state directory:
// the sysctls put back, or renamed, since), once it can be written.
// Apply calls it first, and the daemon at each resync: only the process
// that holds the state directory's lock applies, or runs. A failure is
// left to the record's next write, which meets it too.
func (k *Kernel) KeepRecords() {
	if k.sysctlsUnsaved != nil {
		_ = k.saveOriginals(k.sysctls)
	}
	for _, r := range []struct {
		name string
		kept bool
		v    any
	}{
		{sysctlFile, k.sysctlsKnown && (len(k.sysctls) > 0 || k.sysctlsMarked), k.sysctls},
		{bandsFile, k.bandsKnown && len(k.bands) > 0, k.bands},
		{creatingFile, k.creatingKnown && len(k.creating) > 0, k.creating},
	} {
		if !r.kept {
			continue
		}
		if _, err := os.Stat(filepath.Join(k.opts.StateDir, r.name)); errors.Is(err, fs.ErrNotExist) {
			_ = k.saveRecord(r.name, false, r.v)
		}
	}
}

// badRecordError is a record's file that is there but cannot be read as
// the record (empty, cut short, garbage: written by someone else, or a
// bug). Its message names the file first, as the record's readers'
// errors did.
type badRecordError struct {
	path    string
	content []byte
	err     error
}

func (e *badRecordError) Error() string { return e.path + ": " + e.err.Error() }

func (e *badRecordError) Unwrap() error { return e.err }

// readRecordFile reads a record's file: one that is not a regular file
// (a directory, a FIFO, a device where the record was) is a
// *badRecordError, set aside as an unreadable one is, not read: a
// tester's directory failed every command with "is a directory", and a
// FIFO hung status and apply for good. So is a symbolic link, whatever it
// names, never followed: the state directory's owner (systemd's
// DynamicUser) could point one at a file only root may read. A missing
// one is fs.ErrNotExist.
func readRecordFile(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &badRecordError{path: path, err: fmt.Errorf("not a regular file: %s", filekind.Of(fi.Mode()))}
	}
	// Not through a link, nor blocking on a FIFO, put there since.
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrPermission) {
		// Another user's, this process not root (a record a root
		// `tunneld apply` wrote before ownLikeDir, under a service that
		// runs as its own user): unreadable, and set aside as such,
		// which the directory, this process's, allows.
		return nil, &badRecordError{path: path, err: fmt.Errorf("permission denied: owned by uid %d, mode %v", ownerOf(fi), fi.Mode().Perm())}
	}
	if errors.Is(err, unix.ELOOP) {
		return nil, &badRecordError{path: path, err: errors.New("not a regular file: a symbolic link")}
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &badRecordError{path: path, err: fmt.Errorf("not a regular file: %s", filekind.Of(fi.Mode()))}
	}
	return io.ReadAll(f)
}

// ownerOf is the uid that owns the file fi describes.
func ownerOf(fi fs.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return 0
}

// keptAside is how many of a record's files set aside (moveAside) are
// kept: a record that breaks again and again must not fill the state
// directory (a tmpfs on a router), and the newest say what broke it.
const keptAside = 3

// moveAside renames the unreadable record at path to PATH.broken-TIME
// beside it, its content kept for the admin, and returns the new path.
// A second one in the same second is PATH.broken-TIME-01, and so on to
// 99: a rename over an earlier one would lose it. Of the record's files set
// aside, the one just made stays, and the keptAside-1 others whose names
// sort last: after the wall clock stepped back (a router without a
// real-time clock, NTP), the one just made has the earliest name, and
// pruning by name alone deleted it at once, the warning naming a file
// that was gone.
func moveAside(path string) (string, error) {
	base := path + ".broken-" + time.Now().UTC().Format("20060102T150405Z")
	// After the newest of this second (those older may be gone, and a
	// name of theirs would sort among the oldest).
	to := base
	if same, _ := filepath.Glob(base + "*"); len(same) > 0 {
		n := 1
		if last := same[len(same)-1]; last != base {
			i, err := strconv.Atoi(strings.TrimPrefix(last, base+"-"))
			if err != nil || i >= 99 {
				return "", fmt.Errorf("%s: cannot be numbered after %s", base, last)
			}
			n = i + 1
		}
		to = fmt.Sprintf("%s-%02d", base, n)
	}
	if err := os.Rename(path, to); err != nil {
		return "", err
	}
	// The names sort by time, and in a second by their number.
	aside, _ := filepath.Glob(path + ".broken-*")
	aside = slices.DeleteFunc(aside, func(p string) bool { return p == to })
	slices.Sort(aside)
	for _, old := range aside[:max(0, len(aside)-(keptAside-1))] {
		_ = os.Remove(old) // a directory set aside stays unless empty
	}
	return to, nil
}

// StateLocked tells k that its caller holds the state directory's lock
// (apply, down and run take it before they observe): a record k finds
// unreadable from then on is moved aside (setAside). Without it (status
// and plan, which only read and take no lock) such a record is read as
// missing and left where it is, for the next of those to move.
func (k *Kernel) StateLocked() { k.locked = true }

// setAside deals with err, from reading a record: one that is no
// *badRecordError is returned as it is. An unreadable record must not
// lock the admin out of every command (a tester's empty sysctl.json
// failed apply, status, down and run, the daemon restarting into it, and
// deleting the file by hand was the only way out): it is read as
// missing, and a warning (Observe's model.Inputs.Warnings) names the
// file, says what is lost with it (lost, of the file's content: what
// tunneld no longer knows, and what to do) and where the file is now. Its content is kept: a
// process that holds the state directory's lock moves it to
// NAME.broken-TIME beside it, atomically, so the record is written anew
// from then on; one that does not leaves it.
func (k *Kernel) setAside(err error, lost func(content []byte) string) error {
	var bad *badRecordError
	if !errors.As(err, &bad) {
		return err
	}
	where := "read as missing here, and left for the next tunneld that changes the kernel (apply, down or run) to move aside"
	if k.locked {
		if to, rerr := moveAside(bad.path); rerr != nil {
			where = "tunneld goes on without it, but could not move it aside (" + rerr.Error() + "): its next write replaces it"
		} else {
			where = "moved aside to " + to + ", and tunneld goes on without it"
		}
	}
	k.warnings = append(k.warnings, fmt.Sprintf("state record %s is unreadable (%v): %s; %s", bad.path, bad.err, where, lost(bad.content)))
	return nil
}
