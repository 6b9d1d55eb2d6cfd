package pkgtest

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// epoch is the SOURCE_DATE_EPOCH the package tests build with.
const epoch = 1700000000

// kmods are the kernel modules the OpenWrt package depends on.
var kmods = []string{"kmod-ipip", "kmod-gre", "kmod-sit", "kmod-ip6-tunnel", "kmod-nft-core", "kmod-nft-nat"}

// elfWant is what usr/sbin/tunneld must be for an architecture.
type elfWant struct {
	machine   elf.Machine
	class     elf.Class
	data      elf.Data
	softFloat bool // MIPS: the .MIPS.abiflags FP ABI is "soft float"
	// build settings the Go build info must record (GOARM: the ELF header
	// does not tell a GOARM=7 binary, which dies with SIGILL on a board
	// without VFP, from a GOARM=5 one)
	build map[string]string
}

func TestIPK(t *testing.T) {
	gate(t)
	for _, c := range []struct {
		arch string
		elf  elfWant
	}{
		{"mipsel_24kc", elfWant{elf.EM_MIPS, elf.ELFCLASS32, elf.ELFDATA2LSB, true,
			map[string]string{"GOARCH": "mipsle", "GOMIPS": "softfloat", "CGO_ENABLED": "0"}}},
		{"aarch64_generic", elfWant{elf.EM_AARCH64, elf.ELFCLASS64, elf.ELFDATA2LSB, false,
			map[string]string{"GOARCH": "arm64", "CGO_ENABLED": "0"}}},
		{"arm_cortex-a7", elfWant{elf.EM_ARM, elf.ELFCLASS32, elf.ELFDATA2LSB, false,
			map[string]string{"GOARCH": "arm", "GOARM": "5", "CGO_ENABLED": "0"}}},
		{"x86_64", elfWant{elf.EM_X86_64, elf.ELFCLASS64, elf.ELFDATA2LSB, false,
			map[string]string{"GOARCH": "amd64", "CGO_ENABLED": "0"}}},
	} {
		t.Run(c.arch, func(t *testing.T) {
			dist := t.TempDir()
			out := run(t, repoRoot(t), nil, "make", "--no-print-directory", "ipk",
				"ARCH="+c.arch, "DIST="+dist, "SOURCE_DATE_EPOCH="+strconv.Itoa(epoch))
			path := lastLine(out)
			if filepath.Dir(path) != dist || !strings.HasSuffix(path, "_"+c.arch+".ipk") {
				t.Fatalf("make ipk made %q, want DIST/tunneld_VERSION_%s.ipk", path, c.arch)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			checkIPK(t, b, c.arch, c.elf)

			// The same inputs make the same bytes.
			dist2 := t.TempDir()
			out2 := run(t, repoRoot(t), nil, "make", "--no-print-directory", "ipk",
				"ARCH="+c.arch, "DIST="+dist2, "SOURCE_DATE_EPOCH="+strconv.Itoa(epoch))
			b2, err := os.ReadFile(lastLine(out2))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, b2) {
				t.Error("two builds of the .ipk differ")
			}
		})
	}
}

func checkIPK(t *testing.T, b []byte, arch string, want elfWant) {
	outer, err := readTarGz(b)
	if err != nil {
		t.Fatalf("outer archive (gzip'd tar): %v", err)
	}
	var names []string
	for _, e := range outer {
		names = append(names, e.hdr.Name)
		checkOwnerTime(t, "outer", e)
	}
	if got, want := strings.Join(names, " "), "./debian-binary ./data.tar.gz ./control.tar.gz"; got != want {
		t.Fatalf("outer members %q, want %q", got, want)
	}
	if got := string(outer[0].data); got != "2.0\n" {
		t.Errorf("debian-binary is %q, want 2.0", got)
	}

	data, err := readTarGz(outer[1].data)
	if err != nil {
		t.Fatalf("data.tar.gz: %v", err)
	}
	ctrl, err := readTarGz(outer[2].data)
	if err != nil {
		t.Fatalf("control.tar.gz: %v", err)
	}

	// control.tar.gz
	cm := byName(ctrl)
	for _, e := range ctrl {
		checkOwnerTime(t, "control.tar.gz", e)
	}
	for _, s := range []string{"postinst", "prerm"} {
		e, ok := cm[s]
		switch {
		case !ok:
			t.Errorf("control.tar.gz has no %s", s)
		case e.hdr.Mode&0o111 == 0:
			t.Errorf("%s is not executable (mode %o)", s, e.hdr.Mode)
		case !bytes.Equal(e.data, readFile(t, "packaging/ipk/"+s)):
			t.Errorf("%s differs from packaging/ipk/%s", s, s)
		}
	}
	if got := string(cm["conffiles"].data); got != "/etc/tunneld/tunneld.toml\n" {
		t.Errorf("conffiles = %q", got)
	}
	f, err := controlFields(string(cm["control"].data))
	if err != nil {
		t.Fatalf("control: %v", err)
	}
	uncompressed, err := gunzipLen(outer[1].data)
	if err != nil {
		t.Fatal(err)
	}
	checkFields(t, f, map[string]string{
		"Package":      "tunneld",
		"Architecture": arch,
		"Section":      "net",
		"SourceName":   "tunneld",
	})
	for _, k := range []string{"Version", "Depends", "Source", "License", "Installed-Size", "Description", "Maintainer"} {
		if f[k] == "" {
			t.Errorf("control has no %s", k)
		}
	}
	if !regexp.MustCompile(`^[0-9][0-9A-Za-z.+~]*-[0-9]+$`).MatchString(f["Version"]) {
		t.Errorf("Version %q is not VERSION-RELEASE starting with a digit", f["Version"])
	}
	deps := strings.Split(f["Depends"], ", ")
	sort.Strings(deps)
	wantDeps := append([]string(nil), kmods...)
	sort.Strings(wantDeps)
	if strings.Join(deps, ",") != strings.Join(wantDeps, ",") {
		t.Errorf("Depends %q, want %v", f["Depends"], kmods)
	}
	if n, err := strconv.Atoi(f["Installed-Size"]); err != nil || n != uncompressed {
		t.Errorf("Installed-Size %q: want the uncompressed data tar's size, %d", f["Installed-Size"], uncompressed)
	}

	// data.tar.gz
	dm := byName(data)
	for _, e := range data {
		checkOwnerTime(t, "data.tar.gz", e)
	}
	if root, ok := dm[""]; !ok || root.hdr.Mode&0o777 != 0o755 {
		t.Errorf("data.tar.gz: the ./ entry must be there with mode 0755 (it lands on /)")
	}
	files := map[string]int64{
		"usr/sbin/tunneld":         0o755,
		"etc/init.d/tunneld":       0o755,
		"etc/tunneld/tunneld.toml": 0o600,
		"usr/share/tunneld/nftables.d/chain-pre/forward/30-tunneld.nft": 0o644,
		"usr/share/tunneld/nftables.d/chain-pre/input/30-tunneld.nft":   0o644,
	}
	for name, e := range dm {
		if e.hdr.Typeflag == '5' {
			if e.hdr.Mode&0o777 != 0o755 {
				t.Errorf("directory %s: mode %o", name, e.hdr.Mode)
			}
			continue
		}
		mode, ok := files[name]
		if !ok {
			t.Errorf("unexpected file %s in data.tar.gz", name)
			continue
		}
		if e.hdr.Mode&0o7777 != mode {
			t.Errorf("%s: mode %o, want %o", name, e.hdr.Mode, mode)
		}
	}
	for name := range files {
		if _, ok := dm[name]; !ok {
			t.Errorf("data.tar.gz has no %s", name)
		}
	}
	if !bytes.Equal(dm["etc/init.d/tunneld"].data, readFile(t, "init/tunneld.init")) {
		t.Error("etc/init.d/tunneld differs from init/tunneld.init")
	}
	if !bytes.Equal(dm["etc/tunneld/tunneld.toml"].data, readFile(t, "packaging/tunneld.toml")) {
		t.Error("etc/tunneld/tunneld.toml differs from packaging/tunneld.toml")
	}
	checkELF(t, dm["usr/sbin/tunneld"].data, want)
}

func checkFields(t *testing.T, f map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if f[k] != v {
			t.Errorf("control %s = %q, want %q", k, f[k], v)
		}
	}
}

func checkOwnerTime(t *testing.T, where string, e entry) {
	t.Helper()
	h := e.hdr
	if h.Uid != 0 || h.Gid != 0 {
		t.Errorf("%s: %s owned by %d:%d, want 0:0", where, h.Name, h.Uid, h.Gid)
	}
	if !h.ModTime.Equal(time.Unix(epoch, 0)) {
		t.Errorf("%s: %s dated %v, want SOURCE_DATE_EPOCH %d", where, h.Name, h.ModTime.UTC(), epoch)
	}
}

// checkELF checks a binary's machine, class, byte order, that it is
// static, and for MIPS the o32 ABI and the soft-float FP ABI.
func checkELF(t *testing.T, b []byte, want elfWant) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("usr/sbin/tunneld: %v", err)
	}
	defer f.Close()
	if f.Machine != want.machine || f.Class != want.class || f.Data != want.data {
		t.Errorf("usr/sbin/tunneld is %v %v %v, want %v %v %v", f.Machine, f.Class, f.Data, want.machine, want.class, want.data)
	}
	if bi, err := buildinfo.Read(bytes.NewReader(b)); err != nil {
		t.Errorf("usr/sbin/tunneld: no Go build info: %v", err)
	} else {
		got := map[string]string{}
		for _, s := range bi.Settings {
			got[s.Key] = s.Value
		}
		for k, v := range want.build {
			if got[k] != v {
				t.Errorf("usr/sbin/tunneld built with %s=%q, want %q", k, got[k], v)
			}
		}
	}
	if f.Type != elf.ET_EXEC {
		t.Errorf("usr/sbin/tunneld: type %v, want ET_EXEC", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("usr/sbin/tunneld is not static: it has %v", p.Type)
		}
	}
	if f.Machine != elf.EM_MIPS {
		return
	}
	// e_flags (offset 36 in a 32-bit header): o32 ABI, MIPS32.
	flags := f.ByteOrder.Uint32(b[36:40])
	const efMipsABIO32, efMipsArch, efMipsArch32 = 0x00001000, 0xf0000000, 0x50000000
	if flags&efMipsABIO32 == 0 || flags&efMipsArch != efMipsArch32 {
		t.Errorf("MIPS e_flags %#x: want o32 and MIPS32", flags)
	}
	// Elf_MIPS_ABIFlags_v0: version(2) isa_level isa_rev gpr_size cpr1_size
	// cpr2_size fp_abi ...; fp_abi 3 is Val_GNU_MIPS_ABI_FP_SOFT.
	s := f.Section(".MIPS.abiflags")
	if s == nil {
		t.Fatal("no .MIPS.abiflags section: cannot tell the FP ABI")
	}
	af, err := s.Data()
	if err != nil || len(af) < 8 {
		t.Fatalf(".MIPS.abiflags: %v (%d bytes)", err, len(af))
	}
	if v := f.ByteOrder.Uint16(af[0:2]); v != 0 {
		t.Errorf(".MIPS.abiflags version %d, want 0", v)
	}
	if soft := af[7] == 3; soft != want.softFloat {
		t.Errorf("MIPS FP ABI %d: soft float %v, want %v", af[7], soft, want.softFloat)
	}
}
