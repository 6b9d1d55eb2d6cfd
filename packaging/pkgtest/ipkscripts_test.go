package pkgtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
	// The new package's binary: `check` fails while the file "invalid"
	// exists, printing two problems.
	invalid := filepath.Join(dir, "invalid")
	bin := filepath.Join(dir, "tunneld")
	if err := os.WriteFile(bin, []byte(fakeCheck(invalid)), 0o755); err != nil {
		t.Fatal(err)
	}
	script := map[string]string{}
	for _, s := range []string{"postinst", "prerm"} {
		b := strings.ReplaceAll(string(readFile(t, "packaging/ipk/"+s)), "/etc/init.d/tunneld", initd)
		b = strings.ReplaceAll(b, "/usr/sbin/tunneld", bin)
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

	// An upgrade while the file holds an edit the new binary refuses: the
	// running daemon is left alone (a restart would tear everything down
	// and start nothing), one line on stderr says so, and opkg succeeds.
	os.WriteFile(invalid, nil, 0o644)
	opkg("prerm", "1", "", "upgrade", "9.9.9-1")
	_, errOut, err := runErr(dir, []string{"PKG_UPGRADE=1", "IPKG_INSTROOT=", "IPKG_NO_SCRIPT="}, "sh", script["postinst"], "configure")
	if err != nil {
		t.Errorf("upgrade with an invalid file: postinst failed: %v", err)
	}
	if diff := cmp.Diff("enabled", actions()); diff != "" {
		t.Errorf("upgrade with an invalid file: the init script was asked (-want +got):\n%s", diff)
	}
	wantErr := "tunneld: not restarted after the upgrade (a running daemon keeps the old version and its configuration): " +
		"2 problem(s) in /etc/tunneld/tunneld.toml, first: /etc/tunneld/tunneld.toml:2:14: syntax error: expected value but found \"ture\" instead; " +
		"fix it (tunneld check -c /etc/tunneld/tunneld.toml lists them), then run: " + initd + " restart\n"
	if diff := cmp.Diff(wantErr, errOut); diff != "" {
		t.Errorf("upgrade with an invalid file: stderr (-want +got):\n%s", diff)
	}
	os.Remove(invalid)

	os.Remove(state)
	opkg("prerm", "1", "", "upgrade", "9.9.9-1")
	opkg("postinst", "1", "", "configure")
	if a := actions(); enabled() || strings.Contains(a, "start") {
		t.Errorf("upgrade of a disabled service: %q, enabled %v; want it left disabled and not started", a, enabled())
	}

	// A removal stops the daemon, then has down remove what it kept
	// (keep_on_exit = true), once the daemon has ended: down is refused
	// while it runs, and tried again a second later.
	os.WriteFile(state, nil, 0o644)
	os.WriteFile(filepath.Join(dir, "busy"), nil, 0o644)
	opkg("prerm", "0", "", "remove")
	if a := actions(); a != "stop tunneld down tunneld down disable" || enabled() {
		t.Errorf("remove: %q, enabled %v; want stop, down (refused, then again), disable", a, enabled())
	}
}

// fakeCheck is a stand-in tunneld whose `check -c /etc/tunneld/tunneld.toml`
// passes unless the file invalid exists; then it prints two problems and
// fails, as tunneld check does. Run by the setpriv stand-in (SETPRIV=1)
// it fails while the file DIR/unreadable exists (DIR: invalid's), as
// tunneld does on a file its user may not read. `down -c
// /etc/tunneld/tunneld.toml` is recorded in DIR/log as "tunneld down";
// while DIR/busy exists, it is refused once (the daemon still running)
// and DIR/busy removed. Anything else it is asked fails.
func fakeCheck(invalid string) string {
	dir := filepath.Dir(invalid)
	return "#!/bin/sh\n" +
		"if [ \"$*\" = 'down -c /etc/tunneld/tunneld.toml' ]; then\n" +
		"  echo 'tunneld down' >>'" + filepath.Join(dir, "log") + "'\n" +
		"  [ -e '" + filepath.Join(dir, "busy") + "' ] || exit 0\n" +
		"  rm '" + filepath.Join(dir, "busy") + "'; echo 'tunneld: state directory /run/tunneld: held by tunneld run (pid 7)' >&2; exit 1\n" +
		"fi\n" +
		"[ \"$*\" = 'check -c /etc/tunneld/tunneld.toml' ] || { echo \"tunneld stand-in: unexpected $*\" >&2; exit 2; }\n" +
		"if [ \"$SETPRIV\" = 1 ] && [ -e '" + filepath.Join(dir, "unreadable") + "' ]; then\n" +
		"  echo 'tunneld: open /etc/tunneld/tunneld.toml: permission denied (tunneld runs as uid 65534 here, which may not read it)' >&2; exit 1\n" +
		"fi\n" +
		"[ -e '" + invalid + "' ] || { echo '/etc/tunneld/tunneld.toml: ok (0 tunnels, 0 routes, 0 rules)'; exit 0; }\n" +
		"echo '/etc/tunneld/tunneld.toml:2:14: syntax error: expected value but found \"ture\" instead'\n" +
		"echo '/etc/tunneld/tunneld.toml:3:1: global.foo: unknown option'\n" +
		"exit 1\n"
}
