package vmharness

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const sampleDep = `kernel/net/ipv4/ipip.ko: kernel/net/ipv4/tunnel4.ko kernel/net/ipv4/ip_tunnel.ko
kernel/net/ipv4/tunnel4.ko:
kernel/net/ipv4/ip_tunnel.ko:
kernel/net/ipv4/ip_gre.ko: kernel/net/ipv4/ip_tunnel.ko kernel/net/ipv4/gre.ko
kernel/net/ipv4/gre.ko:
kernel/net/netfilter/nf_tables.ko: kernel/net/netfilter/nfnetlink.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/nfnetlink.ko:
kernel/lib/libcrc32c.ko:
kernel/net/netfilter/nft_ct.ko: kernel/net/netfilter/nf_tables.ko kernel/net/netfilter/nf_conntrack.ko.xz
kernel/net/netfilter/nf_conntrack.ko.xz: kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko
kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko:
kernel/drivers/net/some-thing.ko:
kernel/drivers/net/unrelated.ko: kernel/drivers/net/some-thing.ko
`

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/net/ipv4/ip_gre.ko":               "ip_gre",
		"kernel/net/netfilter/nf_conntrack.ko.xz": "nf_conntrack",
		"kernel/drivers/net/some-thing.ko.zst":    "some_thing",
		"kernel/crypto/crc32c_generic.ko.gz":      "crc32c_generic",
	} {
		if got := moduleName(in); got != want {
			t.Errorf("moduleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClosure(t *testing.T) {
	deps, err := parseModulesDep(strings.NewReader(sampleDep))
	if err != nil {
		t.Fatal(err)
	}
	builtin, err := parseModulesBuiltin(strings.NewReader("kernel/crypto/crc32c_generic.ko\nkernel/net/ipv6/ipv6.ko\n"))
	if err != nil {
		t.Fatal(err)
	}
	// nft_ct's modules.dep line lacks nf_defrag_ipv4: the closure must
	// still follow nf_conntrack's own line.
	set := closure(deps, builtin, []string{"ipip", "nft_ct", "ipip", "crc32c_generic", "nft_counter", "some-thing"})
	wantFiles := []string{
		"kernel/drivers/net/some-thing.ko",
		"kernel/lib/libcrc32c.ko",
		"kernel/net/ipv4/ip_tunnel.ko",
		"kernel/net/ipv4/ipip.ko",
		"kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko",
		"kernel/net/ipv4/tunnel4.ko",
		"kernel/net/netfilter/nf_conntrack.ko.xz",
		"kernel/net/netfilter/nf_tables.ko",
		"kernel/net/netfilter/nfnetlink.ko",
		"kernel/net/netfilter/nft_ct.ko",
	}
	if !reflect.DeepEqual(set.Files, wantFiles) {
		t.Errorf("files = %q\nwant %q", set.Files, wantFiles)
	}
	if !reflect.DeepEqual(set.Builtin, []string{"crc32c_generic"}) {
		t.Errorf("builtin = %q", set.Builtin)
	}
	if !reflect.DeepEqual(set.Absent, []string{"nft_counter"}) {
		t.Errorf("absent = %q", set.Absent)
	}
}

func TestParseModulesDepMalformed(t *testing.T) {
	if _, err := parseModulesDep(strings.NewReader("no colon here\n")); err == nil {
		t.Error("want an error")
	}
}

func TestStageModules(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mod := filepath.Join(src, "lib", "modules", "6.1.0-1-test")
	for _, f := range []string{"kernel/a.ko", "kernel/b.ko", "kernel/unused.ko", "modules.builtin"} {
		p := filepath.Join(mod, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var depmodRoot, depmodVer string
	err := stageModules(src, dst, "6.1.0-1-test", moduleSet{Files: []string{"kernel/a.ko", "kernel/b.ko"}},
		func(root, ver string) error { depmodRoot, depmodVer = root, ver; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if depmodRoot != dst || depmodVer != "6.1.0-1-test" {
		t.Errorf("depmod ran with %q %q", depmodRoot, depmodVer)
	}
	to := filepath.Join(dst, "lib", "modules", "6.1.0-1-test")
	for _, f := range []string{"kernel/a.ko", "kernel/b.ko", "modules.builtin"} {
		if b, err := os.ReadFile(filepath.Join(to, f)); err != nil || string(b) != f {
			t.Errorf("%s: %q, %v", f, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(to, "kernel/unused.ko")); err == nil {
		t.Error("unused.ko was staged")
	}
}
