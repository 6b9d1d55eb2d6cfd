package vmharness

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// wantedModules are the kernel modules a tunneld guest needs: tunnel
// drivers, veth/dummy/bridge for test topologies and nftables with NAT and
// conntrack. Each is included with its dependency closure if the kernel
// ships it as a module; built-in and absent ones are skipped. The generated
// /init modprobes all of them before the workload starts.
var wantedModules = []string{
	// tunnels
	"tunnel4", "tunnel6", "ip_tunnel", "ipip", "gre", "ip_gre", "sit",
	"ip6_tunnel", "ip6_gre", "udp_tunnel", "ip6_udp_tunnel",
	// test links
	"veth", "dummy", "bridge", "af_packet",
	// nftables
	"libcrc32c", "crc32c_generic", "nfnetlink", "nf_tables",
	"nf_conntrack", "nf_defrag_ipv4", "nf_defrag_ipv6", "nf_nat",
	"nft_ct", "nft_nat", "nft_chain_nat", "nft_masq", "nft_redir",
	"nft_counter", "nft_fib", "nft_fib_inet", "nft_fib_ipv4", "nft_fib_ipv6",
	"nf_reject_ipv4", "nf_reject_ipv6", "nft_reject", "nft_reject_inet",
}

// moduleName returns the module name of a modules.dep path
// ("kernel/net/ipv4/ip_gre.ko.xz" → "ip_gre"). Dashes become underscores,
// as the kernel treats them alike.
func moduleName(p string) string {
	b := path.Base(p)
	for _, ext := range []string{".ko.xz", ".ko.gz", ".ko.zst", ".ko"} {
		if s, ok := strings.CutSuffix(b, ext); ok {
			b = s
			break
		}
	}
	return strings.ReplaceAll(b, "-", "_")
}

// modulesDep maps each module's path (relative to /lib/modules/VERSION) to
// the paths it depends on, as listed by modules.dep.
type modulesDep map[string][]string

// parseModulesDep reads a modules.dep file ("path: dep dep ...").
func parseModulesDep(r io.Reader) (modulesDep, error) {
	deps := modulesDep{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		mod, rest, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("vmharness: malformed modules.dep line %q", line)
		}
		deps[strings.TrimSpace(mod)] = strings.Fields(rest)
	}
	return deps, sc.Err()
}

// parseModulesBuiltin returns the names of the built-in modules listed in a
// modules.builtin file.
func parseModulesBuiltin(r io.Reader) (map[string]bool, error) {
	names := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			names[moduleName(line)] = true
		}
	}
	return names, sc.Err()
}

// moduleSet is the outcome of resolving the wanted modules of one kernel.
type moduleSet struct {
	Files   []string // module paths to ship, sorted, dependencies included
	Builtin []string // wanted names built into the kernel
	Absent  []string // wanted names the kernel has neither way
}

// closure resolves wanted names against modules.dep and modules.builtin,
// adding every dependency (transitively, though depmod already lists the
// full set).
func closure(deps modulesDep, builtin map[string]bool, wanted []string) moduleSet {
	byName := make(map[string]string, len(deps))
	for p := range deps {
		byName[moduleName(p)] = p
	}
	var set moduleSet
	seen := map[string]bool{}
	var visit func(p string)
	visit = func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		set.Files = append(set.Files, p)
		for _, d := range deps[p] {
			visit(d)
		}
	}
	for _, w := range wanted {
		n := strings.ReplaceAll(w, "-", "_")
		if p, ok := byName[n]; ok {
			visit(p)
		} else if builtin[n] {
			set.Builtin = append(set.Builtin, n)
		} else {
			set.Absent = append(set.Absent, n)
		}
	}
	sort.Strings(set.Files)
	return set
}

// stageModules copies the resolved modules of kernel version ver from the
// extracted tree src (holding lib/modules/VER) into the root dst, then runs
// `busybox depmod -b dst VER` there so modules.dep and modules.alias cover
// exactly what the initramfs ships.
func stageModules(src, dst, ver string, set moduleSet, depmod func(root, ver string) error) error {
	from := filepath.Join(src, "lib", "modules", ver)
	to := filepath.Join(dst, "lib", "modules", ver)
	for _, rel := range set.Files {
		if err := copyFile(filepath.Join(from, filepath.FromSlash(rel)), filepath.Join(to, filepath.FromSlash(rel)), 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	// modules.builtin lets modprobe treat built-in names as loaded.
	if _, err := os.Stat(filepath.Join(from, "modules.builtin")); err == nil {
		if err := copyFile(filepath.Join(from, "modules.builtin"), filepath.Join(to, "modules.builtin"), 0o644); err != nil {
			return err
		}
	}
	return depmod(dst, ver)
}

// copyFile copies src to dst, creating dst's directory.
func copyFile(src, dst string, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
