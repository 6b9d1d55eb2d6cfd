package linux

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tunneld/tunneld/pkg/engine"
)

// TestPrivilegedForgedSysctlRecord: down writes no sysctl that tunneld
// never sets, whatever the record says (a tester's forged sysctl.json
// had down write net.ipv4.tcp_syncookies and kernel.hostname as their
// "originals"), and still puts back those it set.
func TestPrivilegedForgedSysctlRecord(t *testing.T) {
	k := open(t)
	k.StateLocked()
	writeSysctl(t, "net/ipv4/ip_forward", "0")
	writeSysctl(t, "net/ipv4/tcp_syncookies", "1")
	c := parse(t, "[global]\nfirewall = false\nip_forward = true\n")
	if _, err := engine.Converge(ctx, k, c, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(k.opts.StateDir, sysctlFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(string(b), "{", `{"net/ipv4/tcp_syncookies": {"original": "0", "ours": ["1"]}, `, 1)
	if err := os.WriteFile(path, []byte(forged), 0o600); err != nil {
		t.Fatal(err)
	}
	k2, rep := downApart(t, k, c)
	for p, want := range map[string]string{"net/ipv4/tcp_syncookies": "1", "net/ipv4/ip_forward": "0"} {
		if v, _ := k2.readSysctl(p); v != want {
			t.Errorf("%s = %s after down, want %s", p, v, want)
		}
	}
	if w := strings.Join(rep.Last.Want.Warnings, "\n"); !strings.Contains(w, "names sysctl net.ipv4.tcp_syncookies, which tunneld never sets") {
		t.Errorf("down's warnings do not name the forged sysctl:\n%s", w)
	}
}
