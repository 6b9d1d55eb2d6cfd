package cli

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tunneld/tunneld/pkg/config"
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

// TestDaemonAnswers: status takes the running daemon's DNS answers when it
// has one for every name, and looks up itself otherwise.
func TestDaemonAnswers(t *testing.T) {
	c, err := config.Parse("t.toml", []byte("[tunnel.a]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"a.example\"\n[tunnel.b]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"b.example\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		facts *daemon.Facts
		want  map[string][]netip.Addr
	}{
		{"no daemon", nil, nil},
		{"one name missing", &daemon.Facts{Resolved: map[string][]string{"a.example": {"198.51.100.1"}}}, nil},
		{"every name", &daemon.Facts{Resolved: map[string][]string{"a.example": {"198.51.100.1", "2001:db8::1"}, "b.example": {"198.51.100.2"}, "old.example": {"198.51.100.9"}}},
			map[string][]netip.Addr{"a.example": {netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2001:db8::1")}, "b.example": {netip.MustParseAddr("198.51.100.2")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, daemonAnswers(tt.facts, c), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestPrintDaemonStarting: before its first convergence the daemon is
// "starting", not "running since" a zero time; after it, running.
func TestPrintDaemonStarting(t *testing.T) {
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		facts daemon.Facts
		want  string
	}{
		{"starting", daemon.Facts{}, "daemon: starting: its first convergence is under way\n"},
		{"running", daemon.Facts{Started: at, Converges: 1, LastConverge: at}, "daemon: running since 2026-12-03 17:00:00, 1 convergences, last 17:00:00\n"},
	} {
		var b bytes.Buffer
		printDaemon(&b, Status{Daemon: &tc.facts})
		if got := b.String(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: printed %q, want it to start with %q", tc.name, got, tc.want)
		}
	}
}
