package linux

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/plan"
)

// readSysctls reads sysctls (paths under /proc/sys) in the test's
// namespace.
func readSysctls(t *testing.T, paths []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(filepath.Join("/proc/sys", p))
		if err != nil {
			t.Fatal(err)
		}
		out[p] = strings.TrimSpace(string(b))
	}
	return out
}

// copies is the plan that restores global to 0 and puts back each
// interface's value ("lan=1": prefix+"lan"+suffix=1; a value naming its
// own sysctl, "all.accept_redirects=0", is taken as it is; "+late=1": an
// interface that appeared since, which ends as "default" does) where the
// kernel's copy of the 0 leaves another.
func copies(global, prefix, suffix string, values ...string) []string {
	var restores []string
	for _, v := range values {
		dev, val, _ := strings.Cut(v, "=")
		dev, late := strings.CutPrefix(dev, "+")
		path := prefix + dev + suffix
		if strings.Contains(dev, ".") {
			path = prefix + dev
		}
		if val == model.CopiedValue(strings.ReplaceAll(path, ".", "/"), "0") {
			continue
		}
		why := "as before " + global + " was written"
		if late {
			why = "as " + prefix + "default" + suffix + ", whose value it took when it appeared after " + global + " was written"
		}
		restores = append(restores, "sysctl -w "+path+"="+val+"  # "+why)
	}
	slices.Sort(restores) // the plan's order: by path
	return append([]string{"sysctl -w " + global + "=0  # original value"}, restores...)
}

// otherDevices are the "dev=value" forwarding values of the interfaces in
// the namespace besides lo and the ones a test makes (known), such as the
// fallback devices a kernel with tunnel drivers puts in every namespace
// (tunl0, sit0, …): their values are put back too.
func otherDevices(t *testing.T, conf string, known ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join("/proc/sys", conf))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); !slices.Contains(known, n) {
			v := readSysctls(t, []string{filepath.Join(conf, n, "forwarding")})
			out = append(out, n+"="+v[filepath.Join(conf, n, "forwarding")])
		}
	}
	return out
}

// TestPrivilegedForwardingPerInterface: the kernel copies ip_forward (and
// net.ipv6.conf.all.forwarding) onto every interface's forwarding when it
// is written; down, and a converge with a configuration that no longer
// sets it, put each interface's value back as it was before tunneld wrote
// it, and give an interface that appeared since the value "default" ends
// with (1 here, as it was before: not the kernel's copy of the restored
// 0). The plan says so, with a command for each interface the kernel's
// copy of the restored value leaves at another value.
func TestPrivilegedForwardingPerInterface(t *testing.T) {
	tests := []struct {
		name, setting, global string
		// conf is the directory of the per-interface settings
		conf string
		// set before the apply: the global value 0 and these
		before map[string]string
		// what an interface made after the apply is given
		late map[string]string
		// what the plan that restores puts back, "dev=value" (other
		// devices of the namespace are added)
		values []string
	}{
		{
			name: "ipv4", setting: "ip_forward = true", global: "net/ipv4/ip_forward", conf: "net/ipv4/conf",
			before: map[string]string{
				"net/ipv4/conf/lan/forwarding": "1", "net/ipv4/conf/wan/forwarding": "0",
				"net/ipv4/conf/default/forwarding": "1", "net/ipv4/conf/all/accept_redirects": "0",
			},
			late:   map[string]string{"net/ipv4/conf/late/forwarding": "1"},
			values: []string{"all.accept_redirects=0", "default=1", "lan=1", "lanpeer=0", "+late=1", "+latepeer=1", "lo=0", "wan=0", "wanpeer=0"},
		},
		{
			name: "ipv6", setting: "ipv6_forward = true", global: "net/ipv6/conf/all/forwarding", conf: "net/ipv6/conf",
			before: map[string]string{
				"net/ipv6/conf/lan/forwarding": "1", "net/ipv6/conf/wan/forwarding": "0", "net/ipv6/conf/default/forwarding": "1",
			},
			late:   map[string]string{"net/ipv6/conf/late/forwarding": "1"},
			values: []string{"default=1", "lan=1", "lanpeer=0", "+late=1", "+latepeer=1", "lo=0", "wan=0", "wanpeer=0"},
		},
	}
	for _, tt := range tests {
		for _, how := range []string{"down", "reload"} {
			t.Run(tt.name+" "+how, func(t *testing.T) {
				k := open(t)
				for _, pair := range [][2]string{{"lan", "lanpeer"}, {"wan", "wanpeer"}} {
					if err := netnstest.Veth(pair[0], pair[1], nil); err != nil {
						t.Fatal(err)
					}
				}
				writeSysctl(t, tt.global, "0")
				var paths []string
				for p, v := range tt.before {
					writeSysctl(t, p, v)
					paths = append(paths, p)
				}
				want := readSysctls(t, append(paths, tt.global))
				others := otherDevices(t, tt.conf, "all", "default", "lo", "lan", "lanpeer", "wan", "wanpeer")
				wantPlan := copies(model.SysctlName(tt.global), model.SysctlName(tt.conf)+".", ".forwarding", append(slices.Clip(tt.values), others...)...)
				c := parse(t, "[global]\nfirewall = false\n"+tt.setting+"\n")
				if _, err := engine.Converge(ctx, k, c, nil); err != nil {
					t.Fatal(err)
				}
				// What appeared since came up with default's 1
				// and ends as default does.
				if err := netnstest.Veth("late", "latepeer", nil); err != nil {
					t.Fatal(err)
				}
				for p, v := range tt.late {
					writeSysctl(t, p, v)
					want[p] = v
					paths = append(paths, p)
				}
				empty := parse(t, "[global]\nfirewall = false\n")
				s, err := engine.Look(ctx, k, empty, nil)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, op := range s.Plan.Ops {
					got = append(got, op.Command(nil))
				}
				if diff := cmp.Diff(wantPlan, got); diff != "" {
					t.Errorf("plan (-want +got):\n%s", diff)
				}
				if how == "down" {
					_, err = engine.Down(ctx, k, c)
				} else {
					_, err = engine.Converge(ctx, k, empty, nil)
				}
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, readSysctls(t, append(paths, tt.global))); diff != "" {
					t.Errorf("after %s (-before +after):\n%s", how, diff)
				}
				if m, err := k.originals(); err != nil || len(m) != 0 {
					t.Errorf("record left after %s: %v, %v", how, m, err)
				}
				rep, err := engine.Converge(ctx, k, empty, nil)
				if err != nil || len(rep.Applied) != 0 {
					t.Errorf("converging again: %v, %v", rep.Applied, err)
				}
			})
		}
	}
}

// TestPrivilegedForwardingNewInterface is the tester's case: in a fresh
// namespace with ip_forward 0, tunneld turns it on, a veth pair is made
// while it runs, and down turns ip_forward off again. The kernel gave the
// veths "default"'s 1, which only tunneld's write had put there: before
// the fix, down wrote it back "as before net.ipv4.ip_forward was written"
// and the box kept forwarding from behind the veth. Now the veths end as
// "default" does, 0, with no write and no line. The same for IPv6. And on
// a box with ip_forward 1 and "default" 0 (new interfaces do not
// forward) where tunneld turns ip_forward off, a veth made meanwhile ends
// at 0 though the restore copies 1 onto it, and one set to 1 by hand
// meanwhile keeps 1, down saying so.
func TestPrivilegedForwardingNewInterface(t *testing.T) {
	tests := []struct {
		name, setting, conf string
		// written before the apply, in order
		before [][2]string
		// "dev=value" written by hand after the veths appeared
		admin []string
		// the forwarding values down leaves, by device
		end map[string]string
		// down's lines that name l1 or l2
		lines []string
	}{
		{"ipv4", "ip_forward = true", "net/ipv4/conf", [][2]string{{"net/ipv4/ip_forward", "0"}, {"net/ipv4/conf/default/forwarding", "0"}}, nil,
			map[string]string{"l1": "0", "l1p": "0"}, nil},
		{"ipv6", "ipv6_forward = true", "net/ipv6/conf", [][2]string{{"net/ipv6/conf/all/forwarding", "0"}, {"net/ipv6/conf/default/forwarding", "0"}}, nil,
			map[string]string{"l1": "0", "l1p": "0"}, nil},
		{"ipv4 turned off, default 0 before", "ip_forward = false", "net/ipv4/conf",
			[][2]string{{"net/ipv4/ip_forward", "1"}, {"net/ipv4/conf/default/forwarding", "0"}}, []string{"l2=1"},
			map[string]string{"l1": "0", "l1p": "0", "l2": "1", "l2p": "0"}, []string{
				"sysctl -w net.ipv4.conf.l1.forwarding=0  # as net.ipv4.conf.default.forwarding, whose value it took when it appeared after net.ipv4.ip_forward was written",
				"sysctl -w net.ipv4.conf.l1p.forwarding=0  # as net.ipv4.conf.default.forwarding, whose value it took when it appeared after net.ipv4.ip_forward was written",
				"# net.ipv4.conf.l2.forwarding was set by someone else since net.ipv4.ip_forward was written: left at 1",
				"sysctl -w net.ipv4.conf.l2p.forwarding=0  # as net.ipv4.conf.default.forwarding, whose value it took when it appeared after net.ipv4.ip_forward was written",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := open(t)
			for _, w := range tt.before {
				writeSysctl(t, w[0], w[1])
			}
			c := parse(t, "[global]\nfirewall = false\n"+tt.setting+"\n")
			if _, err := engine.Converge(ctx, k, c, nil); err != nil {
				t.Fatal(err)
			}
			var paths []string
			for dev := range tt.end {
				paths = append(paths, tt.conf+"/"+dev+"/forwarding")
			}
			slices.Sort(paths)
			for _, pair := range [][2]string{{"l1", "l1p"}, {"l2", "l2p"}} {
				if _, ok := tt.end[pair[0]]; !ok {
					continue
				}
				if err := netnstest.Veth(pair[0], pair[1], nil); err != nil {
					t.Fatal(err)
				}
			}
			// They came up with what tunneld's write gave "default".
			if got := readSysctls(t, []string{tt.conf + "/l1/forwarding"})[tt.conf+"/l1/forwarding"]; got != map[bool]string{true: "1", false: "0"}[strings.HasSuffix(tt.setting, "true")] {
				t.Fatalf("l1 came up with forwarding %s", got)
			}
			for _, a := range tt.admin {
				dev, v, _ := strings.Cut(a, "=")
				writeSysctl(t, tt.conf+"/"+dev+"/forwarding", v)
			}
			rep, err := engine.Down(ctx, k, c)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, op := range rep.Applied {
				cmd := op.Command(nil)
				if strings.Contains(cmd, ".l1") || strings.Contains(cmd, ".l2") {
					lines = append(lines, cmd)
				}
			}
			if diff := cmp.Diff(tt.lines, lines); diff != "" {
				t.Errorf("down's lines on l1 and l2 (-want +got):\n%s", diff)
			}
			want := map[string]string{}
			for dev, v := range tt.end {
				want[tt.conf+"/"+dev+"/forwarding"] = v
			}
			for _, w := range tt.before {
				want[w[0]] = w[1]
				paths = append(paths, w[0])
			}
			if diff := cmp.Diff(want, readSysctls(t, paths)); diff != "" {
				t.Errorf("after down (-want +got):\n%s", diff)
			}
			if m, err := k.originals(); err != nil || len(m) != 0 {
				t.Errorf("record left after down: %v, %v", m, err)
			}
			if rep, err := engine.Down(ctx, k, c); err != nil || len(rep.Applied) != 0 {
				t.Errorf("down again: %v, %v", rep.Applied, err)
			}
		})
	}
}

// stopping is crashing with the whole plan in the seam's hands, as a
// process killed in the middle of a plan has it: Apply gets every
// operation and stops after the next left ones (it asks its context
// before each one).
type stopping struct {
	*Kernel
	left int
}

func (s *stopping) Apply(ctx context.Context, p plan.Plan) error {
	done := min(s.left, len(p.Ops))
	s.left -= done
	return s.Kernel.Apply(&stopsAfter{Context: ctx, n: done}, p)
}

// stopsAfter is a context that is cancelled (with errCrashed) from its
// n+1th Err on.
type stopsAfter struct {
	context.Context
	n int
}

func (c *stopsAfter) Err() error {
	if c.n == 0 {
		return errCrashed
	}
	c.n--
	return nil
}

// TestPrivilegedCrashWhileRestoringForwarding stops tunneld after each
// operation of a down that restores ip_forward and the interfaces'
// forwarding, and has a new process with the same state directory do
// down again: every interface ends as it was, and one that appeared while
// ip_forward was on as "default" ends, at 0 (not at the 1 it came up
// with).
func TestPrivilegedCrashWhileRestoringForwarding(t *testing.T) {
	netnstest.Gate(t) // the loop below ends on a finished or failed run, not a skipped one
	c := parse(t, "[global]\nfirewall = false\nip_forward = true\n")
	paths := []string{"net/ipv4/ip_forward", "net/ipv4/conf/lan/forwarding", "net/ipv4/conf/default/forwarding", "net/ipv4/conf/late/forwarding"}
	for n := 0; ; n++ {
		finished := false
		t.Run(fmt.Sprint("crash after ", n), func(t *testing.T) {
			netnstest.Enter(t)
			if err := netnstest.Veth("lan", "lanpeer", nil); err != nil {
				t.Fatal(err)
			}
			writeSysctl(t, "net/ipv4/ip_forward", "0")
			writeSysctl(t, "net/ipv4/conf/lan/forwarding", "1")
			dir := t.TempDir()
			k1, err := Open(Options{StateDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := engine.Converge(ctx, k1, c, nil); err != nil {
				t.Fatal(err)
			}
			if err := netnstest.Veth("late", "latepeer", nil); err != nil {
				t.Fatal(err)
			}
			want := readSysctls(t, paths)
			want["net/ipv4/ip_forward"], want["net/ipv4/conf/default/forwarding"], want["net/ipv4/conf/late/forwarding"] = "0", "0", "0"
			_, err = engine.Down(ctx, &stopping{Kernel: k1, left: n}, c)
			k1.Close()
			finished = downAfterCrash(t, dir, err, c)
			if diff := cmp.Diff(want, readSysctls(t, paths)); diff != "" {
				t.Fatalf("after down (-want +got):\n%s", diff)
			}
		})
		if finished || t.Failed() {
			break
		}
	}
}

// TestPrivilegedForwardingChangedByHand: a value someone else changed
// after tunneld wrote it (ip_forward, proxy_arp), or after the kernel
// copied tunneld's write of ip_forward onto it (an interface's
// forwarding), is left as they set it by down, which says so; the rest
// is put back as it was. With ip_forward set to 0 by hand, the kernel
// copied the 0 onto every interface, and that stays too.
func TestPrivilegedForwardingChangedByHand(t *testing.T) {
	const (
		fwd   = "net/ipv4/ip_forward"
		lan   = "net/ipv4/conf/lan/forwarding"
		wan   = "net/ipv4/conf/wan/forwarding"
		dflt  = "net/ipv4/conf/default/forwarding"
		redir = "net/ipv4/conf/all/accept_redirects"
		arp   = "net/ipv4/conf/wan/proxy_arp"
		fwd6  = "net/ipv6/conf/all/forwarding"
		lan6  = "net/ipv6/conf/lan/forwarding"
	)
	paths := []string{fwd, lan, wan, dflt, redir, arp, fwd6, lan6}
	tests := []struct {
		name string
		// written by hand after the apply, in order
		admin [][2]string
		// what down leaves that differs from the values before the apply
		changed map[string]string
		// lines of down's output that say what was left
		notes []string
	}{
		{"nothing", nil, nil, nil},
		{"lan's forwarding", [][2]string{{lan, "0"}, {lan6, "0"}}, map[string]string{lan: "0", lan6: "0"}, []string{
			"# net.ipv4.conf.lan.forwarding was changed by someone else: left at 0",
			"# net.ipv6.conf.lan.forwarding was changed by someone else: left at 0",
		}},
		{"ip_forward and proxy_arp", [][2]string{{fwd, "0"}, {arp, "0"}}, map[string]string{lan: "0", dflt: "0", redir: "1"}, []string{
			"# net.ipv4.conf.wan.proxy_arp was changed by someone else: left at 0",
			"# net.ipv4.ip_forward was changed by someone else: left at 0",
		}},
		{"ip_forward on again", [][2]string{{fwd, "0"}, {fwd, "1"}}, nil, nil},
	}
	c := parse(t, "[global]\nfirewall = false\nip_forward = true\nipv6_forward = true\nproxy_arp = [\"wan\"]\n")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := open(t)
			for _, pair := range [][2]string{{"lan", "lanpeer"}, {"wan", "wanpeer"}} {
				if err := netnstest.Veth(pair[0], pair[1], nil); err != nil {
					t.Fatal(err)
				}
			}
			for _, w := range [][2]string{{fwd, "0"}, {fwd6, "0"}, {lan, "1"}, {lan6, "1"}, {dflt, "1"}, {redir, "0"}} {
				writeSysctl(t, w[0], w[1])
			}
			want := readSysctls(t, paths)
			maps.Copy(want, tt.changed)
			if _, err := engine.Converge(ctx, k, c, nil); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.admin {
				writeSysctl(t, w[0], w[1])
			}
			rep, err := engine.Down(ctx, k, c)
			if err != nil {
				t.Fatal(err)
			}
			var notes []string
			for _, op := range rep.Applied {
				if cmd := op.Command(nil); strings.HasPrefix(cmd, "#") {
					notes = append(notes, cmd)
				}
			}
			if diff := cmp.Diff(tt.notes, notes); diff != "" {
				t.Errorf("down's notes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, readSysctls(t, paths)); diff != "" {
				t.Errorf("after down (-want +got):\n%s", diff)
			}
			if m, err := k.originals(); err != nil || len(m) != 0 {
				t.Errorf("record left after down: %v, %v", m, err)
			}
			if rep, err := engine.Down(ctx, k, c); err != nil || len(rep.Applied) != 0 {
				t.Errorf("down again: %v, %v", rep.Applied, err)
			}
		})
	}
}

// TestPrivilegedAcceptRA: with ipv6_forward = true, an observation reads
// the accept_ra of the device an IPv6 tunnel follows from /proc/sys (not
// of one that does not exist), and the plan warns while it is 1, which a
// fresh namespace's devices have; at 2 it does not. Only a plan is made:
// no tunnel driver is needed, and accept_ra is never written.
func TestPrivilegedAcceptRA(t *testing.T) {
	k := open(t)
	if err := netnstest.Veth("wan", "peer", nil); err != nil {
		t.Fatal(err)
	}
	c := parse(t, "[global]\nfirewall = false\nipv6_forward = true\n"+
		"[tunnel.ds]\nmode = \"ipip6\"\nlocal = \"wan\"\nremote = \"2001:db8:b::1\"\n"+
		"[tunnel.gone]\nmode = \"ip6ip6\"\nlocal = \"dsl\"\nremote = \"2001:db8:c::1\"\n")
	const ra = "net/ipv6/conf/wan/accept_ra"
	_, in, err := k.Observe(context.Background(), engine.Scope(c))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{ra: "1"}, in.Sysctls); diff != "" {
		t.Errorf("sysctls read (-want +got):\n%s", diff)
	}
	s, err := engine.Look(context.Background(), k, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"net.ipv6.conf.wan.accept_ra is 1: with ipv6_forward on, the kernel ignores router advertisements there and the address from SLAAC expires; set it to 2"}
	if diff := cmp.Diff(want, s.Want.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	for _, op := range s.Plan.Ops {
		if op.Sysctl != nil && strings.HasSuffix(op.Sysctl.Path, "/accept_ra") {
			t.Errorf("the plan writes accept_ra: %s", op.Command(nil))
		}
	}
	writeSysctl(t, ra, "2")
	if s, err = engine.Look(context.Background(), k, c, nil); err != nil || len(s.Want.Warnings) != 0 {
		t.Errorf("with accept_ra 2: warnings %q (%v), want none", s.Want.Warnings, err)
	}
}
