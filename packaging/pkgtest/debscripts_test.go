package pkgtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDebScriptsOtherRoot runs the .deb's maintainer scripts as dpkg does
// for an install, an upgrade and a purge, with systemd's commands stubbed
// to record their calls and a stand-in for /run/systemd/system (a booted
// systemd): with DPKG_ROOT set (dpkg --root, chrootless) they leave this
// machine's systemd and /run alone; deb-systemd-helper, which honours
// DPKG_ROOT itself, may still record the enablement in that root.
func TestDebScriptsOtherRoot(t *testing.T) {
	gate(t)
	d := newDebScripts(t)
	dir, bin, runDir, logf, script := d.dir, d.bin, d.runDir, d.logf, d.script
	// calls runs dpkg's sequence and returns the commands other than
	// deb-systemd-helper that were run.
	calls := func(dpkgRoot string) []string {
		t.Helper()
		os.Remove(logf)
		env := []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "DPKG_ROOT=" + dpkgRoot}
		for _, step := range [][]string{
			{"postinst", "configure"},
			{"prerm", "upgrade", "9.9.9-1"}, {"postinst", "configure", "0.0.1-1"},
			{"prerm", "remove"}, {"postrm", "remove"}, {"postrm", "purge"},
		} {
			run(t, dir, env, "sh", append([]string{script[step[0]]}, step[1:]...)...)
		}
		b, _ := os.ReadFile(logf)
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l != "" && !strings.HasPrefix(l, "deb-systemd-helper ") {
				out = append(out, l)
			}
		}
		return out
	}
	if got := calls("/srv/other-root"); len(got) != 0 {
		t.Errorf("with DPKG_ROOT set, the scripts ran on this machine:\n%s", strings.Join(got, "\n"))
	}
	if _, err := os.Stat(runDir); err != nil {
		t.Errorf("with DPKG_ROOT set, the purge removed this machine's run directory: %v", err)
	}
	// The same sequence for this machine's root does reach systemd: the
	// stand-ins are in place.
	got := strings.Join(calls(""), "\n")
	for _, want := range []string{"systemctl --system daemon-reload", "deb-systemd-invoke start tunneld.service",
		"deb-systemd-invoke restart tunneld.service", "deb-systemd-invoke stop tunneld.service\ntunneld down"} {
		if !strings.Contains(got, want) {
			t.Errorf("without DPKG_ROOT, %q was not run; the calls:\n%s", want, got)
		}
	}
	if _, err := os.Stat(runDir); !os.IsNotExist(err) {
		t.Errorf("without DPKG_ROOT, the purge left the run directory: %v", err)
	}
}

// debScripts are the .deb's maintainer scripts in a scratch directory,
// rewritten to use stand-ins: systemctl, deb-systemd-invoke and
// deb-systemd-helper in bin record their calls in logf; systemd
// (/run/systemd/system), runDir (/run/tunneld) and etc-tunneld are
// directories of dir; /usr/sbin/tunneld is fakeCheck, which fails while
// the file invalid exists.
type debScripts struct {
	dir, bin, runDir, logf, invalid string
	script                          map[string]string
}

func newDebScripts(t *testing.T) debScripts {
	t.Helper()
	dir := t.TempDir()
	d := debScripts{
		dir: dir, bin: filepath.Join(dir, "bin"), runDir: filepath.Join(dir, "run-tunneld"),
		logf: filepath.Join(dir, "log"), invalid: filepath.Join(dir, "invalid"), script: map[string]string{},
	}
	systemd := filepath.Join(dir, "systemd-system")
	for _, p := range []string{d.bin, systemd, d.runDir} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []string{"systemctl", "deb-systemd-invoke", "deb-systemd-helper"} {
		stub := "#!/bin/sh\necho \"" + c + " $*\" >>'" + d.logf + "'\n[ \"$1\" != --quiet ]\n"
		if err := os.WriteFile(filepath.Join(d.bin, c), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// setpriv records its options and runs the command as it is, telling
	// the tunneld stand-in (SETPRIV=1).
	setpriv := "#!/bin/sh\nopts=\nwhile [ \"${1#--}\" != \"$1\" ]; do opts=\"$opts $1\"; shift; done\n" +
		"echo \"setpriv$opts\" >>'" + d.logf + "'\nSETPRIV=1 exec \"$@\"\n"
	if err := os.WriteFile(filepath.Join(d.bin, "setpriv"), []byte(setpriv), 0o755); err != nil {
		t.Fatal(err)
	}
	tunneld := filepath.Join(dir, "tunneld")
	if err := os.WriteFile(tunneld, []byte(fakeCheck(d.invalid)), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		b := string(readFile(t, "packaging/debian/"+s))
		b = strings.ReplaceAll(b, "/run/systemd/system", systemd)
		b = strings.ReplaceAll(b, "/run/tunneld", d.runDir)
		b = strings.ReplaceAll(b, "/usr/sbin/tunneld", tunneld)
		// Not /etc/tunneld/tunneld.toml: the stand-in is asked about it.
		b = strings.ReplaceAll(b, "/etc/tunneld ", filepath.Join(dir, "etc-tunneld")+" ")
		d.script[s] = filepath.Join(dir, s)
		if err := os.WriteFile(d.script[s], []byte(b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// TestDebScriptsUpgradeInvalid runs an upgrade (the old prerm "upgrade",
// the new postinst "configure OLDVERSION") as dpkg does, with a booted
// systemd stood in for: with a file the new binary refuses (an edit not
// reloaded yet) the daemon is not restarted, since the restart's stop would
// tear everything down and its ExecStartPre then refuse to start it; one
// line on stderr says so, and dpkg succeeds. With a valid file it is
// restarted, unless the unit's user cannot read it (checked as nobody).
func TestDebScriptsUpgradeInvalid(t *testing.T) {
	gate(t)
	tests := []struct {
		name      string
		invalid   bool
		wantCalls []string
		wantErr   string
	}{
		{"valid", false, []string{"systemctl --system daemon-reload", "setpriv --reuid=nobody --regid=nogroup --clear-groups", "deb-systemd-invoke restart tunneld.service"}, ""},
		// Valid, but not to the unit's dynamic user (a root 0600 file).
		{"unreadable", false, []string{"systemctl --system daemon-reload", "setpriv --reuid=nobody --regid=nogroup --clear-groups"},
			"tunneld: not restarted after the upgrade (a running daemon keeps the old version and its configuration): " +
				"the user the unit runs as cannot use /etc/tunneld/tunneld.toml: tunneld: open /etc/tunneld/tunneld.toml: permission denied (tunneld runs as uid 65534 here, which may not read it); " +
				"fix it, then run: systemctl restart tunneld\n"},
		{"invalid", true, []string{"systemctl --system daemon-reload"},
			"tunneld: not restarted after the upgrade (a running daemon keeps the old version and its configuration): " +
				"2 problem(s) in /etc/tunneld/tunneld.toml, first: /etc/tunneld/tunneld.toml:2:14: syntax error: expected value but found \"ture\" instead; " +
				"fix it (tunneld check -c /etc/tunneld/tunneld.toml lists them), then run: systemctl restart tunneld\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDebScripts(t)
			if tt.invalid {
				os.WriteFile(d.invalid, nil, 0o644)
			}
			if tt.name == "unreadable" {
				os.WriteFile(filepath.Join(d.dir, "unreadable"), nil, 0o644)
			}
			env := []string{"PATH=" + d.bin + ":" + os.Getenv("PATH"), "DPKG_ROOT="}
			var stderr string
			for _, step := range [][]string{{"prerm", "upgrade", "9.9.9-1"}, {"postinst", "configure", "0.0.1-1"}} {
				_, errOut, err := runErr(d.dir, env, "sh", append([]string{d.script[step[0]]}, step[1:]...)...)
				if err != nil {
					t.Errorf("%s: %v\n%s", strings.Join(step, " "), err, errOut)
				}
				stderr += errOut
			}
			b, _ := os.ReadFile(d.logf)
			var calls []string
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if l != "" && !strings.HasPrefix(l, "deb-systemd-helper ") {
					calls = append(calls, l)
				}
			}
			if diff := cmp.Diff(tt.wantCalls, calls); diff != "" {
				t.Errorf("systemd calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantErr, stderr); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}
