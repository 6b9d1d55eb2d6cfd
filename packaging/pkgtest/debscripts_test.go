package pkgtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDebScriptsOtherRoot runs the .deb's maintainer scripts as dpkg does
// for an install, an upgrade and a purge, with systemd's commands stubbed
// to record their calls and a stand-in for /run/systemd/system (a booted
// systemd): with DPKG_ROOT set (dpkg --root, chrootless) they leave this
// machine's systemd and /run alone; deb-systemd-helper, which honours
// DPKG_ROOT itself, may still record the enablement in that root.
func TestDebScriptsOtherRoot(t *testing.T) {
	gate(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	systemd := filepath.Join(dir, "systemd-system")
	runDir := filepath.Join(dir, "run-tunneld")
	logf := filepath.Join(dir, "log")
	for _, d := range []string{bin, systemd, runDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []string{"systemctl", "deb-systemd-invoke", "deb-systemd-helper"} {
		stub := "#!/bin/sh\necho \"" + c + " $*\" >>'" + logf + "'\n[ \"$1\" != --quiet ]\n"
		if err := os.WriteFile(filepath.Join(bin, c), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := map[string]string{}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		b := string(readFile(t, "packaging/debian/"+s))
		b = strings.ReplaceAll(b, "/run/systemd/system", systemd)
		b = strings.ReplaceAll(b, "/run/tunneld", runDir)
		b = strings.ReplaceAll(b, "/etc/tunneld", filepath.Join(dir, "etc-tunneld"))
		script[s] = filepath.Join(dir, s)
		if err := os.WriteFile(script[s], []byte(b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
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
		"deb-systemd-invoke restart tunneld.service", "deb-systemd-invoke stop tunneld.service"} {
		if !strings.Contains(got, want) {
			t.Errorf("without DPKG_ROOT, %q was not run; the calls:\n%s", want, got)
		}
	}
	if _, err := os.Stat(runDir); !os.IsNotExist(err) {
		t.Errorf("without DPKG_ROOT, the purge left the run directory: %v", err)
	}
}
