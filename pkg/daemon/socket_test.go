package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/minijson"
)

// TestStatusSocketOldDaemon: Query reads the facts an older daemon, which
// wrote them with encoding/json, sends.
func TestStatusSocketOldDaemon(t *testing.T) {
	path := t.TempDir() + "/s.sock"
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	now := time.Now()
	sent := Facts{
		Started: now.Add(-time.Hour), LastConverge: now, Converges: 3, LastError: "a <b> & c", LastErrorAt: now,
		Tunnels: []desired.TunnelStatus{{Name: "moe", Up: true, Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddr("2001:db8::1")}, {Name: "x", Reason: "no address"}},
		Notes:   []string{"n"}, LastChange: map[string]string{"moe": "12:00:00"}, Held: []string{"route"},
		Resolved: map[string][]string{"peer.example": {"198.51.100.2"}},
	}
	go func() {
		c, err := l.Accept()
		if err == nil {
			_ = json.NewEncoder(c).Encode(sent)
			c.Close()
		}
	}()
	got, err := Query(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sent, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("Query (-want +got):\n%s", diff)
	}
}

// serveStatus runs h's status socket until the returned stop, which checks
// that Serve ended cleanly and removed the socket. It answers as soon as
// serveStatus returns: Listen made it.
func serveStatus(t *testing.T, h *harness) (path string, stop func()) {
	t.Helper()
	path = t.TempDir() + "/s.sock"
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.d.Serve(ctx, l) }()
	return path, func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the socket is left after Serve: %v", err)
		}
	}
}

// TestStatusSocket: Query reads what Serve writes.
func TestStatusSocket(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	path, stop := serveStatus(t, h)
	defer stop()
	f, err := Query(path)
	if err != nil || len(f.Tunnels) != 1 || !f.Tunnels[0].Up || f.Resolved["peer.example"][0] != "198.51.100.2" {
		t.Fatalf("Query = %+v, %v", f, err)
	}
}

// TestStatusSocketOldClient: what Serve writes is one value as
// json.Encoder writes it, which an older `tunneld status` decodes.
func TestStatusSocketOldClient(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	path, stop := serveStatus(t, h)
	defer stop()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(c)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	var f Facts
	if err := json.Unmarshal(raw, &f); err != nil || len(f.Tunnels) != 1 || f.Resolved["peer.example"][0] != "198.51.100.2" {
		t.Fatalf("json.Unmarshal(%s) = %+v, %v", raw, f, err)
	}
	again, _ := json.Marshal(f)
	if diff := cmp.Diff(string(again)+"\n", string(raw)); diff != "" {
		t.Errorf("not as encoding/json writes it (-want +got):\n%s", diff)
	}
}

// TestFactsNoTunnels: the facts of a daemon that has no tunnel statuses
// (before its first convergence, or a configuration without tunnels)
// have "Tunnels": [] in the JSON, not null.
func TestFactsNoTunnels(t *testing.T) {
	b, err := minijson.Marshal(New(Deps{}).Facts())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"Tunnels":[]`) {
		t.Errorf("facts %s lack \"Tunnels\":[]", b)
	}
}

// TestChmodSocket: the status socket's mode is set on the socket itself;
// a link put in its place is refused, and what it names keeps its mode
// (os.Chmod followed it).
func TestChmodSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, SocketName)
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if fi, err := os.Lstat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v, %v: want mode 0600", fi, err)
	}
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if err := chmodSocket(link, 0o600); err == nil {
		t.Error("a link was taken for the socket")
	}
	if err := chmodSocket(victim, 0o600); err == nil {
		t.Error("a regular file was taken for the socket")
	}
	if fi, _ := os.Stat(victim); fi.Mode().Perm() != 0o644 {
		t.Errorf("the link's target has mode %v, want 0644", fi.Mode().Perm())
	}
}
