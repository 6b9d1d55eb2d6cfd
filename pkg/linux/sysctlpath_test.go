package linux

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/kernel"
)

// TestTunneldSysctl: a sysctl record names only sysctls tunneld can
// set: ip_forward and IPv6 forwarding, what the kernel copies them onto,
// an interface's proxy_arp.
func TestTunneldSysctl(t *testing.T) {
	for _, tc := range []struct {
		path  string
		index int
		want  bool
	}{
		{"net/ipv4/ip_forward", 0, true},
		{"net/ipv6/conf/all/forwarding", 0, true},
		{"net/ipv4/conf/eth0/forwarding", 3, true},
		{"net/ipv4/conf/default/forwarding", 0, true},
		{"net/ipv6/conf/lan.5/forwarding", 0, true},
		{"net/ipv4/conf/all/accept_redirects", 0, true},
		{"net/ipv4/conf/lan/proxy_arp", 7, true},
		{"net/ipv4/conf/br-lan@x/proxy_arp", 0, true}, // the kernel takes the name
		{"kernel/hostname", 0, false},
		{"kernel/core_pattern", 0, false},
		{"net/ipv4/tcp_syncookies", 0, false},
		{"net/ipv4/conf/all/forwarding", 0, false}, // ip_forward's twin: never written
		{"net/ipv4/conf/eth0/rp_filter", 0, false},
		{"net/ipv4/conf/eth0/accept_redirects", 0, false},
		{"net/ipv6/conf/eth0/proxy_ndp", 0, false},
		{"net/ipv4/conf/all/proxy_arp", 0, false},
		{"net/ipv4/conf/default/proxy_arp", 0, false},
		{"net/ipv4/conf/all/accept_redirects", 4, false}, // Rekey would move it to a device's
		{"net/ipv4/conf/default/forwarding", 4, false},
		{"net/ipv4/conf/a b/proxy_arp", 0, false},
		{"net/ipv4/conf/a:1/proxy_arp", 0, false},
		{"net/ipv4/conf/../proxy_arp", 0, false},
		{"net/ipv4/conf/abcdefghijklmnop/proxy_arp", 0, false},
		{"net/ipv4/conf//proxy_arp", 0, false},
		{"net/ipv4/conf/eth0/forwarding/x", 0, false},
		{"/net/ipv4/ip_forward", 0, false},
		{"net/ipv4/ip_forward/", 0, false},
	} {
		if got := tunneldSysctl(tc.path, kernel.SysctlEntry{Index: tc.index}); got != tc.want {
			t.Errorf("tunneldSysctl(%q, index %d) = %v, want %v", tc.path, tc.index, got, tc.want)
		}
	}
}

// TestForeignSysctlsDropped: an entry of a sysctl tunneld never sets
// is dropped from the record as it is read, with a warning that names
// it, once: a process that holds the lock writes the record without it
// (an empty record kept, {}); one that does not leaves the file. A
// tester's forged sysctl.json had down and the daemon's start write
// kernel.hostname and net.ipv4.tcp_syncookies.
func TestForeignSysctlsDropped(t *testing.T) {
	const forged = `{
  "kernel/hostname": {"original": "PWNED", "ours": ["box"]},
  "net/ipv4/ip_forward": {"original": "0", "ours": ["1"]},
  "net/ipv4/tcp_syncookies": {"original": "0", "ours": ["1"]},
  "net/ipv4/conf/ev\u001b[31m/rp_filter": {"original": "0"}
}`
	want := kernel.SysctlRecord{"net/ipv4/ip_forward": {Original: "0", Ours: []string{"1"}}}
	for _, tc := range []struct {
		name    string
		content string
		want    kernel.SysctlRecord
	}{
		{"with ip_forward", forged, want},
		{"alone", `{"net/ipv4/tcp_syncookies": "0"}`, kernel.SysctlRecord{}},
	} {
		for _, locked := range []bool{false, true} {
			dir := t.TempDir()
			path := filepath.Join(dir, sysctlFile)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			k := &Kernel{opts: Options{StateDir: dir}, locked: locked}
			got, err := k.originals()
			if diff := cmp.Diff(tc.want, got); err != nil || diff != "" {
				t.Errorf("%s, locked %v: %v (-want +got):\n%s", tc.name, locked, err, diff)
			}
			names := []string{"kernel.hostname", "net.ipv4.tcp_syncookies", `"net.ipv4.conf.ev\x1b[31m.rp_filter"`}
			if tc.name == "alone" {
				names = names[1:2]
			}
			if len(k.warnings) != len(names) {
				t.Errorf("%s, locked %v: warnings %q, want %d", tc.name, locked, k.warnings, len(names))
				continue
			}
			for _, w := range k.warnings {
				if !strings.Contains(w, "state record "+path+" names sysctl ") || !strings.Contains(w, "not tunneld's doing") || !strings.HasSuffix(w, "the sysctl left alone") {
					t.Errorf("%s: warning %q does not say what it is", tc.name, w)
				}
			}
			for i, n := range names {
				if !strings.Contains(strings.Join(k.warnings, "\n"), " sysctl "+n+", ") {
					t.Errorf("%s: warnings %q do not name %s (%d)", tc.name, k.warnings, n, i)
				}
			}
			next := &Kernel{opts: k.opts, locked: true}
			again, err := next.originals()
			if diff := cmp.Diff(tc.want, again); err != nil || diff != "" {
				t.Errorf("%s, locked %v, read again: %v (-want +got):\n%s", tc.name, locked, err, diff)
			}
			if said := len(next.warnings) > 0; said == locked {
				t.Errorf("%s, locked %v: read again, warnings %q", tc.name, locked, next.warnings)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s, locked %v: the record is gone (%v), want it kept", tc.name, locked, err)
			}
		}
	}
}

// TestForeignSysctlsNotAdopted: an entry of a sysctl tunneld never sets,
// written in the record under a running daemon, is not taken into its
// memory (AdoptRecords), is said once, and leaves the file.
func TestForeignSysctlsNotAdopted(t *testing.T) {
	dir := t.TempDir()
	k := &Kernel{opts: Options{StateDir: dir}, locked: true}
	rec := kernel.SysctlRecord{"net/ipv4/ip_forward": {Original: "0", Ours: []string{"1"}}}
	if err := k.saveOriginals(rec); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, sysctlFile)
	if err := os.WriteFile(path, []byte(`{"kernel/core_pattern": {"original": "|/tmp/x"}, "net/ipv4/ip_forward": {"original": "0", "ours": ["1"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		k.AdoptRecords()
		got, _ := k.originals()
		if diff := cmp.Diff(rec, got); diff != "" {
			t.Errorf("adoption %d (-want +got):\n%s", i, diff)
		}
	}
	if len(k.warnings) != 1 || !strings.Contains(k.warnings[0], "names sysctl kernel.core_pattern, which tunneld never sets") {
		t.Errorf("warnings %q, want one naming kernel.core_pattern", k.warnings)
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), "core_pattern") {
		t.Errorf("the record still names it:\n%s", b)
	}
}
