package pkgtest

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// crossTargets are the binaries `make cross` writes (CROSS_TARGETS).
var crossTargets = []string{"mipsle-softfloat", "mips-softfloat", "armv7", "armv5", "arm64", "amd64"}

// TestReproducibleCross builds every cross target twice, the second time
// from a copy of the tree at another path, into another directory and with
// an empty Go build cache, and compares the bytes.
func TestReproducibleCross(t *testing.T) {
	gate(t)
	root := repoRoot(t)
	version := "VERSION=" + gitVersion(t)
	a, b := t.TempDir(), t.TempDir()

	run(t, root, nil, "make", "--no-print-directory", "cross", "DIST="+a, version)

	src := filepath.Join(t.TempDir(), "elsewhere", "tunneld")
	copyTree(t, root, src)
	run(t, src, []string{"GOCACHE=" + t.TempDir()}, "make", "--no-print-directory", "cross", "DIST="+b, version)

	for _, name := range crossTargets {
		f := "tunneld-linux-" + name
		x, err := os.ReadFile(filepath.Join(a, f))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s: the two builds differ (%d and %d bytes)", f, len(x), len(y))
		} else {
			t.Logf("%s: %d bytes, identical", f, len(x))
		}
	}
}

// copyTree copies the source tree, without .git and build output.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	skip := map[string]bool{".git": true, "dist": true, ".cache": true}
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if skip[strings.Split(rel, string(filepath.Separator))[0]] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dst := filepath.Join(to, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			return os.WriteFile(dst, b, info.Mode().Perm())
		}
		return nil // symlinks and the like: not part of the build
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestInstall runs make install into a DESTDIR twice: the unit's paths
// follow PREFIX, and an existing configuration is kept.
func TestInstall(t *testing.T) {
	gate(t)
	root := repoRoot(t)
	dest := t.TempDir()
	args := []string{"--no-print-directory", "install", "DESTDIR=" + dest, "PREFIX=/usr/local"}
	run(t, root, nil, "make", args...)

	for _, f := range []struct {
		path string
		mode fs.FileMode
	}{
		{"usr/local/sbin/tunneld", 0o755},
		{"usr/local/lib/systemd/system/tunneld.service", 0o644},
		{"etc/tunneld/tunneld.toml", 0o644},
		{"usr/local/share/doc/tunneld/README.md", 0o644},
		{"usr/local/share/doc/tunneld/reference.toml", 0o644},
		{"usr/local/share/doc/tunneld/examples/6in4-he.toml", 0o644},
		{"usr/local/share/man/man8/tunneld.8", 0o644},
	} {
		info, err := os.Stat(filepath.Join(dest, f.path))
		if err != nil {
			t.Error(err)
			continue
		}
		if info.Mode().Perm() != f.mode {
			t.Errorf("%s: mode %v, want %v", f.path, info.Mode().Perm(), f.mode)
		}
	}
	unit, err := os.ReadFile(filepath.Join(dest, "usr/local/lib/systemd/system/tunneld.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ExecStart=/usr/local/sbin/tunneld run -c /etc/tunneld/tunneld.toml",
		"ExecStartPre=/usr/local/sbin/tunneld check -c /etc/tunneld/tunneld.toml",
		"file:/usr/local/share/doc/tunneld/README.md",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("installed unit lacks %q", want)
		}
	}
	if strings.Contains(string(unit), "/usr/sbin/") {
		t.Error("installed unit still names /usr/sbin")
	}

	conf := filepath.Join(dest, "etc/tunneld/tunneld.toml")
	mine := []byte("# the admin's own\n[global]\n")
	if err := os.WriteFile(conf, mine, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, root, nil, "make", args...)
	if got, _ := os.ReadFile(conf); !bytes.Equal(got, mine) {
		t.Error("a second make install replaced the existing configuration")
	}
}

// TestVersionMapping checks the package version derived from git describe.
func TestVersionMapping(t *testing.T) {
	root := repoRoot(t)
	tests := []struct{ in, want string }{
		{"v1.2.3", "1.2.3"},
		{"v1.2.3-4-gabc1234", "1.2.3+4.gabc1234"},
		{"v1.2.3-dirty", "1.2.3+dirty"},
		{"v1.2.3-4-gabc1234-dirty", "1.2.3+4.gabc1234.dirty"},
		{"v2.0.0-rc1", "2.0.0~rc1"},
		// 1700000000 is 2023-11-14 22:13:20 UTC.
		{"0af2767", "0.0.0~git20231114.221320.0af2767"},
		{"0af2767-dirty", "0.0.0~git20231114.221320.0af2767.dirty"},
	}
	for _, tt := range tests {
		got := strings.TrimSpace(run(t, root, nil, "sh", "packaging/scripts/pkgversion.sh", tt.in, "1700000000"))
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("pkgversion %q (-want +got):\n%s", tt.in, diff)
		}
	}
}

// TestVersionOrder builds the package versions (with the release) of two
// builds, the second of a later commit, and has dpkg order them: a later
// commit must be an upgrade, whatever its hash. opkg compares versions
// with dpkg's algorithm.
func TestVersionOrder(t *testing.T) {
	gate(t)
	need(t, "dpkg")
	root := repoRoot(t)
	at := func(s string) string {
		tm, err := time.Parse(time.DateTime, s)
		if err != nil {
			t.Fatal(err)
		}
		return strconv.FormatInt(tm.Unix(), 10)
	}
	type build struct{ describe, when string }
	tests := []struct {
		name         string
		older, newer build
	}{
		{"one day, hours apart, the newer hash lower",
			build{"b66037b", "2026-12-04 09:15:00"}, build{"6b53d62", "2026-12-04 13:40:00"}},
		{"one day, before and after 10:00",
			build{"fedcba9", "2026-12-04 09:59:59"}, build{"0123456", "2026-12-04 10:00:00"}},
		{"one second apart",
			build{"fedcba9", "2026-12-04 12:00:00"}, build{"0123456", "2026-12-04 12:00:01"}},
		{"across midnight",
			build{"fedcba9", "2026-12-04 23:59:59"}, build{"0123456", "2026-12-05 00:00:00"}},
		{"across a month",
			build{"fedcba9", "2026-11-30 23:00:00"}, build{"0123456", "2026-12-01 01:00:00"}},
		{"a dirty tree after its commit",
			build{"b66037b", "2026-12-04 09:15:00"}, build{"b66037b-dirty", "2026-12-04 09:15:00"}},
		{"a dirty tree before the next commit",
			build{"b66037b-dirty", "2026-12-04 09:15:00"}, build{"6b53d62", "2026-12-04 13:40:00"}},
		{"untagged before the first tag",
			build{"b66037b", "2026-12-04 09:15:00"}, build{"v0.1.0", "2026-12-04 08:00:00"}},
		{"tagged: more commits after the tag",
			build{"v1.2.3-9-gfedcba9", "2026-12-04 13:00:00"}, build{"v1.2.3-10-g0123456", "2026-12-04 09:00:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			version := func(b build) string {
				v := strings.TrimSpace(run(t, root, nil, "sh", "packaging/scripts/pkgversion.sh", b.describe, at(b.when)))
				return v + "-1"
			}
			older, newer := version(tt.older), version(tt.newer)
			// dpkg warns on stderr about a version with bad syntax.
			out, errOut, err := runErr("", nil, "dpkg", "--compare-versions", older, "lt", newer)
			if err != nil || out+errOut != "" {
				t.Errorf("dpkg --compare-versions %s lt %s: %v %s%s", older, newer, err, out, errOut)
			}
		})
	}
}

// TestArchMapping checks the OpenWrt and Debian architectures' Go builds.
func TestArchMapping(t *testing.T) {
	root := repoRoot(t)
	for _, c := range []struct{ kind, arch, want string }{
		{"ipk", "mipsel_24kc", "mipsle-softfloat"},
		{"ipk", "mipsel_74kc", "mipsle-softfloat"},
		{"ipk", "mips_24kc", "mips-softfloat"},
		{"ipk", "aarch64_generic", "arm64"},
		{"ipk", "aarch64_cortex-a53", "arm64"},
		{"ipk", "arm_cortex-a7", "armv5"},
		{"ipk", "arm_cortex-a7_neon-vfpv4", "armv7"},
		{"ipk", "arm_cortex-a9_vfpv3-d16", "armv7"},
		{"ipk", "arm_arm1176jzf-s_vfp", "armv5"},
		{"ipk", "arm_arm926ej-s", "armv5"},
		{"ipk", "arm_xscale", "armv5"},
		{"ipk", "x86_64", "amd64"},
		{"deb", "amd64", "amd64"},
		{"deb", "arm64", "arm64"},
		{"deb", "armhf", "armv7"},
		{"deb", "armel", "armv5"},
		{"deb", "mipsel", "mipsle-softfloat"},
	} {
		got := strings.TrimSpace(run(t, root, nil, "sh", "packaging/scripts/goarch.sh", c.kind, c.arch))
		if got != c.want {
			t.Errorf("goarch %s %s = %q, want %q", c.kind, c.arch, got, c.want)
		}
	}
	for _, c := range []struct{ kind, arch, wantErr string }{
		{"ipk", "i386_pentium4", "no Go build for OpenWrt architecture 'i386_pentium4'\n"},
		// ARMv4: Go's GOARM=5 code dies with SIGILL there.
		{"ipk", "arm_fa526", "no Go build for OpenWrt architecture 'arm_fa526': an ARMv4 CPU"},
		{"ipk", "arm_arm920t", "no Go build for OpenWrt architecture 'arm_arm920t': an ARMv4 CPU"},
		{"deb", "i386", "no Go build for Debian architecture 'i386'"},
		{"rpm", "x86_64", "first argument must be ipk or deb"},
	} {
		out, errOut, err := runErr(root, nil, "sh", "packaging/scripts/goarch.sh", c.kind, c.arch)
		if err == nil || out != "" || !strings.Contains(errOut, c.wantErr) {
			t.Errorf("goarch %s %s: %v, stdout %q, stderr %q; want an error saying %q", c.kind, c.arch, err, out, errOut, c.wantErr)
		}
	}
}

// TestIPKRefusesARMv4: make ipk stops at the mapping, before any build,
// and writes no package.
func TestIPKRefusesARMv4(t *testing.T) {
	gate(t)
	dist := t.TempDir()
	_, errOut, err := runErr(repoRoot(t), nil, "make", "--no-print-directory", "ipk", "ARCH=arm_fa526", "DIST="+dist)
	if err == nil || !strings.Contains(errOut, "an ARMv4 CPU") {
		t.Errorf("make ipk ARCH=arm_fa526: %v, stderr %q; want it refused", err, errOut)
	}
	if ents, _ := os.ReadDir(dist); len(ents) != 0 {
		t.Errorf("make ipk ARCH=arm_fa526 wrote %v", ents)
	}
}
