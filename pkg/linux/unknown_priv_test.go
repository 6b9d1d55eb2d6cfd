package linux

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// TestPrivilegedSysctlsUnknown: a process whose first observation finds
// tunneld's objects in the kernel (here a rule of its protocol in its
// band) and no sysctl record in the state directory (keep_on_exit, then
// the directory wiped: a tester's) takes the originals of the sysctls
// already as the configuration sets them for unknown, and the plan warns
// that down leaves them; not with a record, not for objects it made
// itself after its first observation, and not for an unreadable record,
// which has a warning of its own.
func TestPrivilegedSysctlsUnknown(t *testing.T) {
	const warned = "the values before tunneld of net.ipv4.ip_forward = 1, already as the configuration sets them, are unknown, and `tunneld down` leaves them as they are"
	for _, tc := range []struct {
		name    string
		record  string // the sysctl record's content; "" for none
		before  bool   // tunneld's rule there before the first observation
		unknown bool
	}{
		{"objects, no record", "", true, true},
		{"objects, a record", `{"net/ipv4/conf/lo/proxy_arp": {"original": "0", "ours": ["1"]}}`, true, false},
		{"objects, an unreadable record", "{garbage", true, false},
		{"objects, an empty record", "{}\n", true, false},
		{"no objects at the first observation", "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			netnstest.Enter(t)
			dir := t.TempDir()
			if tc.record != "" {
				if err := os.WriteFile(filepath.Join(dir, sysctlFile), []byte(tc.record), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			writeSysctl(t, "net/ipv4/ip_forward", "1")
			rule := netnstest.Rule{Family: unix.AF_INET, Priority: 20500, Proto: model.RuleProtocol, Table: 100}
			if tc.before {
				if err := netnstest.AddRule(rule); err != nil {
					t.Fatal(err)
				}
			}
			k, err := Open(Options{StateDir: dir, NoFilter: true})
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			k.StateLocked()
			c := parse(t, "[global]\nip_forward = true\n")
			s, err := engine.Look(ctx, k, c, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.before {
				// Made by this process: a later observation finds it.
				if err := netnstest.AddRule(rule); err != nil {
					t.Fatal(err)
				}
				if s, err = engine.Look(ctx, k, c, nil); err != nil {
					t.Fatal(err)
				}
			}
			if len(s.Have.Rules) != 1 {
				t.Fatalf("tunneld's rules observed: %v, want the one", s.Have.Rules)
			}
			said := 0
			for _, w := range s.Want.Warnings {
				if strings.Contains(w, warned) {
					said++
				}
			}
			if diff := cmp.Diff(tc.unknown, s.Inputs.SysctlsUnknown); diff != "" {
				t.Errorf("originals unknown (-want +got):\n%s", diff)
			}
			if warnedOnce := said == 1; warnedOnce != tc.unknown {
				t.Errorf("warnings %q: the unknown originals said %v, want %v", s.Want.Warnings, warnedOnce, tc.unknown)
			}
		})
	}
}

// TestPrivilegedSysctlRecordKept: an apply that adds tunneld's objects
// and finds every sysctl already as the configuration sets it keeps an
// empty sysctl record ({}), so that a later process that finds the
// objects does not take the originals for lost; down removes it with the
// rest.
func TestPrivilegedSysctlRecordKept(t *testing.T) {
	netnstest.Enter(t)
	dir := t.TempDir()
	path := filepath.Join(dir, sysctlFile)
	writeSysctl(t, "net/ipv4/ip_forward", "1")
	c := parse(t, "[global]\nip_forward = true\n[[rule]]\nfrom = \"10.0.0.0/24\"\ntable = 100\n")
	open := func() *Kernel {
		k, err := Open(Options{StateDir: dir, NoFilter: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { k.Close() })
		k.StateLocked()
		return k
	}
	if _, err := engine.Converge(ctx, open(), c, nil); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "{}\n" {
		t.Errorf("the record after the apply: %q, %v; want {}", b, err)
	}
	k := open()
	s, err := engine.Look(ctx, k, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Inputs.SysctlsUnknown || len(s.Want.Warnings) != 0 {
		t.Errorf("the next process: originals unknown %v, warnings %q; want neither", s.Inputs.SysctlsUnknown, s.Want.Warnings)
	}
	if _, err := engine.Down(ctx, k, c); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the record after down: %v, want it gone", err)
	}
}
