package linux

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/iptun"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// tunnelParams reads the parameters the kernel holds for the tunnel
// name, as rtnetlink decodes them.
func tunnelParams[D rtnetlink.LinkDriver](t *testing.T, c *rtnetlink.Conn, name string) (rtnetlink.LinkMessage, D) {
	t.Helper()
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Link.Get(uint32(ifc.Index))
	if err != nil {
		t.Fatal(err)
	}
	d, ok := m.Attributes.Info.Data.(D)
	if !ok {
		t.Fatalf("%s: parameters %T", name, m.Attributes.Info.Data)
	}
	return m, d
}

// handChange changes the tunnel name as ip does (`ip link change`, and
// `ip -6 tunnel change` over its ioctl alike): it reads the tunnel's
// parameters, lets edit change them, and sends them all back in place.
// It returns what the kernel holds then.
func handChange[D rtnetlink.LinkDriver](t *testing.T, c *rtnetlink.Conn, name string, edit func(D)) D {
	t.Helper()
	m, d := tunnelParams[D](t, c, name)
	edit(d)
	err := c.Link.Set(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: m.Index,
		Attributes: &rtnetlink.LinkAttributes{Info: &rtnetlink.LinkInfo{Kind: m.Attributes.Info.Kind, Data: d}}})
	if err != nil {
		t.Fatalf("%s: hand change: %v", name, err)
	}
	_, d = tunnelParams[D](t, c, name)
	return d
}

// ip6tnlConf is one ipip6 tunnel, the filter off.
const ip6tnlConf = `
[global]
firewall = false

[tunnel.t-ip6]
mode = "ipip6"
local = "2001:db8::10"
remote = "2001:db8::2"
address = "10.0.2.1/30"
`

// TestPrivilegedIP6TnlHandChangeRepaired: an ipip6 tunnel changed by
// hand — the inner protocol any (ip -6 tunnel change NAME mode any), a
// flow label, allow-localremote — is drift: the next look plans one
// change in place, which puts back what tunneld creates (protocol 4, no
// flow label, none of those flags) on the same device, and the look
// after that is empty. Before, linkFromData read the protocol 0 as the
// configured mode and ignored the flow label and the flags: the plan
// was empty and the hand change stayed (a tester saw it in the VM).
func TestPrivilegedIP6TnlHandChangeRepaired(t *testing.T) {
	k := open(t)
	foreign(t)
	if err := netnstest.AddAddr("eth0", mustPrefix("2001:db8::10/64")); err != nil {
		t.Fatal(err)
	}
	c := parse(t, ip6tnlConf)
	converge(t, k, c)
	before, err := net.InterfaceByName("t-ip6")
	if err != nil {
		t.Fatal(err)
	}
	const change = "ip link change t-ip6 mtu 1452 type ip6tnl mode ipip6 local 2001:db8::10 remote 2001:db8::2 hoplimit 64 encaplimit 4"
	rt, err := rtnetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for _, tt := range []struct {
		name string
		edit func(*iptun.IP6Tnl)
		want string
	}{
		{"mode any", func(d *iptun.IP6Tnl) { d.Proto = 0 }, change},
		{"flowlabel", func(d *iptun.IP6Tnl) { d.FlowInfo |= 0x12345 }, change + " flowlabel 0x00000"},
		{"allow-localremote", func(d *iptun.IP6Tnl) { d.Flags |= iptun.IP6TnlFlagAllowLocalRemote }, change + " noallow-localremote"},
		{"all three", func(d *iptun.IP6Tnl) {
			d.Proto, d.FlowInfo, d.Flags = 0, d.FlowInfo|0xabcde, d.Flags|iptun.IP6TnlFlagAllowLocalRemote
		}, change + " flowlabel 0x00000 noallow-localremote"},
	} {
		changed := handChange(t, rt, "t-ip6", tt.edit)
		if changed.Proto == 4 && changed.FlowInfo == 0 && changed.Flags&iptun.IP6TnlFlagAllowLocalRemote == 0 {
			t.Fatalf("%s: the hand change did not take: %+v", tt.name, changed)
		}
		s, err := engine.Look(ctx, k, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		var cmds []string
		for _, op := range s.Plan.Ops {
			cmds = append(cmds, op.Command(nil))
		}
		if diff := cmp.Diff([]string{tt.want}, cmds); diff != "" {
			t.Fatalf("%s: plan after the hand change (-want +got):\n%s", tt.name, diff)
		}
		rep, err := engine.Converge(ctx, k, c, nil)
		if err != nil || len(rep.Applied) != 1 {
			t.Fatalf("%s: repair: applied %v, %v", tt.name, rep.Applied, err)
		}
		_, got := tunnelParams[*iptun.IP6Tnl](t, rt, "t-ip6")
		if got.Proto != 4 || got.FlowInfo != 0 || got.Flags&0xff != 0 {
			t.Errorf("%s: after the repair the kernel has proto %d, flow info %#x, flags %#x; want 4, 0 and none of IP6_TNL_F_* but its own",
				tt.name, got.Proto, got.FlowInfo, got.Flags)
		}
		if s, err := engine.Look(ctx, k, c, nil); err != nil || len(s.Plan.Ops) != 0 {
			t.Errorf("%s: plan after the repair: %v, %v", tt.name, s.Plan.Ops, err)
		}
		if after, err := net.InterfaceByName("t-ip6"); err != nil || after.Index != before.Index {
			t.Errorf("%s: t-ip6 was recreated (index %d → %v, %v)", tt.name, before.Index, after, err)
		}
	}
}

// TestPrivilegedTunnelHandChangesRepaired: what a hand change (ip link
// set NAME type KIND …) can alter in place of the parameters tunneld
// writes but did not read back — a fwmark on any kind, an ip6tnl's
// fwmark or dscp inherit, a gre tunnel's checksums and sequence
// numbers, its ignore-df — is drift: the next look plans a change in
// place for each tunnel (two for ignore-df on a pmtudisc tunnel, which
// the kernel refuses to turn on while ignore-df is set, even in the
// change that clears it), converging puts back what tunneld writes on
// the same devices, and the look after is empty. Before, the look was
// empty (and with ignore-df the change of pmtudisc alone failed at
// every round).
func TestPrivilegedTunnelHandChangesRepaired(t *testing.T) {
	k := open(t)
	foreign(t)
	if err := netnstest.AddAddr("eth0", mustPrefix("2001:db8::10/64")); err != nil {
		t.Fatal(err)
	}
	c := parse(t, "[global]\nfirewall = false\n"+allKinds)
	converge(t, k, c)
	index := map[string]int{}
	for _, name := range []string{"t-ipip", "t-sit", "t-gre", "t-ipip6", "t-ip6ip6"} {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			t.Fatal(err)
		}
		index[name] = ifc.Index
	}
	rt, err := rtnetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	type hand struct {
		name string
		edit func()
		// ends are the ends of the changes the plan has for it.
		ends []string
	}
	for _, round := range [][]hand{{
		{"t-ipip", func() { handChange(t, rt, "t-ipip", func(d *iptun.IPIP) { d.FwMark = 7 }) }, []string{" pmtudisc fwmark 0"}},
		{"t-sit", func() { handChange(t, rt, "t-sit", func(d *iptun.SIT) { d.FwMark = 0xffffffff }) }, []string{" nopmtudisc fwmark 0"}},
		{"t-gre", func() {
			handChange(t, rt, "t-gre", func(d *iptun.GRE) {
				d.IFlags, d.OFlags, d.FwMark = d.IFlags|iptun.GREFlagCsum, d.OFlags|iptun.GREFlagSeq, 9
			})
		}, []string{" pmtudisc fwmark 0  # also clears icsum, oseq, which ip cannot"}},
		{"t-ipip6", func() {
			handChange(t, rt, "t-ipip6", func(d *iptun.IP6Tnl) { d.Flags |= iptun.IP6TnlFlagRcvDSCPCopy })
		}, []string{" tclass inherit  # also clears dscp inherit, which ip cannot"}},
		{"t-ip6ip6", func() {
			handChange(t, rt, "t-ip6ip6", func(d *iptun.IP6Tnl) { d.Flags |= iptun.IP6TnlFlagUseOrigFwMark })
		}, []string{" tclass 0x20 fwmark 0"}},
	}, {
		{"t-gre", func() {
			handChange(t, rt, "t-gre", func(d *iptun.GRE) { d.PMTUDisc, d.IgnoreDF = false, true })
		}, []string{" nopmtudisc noignore-df", " pmtudisc"}},
	}} {
		var want []string
		for _, h := range round {
			h.edit()
			for _, end := range h.ends {
				want = append(want, h.name+" "+end)
			}
		}
		s, err := engine.Look(ctx, k, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, op := range s.Plan.Ops {
			cmd := op.Command(nil)
			// "NAME END", END from the last argument that is the same
			// whatever the hand change: ttl's, hoplimit's, tclass's.
			if op.Link != nil {
				for _, h := range round {
					for _, end := range h.ends {
						if op.Link.Name == h.name && strings.HasPrefix(cmd, "ip link change "+h.name+" ") && strings.HasSuffix(cmd, end) {
							cmd = h.name + " " + end
						}
					}
				}
			}
			got = append(got, cmd)
		}
		slices.Sort(want)
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("plan after the hand changes (-want ends +got):\n%s", diff)
		}
		rep, err := engine.Converge(ctx, k, c, nil)
		if err != nil || len(rep.Applied) != len(want) {
			t.Fatalf("repair: applied %v, %v", rep.Applied, err)
		}
		if s, err := engine.Look(ctx, k, c, nil); err != nil || len(s.Plan.Ops) != 0 {
			t.Errorf("plan after the repair: %v, %v", s.Plan.Ops, err)
		}
		for name, i := range index {
			if ifc, err := net.InterfaceByName(name); err != nil || ifc.Index != i {
				t.Errorf("%s was recreated (index %d → %v, %v)", name, i, ifc, err)
			}
		}
	}
	// What the kernel holds after, read without tunneld's decoding.
	if _, d := tunnelParams[*iptun.IPIP](t, rt, "t-ipip"); d.FwMark != 0 {
		t.Errorf("t-ipip: fwmark %#x", d.FwMark)
	}
	if _, d := tunnelParams[*iptun.SIT](t, rt, "t-sit"); d.FwMark != 0 {
		t.Errorf("t-sit: fwmark %#x", d.FwMark)
	}
	if _, d := tunnelParams[*iptun.GRE](t, rt, "t-gre"); d.IFlags != iptun.GREFlagKey || d.OFlags != iptun.GREFlagKey || d.FwMark != 0 || d.IgnoreDF || !d.PMTUDisc {
		t.Errorf("t-gre: iflags %#x oflags %#x fwmark %#x ignore-df %v pmtudisc %v", d.IFlags, d.OFlags, d.FwMark, d.IgnoreDF, d.PMTUDisc)
	}
	for name, flags := range map[string]uint32{"t-ipip6": iptun.IP6TnlFlagIgnEncapLimit | iptun.IP6TnlFlagUseOrigTClass, "t-ip6ip6": 0} {
		if _, d := tunnelParams[*iptun.IP6Tnl](t, rt, name); d.Flags&0xff != flags || d.FwMark != 0 {
			t.Errorf("%s: flags %#x fwmark %#x, want flags %#x (and the kernel's own)", name, d.Flags, d.FwMark, flags)
		}
	}
}
