package cli

import (
	"bytes"
	"context"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/daemon"
	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/minijson"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
	"github.com/tunneld/tunneld/pkg/statelock"
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
			"cannot ask the daemon: permission denied on /run/x.sock (it and its state directory are the daemon's user's: run status as root, or as that user)"},
	}
	// With a daemon holding the network namespace, a socket that is not
	// there is gone; one this user may not reach is not (a tester's
	// non-root status was told it was gone).
	running := &statelock.HeldError{Namespace: true, Pid: 42, Command: "run", Dir: "/run/tunneld"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err
			if err == nil {
				_, err = daemon.Query(tt.sock)
			}
			if diff := cmp.Diff(tt.want, queryErr(tt.sock, err)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			got := daemonError(tt.sock, err, running)
			if gone := strings.Contains(got, "is gone"); gone != (tt.name != "permission") {
				t.Errorf("with a daemon running: %q", got)
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
// "starting", not "running since" a zero time; after it, running, with
// "1 convergence" in the singular.
func TestPrintDaemonStarting(t *testing.T) {
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		facts daemon.Facts
		want  string
	}{
		{"starting", daemon.Facts{}, "daemon: starting: its first convergence is under way\n"},
		{"running", daemon.Facts{Started: at, Converges: 1, LastConverge: at}, "daemon: running since 2026-12-03 17:00:00, 1 convergence, last 17:00:00\n"},
		{"running on", daemon.Facts{Started: at, Converges: 2, LastConverge: at}, "daemon: running since 2026-12-03 17:00:00, 2 convergences, last 17:00:00\n"},
	} {
		var b bytes.Buffer
		printDaemon(&b, Status{Daemon: &tc.facts})
		if got := b.String(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: printed %q, want it to start with %q", tc.name, got, tc.want)
		}
	}
}

// TestPrintDaemonError: the daemon's last error is shown while it holds;
// once what failed works again (a tester saw a converge that lost a race
// with a storm of WAN renews shown long after the next one had worked)
// it is shown as cleared, by what and when, and only while no other
// error holds.
func TestPrintDaemonError(t *testing.T) {
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	running := "daemon: running since 2026-12-03 17:00:00, 2 convergences, last 17:00:00\n"
	cleared := &daemon.ClearedError{Err: `tunnel "moe": cannot assign requested address`, At: at.Add(-2 * time.Second), Cleared: at.Add(-time.Second), By: "a convergence"}
	for _, tc := range []struct {
		name  string
		facts daemon.Facts
		want  string
	}{
		{"none", daemon.Facts{}, running},
		{"holds", daemon.Facts{LastError: "reload refused: t.toml:1:1: oops", LastErrorAt: at.Add(-time.Minute)},
			running + "  last error at 2026-12-03 16:59:00: reload refused: t.toml:1:1: oops\n"},
		{"cleared", daemon.Facts{Cleared: cleared},
			running + "  last error at 2026-12-03 16:59:58, cleared by a convergence at 2026-12-03 16:59:59: tunnel \"moe\": cannot assign requested address\n"},
		{"another holds", daemon.Facts{LastError: "no such host", LastErrorAt: at.Add(-time.Minute), Cleared: cleared},
			running + "  last error at 2026-12-03 16:59:00: no such host\n"},
		// The lines after an error's first stay under it: a tester's
		// cleared error's second failure, at the margin, read as one
		// of now.
		{"of two lines, cleared", daemon.Facts{Cleared: &daemon.ClearedError{Err: "nftables table inet tunneld: no nf_tables\ntunnel \"t1\": not set up", At: cleared.At, Cleared: cleared.Cleared, By: "a convergence"}},
			running + "  last error at 2026-12-03 16:59:58, cleared by a convergence at 2026-12-03 16:59:59: nftables table inet tunneld: no nf_tables\n    tunnel \"t1\": not set up\n"},
		{"of two lines", daemon.Facts{LastError: "route 10.9.0.0/16 table main: file exists\nroute 10.8.0.0/16 table main: file exists", LastErrorAt: at.Add(-time.Minute)},
			running + "  last error at 2026-12-03 16:59:00: route 10.9.0.0/16 table main: file exists\n    route 10.8.0.0/16 table main: file exists\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.facts
			f.Started, f.Converges, f.LastConverge = at, 2, at
			var b bytes.Buffer
			printDaemon(&b, Status{Daemon: &f})
			if diff := cmp.Diff(tc.want, b.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestStatusFollows: the local line of a tunnel that follows a device
// lists the device's addresses, and those duplicate address detection
// keeps from being followed with why; "no address" said nothing of an
// address that was there, tentative or dadfailed. Without a usable
// address the local endpoint is "none", not "any" (a configuration
// value).
func TestStatusFollows(t *testing.T) {
	p := netip.MustParsePrefix
	tentative := model.UnusableAddr{Prefix: p("2001:db8::5/64")}
	failed := model.UnusableAddr{Prefix: p("2001:db8::6/64"), Failed: true}
	for _, tt := range []struct {
		name string
		dev  model.Device
		want string
		// mtu and actual are the kernel's tunnel, when it has one.
		mtu    int
		actual string
	}{
		{"none", model.Device{}, "  local  none (follows wan: no address)", 0, ""},
		// "unknown" said a tester's of the same, with the tunnel in the
		// kernel still from the address the device lost.
		{"none, the kernel's from before", model.Device{}, "  local  none (follows wan: no address; kernel has 2001:db8::7)", 1452, "2001:db8::7"},
		{"usable", model.Device{Addrs: []netip.Prefix{p("192.0.2.7/24"), p("2001:db8::7/64")}},
			"  local  2001:db8::7 (follows wan: 2001:db8::7/64)", 0, ""},
		{"in detection", model.Device{Unusable: []model.UnusableAddr{tentative}},
			"  local  none (follows wan: no usable address; 2001:db8::5/64 is in duplicate address detection)", 0, ""},
		{"failed", model.Device{Unusable: []model.UnusableAddr{failed}},
			"  local  none (follows wan: no usable address; 2001:db8::6/64 failed duplicate address detection)", 0, ""},
		{"usable and not", model.Device{Addrs: []netip.Prefix{p("192.0.2.7/24")}, Unusable: []model.UnusableAddr{tentative, failed}},
			"  local  none (follows wan: no usable address; 2001:db8::5/64 is in duplicate address detection, 2001:db8::6/64 failed duplicate address detection)", 0, ""},
		// Temporary and deprecated ones marked (a tester's kernel sent
		// from a temporary one, and status did not say which it was).
		{"temporary and deprecated", model.Device{Addrs: []netip.Prefix{p("2001:db8::7/64"), p("192.0.2.7/24"), p("2001:db8::8/64"), p("2001:db8::9/64")}, Secondary: 1, Deprecated: 1},
			"  local  2001:db8::7 (follows wan: 2001:db8::7/64, 2001:db8::8/64 temporary, 2001:db8::9/64 deprecated)", 0, ""},
		// The outer family's only: a tester's ipip6 tunnel listed the
		// WAN's IPv4 address among those it could follow.
		{"the other family's only", model.Device{Addrs: []netip.Prefix{p("192.0.2.7/24")}},
			"  local  none (follows wan: no address)", 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := TunnelReport{Name: "ds", Mode: model.ModeIPIP6, LocalDevice: "wan", MTU: tt.mtu, LocalActual: tt.actual}
			r.followed(tt.dev)
			// What desired follows: the device's first IPv6 address,
			// which the kernel's tunnel has.
			for _, a := range tt.dev.Addrs {
				if a.Addr().Is6() && r.LocalWanted == "" {
					r.LocalWanted, r.LocalActual = a.Addr().String(), a.Addr().String()
				}
			}
			var b bytes.Buffer
			printStatus(&b, Status{Tunnels: []TunnelReport{r}})
			var got string
			for _, line := range strings.Split(b.String(), "\n") {
				if strings.HasPrefix(line, "  local ") {
					got = line
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("local line (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStatusFollowsIPv4: a sit tunnel's local line lists the device's
// IPv4 addresses only, not its IPv6 ones nor their failed detection (a
// tester's did).
func TestStatusFollowsIPv4(t *testing.T) {
	p := netip.MustParsePrefix
	r := TunnelReport{Name: "he", Mode: model.ModeSIT, LocalDevice: "wan", LocalWanted: "192.0.2.7"}
	r.followed(model.Device{Addrs: []netip.Prefix{p("192.0.2.7/24"), p("2001:db8::7/64")}, Unusable: []model.UnusableAddr{{Prefix: p("2001:db8::6/64"), Failed: true}}})
	var b bytes.Buffer
	printStatus(&b, Status{Tunnels: []TunnelReport{r}})
	if want := "  local  192.0.2.7 (follows wan: 192.0.2.7/24)\n"; !strings.Contains(b.String(), want) {
		t.Errorf("status:\n%s\nwant the line %q", b.String(), want)
	}
}

// TestStatusWANInDetection runs status against the in-memory kernel whose
// WAN's only IPv6 address is in duplicate address detection, then failed
// it: the tunnel is down saying so, and its local line names the address.
func TestStatusWANInDetection(t *testing.T) {
	file, _, k := configured(t, "[global]\nfirewall = false\n[tunnel.ds]\nmode = \"ipip6\"\nlocal = \"wan\"\nremote = \"2001:db8:b::1\"\n")
	for _, tt := range []struct {
		name        string
		failed      bool
		reason, why string
	}{
		{"in detection", false, "local device wan has no usable IPv6 address yet (2001:db8:a::2 is in duplicate address detection)", "is in duplicate address detection"},
		{"failed", true, "local device wan has no usable IPv6 address (2001:db8:a::2 failed duplicate address detection)", "failed duplicate address detection"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k.SetUnusable("wan", model.UnusableAddr{Prefix: netip.MustParsePrefix("2001:db8:a::2/64"), Failed: tt.failed})
			var out, errb bytes.Buffer
			env := &Env{Stdout: &out, Stderr: &errb, StateDir: t.TempDir(), Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
			if code := Main(env, []string{"status", "-c", file, "-socket", filepath.Join(t.TempDir(), "none")}); code != 0 {
				t.Fatalf("status: exit %d\n%s", code, errb.String())
			}
			got := strings.Split(out.String(), "\n")[:2]
			want := []string{"tunnel ds (ipip6): down: " + tt.reason,
				"  local  none (follows wan: no usable address; 2001:db8:a::2/64 " + tt.why + ")"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("status (-want +got):\n%s\n%s", diff, out.String())
			}
		})
	}
}

// TestStatusHook: status shows a tunnel's last hook run, as the daemon's
// facts give it, in the text and in the JSON.
func TestStatusHook(t *testing.T) {
	file, _, k := configured(t, "[global]\nfirewall = false\n[tunnel.he]\nmode = \"sit\"\nlocal = \"wan\"\nremote = \"203.0.113.1\"\nhook = \"/etc/tunneld/he-update.sh\"\n")
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	run := daemon.HookRun{Path: "/etc/tunneld/he-update.sh", Reason: "moved", At: at, Status: "exit status 1"}
	sock := serveFacts(t, daemon.Facts{Started: at, Converges: 1, LastConverge: at, Hooks: map[string]daemon.HookRun{"he": run}})
	status := func(args ...string) string {
		t.Helper()
		return statusText(t, file, k, sock, args...)
	}
	var got []string
	for _, line := range strings.Split(status(), "\n") {
		if strings.HasPrefix(line, "  hook ") {
			got = append(got, line)
		}
	}
	if diff := cmp.Diff([]string{"  hook /etc/tunneld/he-update.sh: exit status 1 at 2026-12-03 17:00:00 (moved)"}, got); diff != "" {
		t.Errorf("hook line (-want +got):\n%s", diff)
	}
	var st Status
	if err := minijson.Unmarshal([]byte(status("--json")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Tunnels) != 1 {
		t.Fatalf("tunnels = %+v", st.Tunnels)
	}
	if diff := cmp.Diff(&run, st.Tunnels[0].LastHook); diff != "" {
		t.Errorf("LastHook (-want +got):\n%s", diff)
	}
}

// TestStatusHookFailed: the line of a tunnel that is up says when the
// last run of its hook failed (the broker may send to the old address),
// how many runs of the change failed, and when the daemon runs it again;
// the hook's line says which try it was. A tester saw "up" with the
// failure only on the hook's line, and no retry.
func TestStatusHookFailed(t *testing.T) {
	const hook = "/etc/tunneld/he-update.sh"
	file, _, k := configured(t, "[global]\nfirewall = false\n[tunnel.he]\nmode = \"sit\"\nlocal = \"192.0.2.42\"\nremote = \"203.0.113.1\"\nhook = \""+hook+"\"\n")
	applied(t, file, holding(k, "192.0.2.42/24"))
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		run  daemon.HookRun
		want []string
	}{
		{"failed, retried", daemon.HookRun{Path: hook, Reason: "moved", At: at, Status: "exit status 3", Try: 1, Retry: at.Add(30 * time.Second)}, []string{
			"tunnel he (sit): up, but its hook failed (exit status 3): retrying at 17:00:30",
			"  hook /etc/tunneld/he-update.sh: exit status 3 at 2026-12-03 17:00:00 (moved)"}},
		{"failed again, retried", daemon.HookRun{Path: hook, Reason: "moved", At: at, Status: "killed after 30s", Try: 3, Retry: at.Add(2 * time.Minute)}, []string{
			"tunnel he (sit): up, but its hook failed 3 times (killed after 30s): retrying at 17:02:00",
			"  hook /etc/tunneld/he-update.sh: killed after 30s at 2026-12-03 17:00:00 (moved, try 3)"}},
		{"worked at the third try", daemon.HookRun{Path: hook, Reason: "moved", At: at, Status: "exit status 0", Try: 3}, []string{
			"tunnel he (sit): up",
			"  hook /etc/tunneld/he-update.sh: exit status 0 at 2026-12-03 17:00:00 (moved, try 3)"}},
		// The failed change undone since: nothing is due (a tester's
		// status said the hook failed until the next change).
		{"failed, moved back since", daemon.HookRun{Path: hook, Reason: "moved", At: at, Status: "exit status 3", Try: 1, MovedBack: true}, []string{
			"tunnel he (sit): up",
			"  hook /etc/tunneld/he-update.sh: exit status 3 at 2026-12-03 17:00:00 (moved); not run again: the tunnel moved back to where the run before it put it"}},
		{"worked", daemon.HookRun{Path: hook, Reason: "up", At: at, Status: "exit status 0", Try: 1}, []string{
			"tunnel he (sit): up",
			"  hook /etc/tunneld/he-update.sh: exit status 0 at 2026-12-03 17:00:00 (up)"}},
		// A tester saw "its hook failed" all through the run that stood
		// for the failure.
		{"running, after a failure", daemon.HookRun{Path: hook, Reason: "moved", At: at, Status: "exit status 3", Try: 1,
			Running: at.Add(40 * time.Second), RunningFor: "moved"}, []string{
			"tunnel he (sit): up, but its hook runs (since 17:00:40)",
			"  hook /etc/tunneld/he-update.sh: running since 2026-12-03 17:00:40 (moved)",
			"  hook /etc/tunneld/he-update.sh: exit status 3 at 2026-12-03 17:00:00 (moved)"}},
		{"running, its first run", daemon.HookRun{Path: hook, Running: at, RunningFor: "up"}, []string{
			"tunnel he (sit): up, but its hook runs (since 17:00:00)",
			"  hook /etc/tunneld/he-update.sh: running since 2026-12-03 17:00:00 (up)"}},
		{"failed, older daemon: no retry", daemon.HookRun{Path: hook, Reason: "moved", At: at, Status: "exit status 1"}, []string{
			"tunnel he (sit): up, but its hook failed (exit status 1)",
			"  hook /etc/tunneld/he-update.sh: exit status 1 at 2026-12-03 17:00:00 (moved)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sock := serveFacts(t, daemon.Facts{Started: at, Converges: 1, LastConverge: at, Tunnels: []desired.TunnelStatus{{Name: "he", Up: true}},
				Hooks: map[string]daemon.HookRun{"he": tt.run}})
			var got []string
			for _, l := range tunnelLines(statusText(t, file, k, sock)) {
				if strings.HasPrefix(l, "tunnel ") || strings.HasPrefix(l, "  hook ") {
					got = append(got, l)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

// statusText runs `tunneld status` with the configuration file against k
// and the daemon socket sock, and returns what it printed.
func statusText(t *testing.T, file string, k kernel.Kernel, sock string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, StateDir: t.TempDir(), Kernel: func(bool) (kernel.Kernel, error) { return k, nil },
		// No DNS from tests: a name status looks up itself is not found.
		Lookup: func(_ context.Context, name string) ([]netip.Addr, error) {
			return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
		}}
	if code := Main(env, append([]string{"status", "-c", file, "-socket", sock}, args...)); code != 0 {
		t.Fatalf("status: exit %d\n%s", code, errb.String())
	}
	return out.String()
}

// tunnelLines are the lines of status's text about its first tunnel.
func tunnelLines(out string) []string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if i > 0 && !strings.HasPrefix(l, "  ") {
			return lines[:i]
		}
	}
	return lines
}

// TestStatusNameTaken: a tunnel whose name a device tunneld does not own
// holds shows its configured endpoints (they were "any", as if it had
// none), and says the device is not tunneld's instead of that there is
// no device by the name.
func TestStatusNameTaken(t *testing.T) {
	file, _, k := configured(t, "[global]\nfirewall = false\n[tunnel.Moe]\nmode = \"ipip\"\nlocal = \"192.0.2.42\"\nremote = \"192.0.2.1\"\n")
	k.AddDevice(model.Device{Name: "Moe", Kind: "veth", Up: true, Running: true})
	want := []string{
		"tunnel Moe (ipip): down: the name Moe is taken by a veth device tunneld does not own: give the tunnel another name",
		"  local  192.0.2.42",
		"  remote 192.0.2.1",
		"  the device Moe is not tunneld's",
	}
	got := tunnelLines(statusText(t, file, k, filepath.Join(t.TempDir(), "none")))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

// serveFacts answers a status socket with f, as a running daemon does,
// until the test ends; it returns the socket's path.
func serveFacts(t *testing.T, f daemon.Facts) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "tunneld.sock")
	l, err := daemon.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	b, err := minijson.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write(b)
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return sock
}

// TestStatusCreationFailed: a tunnel the daemon could not create (the
// kernel has no ipip driver) is down with the daemon's reason, the
// creation's failure, not "not created yet"; when the daemon has it up
// (status looked before it was created), it is "not created yet";
// without a daemon, status says there is none to say why, and that
// apply does (a tester read "not created yet" after a failed apply as
// if nothing had tried).
func TestStatusCreationFailed(t *testing.T) {
	file, _, k := configured(t, "[global]\nfirewall = false\n[tunnel.Moe]\nmode = \"ipip\"\nlocal = \"192.0.2.42\"\nremote = \"192.0.2.1\"\n")
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	noDriver := (&kernel.NoDriverError{Mode: model.ModeIPIP}).Error()
	failed := daemon.Facts{Started: at, Converges: 3, LastConverge: at, LastError: `tunnel "Moe": ` + noDriver, LastErrorAt: at,
		Tunnels: []desired.TunnelStatus{{Name: "Moe", Reason: "creating it failed: " + noDriver}}}
	up := daemon.Facts{Started: at, Converges: 1, LastConverge: at, Tunnels: []desired.TunnelStatus{{Name: "Moe", Up: true}}}
	for _, tt := range []struct {
		name, sock, want string
	}{
		{"creation failed", serveFacts(t, failed), "tunnel Moe (ipip): down: creating it failed: kernel has no ipip support (load module ipip; on OpenWrt install kmod-ipip)"},
		{"no daemon", filepath.Join(t.TempDir(), "none"), "tunnel Moe (ipip): down: not created, and no daemon runs to say why: `tunneld apply` creates it, or says why it cannot"},
		{"daemon has it up", serveFacts(t, up), "tunnel Moe (ipip): down: not created yet"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.SplitN(statusText(t, file, k, tt.sock), "\n", 2)[0]
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("tunnel line (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStatusEndpoints: an endpoint's line is the one wanted, then in one
// parenthesis where it comes from (a DNS name, the device followed) and,
// only where the kernel has the tunnel, what the kernel has instead: with
// no tunnel in the kernel, the line after says so once.
func TestStatusEndpoints(t *testing.T) {
	dns := TunnelReport{Name: "ds", Mode: model.ModeIPIP6, RemoteName: "aftr.example.net", RemoteWanted: "2001:db8::1", LocalWanted: "2001:db8::2", LocalActual: "2001:db8::2"}
	wan := TunnelReport{Name: "he", Mode: model.ModeSIT, LocalDevice: "wan", LocalDeviceAddrs: []string{"192.0.2.1/24"}, LocalWanted: "192.0.2.1", RemoteWanted: "198.51.100.1", RemoteActual: "198.51.100.1"}
	with := func(r TunnelReport, mtu int, local, remote string) TunnelReport {
		r.MTU = mtu
		if local != "-" {
			r.LocalActual = local
		}
		if remote != "-" {
			r.RemoteActual = remote
		}
		return r
	}
	for _, tt := range []struct {
		name          string
		r             TunnelReport
		local, remote string
	}{
		{"named, in the kernel as wanted", with(dns, 1452, "-", "2001:db8::1"), "2001:db8::2", "2001:db8::1 (aftr.example.net)"},
		{"named, the kernel has another", with(dns, 1452, "-", "2001:db8::9"), "2001:db8::2", "2001:db8::1 (aftr.example.net; kernel has 2001:db8::9)"},
		{"named, the kernel has none", with(dns, 1452, "-", ""), "2001:db8::2", "2001:db8::1 (aftr.example.net; not set in the kernel)"},
		{"named, no tunnel in the kernel", with(dns, 0, "", ""), "2001:db8::2", "2001:db8::1 (aftr.example.net)"},
		{"following, the kernel has another", with(wan, 1480, "192.0.2.9", "-"), "192.0.2.1 (follows wan: 192.0.2.1/24; kernel has 192.0.2.9)", "198.51.100.1"},
		{"following, no tunnel in the kernel", with(wan, 0, "", ""), "192.0.2.1 (follows wan: 192.0.2.1/24)", "198.51.100.1"},
		{"any", TunnelReport{Name: "x", Mode: model.ModeIPIP, MTU: 1480}, "any", "any"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			printStatus(&b, Status{Tunnels: []TunnelReport{tt.r}})
			want := []string{"  local  " + tt.local, "  remote " + tt.remote}
			if diff := cmp.Diff(want, strings.Split(b.String(), "\n")[1:3]); diff != "" {
				t.Errorf("endpoint lines (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStatusRemoteUnresolved: the remote of a tunnel whose DNS name gives
// no address of its outer family is the name and why, not "any" (a
// configuration value) followed by the name.
func TestStatusRemoteUnresolved(t *testing.T) {
	for _, tt := range []struct {
		name    string
		answers []string
		actual  string
		want    string
	}{
		{"not resolved", nil, "", "  remote aftr.example.net (not resolved yet)"},
		{"other family only", []string{"192.0.2.1", "192.0.2.2"}, "", "  remote aftr.example.net (no IPv6 address: it resolves to 192.0.2.1, 192.0.2.2 only)"},
		{"kernel has one", nil, "2001:db8::1", "  remote aftr.example.net (not resolved yet; kernel has 2001:db8::1)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := TunnelReport{Name: "ds", Mode: model.ModeIPIP6, RemoteName: "aftr.example.net", RemoteAnswers: tt.answers, RemoteActual: tt.actual}
			var b bytes.Buffer
			printStatus(&b, Status{Tunnels: []TunnelReport{r}})
			var got string
			for _, line := range strings.Split(b.String(), "\n") {
				if strings.HasPrefix(line, "  remote ") {
					got = line
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("remote line (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStatusRemoteName runs status for a DS-Lite tunnel to an AFTR named
// by DNS: its remote line has the name and why it gives no address, from
// status's own lookup or the daemon's answers, and the address once the
// name gives one; while the daemon keeps its last IPv6 answer because the
// name gives no IPv6 address, the line says so, and so it does while the
// daemon's lookups of the name fail, with their error.
func TestStatusRemoteName(t *testing.T) {
	file, _, k := configured(t, "[global]\nfirewall = false\n[tunnel.ds]\nmode = \"ipip6\"\nlocal = \"2001:db8::2\"\nremote = \"aftr.example.net\"\n")
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	facts := func(answers ...string) daemon.Facts {
		return daemon.Facts{Started: at, Converges: 1, LastConverge: at, Resolved: map[string][]string{"aftr.example.net": answers}}
	}
	kept := func(f daemon.Facts, kept ...string) daemon.Facts {
		f.Kept = map[string][]string{"aftr.example.net": kept}
		return f
	}
	failing := func(f daemon.Facts) daemon.Facts {
		f.Failing = map[string]string{"aftr.example.net": "lookup aftr.example.net: no such host"}
		return f
	}
	for _, tt := range []struct {
		name, sock, want string
	}{
		{"no daemon, not found", filepath.Join(t.TempDir(), "none"), "  remote aftr.example.net (not resolved yet)"},
		{"daemon has IPv4 only", serveFacts(t, facts("192.0.2.1")), "  remote aftr.example.net (no IPv6 address: it resolves to 192.0.2.1 only)"},
		{"daemon has IPv6", serveFacts(t, facts("2001:db8::1")), "  remote 2001:db8::1 (aftr.example.net)"},
		{"daemon keeps its last IPv6 answer", serveFacts(t, kept(facts("192.0.2.1", "2001:db8::1"), "2001:db8::1")),
			"  remote 2001:db8::1 (aftr.example.net resolves to 192.0.2.1 only: the last good IPv6 answer is kept)"},
		{"daemon keeps its last IPv6 answer, no answer at all", serveFacts(t, kept(facts("2001:db8::1"), "2001:db8::1")),
			"  remote 2001:db8::1 (aftr.example.net answers with no address: the last good IPv6 answer is kept)"},
		{"daemon keeps an IPv4 answer for another tunnel", serveFacts(t, kept(facts("192.0.2.1", "2001:db8::1"), "192.0.2.1")),
			"  remote 2001:db8::1 (aftr.example.net)"},
		{"daemon's lookups fail, nothing to keep", serveFacts(t, failing(facts())),
			"  remote aftr.example.net (not resolved yet: lookup aftr.example.net: no such host)"},
		{"daemon keeps its last answer while lookups fail", serveFacts(t, failing(facts("2001:db8::1"))),
			"  remote 2001:db8::1 (aftr.example.net: its lookup fails (lookup aftr.example.net: no such host): the last good answer is kept)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tunnelLines(statusText(t, file, k, tt.sock))[2]
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("remote line (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStatusLookupFailing: the line of a tunnel that is up says when the
// daemon's lookups of its remote name fail, so that it keeps the last
// good answer, which the peer may have left: a tester saw "up" with the
// failure only on the daemon's last error line.
func TestStatusLookupFailing(t *testing.T) {
	const tunnel = "[global]\nfirewall = false\n[tunnel.ds]\nmode = \"ipip6\"\nlocal = \"2001:db8::2\"\nremote = "
	byAddr, _, k := configured(t, tunnel+"\"2001:db8::1\"\n")
	holding(k, "2001:db8::2/64")
	applied(t, byAddr, k)
	byName := filepath.Join(t.TempDir(), "tunneld.toml")
	if err := os.WriteFile(byName, []byte(tunnel+"\"aftr.example.net\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	facts := daemon.Facts{Started: at, Converges: 1, LastConverge: at, Tunnels: []desired.TunnelStatus{{Name: "ds", Up: true}},
		Resolved: map[string][]string{"aftr.example.net": {"2001:db8::1"}}}
	for _, tt := range []struct {
		name    string
		failing map[string]string
		want    string
	}{
		{"answering", nil, "tunnel ds (ipip6): up"},
		{"failing", map[string]string{"aftr.example.net": "lookup aftr.example.net: i/o timeout"},
			"tunnel ds (ipip6): up, but aftr.example.net's lookup fails: its last good answer is kept"},
		{"another name failing", map[string]string{"other.example.net": "lookup other.example.net: i/o timeout"}, "tunnel ds (ipip6): up"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := facts
			f.Failing = tt.failing
			got := tunnelLines(statusText(t, byName, k, serveFacts(t, f)))[0]
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("tunnel line (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStatusJSONNoTunnels: the JSON of a configuration without tunnels
// has "Tunnels": [], not null, and so do the facts of a daemon that has
// none.
func TestStatusJSONNoTunnels(t *testing.T) {
	file, _, k := configured(t, "[global]\nfirewall = false\n")
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name, sock string
		want       []string
	}{
		{"no daemon", filepath.Join(t.TempDir(), "none"), []string{`  "Tunnels": [],`}},
		{"daemon without tunnels", serveFacts(t, daemon.Facts{Started: at, Converges: 1, LastConverge: at, Tunnels: []desired.TunnelStatus{}}),
			[]string{`  "Tunnels": [],`, `    "Tunnels": []`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := statusText(t, file, k, tt.sock, "--json")
			var got []string
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, `"Tunnels"`) {
					got = append(got, line)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Tunnels lines (-want +got):\n%s\n%s", diff, out)
			}
		})
	}
}

// applied runs `tunneld apply` with file against k, for a status test
// that needs the kernel converged.
func applied(t *testing.T, file string, k kernel.Kernel) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, StateDir: t.TempDir(), Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
	if code := Main(env, []string{"apply", "-c", file}); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out.String(), errb.String())
	}
}

// TestStatusHeld: a tunnel whose route (or address, or itself) the
// daemon no longer repairs because something else keeps changing it
// says so in its own block, with until when: a tester saw the tunnel
// "up" while its route was gone and traffic dropped, and only the
// daemon's last line said why. The daemon's lines list every hold, with
// its end; an older daemon's, which give no end, "for now".
func TestStatusHeld(t *testing.T) {
	file, _, k := configured(t, "[global]\nfirewall = false\n[tunnel.moe]\nmode = \"ipip\"\nlocal = \"192.0.2.42\"\nremote = \"192.0.2.1\"\n[[route]]\nto = \"10.9.0.0/16\"\ndev = \"moe\"\n")
	applied(t, file, holding(k, "192.0.2.42/24"))
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	route := daemon.Hold{Object: "route 10.9.0.0/16 table main", Tunnel: "moe", Until: at.Add(5 * time.Minute)}
	rule := daemon.Hold{Object: "rule priority 20000", Until: at.Add(4 * time.Minute)}
	facts := daemon.Facts{Started: at, Converges: 9, LastConverge: at, Tunnels: []desired.TunnelStatus{{Name: "moe", Up: true}},
		Held: []string{route.Object, rule.Object}, Holds: []daemon.Hold{route, rule}}
	old := facts
	old.Holds = nil
	running := "daemon: running since 2026-12-03 17:00:00, 9 convergences, last 17:00:00"
	for _, tt := range []struct {
		name        string
		facts       daemon.Facts
		tunnel, all []string
	}{
		{"held", facts,
			[]string{
				"tunnel moe (ipip): up, but tunneld is not repairing 1 of its objects (see below)",
				"  local  192.0.2.42",
				"  remote 192.0.2.1",
				"  mtu 1480  rx 0 packets 0 bytes 0 errors 0 dropped  tx 0 packets 0 bytes 0 errors 0 dropped",
				"  not repairing route 10.9.0.0/16 table main until 2026-12-03 17:05:00: something else keeps changing it",
			},
			[]string{
				running,
				"  not repairing route 10.9.0.0/16 table main until 2026-12-03 17:05:00: something else keeps changing it",
				"  not repairing rule priority 20000 until 2026-12-03 17:04:00: something else keeps changing it",
				"",
			}},
		{"older daemon", old,
			[]string{
				"tunnel moe (ipip): up",
				"  local  192.0.2.42",
				"  remote 192.0.2.1",
				"  mtu 1480  rx 0 packets 0 bytes 0 errors 0 dropped  tx 0 packets 0 bytes 0 errors 0 dropped",
			},
			[]string{
				running,
				"  not repairing route 10.9.0.0/16 table main for now: something else keeps changing it",
				"  not repairing rule priority 20000 for now: something else keeps changing it",
				"",
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := statusText(t, file, k, serveFacts(t, tt.facts))
			if diff := cmp.Diff(tt.tunnel, tunnelLines(out)); diff != "" {
				t.Errorf("tunnel lines (-want +got):\n%s\n%s", diff, out)
			}
			lines := strings.Split(out, "\n")
			i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "daemon:") })
			if i < 0 {
				t.Fatalf("no daemon line:\n%s", out)
			}
			if diff := cmp.Diff(tt.all, lines[i:]); diff != "" {
				t.Errorf("daemon lines (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStatusHeldTunnel: a tunnel the daemon holds back missing (something
// else kept deleting it) says why it is down: a tester saw "down: not in
// the kernel (see the last error)" with no last error, and no line for
// its routes, unreachable as for any tunnel down. Its drift is marked
// held back, not given as what the daemon's next convergence does;
// without the hold (a file edited and not reloaded, whose reload ends
// every hold) it is what a reload would do.
func TestStatusHeldTunnel(t *testing.T) {
	conf := "[global]\nfirewall = false\n[tunnel.moe]\nmode = \"ipip\"\nlocal = \"192.0.2.42\"\nremote = \"192.0.2.1\"\naddress = \"10.0.0.1/30\"\n[[route]]\nto = \"10.9.0.0/16\"\ndev = \"moe\"\n"
	file, c, k := configured(t, conf)
	applied(t, file, k)
	// The daemon's converge with the hold: moe deleted by someone else
	// stays so, its route stands as an unreachable route.
	k.DelDevice("moe")
	obj := model.Link{Name: "moe"}.ID()
	hold := func(op plan.Op) bool { return op.Object() == obj }
	if _, err := engine.Converge(context.Background(), k, c, nil, hold); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	h := daemon.Hold{Object: obj, Tunnel: "moe", Until: at.Add(5 * time.Minute)}
	facts := daemon.Facts{Started: at, Converges: 9, LastConverge: at, ConfigFile: file, ConfigSum: c.Sum,
		Tunnels: []desired.TunnelStatus{{Name: "moe", Reason: daemon.HeldReason(h.Until)}},
		Held:    []string{h.Object}, Holds: []daemon.Hold{h}}
	edited := facts
	edited.ConfigSum = "other"
	for _, tt := range []struct {
		name   string
		facts  daemon.Facts
		tunnel []string
		drift  []string
	}{
		{"held", facts,
			[]string{
				"tunnel moe (ipip): down: held back until 2026-12-03 17:05:00: something else keeps deleting or changing it",
				"  local  192.0.2.42",
				"  remote 192.0.2.1",
				"  no device moe in the kernel",
				"  routes: 10.9.0.0/16 table main unreachable until moe is up",
				"  not repairing tunnel \"moe\" until 2026-12-03 17:05:00: something else keeps changing it",
			},
			[]string{
				"drift (what the daemon's next convergence would do):",
				"  ip link add moe mtu 1480 type ipip local 192.0.2.42 remote 192.0.2.1 ttl 64 pmtudisc (held back)",
				"  ip link set moe alias tunneld (held back)",
				"  ip address add 10.0.0.1/30 dev moe (held back)",
				"  ip link set moe up (held back)",
			}},
		// Its tunnel lines are the daemon's, as with the hold.
		{"edited, not reloaded", edited, nil,
			[]string{
				"drift (what the daemon would do after a reload):",
				"  ip link add moe mtu 1480 type ipip local 192.0.2.42 remote 192.0.2.1 ttl 64 pmtudisc",
				"  ip link set moe alias tunneld",
				"  ip address add 10.0.0.1/30 dev moe",
				"  ip link set moe up",
				"  ip route replace 10.9.0.0/16 dev moe table main proto 116",
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := statusText(t, file, k, serveFacts(t, tt.facts))
			if diff := cmp.Diff(tt.tunnel, tunnelLines(out)); tt.tunnel != nil && diff != "" {
				t.Errorf("tunnel lines (-want +got):\n%s\n%s", diff, out)
			}
			lines := strings.Split(out, "\n")
			i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "drift") })
			j := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "daemon:") })
			if i < 0 || j < i {
				t.Fatalf("no drift lines:\n%s", out)
			}
			if diff := cmp.Diff(tt.drift, lines[i:j]); diff != "" {
				t.Errorf("drift lines (-want +got):\n%s\n%s", diff, out)
			}
		})
	}
}

// TestStatusNotReloaded: status judges the file it reads against the
// configuration the daemon runs (by the content's sum in its facts). A
// file edited and not reloaded is said to be so first, and its drift is
// what a reload would do: a tester saw "drift (what `tunneld apply`
// would do):" with the edit's new tunnel, which the daemon would never
// create and which apply refuses to while it runs. With a daemon on the
// same file the drift is the daemon's to do; without one, apply's; with
// an older daemon, whose facts have no sum, it cannot be told.
func TestStatusNotReloaded(t *testing.T) {
	conf := "[global]\nfirewall = false\n[tunnel.moe]\nmode = \"ipip\"\nlocal = \"192.0.2.42\"\nremote = \"192.0.2.1\"\n"
	file, c, k := configured(t, conf)
	applied(t, file, holding(k, "192.0.2.42/24"))
	edited := conf + "[tunnel.larry]\nmode = \"ipip\"\nlocal = \"192.0.2.42\"\nremote = \"192.0.2.9\"\n"
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	facts := daemon.Facts{Started: at, LastReload: at.Add(time.Minute), Converges: 2, LastConverge: at, ConfigFile: file, ConfigSum: c.Sum,
		Tunnels: []desired.TunnelStatus{{Name: "moe", Up: true}}}
	older := facts
	older.ConfigSum = ""
	withPID := facts
	withPID.PID = 4242
	notReloaded := "configuration: the file differs from the one the daemon runs (" + file + ", loaded 2026-12-03 17:01:00): what follows is the file's; reload the daemon to apply it (systemctl reload tunneld, service tunneld reload or kill -HUP $(pidof tunneld))"
	for _, tt := range []struct {
		name, conf, sock string
		first, drift     string
	}{
		{"daemon, same file", conf, serveFacts(t, facts), "tunnel moe (ipip): up", "drift: none"},
		{"daemon, edited", edited, serveFacts(t, facts), notReloaded, "drift (what the daemon would do after a reload):"},
		// The daemon's own pid where it says it: `pidof tunneld` names
		// every instance in every namespace (a tester's).
		{"daemon with its pid, edited", edited, serveFacts(t, withPID), strings.Replace(notReloaded, "$(pidof tunneld)", "4242", 1), "drift (what the daemon would do after a reload):"},
		{"no daemon, edited", edited, filepath.Join(t.TempDir(), "none"), "tunnel larry (ipip): down: " + notCreated(false), "drift (what `tunneld apply` would do):"},
		{"older daemon, edited", edited, serveFacts(t, older), "tunnel larry (ipip): down: not created yet", "drift (what the daemon would do with this file):"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(file, []byte(tt.conf), 0o600); err != nil {
				t.Fatal(err)
			}
			out := statusText(t, file, k, tt.sock)
			lines := strings.Split(out, "\n")
			var drift string
			for _, l := range lines {
				if strings.HasPrefix(l, "drift") {
					drift = l
				}
			}
			if diff := cmp.Diff([]string{tt.first, tt.drift}, []string{lines[0], drift}); diff != "" {
				t.Errorf("first and drift lines (-want +got):\n%s\n%s", diff, out)
			}
			var st Status
			if err := minijson.Unmarshal([]byte(statusText(t, file, k, tt.sock, "--json")), &st); err != nil {
				t.Fatal(err)
			}
			if want := strings.HasPrefix(tt.first, "configuration: "); st.NotReloaded != want {
				t.Errorf("NotReloaded = %v, want %v", st.NotReloaded, want)
			}
		})
	}
}

// TestStatusInvalidFile: with a file that cannot be read (a bad edit,
// whose reload the daemon refused) status prints its errors and exits 1,
// as before, but shows the tunnels of the configuration the daemon runs,
// from its facts, labelled so: a tester saw only the parse error and the
// daemon's lines, and could not tell whether the VPN was up. Its JSON has
// the errors, and "Tunnels": [] without a daemon, not null.
func TestStatusInvalidFile(t *testing.T) {
	file, _, k := configured(t, "[global]\nfirewall = false\n")
	if err := os.WriteFile(file, []byte("[tunnel.moe]\nmode = \"ipip\"\nttl = 999\nlocal = \"192.0.2.42\"\nremote = \"192.0.2.1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	hold := daemon.Hold{Object: "route 10.9.0.0/16 table main", Tunnel: "moe", Until: at.Add(5 * time.Minute)}
	facts := daemon.Facts{Started: at, Converges: 4, LastConverge: at, ConfigFile: "/etc/tunneld/tunneld.toml",
		LastError: "reload refused: " + file + ":3:7: tunnel.moe.ttl: 999 is out of range 1–255", LastErrorAt: at,
		Tunnels: []desired.TunnelStatus{
			{Name: "moe", Up: true, Local: netip.MustParseAddr("192.0.2.42"), Remote: netip.MustParseAddr("192.0.2.1")},
			{Name: "larry", Reason: "local device wan has no IPv4 address"},
		},
		LastChange: map[string]string{"moe": "2026-12-03T16:00:00Z"}, Held: []string{hold.Object}, Holds: []daemon.Hold{hold}}
	sock := serveFacts(t, facts)
	none := filepath.Join(t.TempDir(), "none")
	errLine := file + ":3:7: tunnel.moe.ttl: 999 is out of range 1–255"
	status := func(sock string, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		env := &Env{Stdout: &out, Stderr: &errb, StateDir: t.TempDir(), Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
		if code := Main(env, append([]string{"status", "-c", file, "-socket", sock}, args...)); code != 1 {
			t.Errorf("status: exit %d, want 1", code)
		}
		if diff := cmp.Diff(errLine+"\n", errb.String()); diff != "" {
			t.Errorf("stderr (-want +got):\n%s", diff)
		}
		return out.String()
	}
	t.Run("text", func(t *testing.T) {
		want := "configuration: the file cannot be read (its errors are above); the tunnels of the configuration the daemon runs (/etc/tunneld/tunneld.toml) at its last convergence, 2026-12-03 17:00:00:\n" +
			"tunnel moe: up, but tunneld is not repairing 1 of its objects (see below)\n" +
			"  local  192.0.2.42\n" +
			"  remote 192.0.2.1\n" +
			"  last change 2026-12-03 16:00:00\n" +
			"  not repairing route 10.9.0.0/16 table main until 2026-12-03 17:05:00: something else keeps changing it\n" +
			"tunnel larry: down: local device wan has no IPv4 address\n" +
			"  local  any or unknown\n" +
			"  remote any or unknown\n" +
			"daemon: running since 2026-12-03 17:00:00, 4 convergences, last 17:00:00\n" +
			"  last error at 2026-12-03 17:00:00: reload refused: " + errLine + "\n" +
			"  not repairing route 10.9.0.0/16 table main until 2026-12-03 17:05:00: something else keeps changing it\n"
		if diff := cmp.Diff(want, status(sock)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("text, a daemon without tunnels", func(t *testing.T) {
		bare := facts
		bare.Tunnels, bare.Held, bare.Holds, bare.LastError = nil, nil, nil, ""
		want := "configuration: the file cannot be read (its errors are above); the configuration the daemon runs (/etc/tunneld/tunneld.toml) has no tunnels\n" +
			"daemon: running since 2026-12-03 17:00:00, 4 convergences, last 17:00:00\n"
		if diff := cmp.Diff(want, status(serveFacts(t, bare))); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("text, no daemon", func(t *testing.T) {
		want := "configuration: the file cannot be read (its errors are above); no daemon's tunnels to show instead\n" +
			"daemon: no daemon running (no socket " + none + ")\n"
		if diff := cmp.Diff(want, status(none)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	for _, tt := range []struct {
		name, sock string
		tunnels    []string
		fromDaemon bool
	}{
		{"json", sock, []string{"moe", "larry"}, true},
		{"json, no daemon", none, []string{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := status(tt.sock, "--json")
			if tt.sock == none && !strings.Contains(out, `"Tunnels": [],`) {
				t.Errorf("no \"Tunnels\": [] in\n%s", out)
			}
			var st Status
			if err := minijson.Unmarshal([]byte(out), &st); err != nil {
				t.Fatal(err)
			}
			names := []string{}
			for _, r := range st.Tunnels {
				names = append(names, r.Name)
			}
			if diff := cmp.Diff(tt.tunnels, names); diff != "" {
				t.Errorf("tunnels (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{errLine}, st.ConfigErrors); diff != "" {
				t.Errorf("ConfigErrors (-want +got):\n%s", diff)
			}
			if st.FromDaemon != tt.fromDaemon {
				t.Errorf("FromDaemon = %v, want %v", st.FromDaemon, tt.fromDaemon)
			}
		})
	}
}

// TestStatusUnderlay: a tunnel that is up while a device its packets
// leave by has no carrier (or is down) says so on its line and in its
// block: a tester saw "up" for a tunnel following eth0, which had lost
// its carrier, and ping failed. The device is the one its local address
// follows, the one that has its local address, or the one it is bound
// to.
func TestStatusUnderlay(t *testing.T) {
	const hint = "  underlay wan has no carrier: the tunnel's packets cannot leave by it"
	for _, tt := range []struct {
		name, tunnel string
		carrier      bool
		want         []string
	}{
		{"follows, no carrier", "local = \"wan\"", false, []string{"tunnel moe (ipip): up, but wan has no carrier", "  local  192.0.2.7 (follows wan: 192.0.2.7/24)", hint}},
		{"its address on it, no carrier", "local = \"192.0.2.7\"", false, []string{"tunnel moe (ipip): up, but wan has no carrier", "  local  192.0.2.7", hint}},
		{"bound to it, no carrier", "local = \"any\"\ndev = \"wan\"", false, []string{"tunnel moe (ipip): down: device wan (dev) has no carrier", "  local  any", hint}},
		{"follows, carrier", "local = \"wan\"", true, []string{"tunnel moe (ipip): up", "  local  192.0.2.7 (follows wan: 192.0.2.7/24)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file, _, k := configured(t, "[global]\nfirewall = false\n[tunnel.moe]\nmode = \"ipip\"\nremote = \"192.0.2.1\"\n"+tt.tunnel+"\n")
			if k.Devices["wan"] == nil { // not named in the file
				k.AddDevice(model.Device{Name: "wan", MTU: 1500, Up: true, Running: true})
			}
			k.SetAddrs("wan", netip.MustParsePrefix("192.0.2.7/24"))
			applied(t, file, k)
			k.Devices["wan"].Running = tt.carrier
			var got []string
			for _, l := range tunnelLines(statusText(t, file, k, filepath.Join(t.TempDir(), "none"))) {
				if !strings.HasPrefix(l, "  remote") && !strings.HasPrefix(l, "  mtu") {
					got = append(got, l)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("tunnel lines (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStatusIPv6Shortfall: an ip6ip6 tunnel over an underlay that
// leaves less than 1280 after the overhead is not shown as healthy: its
// line says which IPv6 packets it drops and why, and the warning what to
// do. A tester saw "up", "drift: none" and a warning that read like a fix
// while ping6 -s 1232 and up lost every packet over a 1300 underlay.
//
// A gre tunnel with pmtudisc (DF on its outer packets) drops them the
// same way, and the forwarded IPv4 packets without DF; without pmtudisc the kernel
// fragments its outer packets and only the raised mtu is warned of.
func TestStatusIPv6Shortfall(t *testing.T) {
	const ip6ip6 = "mode = \"ip6ip6\"\nremote = \"2001:db8:b::2\"\naddress = \"fd00:ab::1/64\"\n"
	const gre = "mode = \"gre\"\nremote = \"192.0.2.1\"\naddress = [\"10.0.0.1/30\", \"fd00:ab::1/64\"]\n"
	for _, tt := range []struct {
		name, tunnel string
		underlay     int
		line         string
		warning      string
	}{
		{"the tester's 1300", ip6ip6, 1300,
			"tunnel site-b (ip6ip6): up, but IPv6 packets over 1252 bytes are dropped: the underlay wan's mtu 1300 is too small (1328 needed)",
			`warning: tunnel "site-b": computed mtu 1252 (underlay 1300 minus overhead 48) is below IPv6's minimum 1280: using 1280, but ip6ip6 does not fragment its outer packets: IPv6 packets over 1252 bytes through it are dropped; raise the underlay wan's mtu to at least 1328`},
		{"ethernet", ip6ip6, 1500, "tunnel site-b (ip6ip6): up", ""},
		{"gre with pmtudisc over 1280", gre, 1280,
			"tunnel site-b (gre): up, but IPv6 packets over 1256 bytes are dropped, and forwarded IPv4 ones without DF: the underlay wan's mtu 1280 is too small (1304 needed)",
			`warning: tunnel "site-b": computed mtu 1256 (underlay 1280 minus overhead 24) is below IPv6's minimum 1280: using 1280, but gre sets DF on its outer packets (pmtudisc = true), so the kernel does not fragment them: IPv6 packets over 1256 bytes through it are dropped, and forwarded IPv4 ones without DF; raise the underlay wan's mtu to at least 1304, or set pmtudisc = false (the kernel then fragments the outer packets)`},
		{"gre without pmtudisc over 1280", gre + "pmtudisc = false\n", 1280, "tunnel site-b (gre): up",
			`warning: tunnel "site-b": computed mtu 1256 (underlay 1280 minus overhead 24) is below IPv6's minimum 1280: using 1280`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file, _, k := configured(t, "[global]\nfirewall = false\n[tunnel.site-b]\nlocal = \"wan\"\n"+tt.tunnel)
			if k.Devices["wan"] == nil {
				k.AddDevice(model.Device{Name: "wan", Up: true, Running: true})
			}
			k.Devices["wan"].MTU = tt.underlay
			k.SetAddrs("wan", netip.MustParsePrefix("2001:db8:a::2/64"), netip.MustParsePrefix("192.0.2.7/24"))
			applied(t, file, routed(k, "wan", "2001:db8:a::2/64"))
			out := statusText(t, file, k, filepath.Join(t.TempDir(), "none"))
			if diff := cmp.Diff(tt.line, tunnelLines(out)[0]); diff != "" {
				t.Errorf("tunnel line (-want +got):\n%s", diff)
			}
			var warnings []string
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "warning: ") {
					warnings = append(warnings, l)
				}
			}
			var want []string
			if tt.warning != "" {
				want = []string{tt.warning}
			}
			if diff := cmp.Diff(want, warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStatusHeldRoutes: for a tunnel that is down, status says which of
// the routes through it stand as unreachable routes until it is up, and
// which are withdrawn and why (here: a failover route of the
// configuration is in place); apply says the same on stderr, and plan
// as comments.
func TestStatusHeldRoutes(t *testing.T) {
	file, _, k := configured(t, `[global]
firewall = false
[tables]
vpn = 100
[tunnel.t1]
mode = "ipip"
local = "192.0.2.42"
remote = "192.0.2.1"
address = "10.0.0.1/30"
[[route]]
to = "192.168.2.0/24"
via = "peer"
dev = "t1"
table = "vpn"
[[route]]
to = "default"
dev = "t1"
table = "vpn"
metric = 5
[[route]]
to = "10.30.0.0/16"
dev = "t1"
[[route]]
to = "10.30.0.0/16"
dev = "eth0"
metric = 100
[[rule]]
iif = "eth1"
table = "vpn"
`)
	k.AddDevice(model.Device{Name: "t1", Kind: "dummy", Up: true, Running: true})
	k.AddDevice(model.Device{Name: "eth0", Up: true, Running: true, MTU: 1500})
	want := []string{
		"tunnel t1 (ipip): down: the name t1 is taken by a dummy device tunneld does not own: give the tunnel another name",
		"  local  192.0.2.42",
		"  remote 192.0.2.1",
		"  the device t1 is not tunneld's",
		"  routes: 192.168.2.0/24 table vpn, default table vpn metric 5 unreachable until t1 is up",
		"  routes: 10.30.0.0/16 table main withdrawn until t1 is up: another route to it in the configuration is in place",
	}
	got := tunnelLines(statusText(t, file, k, filepath.Join(t.TempDir(), "none")))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	var out, errb bytes.Buffer
	open := func(bool) (kernel.Kernel, error) { return k, nil }
	Main(&Env{Stdout: &out, Stderr: &errb, Kernel: open, StateDir: t.TempDir()}, []string{"apply", "-c", file})
	for _, line := range want[4:] {
		if !strings.Contains(errb.String(), "tunneld:   "+strings.TrimSpace(line)+"\n") {
			t.Errorf("apply's stderr lacks %q:\n%s", line, errb.String())
		}
	}
	if !strings.Contains(out.String(), "ip route add unreachable 192.168.2.0/24 table 100 proto 116  # table vpn") {
		t.Errorf("apply's stdout:\n%s", out.String())
	}
	out.Reset()
	Main(&Env{Stdout: &out, Stderr: &errb, Kernel: open, StateDir: t.TempDir()}, []string{"plan", "-c", file})
	if !strings.Contains(out.String(), "#   "+strings.TrimSpace(want[4])+"\n") {
		t.Errorf("plan:\n%s", out.String())
	}
}

// TestStatusHeldStandIn: the unreachable route that stands in for a
// route through a tunnel that is not up is held back on its own, not by
// a hold of the route (which has its object: daemon.HoldKey). With the
// route held (something kept deleting it before the tunnel went down)
// the daemon puts the stand-in in place, and status does not mark its
// add held back; with the stand-in held (something keeps deleting it
// in turn) it does, and the tunnel's block names that hold.
func TestStatusHeldStandIn(t *testing.T) {
	conf := "[global]\nfirewall = false\n[tunnel.moe]\nmode = \"ipip\"\nlocal = \"wan\"\nremote = \"192.0.2.1\"\n[[route]]\nto = \"10.9.0.0/16\"\ndev = \"moe\"\n"
	file, c, k := configured(t, conf)
	applied(t, file, k) // wan has no address: the route stands as an unreachable route
	k.Routes = slices.DeleteFunc(k.Routes, func(r fakekernel.Route) bool { return r.Type == model.RouteUnreachable })
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	add := "  ip route add unreachable 10.9.0.0/16 table main proto 116"
	for _, tt := range []struct {
		name, held string
		drift      string
	}{
		{"route held", "route 10.9.0.0/16 table main", add},
		{"stand-in held", "unreachable route 10.9.0.0/16 table main", add + " (held back)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := daemon.Hold{Object: tt.held, Tunnel: "moe", Until: at.Add(5 * time.Minute)}
			facts := daemon.Facts{Started: at, Converges: 9, LastConverge: at, ConfigFile: file, ConfigSum: c.Sum,
				Tunnels: []desired.TunnelStatus{{Name: "moe", Reason: "local device wan has no IPv4 address"}},
				Held:    []string{h.Object}, Holds: []daemon.Hold{h}}
			out := statusText(t, file, k, serveFacts(t, facts))
			lines := strings.Split(out, "\n")
			i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "drift") })
			j := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "daemon:") })
			if i < 0 || j < i {
				t.Fatalf("no drift lines:\n%s", out)
			}
			if diff := cmp.Diff([]string{tt.drift}, lines[i+1:j]); diff != "" {
				t.Errorf("drift lines (-want +got):\n%s\n%s", diff, out)
			}
			line := "  not repairing " + tt.held + " until 2026-12-03 17:05:00: something else keeps changing it"
			if !slices.Contains(tunnelLines(out), line) {
				t.Errorf("the tunnel's block lacks %q:\n%s", line, out)
			}
		})
	}
}

// TestStatusNotSetUp: without a daemon, a tunnel in the kernel but down,
// which nothing in the inputs keeps down (an apply whose nftables table
// the kernel refused left it so), says no daemon runs to say why, not a
// bare "down" (a tester's); with a daemon, the daemon's reason.
func TestStatusNotSetUp(t *testing.T) {
	file, _, k := configured(t, "[global]\nfirewall = false\n[tunnel.Moe]\nmode = \"ipip\"\nlocal = \"192.0.2.42\"\nremote = \"192.0.2.1\"\n")
	applied(t, file, k)
	k.Devices["Moe"].Up = false
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	refused := daemon.Facts{Started: at, Converges: 3, LastConverge: at,
		Tunnels: []desired.TunnelStatus{{Name: "Moe", Reason: "setting it up failed: " + kernel.ErrUnguarded.Error()}}}
	for _, tt := range []struct {
		name, sock, want string
	}{
		{"no daemon", filepath.Join(t.TempDir(), "none"), "tunnel Moe (ipip): down: not set up, and no daemon runs to say why: `tunneld apply` sets it up, or says why it cannot"},
		{"the daemon's reason", serveFacts(t, refused), "tunnel Moe (ipip): down: setting it up failed: " + kernel.ErrUnguarded.Error()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.SplitN(statusText(t, file, k, tt.sock), "\n", 2)[0]
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("tunnel line (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStatusDaemonsFile: without -c, status reads the file the running
// daemon runs, which need not be the default one; with -c, the one
// given.
func TestStatusDaemonsFile(t *testing.T) {
	file, _, k := configured(t, "[global]\nfirewall = false\n[tunnel.he]\nmode = \"sit\"\nlocal = \"192.0.2.42\"\nremote = \"203.0.113.1\"\n")
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	sock := serveFacts(t, daemon.Facts{Started: at, Converges: 1, LastConverge: at, ConfigFile: file})
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		env := &Env{Stdout: &out, Stderr: &errb, StateDir: t.TempDir(), Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
		code := Main(env, append([]string{"status", "-socket", sock}, args...))
		return code, out.String() + errb.String()
	}
	if code, out := run(); code != 0 || !strings.Contains(out, "tunnel he (sit)") {
		t.Errorf("status without -c: exit %d\n%s", code, out)
	}
	missing := filepath.Join(t.TempDir(), "none.toml")
	if code, out := run("-c", missing); code == 0 || !strings.Contains(out, missing) {
		t.Errorf("status -c %s: exit %d, want the file's error\n%s", missing, code, out)
	}
	// A daemon's file by a relative path is its own directory's, not
	// status's: the default file is read then (here, none).
	sock = serveFacts(t, daemon.Facts{Started: at, Converges: 1, LastConverge: at, ConfigFile: "t.toml"})
	if code, out := run(); code == 0 || !strings.Contains(out, config.DefaultPath) {
		t.Errorf("status without -c, the daemon's file relative: exit %d, want the default file's error\n%s", code, out)
	}
}

// TestStatusEmptiedFile: a file emptied while the daemon runs another
// configuration is not what a reload would bring (the daemon refuses
// it): status says so, shows the daemon's tunnels and exits 1, as for a
// file that does not validate, rather than offering the reload and the
// removal of every tunnel as its drift (a tester's).
func TestStatusEmptiedFile(t *testing.T) {
	file, _, k := configured(t, "[global]\n")
	if err := os.WriteFile(file, []byte("\n  \n# [tunnel.moe]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	sock := serveFacts(t, daemon.Facts{Started: at, Converges: 1, LastConverge: at, ConfigFile: file, ConfigSum: "0123",
		Tunnels: []desired.TunnelStatus{{Name: "moe", Up: true}}})
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, StateDir: t.TempDir(), Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
	if code := Main(env, []string{"status", "-c", file, "-socket", sock}); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if want := file + ":1:1: " + config.EmptyMessage; !strings.Contains(errb.String(), want) {
		t.Errorf("stderr %q, want %q…", errb.String(), want)
	}
	if strings.Contains(out.String(), "reload the daemon to apply it") || strings.Contains(out.String(), "drift") || !strings.Contains(out.String(), "moe") {
		t.Errorf("stdout:\n%s\nwant the daemon's tunnel moe, and no reload offered", out.String())
	}
}

// TestStatusLooped: an up tunnel with a route through it that holds its
// remote, once the WAN's default route is gone, keeps its host route
// while the gateway is on the WAN's subnet; once it is not, its line says
// that its packets to the remote go into itself (a tester's status said
// "up", and only a note, apart, said there was no underlay route).
func TestStatusLooped(t *testing.T) {
	file, _, k := configured(t, "[global]\nfirewall = false\n[tunnel.moe]\nmode = \"ipip\"\nlocal = \"192.0.2.7\"\nremote = \"198.51.100.9\"\n[[route]]\nto = \"128.0.0.0/1\"\ndev = \"moe\"\n")
	if k.Devices["wan"] == nil {
		k.AddDevice(model.Device{Name: "wan", MTU: 1500, Up: true, Running: true})
	}
	k.SetAddrs("wan", netip.MustParsePrefix("192.0.2.7/24"))
	wanDefault := model.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.1"), Dev: "wan"}
	k.AddForeignRoute(wanDefault, 3)
	applied(t, file, k)
	none := filepath.Join(t.TempDir(), "none")
	if got := tunnelLines(statusText(t, file, k, none))[0]; got != "tunnel moe (ipip): up" {
		t.Errorf("with the WAN's default route: %q, want up", got)
	}
	k.Routes = slices.DeleteFunc(k.Routes, func(r fakekernel.Route) bool { return r.Route == wanDefault })
	out := statusText(t, file, k, none)
	if got := tunnelLines(out)[0]; got != "tunnel moe (ipip): up" || !strings.Contains(out, "the one via 192.0.2.1 dev wan is kept while 192.0.2.1 is on wan's subnet") || strings.Contains(out, "drift: route") {
		t.Errorf("without it, the gateway on wan's subnet: %q, want up, the host route kept:\n%s", got, out)
	}
	k.SetAddrs("wan", netip.MustParsePrefix("192.0.2.7/32"))
	want := "tunnel moe (ipip): up, but its packets to 198.51.100.9 go into itself: table main has no route to it by the underlay"
	if got := tunnelLines(statusText(t, file, k, none))[0]; got != want {
		t.Errorf("the gateway off wan's subnets: %q, want %q", got, want)
	}
}

// TestStatusLocalGuess: a tunnel whose local address follows a device
// with two addresses, once no route decides between them (the WAN's
// default route gone in a renew), says that its address is a guess (a
// tester's status said up on a modem's address for the whole gap). With
// no route to the remote at all, it says that instead.
func TestStatusLocalGuess(t *testing.T) {
	file, _, k := configured(t, "[global]\nfirewall = false\n[tunnel.moe]\nmode = \"ipip\"\nlocal = \"wan\"\nremote = \"198.51.100.9\"\nhost_route = false\n")
	if k.Devices["wan"] == nil {
		k.AddDevice(model.Device{Name: "wan", MTU: 1500, Up: true, Running: true})
	}
	k.SetAddrs("wan", netip.MustParsePrefix("192.0.2.7/24"), netip.MustParsePrefix("192.168.100.2/24"))
	wanDefault := model.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.1"), Dev: "wan"}
	k.AddForeignRoute(wanDefault, 3)
	applied(t, file, k)
	none := filepath.Join(t.TempDir(), "none")
	if got := tunnelLines(statusText(t, file, k, none))[0]; got != "tunnel moe (ipip): up" {
		t.Errorf("with the WAN's default route: %q, want up", got)
	}
	k.Routes = slices.DeleteFunc(k.Routes, func(r fakekernel.Route) bool { return r.Route == wanDefault })
	// No route at all says more than the guess: nothing is sent.
	want := "tunnel moe (ipip): up, but the kernel has no route to its remote 198.51.100.9 from 192.0.2.7 (ip route get 198.51.100.9 from 192.0.2.7): it cannot send its packets; the WAN's default route gone?"
	if got := tunnelLines(statusText(t, file, k, none))[0]; got != want {
		t.Errorf("without it: %q, want %q", got, want)
	}
	// A route by another device (an LTE backup's): the guess.
	k.AddDevice(model.Device{Name: "lte0", MTU: 1500, Up: true, Running: true, Addrs: []netip.Prefix{netip.MustParsePrefix("10.64.0.2/24")}})
	routed(k, "lte0", "10.64.0.2/24")
	want = "tunnel moe (ipip): up, but no route to its remote by its device decides its local address yet: 192.0.2.7 is a guess"
	if got := tunnelLines(statusText(t, file, k, none))[0]; got != want {
		t.Errorf("with a default route by another device: %q, want %q", got, want)
	}
}

// TestStatusKeptUnmarked: a tunnel whose alias someone keeps changing is
// still the running daemon's, which holds back giving it back (its
// facts' Unmarked, with the index): status, a process without the
// daemon's memory of its tunnels, says it is up with the alias to give
// back held, where an ownership tester's said down and someone else's
// while the daemon routed through it. Without the daemon's word (an
// older daemon, or none) it is someone else's, as to any new process.
func TestStatusKeptUnmarked(t *testing.T) {
	conf := "[global]\nfirewall = false\n[tunnel.moe]\nmode = \"ipip\"\nlocal = \"192.0.2.42\"\nremote = \"192.0.2.1\"\n"
	file, c, k := configured(t, conf)
	applied(t, file, k)
	k.Aliases["moe"] = "to-branch-office"
	k.Forget()
	obj := model.Link{Name: "moe"}.ID()
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	h := daemon.Hold{Object: obj, Tunnel: "moe", Until: at.Add(5 * time.Minute)}
	facts := daemon.Facts{Started: at, Converges: 9, LastConverge: at, ConfigFile: file, ConfigSum: c.Sum,
		Tunnels: []desired.TunnelStatus{{Name: "moe", Up: true}},
		Held:    []string{h.Object}, Holds: []daemon.Hold{h}}
	kept := facts
	kept.Unmarked = map[string]int{"moe": k.Devices["moe"].Index}
	for _, tt := range []struct {
		name   string
		facts  daemon.Facts
		tunnel string
		drift  string
	}{
		{"kept by the daemon", kept, "tunnel moe (ipip): up", "  ip link set moe alias tunneld (held back)"},
		{"no word of it", facts, "tunnel moe (ipip): down: the name moe is taken by an ipip device", "drift: none"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := statusText(t, file, k, serveFacts(t, tt.facts))
			k.Forget()
			if got := tunnelLines(out)[0]; !strings.HasPrefix(got, tt.tunnel) {
				t.Errorf("tunnel line %q, want it to begin %q\n%s", got, tt.tunnel, out)
			}
			if !slices.Contains(strings.Split(out, "\n"), tt.drift) {
				t.Errorf("no line %q:\n%s", tt.drift, out)
			}
		})
	}
}

// TestUnderlayNotItself: a tunnel that carries its local address too (a
// seed's, bound to eth0) is not its own underlay: with eth0 gone a
// tester's status said "underlay tunl1 is down".
func TestUnderlayNotItself(t *testing.T) {
	local := netip.MustParseAddr("192.0.2.7")
	tun := &config.Tunnel{Name: "tunl1", Mode: model.ModeIPIP, Local: local, Dev: "eth0"}
	devs := map[string]model.Device{
		"tunl1": {Name: "tunl1", Addrs: []netip.Prefix{netip.PrefixFrom(local, 32)}},
		"lan":   {Name: "lan", Addrs: []netip.Prefix{netip.PrefixFrom(local, 24)}},
	}
	var r TunnelReport
	r.underlay(devs, tun)
	if diff := cmp.Diff([]string{"lan is down"}, r.Underlay); diff != "" {
		t.Errorf("underlay (-want +got):\n%s", diff)
	}
}

// TestStatusLocalGone: a tunnel whose pinned local address has left the
// box is up in the kernel and sends nothing; status says so on its line,
// in the text and the JSON, and says nothing while the address is there.
// A tester deleted the WAN's address: status said up, drift none.
func TestStatusLocalGone(t *testing.T) {
	file, _, k := configured(t, "[global]\nfirewall = false\n[tunnel.moe]\nmode = \"ipip\"\nlocal = \"192.0.2.42\"\nremote = \"192.0.2.1\"\n")
	applied(t, file, holding(k, "192.0.2.42/24"))
	none := filepath.Join(t.TempDir(), "none")
	if got := tunnelLines(statusText(t, file, k, none))[0]; got != "tunnel moe (ipip): up" {
		t.Errorf("with the address on wan: %q, want up", got)
	}
	k.SetAddrs("wan", netip.MustParsePrefix("192.0.2.43/24"))
	const gone = "its local address 192.0.2.42 is on no device of this box: the kernel sends nothing from it"
	if diff := cmp.Diff("tunnel moe (ipip): up, but "+gone, tunnelLines(statusText(t, file, k, none))[0]); diff != "" {
		t.Errorf("the address gone (-want +got):\n%s", diff)
	}
	var rep struct{ Tunnels []TunnelReport }
	if err := minijson.Unmarshal([]byte(statusText(t, file, k, none, "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Tunnels) != 1 || rep.Tunnels[0].LocalAbsent != gone {
		t.Errorf("JSON tunnels %+v: want LocalAbsent %q", rep.Tunnels, gone)
	}
}

// TestStatusPrintable: what status prints of the daemon's facts, which
// come from a socket in the state directory, has its control characters
// escaped: a tester's fake daemon there cleared the screen and coloured
// status's lines with a last error of escape sequences.
func TestStatusPrintable(t *testing.T) {
	file, _, k := configured(t, "[global]\nfirewall = false\n")
	applied(t, file, k)
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	facts := daemon.Facts{Started: at, Converges: 1, LastConverge: at, LastError: "boom\x1b[2J\x1b[31mRED\u009b1m", LastErrorAt: at}
	out := statusText(t, file, k, serveFacts(t, facts))
	if strings.ContainsAny(out, "\x1b\u009b") || !utf8.ValidString(out) {
		t.Errorf("status prints control characters or bytes that are not UTF-8:\n%q", out)
	}
	if want := `boom\x1b[2J\x1b[31mRED\xc2\x9b1m`; !strings.Contains(out, want) {
		t.Errorf("status:\n%s\nwant the last error as %s", out, want)
	}
}

// deniedKernel is an in-memory kernel whose observations fail as the
// Linux seam's do for a user who may not read the state directory's
// records.
type deniedKernel struct{ *fakekernel.Kernel }

func (deniedKernel) Observe(context.Context, model.Scope) (model.State, model.Inputs, error) {
	return model.State{}, model.Inputs{}, &fs.PathError{Op: "lstat", Path: "/run/tunneld/creating.json", Err: syscall.EACCES}
}

// TestStatusRecordsDenied: status run by a user who may not read the
// state directory's records says to run it as root (a tester's got the
// kernel's lstat error alone).
func TestStatusRecordsDenied(t *testing.T) {
	file, _, k := configured(t, "[global]\nfirewall = false\n")
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, StateDir: "/run/tunneld", Kernel: func(bool) (kernel.Kernel, error) { return deniedKernel{k}, nil }}
	code := Main(env, []string{"status", "-c", file, "-socket", filepath.Join(t.TempDir(), "none")})
	want := "tunneld: lstat /run/tunneld/creating.json: permission denied (the state directory /run/tunneld is the daemon's user's: run status as root, or as that user)\n"
	if diff := cmp.Diff(want, errb.String()); code != 1 || diff != "" {
		t.Errorf("exit %d, stderr (-want +got):\n%s", code, diff)
	}
}
