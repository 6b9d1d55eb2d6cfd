package cli

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/linux"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// TestPrivilegedStrayRulesAfterLostBandRecord is the tester's case on the
// host's kernel, in a fresh namespace: apply in the band 25000–25999, the
// record of bands (rule-bands.json) removed, the band edited back to the
// default, apply again. The old band's rules of protocol 116 are not
// tunneld's and stay beside the new ones, but apply, status (beside
// "drift: none") and down name each in a warning, with the copy of a
// configured rule said as such, and give the ip(8) command that deletes
// exactly it: a rule of protocol 116 someone added at the priority of
// one of them stays when that one's command runs. Before, apply and
// status said nothing, and down left them without a word.
func TestPrivilegedStrayRulesAfterLostBandRecord(t *testing.T) {
	netnstest.Enter(t)
	state := t.TempDir()
	file := filepath.Join(t.TempDir(), "tunneld.toml")
	const rules = "[[rule]]\nfrom = \"10.100.2.1\"\ntable = 102\n[[rule]]\nfrom = \"10.100.4.1\"\ntable = 101\n[[rule]]\nfrom = \"2001:db8:2::/64\"\ntable = 102\n"
	write := func(global string) {
		if err := os.WriteFile(file, []byte("[global]\nfirewall = false\n"+global+rules), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := linuxRun(state, file, linux.Options{})
	write("rule_priority_min = 25000\nrule_priority_max = 25999\n")
	if code, out, errs := run("apply"); code != 0 || strings.Contains(errs, "warning") {
		t.Fatalf("apply in 25000–25999: exit %d\n%s%s", code, out, errs)
	}
	if err := os.Remove(filepath.Join(state, "rule-bands.json")); err != nil {
		t.Fatal(err)
	}
	// Someone's rule of protocol 116 at the priority of the first.
	theirs := netnstest.Rule{Family: unix.AF_INET, Priority: 25000, Table: 102, Proto: model.RuleProtocol, Src: netip.MustParsePrefix("10.9.9.9/32")}
	if err := netnstest.AddRule(theirs); err != nil {
		t.Fatal(err)
	}
	write("")
	dels := []string{
		"ip rule del from 10.9.9.9 lookup 102 priority 25000 protocol 116",
		"ip rule del from 10.100.2.1 lookup 102 priority 25000 protocol 116",
		"ip rule del from 10.100.4.1 lookup 101 priority 25001 protocol 116",
		"ip -6 rule del from 2001:db8:2::/64 lookup 102 priority 25002 protocol 116",
	}
	copies := []string{"", "rule[0]", "rule[1]", "rule[2]"}
	warned := func(what, text, prefix string, withCopies bool) {
		t.Helper()
		// The first says why the rules stay; the others say "too".
		if !strings.Contains(text, "has tunneld's protocol 116 but lies outside its rule band 20000–20999") {
			t.Errorf("%s: no warning says why the rules stay:\n%s", what, text)
		}
		for i, del := range dels {
			w := prefix
			if strings.HasPrefix(del, "ip -6") {
				w += "IPv6 rule at priority "
			} else {
				w += "IPv4 rule at priority "
			}
			var line string
			for _, l := range strings.Split(text, "\n") {
				if strings.HasPrefix(l, w) && strings.HasSuffix(l, "delete it: "+del) {
					line = l
				}
			}
			switch {
			case line == "":
				t.Errorf("%s: no warning ending in %q:\n%s", what, del, text)
			case !strings.Contains(line, "protocol 116 outside the band too, left alone") &&
				(!strings.Contains(line, "has tunneld's protocol 116 but lies outside its rule band 20000–20999") || !strings.Contains(line, "it is not tunneld's, and tunneld leaves it alone")):
				t.Errorf("%s: the warning does not say why the rule stays: %s", what, line)
			case withCopies && copies[i] != "" != strings.Contains(line, "selectors and table of "+copies[i]+":"):
				t.Errorf("%s: the warning should say it copies %q: %s", what, copies[i], line)
			case !withCopies && strings.Contains(line, "looked up in table"):
				t.Errorf("%s: after down, no rule of the file is in the kernel: %s", what, line)
			}
		}
	}
	code, out, errs := run("apply")
	if code != 0 {
		t.Fatalf("apply in the default band: exit %d\n%s%s", code, out, errs)
	}
	warned("apply", errs, "tunneld: warning: ", true)
	code, out, errs = run("status")
	if code != 0 || !strings.Contains(out, "drift: none") {
		t.Errorf("status: exit %d, want 0 and no drift\n%s%s", code, out, errs)
	}
	warned("status", out, "warning: ", true)
	code, out, errs = run("down")
	if code != 0 {
		t.Fatalf("down: exit %d\n%s%s", code, out, errs)
	}
	warned("down", errs, "tunneld: warning: ", false)
	if got := protocolRules(t); !slices.Equal(got, []string{"25000/4 from 10.100.2.1", "25000/4 from 10.9.9.9", "25001/4 from 10.100.4.1", "25002/6 from 2001:db8:2::/64"}) {
		t.Errorf("after down, rules of protocol 116: %q, want the old band's and theirs, which are not tunneld's", got)
	}
	// Each command deletes its rule and no other.
	left := []string{"25000/4 from 10.100.2.1", "25000/4 from 10.9.9.9", "25001/4 from 10.100.4.1", "25002/6 from 2001:db8:2::/64"}
	for _, i := range []int{1, 0, 2, 3} {
		if b, err := exec.Command("sh", "-c", dels[i]).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", dels[i], err, b)
		}
		gone := map[int]string{0: "25000/4 from 10.9.9.9", 1: "25000/4 from 10.100.2.1", 2: "25001/4 from 10.100.4.1", 3: "25002/6 from 2001:db8:2::/64"}[i]
		left = slices.DeleteFunc(left, func(s string) bool { return s == gone })
		if got := protocolRules(t); !slices.Equal(got, left) {
			t.Errorf("after %s: rules of protocol 116 %q, want %q", dels[i], got, left)
		}
	}
	if code, out, errs := run("status"); code != 0 || strings.Contains(out, "warning") {
		t.Errorf("status after the deletions: exit %d, want no warning\n%s%s", code, out, errs)
	}
}

// protocolRules lists the namespace's rules of protocol 116 as
// "priority/family from SRC", sorted, as ip(8) shows them.
func protocolRules(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, family := range []string{"-4", "-6"} {
		b, err := exec.Command("ip", family, "rule", "show").CombinedOutput()
		if err != nil {
			t.Fatalf("ip rule show: %v: %s", err, b)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Fields(l)
			i := slices.Index(f, "proto")
			if len(f) < 3 || f[1] != "from" || i < 0 || i+1 >= len(f) || f[i+1] != "116" {
				continue
			}
			out = append(out, strings.TrimSuffix(f[0], ":")+"/"+family[1:]+" from "+f[2])
		}
	}
	slices.Sort(out)
	return out
}

// TestPrivilegedStrayRulesOfOtherActions: rules of protocol 116 outside
// the band that tunneld's own rules never are, each named in a warning
// with a command that deletes it: a deprecated nat rule (an action ip(8)
// shows as masquerade and has no word to delete by: a tester's was in no
// warning), and a single port, which a kernel of 6.15 and later sends
// with a mask (a tester's command carried a needless "attr:29" comment).
func TestPrivilegedStrayRulesOfOtherActions(t *testing.T) {
	netnstest.Enter(t)
	state := t.TempDir()
	file := filepath.Join(t.TempDir(), "tunneld.toml")
	if err := os.WriteFile(file, []byte("[global]\nfirewall = false\n[[rule]]\nfrom = \"10.100.2.1\"\ntable = 102\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := linuxRun(state, file, linux.Options{})
	for _, add := range []string{
		"ip rule add from 10.1.1.8 nat 192.0.2.9 priority 25009 protocol 116",
		"ip rule add from 10.1.1.9 ipproto tcp dport 80 lookup 102 priority 25010 protocol 116",
	} {
		if b, err := exec.Command("sh", "-c", add).CombinedOutput(); err != nil {
			t.Skipf("%s: %v: %s", add, err, b)
		}
	}
	if code, out, errs := run("apply"); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs := run("status")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s%s", code, out, errs)
	}
	var dels []string
	for _, l := range strings.Split(out, "\n") {
		if _, del, ok := strings.Cut(l, "delete it: "); ok && strings.HasPrefix(l, "warning: IPv4 rule at priority 250") {
			dels = append(dels, del)
		}
	}
	want := []string{
		"ip rule del from 10.1.1.8 lookup main priority 25009 protocol 116  # the rule's action 10 has no ip(8) word (a deprecated nat rule's, shown as masquerade or map-to): the command names none, and deletes the rule whatever its action",
		"ip rule del from 10.1.1.9 dport 80 ipproto 6 lookup 102 priority 25010 protocol 116",
	}
	if !slices.Equal(dels, want) {
		t.Fatalf("the warnings' commands:\n%q\nwant\n%q\nstatus:\n%s", dels, want, out)
	}
	// Each deletes its rule (sh takes the comment for one).
	for i, del := range dels {
		if b, err := exec.Command("sh", "-c", del).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", del, err, b)
		}
		left := [][]string{{"20000/4 from 10.100.2.1", "25010/4 from 10.1.1.9"}, {"20000/4 from 10.100.2.1"}}[i]
		if got := protocolRules(t); !slices.Equal(got, left) {
			t.Errorf("after %s: rules of protocol 116 %q, want %q", del, got, left)
		}
	}
	if code, out, errs := run("status"); code != 0 || strings.Contains(out, "warning") {
		t.Errorf("status after the deletions: exit %d, want no warning\n%s%s", code, out, errs)
	}
}

// linuxRun runs tunneld's commands with the configuration file and the
// state directory state, on the namespace's kernel (opts, with the state
// directory and an optional filter): it returns the exit code, stdout and
// stderr.
func linuxRun(state, file string, opts linux.Options) func(args ...string) (int, string, string) {
	opts.StateDir, opts.FilterOptional = state, true
	return func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		env := &Env{Stdout: &out, Stderr: &errb, StateDir: state, Kernel: func(bool) (kernel.Kernel, error) {
			return linux.Open(opts)
		}}
		code := Main(env, append(args, "-c", file))
		return code, out.String(), errb.String()
	}
}
