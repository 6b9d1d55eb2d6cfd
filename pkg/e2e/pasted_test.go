package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tunneld/tunneld/pkg/netnstest"
)

// envIPRoute2 names a directory holding iproute2's ip and nftables' nft,
// the full programs (busybox's ip knows neither ip6tnl nor rule
// protocols), for TestPastedPlan. The amd64 VM suite sets it.
const envIPRoute2 = "TUNNELD_IPROUTE2"

// TestPastedPlan: `tunneld plan` prints commands an admin could type to
// do the same by hand. Pasted into a shell in a namespace where tunneld
// owns nothing yet, they must leave exactly what tunneld wants: the
// next plan has nothing to do (no tunnel to mark as tunneld's, no route,
// rule, sysctl or table to write), and `tunneld down` then removes every
// tunnel, address, route, rule and the table the paste made, as it would
// its own. The sysctls are the exception: the shell did not record what
// they were, so down has no original to put back; they are put back by
// hand before the namespace is compared with what it was.
func TestPastedPlan(t *testing.T) {
	for _, tt := range []struct {
		name, ns, cfg string
		lab           func(*lab)
	}{
		// Two ipip tunnels bound to eth0, onlink routes into them.
		{"seed 001 proxy", "proxy", seedFile(seed001, "proxy"), seed001Lab},
		// ipip, proxy ARP, a source rule into a table of its own,
		// and a redirect.
		{"seed 002 colo", "colo", seedFile(seed002, "colo"), seed002Lab},
		// ipip to a private network, masquerade, a spoof chain.
		{"seed 004 ps3", "ps3", seedFile(seed004, "ps3"), seed004Lab},
		// sit, IPv6 routes, IPv6 forwarding.
		{"6in4 router", "router", exampleFile("6in4-he"), sixIn4Lab},
		// ipip6: the address generation step after the creation.
		{"DS-Lite AFTR", "aftr", exampleFile("dslite-aftr"), dsliteLab},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tools := os.Getenv(envIPRoute2)
			if tools == "" && runtime.GOARCH == "amd64" && os.Getenv(netnstest.EnvRequireDrivers) == "1" {
				t.Fatalf("%s is not set: the amd64 VM suite ships the host's ip and nft (testdata/vm/suite.sh)", envIPRoute2)
			}
			if tools == "" {
				t.Skipf("set %s to a directory holding iproute2's ip and nftables' nft (the amd64 VM suite does)", envIPRoute2)
			}
			l := newLab(t)
			tt.lab(l)
			before := l.snapshot(tt.ns)
			printed := l.mustTunneld(tt.ns, "plan", "-c", tt.cfg)
			if out, err := l.shell(tt.ns, tools, printed); err != nil {
				if strings.Contains(out, "Unknown device type") {
					skipWithoutDriver(t, errNoDriver(out))
				}
				t.Fatalf("the printed plan, run by sh: %v\n%s\nthe plan:\n%s", err, out, printed)
			}
			after := l.mustTunneld(tt.ns, "plan", "-c", tt.cfg)
			for _, line := range strings.Split(strings.TrimSpace(after), "\n") {
				if !strings.HasPrefix(line, "#") || strings.Contains(line, "taking over") {
					t.Errorf("after the printed plan ran, plan still has:\n%s\nthe plan run:\n%s", after, printed)
					break
				}
			}
			l.mustTunneld(tt.ns, "down", "-c", tt.cfg)
			l.putSysctlsBack(tt.ns, before)
			if got := l.snapshot(tt.ns); got != before {
				t.Errorf("after down (and the sysctls put back by hand), the namespace differs from before the paste:\n--- before\n%s--- after\n%s", before, got)
			}
		})
	}
}

// shell runs script with sh in a namespace, ip and nft taken from dir,
// tracing each command, and returns its output. They are shell
// functions: the guest's busybox sh runs its own applets before any
// program of that name on the path.
func (l *lab) shell(ns, dir, script string) (string, error) {
	l.t.Helper()
	var out bytes.Buffer
	err := l.node(ns).Do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		funcs := fmt.Sprintf("ip() { %s \"$@\"; }\nnft() { %s \"$@\"; }\nset -x\n", filepath.Join(dir, "ip"), filepath.Join(dir, "nft"))
		cmd := exec.CommandContext(ctx, "sh", "-e", "-c", funcs+script)
		cmd.Stdout, cmd.Stderr = &out, &out
		return cmd.Run()
	})
	return out.String(), err
}

// errNoDriver is ip's refusal of a tunnel kind the kernel lacks, in the
// words skipWithoutDriver knows.
type errNoDriver string

func (e errNoDriver) Error() string {
	return "kernel has no driver for a tunnel the plan creates: " + strings.TrimSpace(string(e))
}

// putSysctlsBack writes the /proc/sys values of a snapshot back in a
// namespace, as an admin undoes the sysctl lines of a pasted plan (and
// the kernel then drops what they brought, such as the subnet-router
// anycast routes of IPv6 forwarding).
func (l *lab) putSysctlsBack(ns, snap string) {
	l.t.Helper()
	for _, line := range strings.Split(snap, "\n") {
		if path, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(path, "/proc/sys/") {
			l.in(ns, func() error { return os.WriteFile(path, []byte(v), 0) })
		}
	}
}
