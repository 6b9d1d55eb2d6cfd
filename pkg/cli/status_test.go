package cli

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/daemon"
)

// TestQueryErr: a daemon that cannot be asked is described without the
// dialer's wording, for a missing socket, a stale one (nothing listens)
// and one the user may not open.
func TestQueryErr(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	tests := []struct {
		name, sock string
		err        error
		want       string
	}{
		{"missing", filepath.Join(dir, "none.sock"), nil, "no daemon running (no socket " + filepath.Join(dir, "none.sock") + ")"},
		{"stale", stale, nil, "no daemon running (nothing listens on " + stale + ")"},
		{"permission", "/run/x.sock", &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)},
			"cannot ask the daemon: permission denied on /run/x.sock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err
			if err == nil {
				_, err = daemon.Query(tt.sock)
			}
			if diff := cmp.Diff(tt.want, queryErr(tt.sock, err)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
