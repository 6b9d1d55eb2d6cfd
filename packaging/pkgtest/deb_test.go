package pkgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The .deb is built once, into debDir, and shared by the tests below.
var (
	debOnce sync.Once
	debDir  string
	debPath string
	debErr  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if debDir != "" {
		os.RemoveAll(debDir)
	}
	os.Exit(code)
}

func buildDeb(t *testing.T) string {
	t.Helper()
	debOnce.Do(func() {
		var err error
		if debDir, err = os.MkdirTemp("", "tunneld-deb-"); err != nil {
			debErr = err.Error()
			return
		}
		out, errOut, err := runErr(repoRoot(t), nil, "make", "--no-print-directory", "deb",
			"DEB_ARCH=amd64", "DIST="+debDir, "SOURCE_DATE_EPOCH="+strconv.Itoa(epoch))
		if err != nil {
			debErr = "make deb: " + err.Error() + "\n" + out + errOut
			return
		}
		debPath = lastLine(out)
	})
	if debErr != "" {
		t.Fatal(debErr)
	}
	return debPath
}

// unpackDeb extracts the package's files (dpkg -x) and its control area
// (dpkg-deb -e) into a scratch root.
func unpackDeb(t *testing.T, deb string) (root, control string) {
	t.Helper()
	root, control = t.TempDir(), t.TempDir()
	run(t, "", nil, "dpkg", "-x", deb, root)
	run(t, "", nil, "dpkg-deb", "-e", deb, control)
	return root, control
}

var debFiles = map[string]os.FileMode{
	"usr/sbin/tunneld":                            0o755,
	"lib/systemd/system/tunneld.service":          0o644,
	"etc/tunneld/tunneld.toml":                    0o644,
	"usr/share/doc/tunneld/README.md":             0o644,
	"usr/share/doc/tunneld/README.packaging.md":   0o644,
	"usr/share/doc/tunneld/reference.toml":        0o644,
	"usr/share/doc/tunneld/examples/6in4-he.toml": 0o644,
	"usr/share/doc/tunneld/examples/dslite.toml":  0o644,
	"usr/share/doc/tunneld/copyright":             0o644,
	"usr/share/doc/tunneld/changelog.Debian.gz":   0o644,
	"usr/share/man/man8/tunneld.8.gz":             0o644,
	"usr/share/lintian/overrides/tunneld":         0o644,
}

func TestDeb(t *testing.T) {
	gate(t)
	need(t, "dpkg-deb", "dpkg")
	deb := buildDeb(t)
	if !regexp.MustCompile(`/tunneld_[0-9][0-9A-Za-z.+~]*-[0-9]+_amd64\.deb$`).MatchString(deb) {
		t.Errorf("package name %q, want DIST/tunneld_VERSION_amd64.deb", deb)
	}

	info := run(t, "", nil, "dpkg-deb", "--info", deb)
	for _, want := range []string{"Package: tunneld", "Architecture: amd64", "Section: net", "Maintainer: ", "Installed-Size: ", "Description: "} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb --info lacks %q", want)
		}
	}
	// dpkg-deb --contents: every entry root/root, every file listed.
	contents := run(t, "", nil, "dpkg-deb", "--contents", deb)
	for _, line := range strings.Split(strings.TrimSpace(contents), "\n") {
		if fs := strings.Fields(line); len(fs) < 2 || fs[1] != "root/root" {
			t.Errorf("not owned by root/root: %s", line)
		}
	}
	for f := range debFiles {
		if !strings.Contains(contents, " ./"+f+"\n") && !strings.HasSuffix(contents, " ./"+f) {
			t.Errorf("dpkg-deb --contents does not list %s", f)
		}
	}

	root, control := unpackDeb(t, deb)
	for f, mode := range debFiles {
		st, err := os.Stat(filepath.Join(root, f))
		if err != nil {
			t.Error(err)
			continue
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", f, st.Mode().Perm(), mode)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(control, "conffiles")); string(b) != "/etc/tunneld/tunneld.toml\n" {
		t.Errorf("conffiles = %q", b)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		st, err := os.Stat(filepath.Join(control, s))
		if err != nil || st.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s missing or not executable: %v", s, err)
		}
	}
	for _, s := range []string{"md5sums", "control"} {
		if _, err := os.Stat(filepath.Join(control, s)); err != nil {
			t.Error(err)
		}
	}
	got, _ := os.ReadFile(filepath.Join(root, "etc/tunneld/tunneld.toml"))
	if string(got) != string(readFile(t, "packaging/tunneld.toml")) {
		t.Error("the conffile differs from packaging/tunneld.toml")
	}
	unit, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/tunneld.service"))
	if string(unit) != string(readFile(t, "init/tunneld.service")) {
		t.Error("the unit differs from init/tunneld.service")
	}

	// The binary runs here (amd64): it knows its version and accepts the
	// configuration it ships with.
	if runtime.GOARCH == "amd64" {
		bin := filepath.Join(root, "usr/sbin/tunneld")
		out := run(t, "", nil, bin, "version")
		if v := gitVersion(t); !strings.Contains(out, v) {
			t.Errorf("tunneld version = %q, want %q in it", out, v)
		}
		run(t, "", nil, bin, "check", "-c", filepath.Join(root, "etc/tunneld/tunneld.toml"))
	}
}

// TestDebDepends: every program the unit runs is in the package or in a
// package it depends on (dpkg -S on this Debian host says whose it is):
// /bin/kill (ExecReload=) is procps's, which is not Essential.
func TestDebDepends(t *testing.T) {
	gate(t)
	need(t, "dpkg-deb", "dpkg")
	deb := buildDeb(t)
	depends := strings.TrimSpace(run(t, "", nil, "dpkg-deb", "-f", deb, "Depends"))
	if diff := cmp.Diff("procps", depends); diff != "" {
		t.Errorf("Depends (-want +got):\n%s", diff)
	}
	deps := map[string]bool{}
	for _, d := range strings.Split(depends, ",") {
		if f := strings.Fields(d); len(f) > 0 {
			deps[f[0]] = true // "pkg (>= version)": the name
		}
	}
	root, _ := unpackDeb(t, deb)
	unit := string(readFile(t, "init/tunneld.service"))
	for _, m := range regexp.MustCompile(`(?m)^Exec[A-Za-z]*=[-@:+!]*(\S+)`).FindAllStringSubmatch(unit, -1) {
		prog := m[1]
		if _, err := os.Stat(filepath.Join(root, prog)); err == nil {
			continue
		}
		out, errOut, err := runErr("", nil, "dpkg", "-S", prog)
		if err != nil {
			t.Errorf("%s: not in the package, and no package of this host has it: %v %s", prog, err, errOut)
			continue
		}
		owner, _, _ := strings.Cut(out, ":")
		if !deps[owner] {
			t.Errorf("%s: %s's, which Depends (%q) does not name", prog, owner, depends)
		}
	}
}

// TestLintian wants no tag at all, pedantic included, beyond the
// overrides the package ships (usr/share/lintian/overrides/tunneld).
func TestLintian(t *testing.T) {
	gate(t)
	need(t, "lintian")
	deb := buildDeb(t)
	out, errOut, err := runErr("", nil, "lintian", "-EvIL", "+pedantic",
		"--fail-on", "error,warning,info,pedantic", "--tag-display-limit", "0", deb)
	tags := regexp.MustCompile(`(?m)^[EWIPX]: .*$`).FindAllString(out+errOut, -1)
	if err != nil || len(tags) > 0 {
		t.Errorf("lintian: %v\n%s", err, strings.Join(tags, "\n"))
		t.Logf("full output:\n%s%s", out, errOut)
	}
}

// TestSystemdVerify runs systemd-analyze verify on the unit as the .deb
// installs it. verify wants ExecStart='s binary to exist and
// man:tunneld(8) to resolve, so the unpacked package is the root (with the
// host's units copied in for sysinit.target and the like) and MANPATH
// points into it. Any output is a failure: verify exits 0 on unknown keys.
func TestSystemdVerify(t *testing.T) {
	gate(t)
	need(t, "systemd-analyze", "man")
	root, _ := unpackDeb(t, buildDeb(t))
	units := filepath.Join(root, "usr/lib/systemd/system")
	if err := os.MkdirAll(units, 0o755); err != nil {
		t.Fatal(err)
	}
	hostUnits := "/lib/systemd/system"
	if _, err := os.Stat(hostUnits); err != nil {
		hostUnits = "/usr/lib/systemd/system"
	}
	run(t, "", nil, "cp", "-a", hostUnits+"/.", units)
	// The package's own unit wins over anything the host has.
	if err := os.Remove(filepath.Join(units, "tunneld.service")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	cmd := exec.Command("systemd-analyze", "verify", "--root="+root, filepath.Join(root, "lib/systemd/system/tunneld.service"))
	cmd.Env = append(os.Environ(), "MANPATH="+filepath.Join(root, "usr/share/man"), "SYSTEMD_LOG_COLOR=0")
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
