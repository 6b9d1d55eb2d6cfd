package engine

import (
	"context"
	"maps"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// inRestore is the in-memory kernel stopped inside the restore of a
// forwarding sysctl: it does the operations before it, records what the
// restore records first and, if written, writes the value back, and stops
// there, as a process killed between the steps of that one operation.
type inRestore struct {
	*fakekernel.Kernel
	written bool
}

func (k *inRestore) Apply(ctx context.Context, p plan.Plan) error {
	for i, op := range p.Ops {
		if op.Kind == plan.SysctlRestore && model.IsForwarding(op.Sysctl.Path) {
			crashAfter(k.Kernel, i, false) // the seam has the whole plan
			_ = k.Kernel.Apply(ctx, p)
			k.Fail = nil
			k.Originals.Restoring(op, p.Ops[i+1:])
			if k.written {
				k.SetSysctl(op.Sysctl.Path, op.Sysctl.Original)
			}
			return errCrashed
		}
	}
	return k.Kernel.Apply(ctx, p)
}

// TestDownKeepsWhatOthersChanged: down restores ip_forward, proxy_arp and
// the interfaces' forwarding, but a value someone else changed after
// tunneld wrote it (or after the kernel copied tunneld's write onto it)
// stays as they set it, and the plan says so in a line of its own;
// interfaces whose value the restore's copy leaves right get no line. A
// down stopped after any operation, or inside the restore of ip_forward,
// ends the same when run again.
func TestDownKeepsWhatOthersChanged(t *testing.T) {
	c, err := config.Parse("f.toml", []byte("[global]\nfirewall = false\nip_forward = true\nipv6_forward = true\nproxy_arp = [\"eth0\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	const (
		fwd   = "net/ipv4/ip_forward"
		eth0  = "net/ipv4/conf/eth0/forwarding"
		eth1  = "net/ipv4/conf/eth1/forwarding"
		eth3  = "net/ipv4/conf/eth3/forwarding"
		arp   = "net/ipv4/conf/eth0/proxy_arp"
		eth16 = "net/ipv6/conf/eth1/forwarding"
	)
	tests := []struct {
		name string
		// by hand after the apply, in order (with the kernel's copies)
		admin [][2]string
		// the values down leaves that differ from the box before apply
		changed map[string]string
		// the plan's sysctl lines
		plan []string
	}{
		{"nothing changed by hand", nil, nil, []string{
			"sysctl -w net.ipv4.conf.eth0.proxy_arp=0  # original value",
			"sysctl -w net.ipv4.ip_forward=0  # original value",
			"sysctl -w net.ipv6.conf.all.forwarding=0  # original value",
			"sysctl -w net.ipv4.conf.eth1.forwarding=1  # as before net.ipv4.ip_forward was written",
			"sysctl -w net.ipv6.conf.eth1.forwarding=1  # as before net.ipv6.conf.all.forwarding was written",
		}},
		{"an interface's forwarding", [][2]string{{eth1, "0"}, {eth16, "0"}}, map[string]string{eth1: "0", eth16: "0"}, []string{
			"sysctl -w net.ipv4.conf.eth0.proxy_arp=0  # original value",
			"sysctl -w net.ipv4.ip_forward=0  # original value",
			"sysctl -w net.ipv6.conf.all.forwarding=0  # original value",
			"# net.ipv4.conf.eth1.forwarding was changed by someone else: left at 0",
			"# net.ipv6.conf.eth1.forwarding was changed by someone else: left at 0",
		}},
		{"an interface's forwarding, to the value it had", [][2]string{{eth3, "0"}}, nil, []string{
			"sysctl -w net.ipv4.conf.eth0.proxy_arp=0  # original value",
			"sysctl -w net.ipv4.ip_forward=0  # original value",
			"sysctl -w net.ipv6.conf.all.forwarding=0  # original value",
			"sysctl -w net.ipv4.conf.eth1.forwarding=1  # as before net.ipv4.ip_forward was written",
			"sysctl -w net.ipv6.conf.eth1.forwarding=1  # as before net.ipv6.conf.all.forwarding was written",
		}},
		// The kernel copied the admin's 0 onto every interface: eth1,
		// at 1 before tunneld, stays at 0 as well.
		{"ip_forward, and proxy_arp", [][2]string{{fwd, "0"}, {arp, "0"}}, map[string]string{eth1: "0"}, []string{
			"# net.ipv4.conf.eth0.proxy_arp was changed by someone else: left at 0",
			"# net.ipv4.ip_forward was changed by someone else: left at 0",
			"sysctl -w net.ipv6.conf.all.forwarding=0  # original value",
			"sysctl -w net.ipv6.conf.eth1.forwarding=1  # as before net.ipv6.conf.all.forwarding was written",
		}},
		// eth0 set to 1, the value tunneld's write gave it, is put back.
		{"ip_forward, then an interface", [][2]string{{fwd, "0"}, {eth0, "1"}}, map[string]string{eth1: "0"}, []string{
			"sysctl -w net.ipv4.conf.eth0.proxy_arp=0  # original value",
			"# net.ipv4.ip_forward was changed by someone else: left at 0",
			"sysctl -w net.ipv6.conf.all.forwarding=0  # original value",
			"sysctl -w net.ipv4.conf.eth0.forwarding=0  # as before net.ipv4.ip_forward was written",
			"sysctl -w net.ipv6.conf.eth1.forwarding=1  # as before net.ipv6.conf.all.forwarding was written",
		}},
		// Back at the values tunneld left: nothing tells the change.
		{"ip_forward off and on again", [][2]string{{fwd, "0"}, {fwd, "1"}}, nil, []string{
			"sysctl -w net.ipv4.conf.eth0.proxy_arp=0  # original value",
			"sysctl -w net.ipv4.ip_forward=0  # original value",
			"sysctl -w net.ipv6.conf.all.forwarding=0  # original value",
			"sysctl -w net.ipv4.conf.eth1.forwarding=1  # as before net.ipv4.ip_forward was written",
			"sysctl -w net.ipv6.conf.eth1.forwarding=1  # as before net.ipv6.conf.all.forwarding was written",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			box := func() *fakekernel.Kernel {
				k := world()
				k.Sysctls[eth16] = "1"
				if _, err := Converge(ctx, k, c, nil); err != nil {
					t.Fatal(err)
				}
				for _, w := range tt.admin {
					k.SetSysctl(w[0], w[1])
				}
				return k
			}
			want := maps.Clone(world().Sysctls)
			want[eth16] = "1"
			maps.Copy(want, tt.changed)

			k := box()
			rep, err := Down(ctx, k, c)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, op := range rep.Applied {
				if op.Sysctl != nil {
					lines = append(lines, op.Command(nil))
				}
			}
			if diff := cmp.Diff(tt.plan, lines); diff != "" {
				t.Errorf("down's sysctl lines (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, k.Sysctls); diff != "" {
				t.Errorf("after down (-want +got):\n%s", diff)
			}
			if len(k.Originals) != 0 {
				t.Errorf("record left: %v", k.Originals)
			}

			for n := 0; n < len(rep.Applied); n++ {
				k := box()
				crashAfter(k, n, false)
				if _, err := Down(ctx, k, c); err == nil {
					t.Fatalf("crash after %d: down finished", n)
				}
				k.Fail = nil
				if _, err := Down(ctx, k, c); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, k.Sysctls); diff != "" {
					t.Errorf("crash after %d operations, down again (-want +got):\n%s", n, diff)
				}
			}
			for _, written := range []bool{false, true} {
				k := box()
				if _, err := Down(ctx, &inRestore{k, written}, c); err == nil && !written {
					continue // nothing to restore
				}
				if _, err := Down(ctx, k, c); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, k.Sysctls); diff != "" {
					t.Errorf("%s, down again (-want +got):\n%s", map[bool]string{false: "stopped before the write", true: "stopped after the write"}[written], diff)
				}
				if len(k.Originals) != 0 {
					t.Errorf("record left: %v", k.Originals)
				}
			}
		})
	}
}

// TestHeldForwardingCopyPutBackLater: a reload that drops ip_forward while
// the daemon holds back repairs of an interface's forwarding (a fight)
// leaves its record, and the first converge after the hold puts it back.
func TestHeldForwardingCopyPutBackLater(t *testing.T) {
	on, err := config.Parse("on.toml", []byte("[global]\nfirewall = false\nip_forward = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	off, err := config.Parse("off.toml", []byte("[global]\nfirewall = false\n"))
	if err != nil {
		t.Fatal(err)
	}
	k := world()
	if _, err := Converge(ctx, k, on, nil); err != nil {
		t.Fatal(err)
	}
	const eth1 = "net/ipv4/conf/eth1/forwarding"
	held := func(op plan.Op) bool { return op.Sysctl != nil && op.Sysctl.Path == eth1 }
	if _, err := Converge(ctx, k, off, nil, held); err != nil {
		t.Fatal(err)
	}
	if k.Sysctls[eth1] != "0" || k.Originals[eth1].Original != "1" {
		t.Fatalf("held: eth1 forwarding %s, record %+v; want 0, recorded 1", k.Sysctls[eth1], k.Originals[eth1])
	}
	rep, err := Converge(ctx, k, off, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Applied) != 1 || k.Sysctls[eth1] != "1" || len(k.Originals) != 0 {
		t.Errorf("after the hold: applied %v, eth1 forwarding %s, record %v; want it written back to 1", rep.Applied, k.Sysctls[eth1], k.Originals)
	}
}

// TestAcceptRAWarned: with ipv6_forward = true, a converge against the
// in-memory kernel reads the accept_ra of the device an IPv6 tunnel
// follows (1 by default, as the kernel has it) and warns, without
// changing it; once the admin sets it to 2 the warning is gone, and a
// device that goes away takes it with it.
func TestAcceptRAWarned(t *testing.T) {
	const ra = "net/ipv6/conf/wan/accept_ra"
	c, err := config.Parse("t.toml", []byte("[global]\nfirewall = false\nipv6_forward = true\n"+
		"[tunnel.ds]\nmode = \"ipip6\"\nlocal = \"wan\"\nremote = \"2001:db8:b::1\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	k := fakekernel.New()
	k.AddDevice(model.Device{Name: "wan", Up: true, Running: true, Addrs: []netip.Prefix{netip.MustParsePrefix("2001:db8:a::2/64")}})
	want := []string{"net.ipv6.conf.wan.accept_ra is 1: with ipv6_forward on, the kernel ignores router advertisements there and the address from SLAAC expires; set it to 2"}
	rep, err := Converge(ctx, k, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, rep.Last.Want.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if k.Sysctls[ra] != "1" || k.Sysctls[model.IPv6Forward] != "1" {
		t.Errorf("accept_ra %s, forwarding %s: want 1 (left as it was), 1", k.Sysctls[ra], k.Sysctls[model.IPv6Forward])
	}
	k.SetSysctl(ra, "2")
	if s, err := Look(ctx, k, c, nil); err != nil || len(s.Want.Warnings) != 0 {
		t.Errorf("with accept_ra 2: warnings %q (%v), want none", s.Want.Warnings, err)
	}
	k.SetSysctl(ra, "1")
	k.DelDevice("wan")
	if s, err := Look(ctx, k, c, nil); err != nil || len(s.Want.Warnings) != 0 {
		t.Errorf("without the device: warnings %q (%v), want none", s.Want.Warnings, err)
	}
}

// TestDownNewInterfaceForwarding: an interface that appears while
// tunneld's ip_forward (or IPv6 forwarding) is on takes "default"'s
// value, which tunneld's write set. Down leaves it as "default" ends, as
// an interface that appears after down would be: the tester's veth (a
// PPPoE or LTE WAN coming up has the same) stopped forwarding with
// ip_forward, and its line said "as before net.ipv4.ip_forward was
// written" of a value only tunneld's write had given it. An interface set
// by hand to a value other than the one tunneld's write gave keeps it. A
// down stopped after any operation, or inside the restore of the
// forwarding sysctl, ends the same when run again.
func TestDownNewInterfaceForwarding(t *testing.T) {
	const (
		fwd   = "net/ipv4/ip_forward"
		redir = "net/ipv4/conf/all/accept_redirects"
		dflt  = "net/ipv4/conf/default/forwarding"
		l1    = "net/ipv4/conf/l1/forwarding"
		l2    = "net/ipv4/conf/l2/forwarding"
		l16   = "net/ipv6/conf/l1/forwarding"
		l26   = "net/ipv6/conf/l2/forwarding"
	)
	tests := []struct {
		name, conf string
		// set before the apply, in order (with the kernel's copies)
		before [][2]string
		// by hand after l1 and l2 appeared, in order
		admin [][2]string
		// the forwarding values down leaves on l1 and l2
		end map[string]string
		// down's sysctl lines
		lines []string
	}{
		{"ip_forward 0 before, on while l1 and l2 appeared", "ip_forward = true\nipv6_forward = true", nil, nil,
			map[string]string{l1: "0", l2: "0", l16: "0", l26: "0"}, []string{
				"sysctl -w net.ipv4.ip_forward=0  # original value",
				"sysctl -w net.ipv6.conf.all.forwarding=0  # original value",
				"sysctl -w net.ipv4.conf.eth1.forwarding=1  # as before net.ipv4.ip_forward was written",
			}},
		// l2 set to 0 by hand ends at 0 as l1 does: nothing to say.
		{"l2 set to 0 by hand", "ip_forward = true\nipv6_forward = true", nil, [][2]string{{l2, "0"}, {l26, "0"}},
			map[string]string{l1: "0", l2: "0", l16: "0", l26: "0"}, []string{
				"sysctl -w net.ipv4.ip_forward=0  # original value",
				"sysctl -w net.ipv6.conf.all.forwarding=0  # original value",
				"sysctl -w net.ipv4.conf.eth1.forwarding=1  # as before net.ipv4.ip_forward was written",
			}},
		// ip_forward 1 and new interfaces not forwarding, tunneld told
		// to turn it off: l1 came up with 0 and stays so though the
		// restore copies 1; l2 set to 1 by hand keeps it, with a line.
		{"ip_forward 1 and default 0 before, ip_forward = false", "ip_forward = false",
			[][2]string{{fwd, "1"}, {dflt, "0"}}, [][2]string{{l2, "1"}},
			map[string]string{l1: "0", l2: "1", l16: "0", l26: "0"}, []string{
				"sysctl -w net.ipv4.ip_forward=1  # original value",
				"sysctl -w net.ipv4.conf.default.forwarding=0  # as before net.ipv4.ip_forward was written",
				"sysctl -w net.ipv4.conf.l1.forwarding=0  # as net.ipv4.conf.default.forwarding, whose value it took when it appeared after net.ipv4.ip_forward was written",
				"# net.ipv4.conf.l2.forwarding was set by someone else since net.ipv4.ip_forward was written: left at 1",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse("f.toml", []byte("[global]\nfirewall = false\n"+tt.conf+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]string
			box := func() *fakekernel.Kernel {
				k := world()
				for _, w := range tt.before {
					k.SetSysctl(w[0], w[1])
				}
				want = maps.Clone(k.Sysctls)
				if _, err := Converge(ctx, k, c, nil); err != nil {
					t.Fatal(err)
				}
				for _, dev := range []string{"l1", "l2"} {
					k.AddDevice(model.Device{Name: dev, Up: true, Running: true})
				}
				for _, w := range tt.admin {
					k.SetSysctl(w[0], w[1])
				}
				for _, dev := range []string{"l1", "l2"} {
					for _, p := range []string{"net/ipv4/conf/" + dev + "/proxy_arp", "net/ipv6/conf/" + dev + "/accept_ra"} {
						want[p] = k.Sysctls[p]
					}
				}
				maps.Copy(want, tt.end)
				return k
			}

			k := box()
			rep, err := Down(ctx, k, c)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, op := range rep.Applied {
				if op.Sysctl != nil {
					lines = append(lines, op.Command(nil))
				}
			}
			if diff := cmp.Diff(tt.lines, lines); diff != "" {
				t.Errorf("down's sysctl lines (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, k.Sysctls); diff != "" {
				t.Errorf("after down (-want +got):\n%s", diff)
			}
			if len(k.Originals) != 0 {
				t.Errorf("record left: %v", k.Originals)
			}
			if k.Sysctls[redir] != want[redir] {
				t.Errorf("accept_redirects %s, want %s", k.Sysctls[redir], want[redir])
			}

			for n := 0; n < len(rep.Applied); n++ {
				k := box()
				crashAfter(k, n, false)
				if _, err := Down(ctx, k, c); err == nil {
					t.Fatalf("crash after %d: down finished", n)
				}
				k.Fail = nil
				if _, err := Down(ctx, k, c); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, k.Sysctls); diff != "" {
					t.Errorf("crash after %d operations, down again (-want +got):\n%s", n, diff)
				}
				if len(k.Originals) != 0 {
					t.Errorf("crash after %d operations: record left: %v", n, k.Originals)
				}
			}
			for _, written := range []bool{false, true} {
				k := box()
				if _, err := Down(ctx, &inRestore{k, written}, c); err == nil {
					t.Fatal("down finished: nothing restored")
				}
				if _, err := Down(ctx, k, c); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, k.Sysctls); diff != "" {
					t.Errorf("%s, down again (-want +got):\n%s", map[bool]string{false: "stopped before the write", true: "stopped after the write"}[written], diff)
				}
				if len(k.Originals) != 0 {
					t.Errorf("record left: %v", k.Originals)
				}
			}
		})
	}
}

// TestDownLeftSysctls: down names the sysctls the configuration sets
// that it leaves as they are, having no record of their values before
// tunneld (found so at the start, or the record lost with the state
// directory); those it put back, and those at other values, it does not.
// A tester's stop after a wiped state directory said everything was
// removed, ip_forward and proxy_arp left on.
func TestDownLeftSysctls(t *testing.T) {
	const arp = "net/ipv4/conf/lan0/proxy_arp"
	for _, tc := range []struct {
		name    string
		before  map[string]string // the sysctls before the apply
		lost    bool              // the record lost after it
		want    []string
		warning string
	}{
		{"recorded", map[string]string{model.IPForward: "0", arp: "0"}, false, nil, ""},
		{"record lost", map[string]string{model.IPForward: "0", arp: "0"}, true, []string{"net.ipv4.ip_forward = 1", "net.ipv4.conf.lan0.proxy_arp = 1"},
			"left as they are, tunneld having no record of their values before it (found so at its start, or the record lost): net.ipv4.ip_forward = 1, net.ipv4.conf.lan0.proxy_arp = 1; check them (sysctl NAME) and set by hand those tunneld had set"},
		{"found so", map[string]string{model.IPForward: "1", arp: "0"}, false, []string{"net.ipv4.ip_forward = 1"},
			"left as they are, tunneld having no record of their values before it (found so at its start, or the record lost): net.ipv4.ip_forward = 1; check them (sysctl NAME) and set by hand those tunneld had set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse("t.toml", []byte("[global]\nfirewall = false\nip_forward = true\nproxy_arp = [\"lan0\"]\n"))
			if err != nil {
				t.Fatal(err)
			}
			k := fakekernel.New()
			k.AddDevice(model.Device{Name: "lan0", Up: true, Running: true})
			for p, v := range tc.before {
				k.SetSysctl(p, v)
			}
			if _, err := Converge(ctx, k, c, nil); err != nil {
				t.Fatal(err)
			}
			if tc.lost {
				k.Originals = kernel.SysctlRecord{}
			}
			rep, err := Down(ctx, k, c)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, rep.Left); diff != "" {
				t.Errorf("left (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.warning, rep.LeftWarning()); diff != "" {
				t.Errorf("warning (-want +got):\n%s", diff)
			}
		})
	}
}
