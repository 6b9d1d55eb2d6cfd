package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/daemon"
	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// coloSources is the warning seed 002's colo gets: the default route of
// table Moe goes through Moe, and nothing in the file is the router's own
// to refuse (desired.SourceWarnings).
const coloSources = `tunnel "Moe": no source filtering for IPv4: a default route goes through it, so any IPv4 source may come out of it, even one of this router's own networks: give those their routes in the configuration (a routed prefix's unreachable route), which the tunnel then refuses, or set allowed_sources (["0.0.0.0/0"] to accept any, as now)`

// TestApplyStatusDown runs the live-kernel commands against the in-memory
// kernel: apply converges and prints what it did, a second apply does
// nothing, status reports the tunnel, down removes it all.
func TestApplyStatusDown(t *testing.T) {
	const file = "../../testdata/seeds/002_ff25396f952da8ec/colo.toml"
	c, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	k := emptyKernel(c)
	state := t.TempDir()
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		env := &Env{Stdout: &out, Stderr: &errb, StateDir: state, Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
		code := Main(env, append(args, "-c", file))
		return code, out.String(), errb.String()
	}
	code, out, errs := run("apply")
	if code != 0 || !strings.Contains(out, "ip link add Moe mtu 1480 type ipip local 192.0.2.2 remote 192.0.2.42") || errs != "tunneld: warning: "+coloSources+"\n" {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, _ := run("apply"); code != 0 || out != "# nothing to do: the kernel matches the configuration\n" {
		t.Fatalf("second apply: exit %d: %q", code, out)
	}
	code, out, _ = run("status", "--json", "-socket", t.TempDir()+"/none")
	var st Status
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status: exit %d, %v\n%s", code, err, out)
	}
	if len(st.Tunnels) != 1 || !st.Tunnels[0].Up || st.Tunnels[0].LocalActual != "192.0.2.2" || len(st.Drift) != 0 || st.Daemon != nil {
		t.Fatalf("status = %+v", st)
	}
	var again bytes.Buffer
	enc := json.NewEncoder(&again)
	enc.SetIndent("", "  ")
	if err := enc.Encode(st); err != nil || again.String() != out {
		t.Errorf("status --json is not as encoding/json writes it (%v):\n%s\nwant\n%s", err, out, again.String())
	}
	if code, out, _ := run("down"); code != 0 || !strings.Contains(out, "ip link del Moe") || !strings.Contains(out, "sysctl -w net.ipv4.ip_forward=0  # original value") {
		t.Fatalf("down: exit %d\n%s", code, out)
	}
	code, out, _ = run("status", "-socket", t.TempDir()+"/none")
	if code != 0 || !strings.Contains(out, "tunnel Moe (ipip): down: "+notCreated(false)) || !strings.Contains(out, "ip link add Moe") ||
		!strings.Contains(out, "  no device Moe in the kernel\n") || strings.Contains(out, "mtu 0") {
		t.Fatalf("status after down: exit %d\n%s", code, out)
	}
}

// TestNothingToDo: an empty plan says the kernel matches the
// configuration only when nothing waits; with tunnels down or notes it
// says what waits.
func TestNothingToDo(t *testing.T) {
	up, down := desired.TunnelStatus{Name: "a", Up: true}, desired.TunnelStatus{Name: "b", Reason: "device eth0 (dev) does not exist"}
	tests := []struct {
		name    string
		tunnels []desired.TunnelStatus
		notes   []string
		want    string
	}{
		{"all up", []desired.TunnelStatus{up}, nil, "# nothing to do: the kernel matches the configuration"},
		{"no tunnels", nil, nil, "# nothing to do: the kernel matches the configuration"},
		{"one down", []desired.TunnelStatus{up, down}, nil,
			"# nothing to do now: the kernel matches the configuration but for what waits (1 tunnel down)"},
		{"two down, notes", []desired.TunnelStatus{down, down}, []string{"x", "y"},
			"# nothing to do now: the kernel matches the configuration but for what waits (2 tunnels down, 2 notes)"},
		{"a note", []desired.TunnelStatus{up}, []string{"x"},
			"# nothing to do now: the kernel matches the configuration but for what waits (1 note)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s engine.Snapshot
			s.Want.Tunnels, s.Want.Notes = tt.tunnels, tt.notes
			if diff := cmp.Diff(tt.want, nothingToDo(s)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestDownSysctlLines: down prints the sysctls it writes back, and not
// the interfaces whose forwarding the kernel's copy of the restored
// ip_forward leaves right; a value someone else changed since tunneld
// wrote it gets a line that says it is left as they set it.
func TestDownSysctlLines(t *testing.T) {
	const file = "../../testdata/seeds/002_ff25396f952da8ec/colo.toml"
	c, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	k := emptyKernel(c)
	for _, name := range []string{"lan", "wan", "dmz"} {
		k.AddDevice(model.Device{Name: name, Up: true, Running: true})
	}
	k.Sysctls["net/ipv4/conf/lan/forwarding"] = "1"
	k.Sysctls["net/ipv4/conf/dmz/forwarding"] = "1"
	state := t.TempDir()
	run := func(args ...string) (int, string) {
		var out bytes.Buffer
		env := &Env{Stdout: &out, Stderr: &out, StateDir: state, Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
		return Main(env, append(args, "-c", file)), out.String()
	}
	if code, out := run("apply"); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, out)
	}
	k.SetSysctl("net/ipv4/conf/dmz/forwarding", "0")
	code, out := run("down")
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "sysctl") || strings.HasPrefix(l, "# net") {
			lines = append(lines, l)
		}
	}
	want := []string{
		"sysctl -w net.ipv4.conf.eth0.proxy_arp=0  # original value",
		"sysctl -w net.ipv4.ip_forward=0  # original value",
		"# net.ipv4.conf.dmz.forwarding was changed by someone else: left at 0",
		"sysctl -w net.ipv4.conf.lan.forwarding=1  # as before net.ipv4.ip_forward was written",
	}
	if diff := cmp.Diff(want, lines); code != 0 || diff != "" {
		t.Errorf("down: exit %d, sysctl lines (-want +got):\n%s\n%s", code, diff, out)
	}
}

// TestAcceptRAWarning: the warning that accept_ra 1 on a device an IPv6
// tunnel follows loses its SLAAC address under ipv6_forward reaches each
// command's output, plan --from-empty's too (a kernel's default is 1),
// while apply still converges and exits 0; the empty observation is what
// the in-memory kernel holding the same devices reports.
func TestAcceptRAWarning(t *testing.T) {
	const warning = "net.ipv6.conf.wan.accept_ra is 1: with ipv6_forward on, the kernel ignores router advertisements there and the address from SLAAC expires; set it to 2"
	file, c, k := configured(t, "[global]\nfirewall = false\nipv6_forward = true\n[tunnel.ds]\nmode = \"ipip6\"\nlocal = \"wan\"\nremote = \"2001:db8:b::1\"\n")
	wantHave, wantIn, err := k.Observe(context.Background(), engine.Scope(c))
	if err != nil {
		t.Fatal(err)
	}
	have, in := emptyObservation(c)
	if diff := cmp.Diff(wantHave, have, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("empty observation's state (-fake kernel +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantIn, in, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("empty observation's inputs (-fake kernel +got):\n%s", diff)
	}
	k.SetAddrs("wan", netip.MustParsePrefix("2001:db8:a::2/64"))
	state := t.TempDir()
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		env := &Env{Stdout: &out, Stderr: &errb, StateDir: state, Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
		code := Main(env, append(args, "-c", file))
		return code, out.String(), errb.String()
	}
	for _, tt := range []struct {
		args         []string
		stdout, errs string
	}{
		{[]string{"plan", "--from-empty"}, "# warning: " + warning + "\n", ""},
		{[]string{"plan"}, "# warning: " + warning + "\n", ""},
		{[]string{"apply"}, "", "tunneld: warning: " + warning + "\n"},
		{[]string{"status", "-socket", filepath.Join(state, "none")}, "warning: " + warning + "\n", ""},
	} {
		code, out, errs := run(tt.args...)
		if code != 0 || !strings.Contains(out, tt.stdout) || !strings.Contains(errs, tt.errs) {
			t.Errorf("%s: exit %d, want 0, %q on stdout, %q on stderr; got\n%s\n%s", tt.args, code, tt.stdout, tt.errs, out, errs)
		}
	}
	if k.Sysctls["net/ipv6/conf/wan/accept_ra"] != "1" {
		t.Errorf("accept_ra = %s after apply, want it left at 1", k.Sysctls["net/ipv6/conf/wan/accept_ra"])
	}
	k.SetSysctl("net/ipv6/conf/wan/accept_ra", "2")
	if _, out, errs := run("apply"); strings.Contains(out+errs, "warning") {
		t.Errorf("apply with accept_ra 2 still warns:\n%s\n%s", out, errs)
	}
}

// TestApplyBlockedTunnel: apply fails (exit 1) when a tunnel is down for
// a reason only the admin can remove, a device tunneld does not own
// holding its name, and says why; a tunnel that waits for something that
// comes by itself (its local device's address) leaves apply's exit 0.
func TestApplyBlockedTunnel(t *testing.T) {
	const conf = "[global]\nfirewall = false\n[tunnel.Moe]\nmode = \"ipip\"\nlocal = \"%s\"\nremote = \"192.0.2.1\"\n"
	tests := []struct {
		name, local string
		foreign     bool
		code        int
		stderr      string
	}{
		{"name taken", "192.0.2.42", true, 1, "tunneld: tunnel \"Moe\" is down: the name Moe is taken by a veth device tunneld does not own: give the tunnel another name\n"},
		{"waits for its device", "wan", false, 0, "tunneld: tunnel \"Moe\" is down: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file, _, k := configured(t, fmt.Sprintf(conf, tt.local))
			if tt.foreign {
				k.AddDevice(model.Device{Name: "Moe", Kind: "veth", Up: true, Running: true})
			}
			var out, errb bytes.Buffer
			env := &Env{Stdout: &out, Stderr: &errb, StateDir: t.TempDir(), Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
			code := Main(env, []string{"apply", "-c", file})
			if code != tt.code || !strings.HasPrefix(errb.String(), tt.stderr) {
				t.Errorf("apply: exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tt.code, out.String(), errb.String())
			}
			if tt.code != 0 && strings.Contains(out.String(), "nothing to do") {
				t.Errorf("a failed apply says %q", out.String())
			}
		})
	}
}

// TestDownRemovesStaleSocket: the status socket a killed daemon left is
// gone after down (which holds the state directory's lock, so nothing
// listens on it); any other file there stays.
func TestDownRemovesStaleSocket(t *testing.T) {
	const file = "../../testdata/seeds/002_ff25396f952da8ec/colo.toml"
	c, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	k := emptyKernel(c)
	state := t.TempDir()
	sock := filepath.Join(state, daemon.SocketName)
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // as kill -9 leaves it: the file, nobody listening
	other := filepath.Join(state, "notes.txt")
	if err := os.WriteFile(other, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &out, StateDir: state, Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
	if code := Main(env, []string{"down", "-c", file}); code != 0 {
		t.Fatalf("down: exit %d\n%s", code, &out)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the stale socket after down: %v, want it gone", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another file in the state directory: %v, want it kept", err)
	}
}

// TestApplyForeignRules: with a rule of someone else's in the band, apply
// places the rules without a priority past it and says so, and the next
// apply has nothing to do; a rule that foreign rules leave no priority in
// the band is left out, which fails apply (exit 1), as only the admin can
// make room.
func TestApplyForeignRules(t *testing.T) {
	const rules = "[[rule]]\nfrom = \"10.0.0.1\"\ntable = 7\n[[rule]]\nfrom = \"10.0.0.2\"\ntable = 7\n"
	tests := []struct {
		name, global string
		foreign      uint32
		code         int
		stdout       [2]string // of the first apply and the second
		warning      string
	}{
		{"placed past it", "", 20000, 0, [2]string{
			"ip rule add from 10.0.0.1 lookup 7 priority 20001 protocol 116\nip rule add from 10.0.0.2 lookup 7 priority 20002 protocol 116\n",
			"# nothing to do: the kernel matches the configuration\n"},
			"tunneld: warning: rule[0]: placed at priority 20001, past 20000, which a rule tunneld does not own holds in tunneld's rule band 20000–20999 (move that rule out of the band, or the band: global.rule_priority_min/max)\n"},
		{"no room left", "rule_priority_min = 32000\nrule_priority_max = 32001\n", 32001, 1, [2]string{
			"ip rule add from 10.0.0.1 lookup 7 priority 32000 protocol 116\n", ""},
			"tunneld: warning: rule[1]: left out: no free priority left in tunneld's rule band 32000–32001, 1 of whose priorities rules tunneld does not own hold (move those rules out of the band, or widen it: global.rule_priority_min/max)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file, _, k := configured(t, "[global]\nfirewall = false\n"+tt.global+rules)
			k.AddForeignRule(model.Rule{Family: 4, Priority: tt.foreign, Table: 100, Src: netip.MustParsePrefix("10.9.9.9/32")}, 0)
			env := &Env{StateDir: t.TempDir(), Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
			for i, want := range tt.stdout {
				var out, errb bytes.Buffer
				env.Stdout, env.Stderr = &out, &errb
				code := Main(env, []string{"apply", "-c", file})
				if code != tt.code {
					t.Errorf("apply %d: exit %d, want %d", i+1, code, tt.code)
				}
				if diff := cmp.Diff(want, out.String()); diff != "" {
					t.Errorf("apply %d: stdout (-want +got):\n%s", i+1, diff)
				}
				if diff := cmp.Diff(tt.warning, errb.String()); diff != "" {
					t.Errorf("apply %d: stderr (-want +got):\n%s", i+1, diff)
				}
			}
		})
	}
}

// TestApplyTakesOverUnmarkedTunnel: a tunnel without tunneld's alias
// left by a crash between creating it and writing the alias (recorded as
// being created: fakekernel.Kernel.Creating) is marked, and apply says so
// on stderr as a warning beside the command. One made by hand, of the
// configured name and kind, is not tunneld's: apply leaves it, and says
// that the tunnel is down for it (a tester's reload took one over,
// changed it, and deleted it at the next).
func TestApplyTakesOverUnmarkedTunnel(t *testing.T) {
	const conf = "[global]\nfirewall = false\n[tunnel.Moe]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"198.51.100.2\"\n"
	file, _, k := configured(t, conf)
	env := &Env{StateDir: t.TempDir(), Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
	apply := func() (int, string, string) {
		var out, errb bytes.Buffer
		env.Stdout, env.Stderr = &out, &errb
		return Main(env, []string{"apply", "-c", file}), out.String(), errb.String()
	}
	if code, out, errs := apply(); code != 0 || errs != "" {
		t.Fatalf("first apply: exit %d\n%s%s", code, out, errs)
	}
	// Deleted, and made again by hand: another device, without the
	// alias.
	made := k.Tunnels["Moe"]
	k.DelDevice("Moe")
	k.AddDevice(model.Device{Name: "Moe", Kind: "ipip", MTU: 1480, Up: true, Running: true})
	k.Tunnels["Moe"] = made
	if code, out, errs := apply(); code != 1 || out != "" || !strings.Contains(errs, `tunnel "Moe" is down: the name Moe is taken by an ipip device without tunneld's alias, which tunneld does not own`) {
		t.Errorf("apply with one made by hand: exit %d, want 1 and the tunnel down for it\n%s%s", code, out, errs)
	}
	if got := k.Tunnels["Moe"]; !reflect.DeepEqual(got, made) || k.Aliases["Moe"] != "" {
		t.Errorf("the tunnel made by hand was changed (alias %q): %+v, was %+v", k.Aliases["Moe"], got, made)
	}
	k.Creating = map[string]bool{"Moe": true}
	code, out, errs := apply()
	if code != 0 {
		t.Errorf("apply: exit %d", code)
	}
	if diff := cmp.Diff("ip link set Moe alias tunneld\n", out); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
	want := "tunneld: warning: tunnel \"Moe\": taking over the ipip device Moe, which does not carry tunneld's alias " +
		"(left by a tunneld stopped while creating it, or its alias changed since): tunneld now owns it and removes it when the configuration drops it\n"
	if diff := cmp.Diff(want, errs); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
	if _, out, errs := apply(); out != "# nothing to do: the kernel matches the configuration\n" || errs != "" {
		t.Errorf("third apply: %q %q, want nothing to do", out, errs)
	}
}

// TestForeignRouteSameKeyWarning is the tester's 6in4 router: a router
// advertisement's default route in main (default via 2001:db8:a::1 dev
// wan proto ra metric 1024) and [[route]] to = "::/0" dev = "he". plan
// and status showed the addition of tunneld's default route with no
// hint, and apply failed on it. Now plan, apply and status warn, naming
// the other route and what to do; apply still fails (the kernel refuses
// the route), and with a metric of its own the route goes in and the
// warning goes away.
func TestForeignRouteSameKeyWarning(t *testing.T) {
	const conf = "[global]\nfirewall = false\n[tunnel.he]\nmode = \"sit\"\nlocal = \"wan\"\nremote = \"198.51.100.1\"\naddress = \"2001:db8:1::2/64\"\n[[route]]\nto = \"::/0\"\ndev = \"he\"\n"
	const warning = "route[0]: route ::/0 table main metric 1024 has the same table, destination and metric as default via 2001:db8:a::1 dev wan proto ra metric 1024, a route tunneld does not own: " +
		"the kernel refuses a second route of that key, and apply cannot add it; give route[0] a metric no route there has (lower to come first, higher to back the other up, not 0: an IPv6 route without one has 1024), " +
		"or delete that route: ip -6 route del default via 2001:db8:a::1 dev wan metric 1024, after setting net.ipv6.conf.wan.accept_ra_defrtr to 0, else the next router advertisement on wan adds it again"
	file, _, k := configured(t, conf)
	k.SetAddrs("wan", netip.MustParsePrefix("192.0.2.7/24"), netip.MustParsePrefix("2001:db8:a::7/64"))
	k.AddForeignRoute(model.Route{Table: model.TableMain, Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("2001:db8:a::1"), Dev: "wan", Metric: 1024}, model.RouteProtocolRA)
	state := t.TempDir()
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		env := &Env{Stdout: &out, Stderr: &errb, StateDir: state, Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
		code := Main(env, append(args, "-c", file))
		return code, out.String(), errb.String()
	}
	const add = "ip -6 route add default dev he metric 1024 table main proto 116"
	for _, tt := range []struct {
		args           []string
		code           int
		stdout, stderr []string
	}{
		{[]string{"plan"}, 0, []string{"# warning: " + warning + "\n", add}, nil},
		{[]string{"status", "-socket", filepath.Join(state, "none")}, 0, []string{"warning: " + warning + "\n", add}, nil},
		{[]string{"apply"}, 1, nil, []string{"tunneld: warning: " + warning + "\n", "route ::/0 table main metric 1024: "}},
	} {
		code, out, errs := run(tt.args...)
		for _, s := range tt.stdout {
			if !strings.Contains(out, s) {
				t.Errorf("%s: no %q on stdout:\n%s", tt.args, s, out)
			}
		}
		for _, s := range tt.stderr {
			if !strings.Contains(errs, s) {
				t.Errorf("%s: no %q on stderr:\n%s", tt.args, s, errs)
			}
		}
		if code != tt.code {
			t.Errorf("%s: exit %d, want %d\n%s%s", tt.args, code, tt.code, out, errs)
		}
	}
	// The admin gives the route a metric of its own.
	if err := os.WriteFile(file, []byte(strings.Replace(conf, "dev = \"he\"\n", "dev = \"he\"\nmetric = 512\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := run("apply"); code != 0 || strings.Contains(out+errs, "warning") || !strings.Contains(out, "ip -6 route add default dev he metric 512 table main proto 116") {
		t.Errorf("apply with metric = 512: exit %d\n%s%s", code, out, errs)
	}
}

// TestApplyRename: renaming a tunnel in the configuration, endpoints
// unchanged, is one apply that works (exit 0), and the next has nothing
// to do. The old tunnel is deleted before the new one is made: the
// kernel holds one tunnel per endpoints, and a tester's apply of a
// renamed gre tunnel exited 1 with EEXIST (the next apply made it).
func TestApplyRename(t *testing.T) {
	const conf = "[global]\nfirewall = false\n[tunnel.%s]\nmode = \"gre\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\naddress = \"172.16.2.1 peer 172.16.2.2\"\n[[route]]\nto = \"10.99.0.0/16\"\ndev = \"%s\"\n"
	before, _, k := configured(t, fmt.Sprintf(conf, "t2", "t2"))
	applied(t, before, k)
	after := filepath.Join(t.TempDir(), "tunneld.toml")
	if err := os.WriteFile(after, []byte(fmt.Sprintf(conf, "t2x", "t2x")), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"ip link del t2\nip link add t2x", "# nothing to do"} {
		var out, errb bytes.Buffer
		env := &Env{Stdout: &out, Stderr: &errb, StateDir: t.TempDir(), Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
		if code := Main(env, []string{"apply", "-c", after}); code != 0 || !strings.HasPrefix(out.String(), want) {
			t.Errorf("apply %d: exit %d, stdout:\n%s\nstderr:\n%s\nwant it to start %q", i+1, code, out.String(), errb.String(), want)
		}
	}
	if _, ok := k.Tunnels["t2"]; ok {
		t.Error("t2 is still in the kernel")
	}
}

// TestApplySwap: tunnels that trade remotes (two that swap them, as two
// DNS names whose answers swap, or three in a rotation), and a chain (a
// tunnel takes a remote another leaves), are one apply that works (exit
// 0) in the in-memory kernel, which refuses a second tunnel with the
// same endpoints as Linux does; the next has nothing to do. A tester's
// swap in the VM exited 1 every time, each change refused with EEXIST.
func TestApplySwap(t *testing.T) {
	conf := func(mode string, remotes ...string) string {
		s := "[global]\nfirewall = false\n"
		for i, r := range remotes {
			s += fmt.Sprintf("[tunnel.t%d]\nmode = %q\nlocal = \"192.0.2.1\"\nremote = %q\naddress = \"172.16.%d.1/30\"\n[[route]]\nto = \"10.9.%d.0/24\"\ndev = \"t%d\"\n", i+1, mode, r, i+1, i+1, i+1)
		}
		return s
	}
	for _, tt := range []struct {
		name, before, after string
		remotes             []string // t1's, t2's, … after
	}{
		{"ipip swap", conf("ipip", "10.0.1.1", "10.0.1.2"), conf("ipip", "10.0.1.2", "10.0.1.1"), []string{"10.0.1.2", "10.0.1.1"}},
		{"gre swap", conf("gre", "10.0.1.1", "10.0.1.2"), conf("gre", "10.0.1.2", "10.0.1.1"), []string{"10.0.1.2", "10.0.1.1"}},
		{"rotation of three", conf("ipip", "10.0.1.1", "10.0.1.2", "10.0.1.3"), conf("ipip", "10.0.1.2", "10.0.1.3", "10.0.1.1"), []string{"10.0.1.2", "10.0.1.3", "10.0.1.1"}},
		{"chain, t1 taking t2's remote", conf("ipip", "10.0.1.1", "10.0.1.2"), conf("ipip", "10.0.1.2", "10.0.1.3"), []string{"10.0.1.2", "10.0.1.3"}},
		{"chain, t2 taking t1's remote", conf("ipip", "10.0.1.1", "10.0.1.2"), conf("ipip", "10.0.1.3", "10.0.1.1"), []string{"10.0.1.3", "10.0.1.1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before, _, k := configured(t, tt.before)
			applied(t, before, k)
			after := filepath.Join(t.TempDir(), "tunneld.toml")
			if err := os.WriteFile(after, []byte(tt.after), 0o600); err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				var out, errb bytes.Buffer
				c := &countingKernel{Kernel: k}
				env := &Env{Stdout: &out, Stderr: &errb, StateDir: t.TempDir(), Kernel: func(bool) (kernel.Kernel, error) { return c, nil }}
				code := Main(env, []string{"apply", "-c", after})
				if code != 0 || strings.Contains(out.String()+errb.String(), "exists") || i == 1 && !strings.HasPrefix(out.String(), "# nothing to do") {
					t.Errorf("apply %d: exit %d, stdout:\n%s\nstderr:\n%s", i+1, code, out.String(), errb.String())
				}
				// One plan, none refused: a chain in the other order
				// made it only in a second round, after a refusal.
				if want := 1 - i; c.applies != want {
					t.Errorf("apply %d: %d plans applied, want %d\n%s", i+1, c.applies, want, out.String())
				}
			}
			for i, r := range tt.remotes {
				name := fmt.Sprintf("t%d", i+1)
				if l := k.Tunnels[name]; l.Remote != netip.MustParseAddr(r) || !k.Devices[name].Up {
					t.Errorf("%s: remote %s, up %v; want remote %s, up", name, l.Remote, k.Devices[name].Up, r)
				}
			}
		})
	}
}

// countingKernel counts the plans applied to the in-memory kernel.
type countingKernel struct {
	*fakekernel.Kernel
	applies int
}

func (c *countingKernel) Apply(ctx context.Context, p plan.Plan) error {
	c.applies++
	return c.Kernel.Apply(ctx, p)
}

// TestApplySaysEndedWarnings: apply names the rules it removes with the
// table it replaces, which its last round no longer sees.
func TestApplySaysEndedWarnings(t *testing.T) {
	file, _, k := configured(t, "[tunnel.moe]\nmode = \"ipip\"\nlocal = \"192.0.2.42\"\nremote = \"192.0.2.1\"\n")
	k.SetFilter(&model.Filter{Observed: "chain input type filter hook input priority 0\n\t?untagged handle 6\n"})
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, StateDir: t.TempDir(), Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
	if code := Main(env, []string{"apply", "-c", file}); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "tunneld: warning: nftables table inet tunneld holds a rule this version of tunneld did not write") {
		t.Errorf("stderr:\n%s\nwant the warning about the rule", errb.String())
	}
}
