package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/kernel"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestPlanFromEmptyGolden runs `tunneld plan --from-empty` on every seed
// and example configuration and compares the output with testdata/plans.
func TestPlanFromEmptyGolden(t *testing.T) {
	files, err := filepath.Glob("../../testdata/seeds/*/*.toml")
	variants, _ := filepath.Glob("../../testdata/seeds/*/*/*.toml") // a section's variant, in a subdirectory
	files = append(files, variants...)
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed configs: %v", err)
	}
	examples, _ := filepath.Glob("../../testdata/examples/*.toml")
	files = append(files, examples...)
	files = append(files, "../../testdata/reference.toml")
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(f, "../../testdata/"), ".toml")
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(&Env{Stdout: &out, Stderr: &errb, Lookup: noDNS}, []string{"plan", "--from-empty", "-c", f})
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			golden := filepath.Join("testdata", "plans", name+".plan")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./pkg/cli -update)", err)
			}
			if diff := cmp.Diff(string(want), out.String()); diff != "" {
				t.Errorf("plan differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

// noDNS answers no name: the tests look nothing up on the network (a name
// in a configuration is then not resolved, as without a DNS server).
func noDNS(_ context.Context, name string) ([]netip.Addr, error) {
	return nil, fmt.Errorf("lookup %s: no DNS in the tests", name)
}

// TestCheckHook: check warns, and still says ok, when a tunnel's hook is
// not a program it could run here.
func TestCheckHook(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []struct {
		name, body string
		mode       os.FileMode
	}{
		{"hook.sh", "#!/bin/sh\n", 0o755},
		{"plain.sh", "#!/bin/sh\n", 0o644},
		{"noshebang.sh", "echo hi\n", 0o755},
		{"bash.sh", "#!/nonexistent/bash\necho hi\n", 0o755},
	} {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.body), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	const runIt = " (the daemon could not run it)"
	for _, tt := range []struct {
		name, hook, warning string
	}{
		{"executable", filepath.Join(dir, "hook.sh"), ""},
		{"missing", filepath.Join(dir, "none.sh"), "no such file or directory" + runIt},
		{"not executable", filepath.Join(dir, "plain.sh"), "not executable" + runIt},
		{"a directory", dir, "is a directory" + runIt},
		// The kernel refuses these, where a shell would run the first.
		{"no #! line", filepath.Join(dir, "noshebang.sh"),
			"no #! line, so the daemon could not run it (start it with #!/bin/sh: the kernel runs a script only by its #! line)"},
		{"interpreter missing", filepath.Join(dir, "bash.sh"),
			"its interpreter /nonexistent/bash does not exist, so the daemon could not run it (OpenWrt has /bin/sh; change the #! line)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file, _, _ := configured(t, "[tunnel.he]\nmode = \"sit\"\nlocal = \"wan\"\nremote = \"203.0.113.1\"\nhook = \""+tt.hook+"\"\n")
			var out, errb bytes.Buffer
			if code := Main(&Env{Stdout: &out, Stderr: &errb}, []string{"check", "-c", file}); code != 0 {
				t.Errorf("exit code = %d, want 0", code)
			}
			if diff := cmp.Diff(file+": ok (1 tunnel, 0 routes, 0 rules)\n", out.String()); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			want := ""
			if tt.warning != "" {
				want = `tunneld: warning: tunnel "he": hook ` + tt.hook + ": " + tt.warning + "\n"
			}
			if diff := cmp.Diff(want, errb.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[tunnel.moe]\nmode = \"ipip\"\nlocal = \"any\"\nremote = \"192.0.2.1\"\nttl = 300\nmtu = 9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The tester's band2.toml: three rules without a priority in a band
	// of two. Refused by check, and by apply before it opens the kernel
	// (before, it exited 0 with the third rule missing).
	band := filepath.Join(dir, "band2.toml")
	if err := os.WriteFile(band, []byte("[global]\nrule_priority_min = 32000\nrule_priority_max = 32001\n[[rule]]\nfrom = \"10.0.0.1\"\ntable = \"main\"\n[[rule]]\nfrom = \"10.0.0.2\"\ntable = \"main\"\n[[rule]]\nfrom = \"10.0.0.3\"\ntable = \"main\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// firewall = false beside a [[forward]]: valid, with a warning.
	fwOff := filepath.Join(dir, "fw-off.toml")
	if err := os.WriteFile(fwOff, []byte("[global]\nfirewall = false\n[tunnel.moe]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\nforward = \"drop\"\n[[forward]]\ntunnel = \"moe\"\ndirection = \"in\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// An emptied file (a full disk, `: > FILE`): what the daemon
	// refuses as a reload, check refuses, so the init script's and the
	// unit's reload (check, then SIGHUP) fail as the daemon does; a
	// file with [global] alone is how to remove everything (a tester's).
	empty := filepath.Join(dir, "empty.toml")
	global := filepath.Join(dir, "global.toml")
	if err := os.WriteFile(empty, []byte(" \n# [global]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(global, []byte("[global]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bandErr := band + ":10:1: rule[2]: no free priority left for it in tunneld's rule band 32000–32001 (global.rule_priority_min/max): widen the band\n"
	tests := []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"check", "-c", band}, 1, "", bandErr},
		{[]string{"apply", "-c", band}, 1, "", bandErr},
		{[]string{"check", "-c", fwOff}, 0, fwOff + ": ok (1 tunnel, 0 routes, 0 rules)\n",
			"tunneld: warning: " + fwOff + `:2:12: global.firewall: is false, so these are ignored (only tunneld's nftables table does them): [[forward]] (1 section), tunnel "moe" forward = "drop"` + "\n"},
		// A default route through Moe and nothing of the router's own
		// to refuse: valid, with a warning (desired.SourceWarnings).
		{[]string{"check", "-c", "../../testdata/seeds/002_ff25396f952da8ec/colo.toml"}, 0,
			"../../testdata/seeds/002_ff25396f952da8ec/colo.toml: ok (1 tunnel, 1 route, 1 rule)\n", "tunneld: warning: " + coloSources + "\n"},
		{[]string{"check", "-c", "../../testdata/seeds/000_c4416a8950d425f4/host1.toml"}, 0,
			"../../testdata/seeds/000_c4416a8950d425f4/host1.toml: ok (1 tunnel, 0 routes, 0 rules)\n", ""},
		{[]string{"check", "-c", bad}, 1, "",
			bad + ":5:7: tunnel.moe.ttl: 300 is out of range 1–255\n" + bad + ":6:7: tunnel.moe.mtu: 9 is out of range 68–65535\n"},
		{[]string{"check", "-c", filepath.Join(dir, "missing.toml")}, 1, "",
			"tunneld: open " + filepath.Join(dir, "missing.toml") + ": no such file or directory\n"},
		{[]string{"check", "-c", empty}, 1, "", empty + ":1:1: " + config.EmptyMessage + "\n"},
		{[]string{"apply", "-c", empty}, 1, "", empty + ":1:1: " + config.EmptyMessage + "\n"},
		{[]string{"plan", "-c", empty}, 1, "", empty + ":1:1: " + config.EmptyMessage + "\n"},
		{[]string{"check", "-c", global}, 0, global + ": ok (0 tunnels, 0 routes, 0 rules)\n", ""},
		{[]string{"frobnicate"}, 2, "", "tunneld: unknown command \"frobnicate\"\n"},
		{[]string{"check", "../../testdata/seeds/000_c4416a8950d425f4/host1.toml"}, 2, "",
			"tunneld check: unexpected argument \"../../testdata/seeds/000_c4416a8950d425f4/host1.toml\" (the configuration file is given with -c FILE)\n"},
		{[]string{"check", "x", "-c", "../../testdata/seeds/000_c4416a8950d425f4/host1.toml"}, 2, "",
			"tunneld check: unexpected argument \"x\" (the configuration file is given with -c FILE)\n"},
		{[]string{"plan", "--from-empty", "-c", "../../testdata/seeds/000_c4416a8950d425f4/router.toml", "now"}, 2, "",
			"tunneld plan: unexpected argument \"now\" (the configuration file is given with -c FILE)\n"},
		{[]string{"version", "--short"}, 2, "", "flag provided but not defined: -short\n"},
		{[]string{"version", "x"}, 2, "", "tunneld version: unexpected argument \"x\"\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(&Env{Stdout: &out, Stderr: &errb}, tt.args)
			if code != tt.code {
				t.Errorf("exit code = %d, want %d", code, tt.code)
			}
			if diff := cmp.Diff(tt.stdout, out.String()); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if got := errb.String(); !strings.HasPrefix(got, tt.stderr) {
				t.Errorf("stderr = %q, want prefix %q", got, tt.stderr)
			}
		})
	}
}

// TestKernelPermission: without CAP_NET_ADMIN (not root, or root in a
// container without it) the error says what is missing, and only plan
// offers --from-empty, the one command that has it.
func TestKernelPermission(t *testing.T) {
	const file = "../../testdata/seeds/000_c4416a8950d425f4/host1.toml"
	denied := func(bool) (kernel.Kernel, error) {
		return nil, fmt.Errorf("nftables: netlink receive: %w", syscall.EPERM)
	}
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"plan", "-c", file}, "tunneld: nftables: netlink receive: operation not permitted\n" +
			"tunneld: (reading the kernel needs root or CAP_NET_ADMIN; try --from-empty)\n"},
		{[]string{"apply", "-c", file}, "tunneld: nftables: netlink receive: operation not permitted\n" +
			"tunneld: (reading the kernel needs root or CAP_NET_ADMIN)\n"},
		{[]string{"down", "-c", file}, "tunneld: nftables: netlink receive: operation not permitted\n" +
			"tunneld: (reading the kernel needs root or CAP_NET_ADMIN)\n"},
		{[]string{"status", "-c", file}, "tunneld: nftables: netlink receive: operation not permitted\n" +
			"tunneld: (reading the kernel needs root or CAP_NET_ADMIN)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.args[0], func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(&Env{Stdout: &out, Stderr: &errb, Kernel: denied}, tt.args)
			if code != 1 {
				t.Errorf("exit code = %d, want 1", code)
			}
			if diff := cmp.Diff(tt.stderr, errb.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHelp: help that is asked for goes to stdout with exit 0; a bare
// `tunneld` prints the usage to stderr with exit 2.
func TestHelp(t *testing.T) {
	tests := []struct {
		args         []string
		code         int
		stdoutPrefix string
		stderr       string
	}{
		{[]string{"--help"}, 0, "usage: tunneld COMMAND [flags]\n", ""},
		{[]string{"help"}, 0, "usage: tunneld COMMAND [flags]\n", ""},
		{[]string{"check", "-h"}, 0, "Usage of tunneld check:\n  -c file\n", ""},
		{[]string{"plan", "-c", "x.toml", "--help"}, 0, "Usage of tunneld plan:\n", ""},
		{[]string{"status", "-help"}, 0, "Usage of tunneld status:\n", ""},
		{nil, 2, "", "usage: tunneld COMMAND [flags]\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(&Env{Stdout: &out, Stderr: &errb}, tt.args)
			if code != tt.code {
				t.Errorf("exit code = %d, want %d", code, tt.code)
			}
			if !strings.HasPrefix(out.String(), tt.stdoutPrefix) {
				t.Errorf("stdout = %q, want prefix %q", out.String(), tt.stdoutPrefix)
			}
			if got := errb.String(); !strings.HasPrefix(got, tt.stderr) || (tt.stderr == "" && got != "") {
				t.Errorf("stderr = %q, want %q", got, tt.stderr)
			}
		})
	}
}

// TestPlanUnrecordedSysctls: a plan that writes sysctls the kernel seam
// has no record of ends by saying that, pasted, they are not recorded
// and down leaves them, with their values before: a tester's pasted plan
// left the box forwarding after down. A sysctl apply has recorded (set
// back by someone since) is put back by down, and not listed.
func TestPlanUnrecordedSysctls(t *testing.T) {
	file, _, k := configured(t, "[global]\nfirewall = false\nip_forward = true\n")
	planText := func() string {
		t.Helper()
		var out, errb bytes.Buffer
		env := &Env{Stdout: &out, Stderr: &errb, StateDir: t.TempDir(), Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
		if code := Main(env, []string{"plan", "-c", file}); code != 0 {
			t.Fatalf("plan: exit %d\n%s", code, errb.String())
		}
		return out.String()
	}
	const pasted = "# pasted, the sysctl writes above are not recorded, and `tunneld down` does not put them back (it puts back what apply and the daemon write): before them, net.ipv4.ip_forward=0\n"
	if got := planText(); !strings.HasSuffix(got, "sysctl -w net.ipv4.ip_forward=1\n"+pasted) {
		t.Errorf("plan before apply:\n%s", got)
	}
	applied(t, file, k)
	k.Sysctls["net/ipv4/ip_forward"] = "0"
	if got := planText(); got != "sysctl -w net.ipv4.ip_forward=1\n" {
		t.Errorf("plan of a recorded sysctl:\n%s", got)
	}
}
