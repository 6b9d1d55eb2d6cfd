package cli

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// downConfig has a tunnel, a route, a rule in a band of its own and a
// forwarding sysctl: every kind of thing down removes or puts back.
const downConfig = `[global]
ip_forward = true
rule_priority_min = 3000
rule_priority_max = 3999

[tunnel.moe]
mode = "ipip"
local = "192.0.2.2"
remote = "192.0.2.42"
address = "10.9.0.1/30"

[[route]]
to = "10.10.0.0/24"
dev = "moe"
table = 42

[[rule]]
from = "10.9.0.0/30"
table = 42
`

// TestDownWithoutConfiguration: down with the file missing or invalid
// says so, goes on by tunneld's marks alone (the recorded rule band
// included) and leaves nothing of tunneld's, nor anyone else's rule, and
// exits 0.
func TestDownWithoutConfiguration(t *testing.T) {
	for _, tc := range []struct {
		name, content string // content "": the file is removed
		firstErr      string
	}{
		{"missing", "", "no such file or directory"},
		{"invalid", "[global]\nip_forward = 3\n", ":2:14: global.ip_forward: must be true or false, not the integer 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file, _, k := configured(t, downConfig)
			k.AddDevice(model.Device{Name: "eth0", Up: true, Running: true})
			k.SetAddrs("eth0", netip.MustParsePrefix("192.0.2.2/24"))
			foreign := model.Rule{Family: 2, Priority: 3500, Src: netip.MustParsePrefix("10.99.0.0/16"), Table: 7}
			k.AddForeignRule(foreign, 4)
			state := t.TempDir()
			run := func(args ...string) (int, string, string) {
				var out, errb bytes.Buffer
				env := &Env{Stdout: &out, Stderr: &errb, StateDir: state, Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
				code := Main(env, append(args, "-c", file))
				return code, out.String(), errb.String()
			}
			if code, out, errs := run("apply"); code != 0 {
				t.Fatalf("apply: exit %d\n%s%s", code, out, errs)
			}
			if tc.content == "" {
				os.Remove(file)
			} else if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errs := run("down")
			if code != 0 || !strings.Contains(errs, tc.firstErr) || !strings.Contains(errs, "down goes on without the configuration") {
				t.Errorf("down: exit %d, stderr:\n%s", code, errs)
			}
			for _, want := range []string{"ip link del moe", "ip rule del from 10.9.0.0/30 lookup 42 priority 3000", "sysctl -w net.ipv4.ip_forward=0"} {
				if !strings.Contains(out, want) {
					t.Errorf("down printed no %q:\n%s", want, out)
				}
			}
			left := ownedLeft(k)
			if left != "" {
				t.Errorf("left after down:\n%s", left)
			}
			if len(k.Rules) != 1 || k.Rules[0].Rule != foreign {
				t.Errorf("rules after down = %+v, want only the foreign one", k.Rules)
			}
		})
	}
}

// ownedLeft lists what of tunneld's the in-memory kernel still has.
func ownedLeft(k *fakekernel.Kernel) string {
	var b strings.Builder
	for name := range k.Tunnels {
		b.WriteString("tunnel " + name + "\n")
	}
	for _, r := range k.Routes {
		if r.Proto == model.RouteProtocol {
			b.WriteString("route " + r.Dst.String() + "\n")
		}
	}
	for _, r := range k.Rules {
		if r.Proto == model.RuleProtocol {
			b.WriteString("rule " + r.Src.String() + "\n")
		}
	}
	if k.Sysctls[model.IPForward] != "0" {
		b.WriteString("ip_forward " + k.Sysctls[model.IPForward] + "\n")
	}
	return b.String()
}

// TestDownRecordLags: a down whose only failures are a state record's
// update (kernel.RecordError: a full state directory), the kernel's
// teardown done, says them as warnings and exits 0; a failure in the
// kernel is an error, exit 1. A tester's full directory had the sysctls
// put back and an error that said the teardown was incomplete.
func TestDownRecordLags(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code int
		want string // on stderr
	}{
		{"record", &kernel.RecordError{Err: errors.New("put back in the kernel, but the state record could not be updated")}, 0,
			"tunneld: warning: sysctl net.ipv4.ip_forward: put back in the kernel, but the state record could not be updated\n"},
		{"kernel", errors.New("permission denied"), 1, "tunneld: sysctl net.ipv4.ip_forward: permission denied\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, run := appliedDown(t)
			k.SetFail(func(op plan.Op) error {
				if op.Kind == plan.SysctlRestore {
					return tc.err
				}
				return nil
			})
			code, errs := run("down")
			if diff := cmp.Diff(tc.want, errs); code != tc.code || diff != "" {
				t.Errorf("down: exit %d, want %d; stderr (-want +got):\n%s", code, tc.code, diff)
			}
		})
	}
}

// TestDownSaysSysctlsLeft: down names the sysctls the configuration sets
// that it leaves as they are, tunneld having no record of their values
// before it (here the record lost, as with a state directory wiped after
// a stop with keep_on_exit: a tester's).
func TestDownSaysSysctlsLeft(t *testing.T) {
	k, run := appliedDown(t)
	k.Originals = kernel.SysctlRecord{}
	code, errs := run("down")
	want := "tunneld: warning: sysctls left as they are, tunneld having no record of their values before it (found so at its start, or the record lost): net.ipv4.ip_forward = 1; check them (sysctl NAME) and set by hand those tunneld had set\n"
	if diff := cmp.Diff(want, errs); code != 0 || diff != "" {
		t.Errorf("down: exit %d; stderr (-want +got):\n%s", code, diff)
	}
}

// appliedDown applies downConfig to an in-memory kernel with eth0 on
// 192.0.2.2/24, and returns the kernel and how to run a command on it
// with that file and state directory (its exit code and stderr).
func appliedDown(t *testing.T) (*fakekernel.Kernel, func(args ...string) (int, string)) {
	t.Helper()
	file, _, k := configured(t, downConfig)
	k.AddDevice(model.Device{Name: "eth0", Up: true, Running: true})
	k.SetAddrs("eth0", netip.MustParsePrefix("192.0.2.2/24"))
	state := t.TempDir()
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		env := &Env{Stdout: &out, Stderr: &errb, StateDir: state, Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
		return Main(env, append(args, "-c", file)), errb.String()
	}
	if code, errs := run("apply"); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, errs)
	}
	return k, run
}
