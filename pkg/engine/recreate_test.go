package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/plan"
)

// TestRecreateKeepsDeviceSysctls: a tunnel deleted and created again in
// one plan (its mode changed, or the first of a swap of remotes) comes up
// with conf/default's proxy_arp, and the same plan writes the configured
// value to it after its creation: the plan applied once leaves nothing to
// do (it took a second round before, and `tunneld plan` pasted into a
// shell left proxy_arp off). The record keeps the original found before
// tunneld first wrote it, not the new device's default, and down puts it
// back without saying someone else changed it.
func TestRecreateKeepsDeviceSysctls(t *testing.T) {
	tunnel := func(name, mode, remote string) string {
		return "[tunnel." + name + "]\nmode = \"" + mode + "\"\nlocal = \"203.0.113.10\"\nremote = \"" + remote + "\"\n"
	}
	global := "[global]\nfirewall = false\nproxy_arp = [\"t1\", \"t2\"]\n"
	for _, tt := range []struct {
		name          string
		before, after string
		// dflt is conf/default's proxy_arp while the tunnel is made
		// again ("": the kernel's 0).
		dflt string
	}{
		{"mode change", global + tunnel("t1", "ipip", "198.51.100.1") + tunnel("t2", "gre", "198.51.100.2"),
			global + tunnel("t1", "gre", "198.51.100.1") + tunnel("t2", "gre", "198.51.100.2"), ""},
		{"swap of remotes", global + tunnel("t1", "ipip", "198.51.100.1") + tunnel("t2", "ipip", "198.51.100.2"),
			global + tunnel("t1", "ipip", "198.51.100.2") + tunnel("t2", "ipip", "198.51.100.1"), ""},
		{"mode change, conf/default at 1", global + tunnel("t1", "ipip", "198.51.100.1") + tunnel("t2", "gre", "198.51.100.2"),
			global + tunnel("t1", "gre", "198.51.100.1") + tunnel("t2", "gre", "198.51.100.2"), "1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before, err := config.Parse("before.toml", []byte(tt.before))
			if err != nil {
				t.Fatal(err)
			}
			after, err := config.Parse("after.toml", []byte(tt.after))
			if err != nil {
				t.Fatal(err)
			}
			k := world()
			if _, err := Converge(ctx, k, before, nil); err != nil {
				t.Fatal(err)
			}
			paths := []string{"net/ipv4/conf/t1/proxy_arp", "net/ipv4/conf/t2/proxy_arp"}
			record := kernel.SysctlRecord{}
			for _, p := range paths {
				record[p] = kernel.SysctlEntry{Original: "0", Ours: []string{"1"}}
			}
			if diff := cmp.Diff(record, k.Originals); diff != "" {
				t.Fatalf("record after the first converge (-want +got):\n%s", diff)
			}
			if tt.dflt != "" {
				k.Sysctls["net/ipv4/conf/default/proxy_arp"] = tt.dflt
			}

			// The plan applied once, as `tunneld plan` pasted into a
			// shell would be.
			s, err := Look(ctx, k, after, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(s.Plan.String(), "ip link del t1\n") {
				t.Fatalf("the plan does not create t1 again:\n%s", s.Plan)
			}
			if err := k.Apply(ctx, s.Plan); err != nil {
				t.Fatal(err)
			}
			for _, p := range paths {
				if v := k.Sysctls[p]; v != "1" {
					t.Errorf("%s = %q after the plan, want 1", p, v)
				}
			}
			again, err := Look(ctx, k, after, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !again.Plan.Empty() {
				t.Errorf("a second plan has something to do:\n%s", again.Plan)
			}
			if diff := cmp.Diff(record, k.Originals); diff != "" {
				t.Errorf("record after the re-creation (-want +got):\n%s", diff)
			}

			rep, err := Down(ctx, k, after)
			if err != nil {
				t.Fatal(err)
			}
			down := plan.Plan{Ops: rep.Applied}.String()
			for _, p := range []string{"t1", "t2"} {
				if want := "sysctl -w net.ipv4.conf." + p + ".proxy_arp=0  # original value\n"; !strings.Contains(down, want) {
					t.Errorf("down does not put back %s's original:\n%s", p, down)
				}
			}
			if strings.Contains(down, "someone else") {
				t.Errorf("down says someone else changed a sysctl:\n%s", down)
			}
			if len(k.Originals) != 0 {
				t.Errorf("record left after down: %v", k.Originals)
			}
		})
	}
}

// TestCreateSetsDeviceSysctls: a tunnel named in proxy_arp that the plan
// creates gets the sysctl in that same plan, after its creation: the plan
// applied once (as `tunneld plan` pasted into a shell) leaves nothing to
// do, where the write waited for a second round before. A tunnel whose
// creation the kernel refuses has the write skipped with it, its
// creation the one error.
func TestCreateSetsDeviceSysctls(t *testing.T) {
	c, err := config.Parse("t.toml", []byte("[global]\nfirewall = false\nproxy_arp = [\"t1\"]\n[tunnel.t1]\nmode = \"ipip\"\nlocal = \"203.0.113.10\"\nremote = \"198.51.100.1\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	const arp = "net/ipv4/conf/t1/proxy_arp"
	t.Run("created", func(t *testing.T) {
		k := world()
		s, err := Look(ctx, k, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Apply(ctx, s.Plan); err != nil {
			t.Fatal(err)
		}
		if v := k.Sysctls[arp]; v != "1" {
			t.Errorf("%s = %q after the plan, want 1:\n%s", arp, v, s.Plan)
		}
		again, err := Look(ctx, k, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Plan.Empty() {
			t.Errorf("a second plan has something to do:\n%s", again.Plan)
		}
	})
	t.Run("creation refused", func(t *testing.T) {
		k := world()
		k.SetFail(func(op plan.Op) error {
			if op.Kind == plan.LinkAdd {
				return &kernel.NoDriverError{Mode: op.Link.Mode}
			}
			return nil
		})
		s, err := Look(ctx, k, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = k.Apply(ctx, s.Plan)
		var ae *kernel.ApplyError
		if !errors.As(err, &ae) {
			t.Fatalf("apply: %v, want the refused creation", err)
		}
		var failed []string
		for _, f := range ae.Failed {
			failed = append(failed, f.Op.Object())
		}
		if diff := cmp.Diff([]string{`tunnel "t1"`}, failed); diff != "" {
			t.Errorf("failed operations (-want +got):\n%s", diff)
		}
	})
}
