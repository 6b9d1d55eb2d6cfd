package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/minijson"
)

// SocketName is the status socket's file name inside the state directory.
const SocketName = "tunneld.sock"

// Listen makes the root-only status socket at path, replacing one a
// crashed daemon left. It is made before the daemon starts, so that
// status can ask it as soon as the daemon says it is ready.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	_ = os.Remove(path) // a socket left by a crashed daemon
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("status socket: %w", err)
	}
	if err := chmodSocket(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("status socket: %w", err)
	}
	return l, nil
}

// chmodSocket sets the mode of the socket at path through a descriptor of
// the path itself (O_PATH|O_NOFOLLOW), which must be a socket: a link
// swapped in since the bind, by whoever can write the state directory,
// is refused, not followed (os.Chmod would have given its target the
// mode; a tester's review).
func chmodSocket(path string, mode uint32) error {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("%s is no longer the socket just made there (whoever can write the state directory replaced it)", path)
	}
	// An O_PATH descriptor has no fchmod; its /proc link names the
	// very inode. Without /proc (a tester's chroot), by name, the
	// socket just seen there: the window this closes is open again.
	err = unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode)
	if errors.Is(err, unix.ENOENT) {
		err = unix.Fchmodat(unix.AT_FDCWD, path, mode, 0)
	}
	if err != nil {
		return &os.PathError{Op: "chmod", Path: path, Err: err}
	}
	return nil
}

// Serve answers every connection on l (from Listen) with the daemon's
// facts as JSON (one line, as json.Encoder writes it), until ctx ends; it
// then closes l, which removes the socket.
func (dm *Daemon) Serve(ctx context.Context, l net.Listener) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	defer l.Close()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if b, err := minijson.Marshal(dm.Facts()); err == nil {
			_, _ = c.Write(append(b, '\n'))
		}
		c.Close()
	}
}

// Query reads a running daemon's facts from its status socket: all the
// daemon writes before it closes the connection.
func Query(path string) (Facts, error) {
	var f Facts
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return f, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return f, err
	}
	err = minijson.Unmarshal(b, &f)
	return f, err
}
