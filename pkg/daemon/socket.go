package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/tunneld/tunneld/pkg/minijson"
)

// SocketName is the status socket's file name inside the state directory.
const SocketName = "tunneld.sock"

// Serve answers every connection on a root-only unix socket at path with
// the daemon's facts as JSON (one line, as json.Encoder writes it), until
// ctx ends.
func (dm *Daemon) Serve(ctx context.Context, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	_ = os.Remove(path) // a socket left by a crashed daemon
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("status socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return err
	}
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	defer os.Remove(path)
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
