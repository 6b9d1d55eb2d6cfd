package linux

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/plan"
)

// TestPrivilegedRecreateKeepsProxyARP: a tunnel that one plan deletes
// and creates again (ipip to gre under the same name, or the first of two
// tunnels that swap remotes) comes up with the kernel's proxy_arp of
// conf/default, and the same plan writes the configured 1 after it: one
// apply leaves every tunnel's proxy_arp on and nothing to do, the record
// under the state directory keeps the original found before tunneld
// first wrote it, and down puts that back without saying someone else
// changed it (a tester saw proxy_arp off after such an apply in the VM).
// It needs the ipip and gre drivers: it skips on a host without them.
func TestPrivilegedRecreateKeepsProxyARP(t *testing.T) {
	tunnel := func(name, mode, remote string) string {
		return "[tunnel." + name + "]\nmode = \"" + mode + "\"\nlocal = \"192.0.2.10\"\nremote = \"" + remote + "\"\n"
	}
	global := "[global]\nfirewall = false\nproxy_arp = [\"t1\", \"t2\"]\n"
	for _, tt := range []struct {
		name          string
		before, after string
	}{
		{"mode change", global + tunnel("t1", "ipip", "203.0.113.1") + tunnel("t2", "gre", "203.0.113.2"),
			global + tunnel("t1", "gre", "203.0.113.1") + tunnel("t2", "gre", "203.0.113.2")},
		{"swap of remotes", global + tunnel("t1", "ipip", "203.0.113.1") + tunnel("t2", "ipip", "203.0.113.2"),
			global + tunnel("t1", "ipip", "203.0.113.2") + tunnel("t2", "ipip", "203.0.113.1")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := open(t)
			foreign(t)
			paths := []string{"net/ipv4/conf/t1/proxy_arp", "net/ipv4/conf/t2/proxy_arp"}
			converge(t, k, parse(t, tt.before))
			on := map[string]string{paths[0]: "1", paths[1]: "1"}
			if diff := cmp.Diff(on, readSysctls(t, paths)); diff != "" {
				t.Fatalf("proxy_arp after the first converge (-want +got):\n%s", diff)
			}
			record := kernel.SysctlRecord{}
			for _, p := range paths {
				record[p] = kernel.SysctlEntry{Original: "0", Ours: []string{"1"}}
			}
			originals := func(when string) {
				t.Helper()
				got, err := k.originals()
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(record, got, cmpopts.IgnoreFields(kernel.SysctlEntry{}, "Index", "Boot")); diff != "" {
					t.Errorf("record %s (-want +got):\n%s", when, diff)
				}
				// Each names its device's index now (a device
				// created again has a new one).
				for _, p := range paths {
					dev := model.SysctlDevice(p)
					ifi, err := net.InterfaceByName(dev)
					if err != nil {
						t.Fatal(err)
					}
					if got[p].Index != ifi.Index || got[p].Boot == "" {
						t.Errorf("record %s: %s names index %d (boot %q), %s has %d", when, p, got[p].Index, got[p].Boot, dev, ifi.Index)
					}
				}
			}
			originals("after the first converge")

			after := parse(t, tt.after)
			s, err := engine.Look(ctx, k, after, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(s.Plan.String(), "ip link del t1\n") {
				t.Fatalf("the plan does not create t1 again:\n%s", s.Plan)
			}
			// Applied once, as `tunneld plan` pasted into a shell is.
			if err := k.Apply(ctx, s.Plan); err != nil {
				var nd *kernel.NoDriverError
				if errors.As(err, &nd) {
					netnstest.NoDriver(t, strings.Split(err.Error(), "\n")[0])
				}
				t.Fatal(err)
			}
			if diff := cmp.Diff(on, readSysctls(t, paths)); diff != "" {
				t.Errorf("proxy_arp after the plan (-want +got):\n%s", diff)
			}
			again, err := engine.Look(ctx, k, after, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !again.Plan.Empty() {
				t.Errorf("a second plan has something to do:\n%s", again.Plan)
			}
			originals("after the re-creation")

			rep, err := engine.Down(ctx, k, after)
			if err != nil {
				t.Fatal(err)
			}
			down := plan.Plan{Ops: rep.Applied}.String()
			for _, dev := range []string{"t1", "t2"} {
				if want := "sysctl -w net.ipv4.conf." + dev + ".proxy_arp=0  # original value\n"; !strings.Contains(down, want) {
					t.Errorf("down does not put back %s's original:\n%s", dev, down)
				}
			}
			if strings.Contains(down, "someone else") {
				t.Errorf("down says someone else changed a sysctl:\n%s", down)
			}
		})
	}
}

// TestPrivilegedCreateSetsProxyARP: a tunnel named in proxy_arp that the
// plan creates gets the sysctl in that plan, after its creation: applied
// once, proxy_arp is on and nothing is left to do. Where the kernel has
// no ipip driver (this host), the creation's failure is the one error:
// the sysctl of the device that never came is skipped, not a second
// failure ("no such file"). In the VM, with the driver, the first half
// runs; TUNNELD_REQUIRE_DRIVERS makes the missing driver a failure there.
func TestPrivilegedCreateSetsProxyARP(t *testing.T) {
	k := open(t)
	c := parse(t, "[global]\nfirewall = false\nproxy_arp = [\"t1\"]\n[tunnel.t1]\nmode = \"ipip\"\nlocal = \"192.0.2.10\"\nremote = \"203.0.113.1\"\n")
	s, err := engine.Look(ctx, k, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	text := s.Plan.String()
	add, set := strings.Index(text, "ip link add t1 "), strings.Index(text, "sysctl -w net.ipv4.conf.t1.proxy_arp=1")
	if add < 0 || set < add {
		t.Fatalf("the plan does not set t1's proxy_arp after creating it:\n%s", text)
	}
	err = k.Apply(ctx, s.Plan)
	var nd *kernel.NoDriverError
	if errors.As(err, &nd) {
		var ae *kernel.ApplyError
		if !errors.As(err, &ae) {
			t.Fatalf("apply: %v", err)
		}
		var failed, skipped []string
		for _, f := range ae.Failed {
			failed = append(failed, f.Op.Object())
		}
		for _, op := range ae.Skipped {
			if op.Kind == plan.SysctlSet {
				skipped = append(skipped, op.Object())
			}
		}
		if diff := cmp.Diff([]string{`tunnel "t1"`}, failed); diff != "" {
			t.Errorf("failed operations (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"sysctl net.ipv4.conf.t1.proxy_arp"}, skipped); diff != "" {
			t.Errorf("skipped sysctls (-want +got):\n%s", diff)
		}
		netnstest.NoDriver(t, strings.Split(err.Error(), "\n")[0])
	}
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"net/ipv4/conf/t1/proxy_arp": "1"}, readSysctls(t, []string{"net/ipv4/conf/t1/proxy_arp"})); diff != "" {
		t.Errorf("proxy_arp after the plan (-want +got):\n%s", diff)
	}
	again, err := engine.Look(ctx, k, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Plan.Empty() {
		t.Errorf("a second plan has something to do:\n%s", again.Plan)
	}
}
