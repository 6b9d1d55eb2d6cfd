package cli

import (
	"bytes"
	"net/netip"
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
