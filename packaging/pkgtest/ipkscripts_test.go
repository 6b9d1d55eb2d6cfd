package pkgtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIPKScripts runs the .ipk's postinst and prerm the way opkg does,
// against a stand-in for /etc/init.d/tunneld that records what it is asked
// and keeps the enablement in a file. opkg (opkg-lede's opkg_install.c and
// pkg.c) runs, on an upgrade, the old package's prerm with
// "upgrade NEWVERSION" and then the new package's postinst with
// "configure", both with PKG_UPGRADE=1; on a removal the prerm with
// "remove" and PKG_UPGRADE=0.
func TestIPKScripts(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "enabled")
	logf := filepath.Join(dir, "log")
	initd := filepath.Join(dir, "tunneld.init")
	fake := "#!/bin/sh\necho \"$1\" >>'" + logf + "'\ncase $1 in\n" +
		"enable) : >'" + state + "' ;;\n" +
		"disable) rm -f '" + state + "' ;;\n" +
		"enabled) [ -e '" + state + "' ] ;;\nesac\n"
	if err := os.WriteFile(initd, []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	script := map[string]string{}
	for _, s := range []string{"postinst", "prerm"} {
		b := strings.ReplaceAll(string(readFile(t, "packaging/ipk/"+s)), "/etc/init.d/tunneld", initd)
		script[s] = filepath.Join(dir, s)
		if err := os.WriteFile(script[s], []byte(b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opkg := func(s, upgrade, instroot string, args ...string) {
		t.Helper()
		run(t, dir, []string{"PKG_UPGRADE=" + upgrade, "IPKG_INSTROOT=" + instroot, "IPKG_NO_SCRIPT="},
			"sh", append([]string{script[s]}, args...)...)
	}
	// actions returns (and forgets) what the init script was asked.
	actions := func() string {
		t.Helper()
		b, _ := os.ReadFile(logf)
		os.Remove(logf)
		return strings.Join(strings.Fields(string(b)), " ")
	}
	enabled := func() bool { _, err := os.Stat(state); return err == nil }

	// An image being built: nothing at all.
	opkg("postinst", "0", "/build/root", "configure")
	if a := actions(); a != "" || enabled() {
		t.Errorf("postinst with IPKG_INSTROOT set ran %q", a)
	}

	opkg("postinst", "0", "", "configure")
	if a := actions(); a != "enable enabled start" || !enabled() {
		t.Errorf("fresh install: %q, enabled %v; want enable, start", a, enabled())
	}

	opkg("prerm", "1", "", "upgrade", "9.9.9-1")
	opkg("postinst", "1", "", "configure")
	a := actions()
	if !enabled() {
		t.Errorf("upgrade of an enabled service left it disabled (%q)", a)
	}
	if !strings.HasSuffix(a, "restart") {
		t.Errorf("upgrade of an enabled service: %q, want it restarted last", a)
	}

	os.Remove(state)
	opkg("prerm", "1", "", "upgrade", "9.9.9-1")
	opkg("postinst", "1", "", "configure")
	if a := actions(); enabled() || strings.Contains(a, "start") {
		t.Errorf("upgrade of a disabled service: %q, enabled %v; want it left disabled and not started", a, enabled())
	}

	os.WriteFile(state, nil, 0o644)
	opkg("prerm", "0", "", "remove")
	if a := actions(); a != "stop disable" || enabled() {
		t.Errorf("remove: %q, enabled %v; want stop, disable", a, enabled())
	}
}
