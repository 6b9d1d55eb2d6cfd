package cli

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/daemon"
	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
)

// TestRefusedTunnelWording: with a foreign gre device holding the
// tunnel's endpoints, apply fails (exit 1) with the refusal as its
// error, leaves the route through the tunnel standing as an unreachable
// route, and says so ("unreachable until tG is up"), the tunnel's reason
// pointing at the error rather than repeating it; a second apply changes
// nothing and says the same. plan and status, which do not try the
// creation, say the route is refused until the tunnel is up; status
// with a daemon running gives the daemon's reason, the refusal.
func TestRefusedTunnelWording(t *testing.T) {
	file, _, k := configured(t, "[global]\nfirewall = false\n[tunnel.tG]\nmode = \"gre\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.4\"\n[[route]]\nto = \"10.70.0.0/24\"\ndev = \"tG\"\n")
	k.Tunnels["foo"] = model.Link{Name: "foo", Mode: model.ModeGRE, Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddr("192.0.2.4"), PMTUDisc: true, TTL: 64}
	k.AddDevice(model.Device{Name: "foo", Kind: "gre", MTU: 1476})
	const refusal = `the gre tunnel foo, which tunneld does not own, has the same endpoints (local 192.0.2.1 remote 192.0.2.4), and the kernel keeps one tunnel per endpoint pair: delete it (ip link del foo, or remove the OpenWrt interface that made it) or give this tunnel other endpoints (or another key): file exists`
	const routes = "routes: 10.70.0.0/24 table main unreachable until tG is up"
	open := func(bool) (kernel.Kernel, error) { return k, nil }
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(&Env{Stdout: &out, Stderr: &errb, Kernel: open, StateDir: t.TempDir()}, append(args, "-c", file))
		return code, out.String(), errb.String()
	}
	for i, stdout := range []string{"ip route add unreachable 10.70.0.0/24 table main proto 116\n", ""} {
		code, out, errs := run("apply")
		lines := strings.Split(errs, "\n")
		if len(lines) > 3 {
			lines = lines[:3]
		}
		want := []string{
			`tunneld: tunnel "tG" is down: creating it failed (see the error below)`,
			"tunneld:   " + routes,
			`tunneld: tunnel "tG": ` + refusal,
		}
		if len(lines) == 3 {
			lines[2] = lines[2][:min(len(lines[2]), len(want[2]))]
		}
		if diff := cmp.Diff(want, lines); diff != "" || code != 1 || out != stdout {
			t.Errorf("apply %d: exit %d, stdout %q, want %q; stderr (-want +got):\n%s", i+1, code, out, stdout, diff)
		}
	}
	_, out, _ := run("plan")
	want := []string{
		`# tunnel "tG" is not in the kernel: the plan creates it`,
		"#   " + routes,
		"ip link add tG mtu 1476 type gre local 192.0.2.1 remote 192.0.2.4 ttl 64 pmtudisc",
	}
	if diff := cmp.Diff(want, strings.Split(out, "\n")[:3]); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	failed := daemon.Facts{Started: at, Converges: 3, LastConverge: at, LastError: `tunnel "tG": ` + refusal, LastErrorAt: at,
		Tunnels: []desired.TunnelStatus{{Name: "tG", Reason: "creating it failed: " + refusal, Refused: true,
			Held: []model.Route{{Table: model.TableMain, Dst: netip.MustParsePrefix("10.70.0.0/24"), Type: model.RouteUnreachable}}}}}
	for _, tt := range []struct {
		name, sock, reason string
	}{
		{"no daemon", filepath.Join(t.TempDir(), "none"), notCreated(false)},
		{"the daemon met the refusal", serveFacts(t, failed), "creating it failed: " + refusal},
	} {
		t.Run("status, "+tt.name, func(t *testing.T) {
			want := []string{
				"tunnel tG (gre): down: " + tt.reason,
				"  local  192.0.2.1",
				"  remote 192.0.2.4",
				"  no device tG in the kernel",
				"  " + routes,
			}
			got := tunnelLines(statusText(t, file, k, tt.sock))
			if len(got) > 0 {
				got[0] = got[0][:min(len(got[0]), len(want[0]))]
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStatusRefusedMoveDrift: a tunnel whose move to its endpoints the
// kernel refused (another tunnel holds them) is down with its routes
// unreachable, and the daemon keeps trying the move alone: status's
// drift, with the daemon's facts, is that move, not the setting up and
// routes that follow it only once it works (a tester's status listed
// `ip link set … up`, which the daemon would skip).
func TestStatusRefusedMoveDrift(t *testing.T) {
	const conf = "[global]\nfirewall = false\n[tunnel.tM]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.%d\"\n[[route]]\nto = \"10.70.0.0/24\"\ndev = \"tM\"\n"
	file, _, k := configured(t, fmt.Sprintf(conf, 2))
	applied(t, file, k)
	k.Tunnels["foo"] = model.Link{Name: "foo", Mode: model.ModeIPIP, Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddr("192.0.2.4"), PMTUDisc: true, TTL: 64}
	k.AddDevice(model.Device{Name: "foo", Kind: "ipip", MTU: 1480})
	if err := os.WriteFile(file, []byte(fmt.Sprintf(conf, 4)), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, StateDir: t.TempDir(), Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
	if code := Main(env, []string{"apply", "-c", file}); code != 1 {
		t.Fatalf("apply: exit %d, want 1 (the move refused)\n%s%s", code, out.String(), errb.String())
	}
	at := time.Date(2026, 12, 4, 19, 0, 0, 0, time.UTC)
	const reason = "moving it to its endpoints failed: the ipip tunnel foo, which tunneld does not own, has the same endpoints"
	facts := daemon.Facts{Started: at, Converges: 3, LastConverge: at, ConfigFile: file,
		Tunnels: []desired.TunnelStatus{{Name: "tM", Reason: reason, Refused: true}}}
	got := statusText(t, file, k, serveFacts(t, facts))
	var drift []string
	if _, after, ok := strings.Cut(got, "drift ("); ok {
		for _, l := range strings.Split(after, "\n")[1:] {
			if strings.HasPrefix(l, "  ") {
				drift = append(drift, strings.TrimSpace(l))
			}
		}
	}
	want := []string{"ip link change tM mtu 1480 type ipip local 192.0.2.1 remote 192.0.2.4 ttl 64 pmtudisc"}
	if diff := cmp.Diff(want, drift); diff != "" {
		t.Errorf("drift (-want +got):\n%s\nstatus:\n%s", diff, got)
	}
	if first := strings.SplitN(got, "\n", 2)[0]; first != "tunnel tM (ipip): down: "+reason {
		t.Errorf("tunnel line %q", first)
	}
}
