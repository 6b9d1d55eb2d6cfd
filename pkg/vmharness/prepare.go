package vmharness

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// layoutVersion changes whenever the base archive's layout does, so caches
// built by older code are rebuilt.
const layoutVersion = "vmharness-base-2"

// Kernel describes a prepared guest: the kernel to boot and the cached base
// initramfs (busybox and modules) that goes with it.
type Kernel struct {
	// Arch is the guest architecture.
	Arch Arch
	// Version is the kernel release (uname -r), e.g. "6.1.0-56-cloud-amd64".
	Version string
	// Vmlinuz is the path of the kernel image in the cache.
	Vmlinuz string
	// BaseInitrd is the path of the cached gzip'd cpio holding busybox and
	// the modules.
	BaseInitrd string
	// Modules lists the module files shipped (relative to
	// /lib/modules/VERSION), dependencies included.
	Modules []string
	// Builtin lists wanted modules that are built into the kernel.
	Builtin []string
	// Absent lists wanted modules this kernel does not have at all.
	Absent []string
}

// Prepare makes sure the cache holds cfg.Arch's current Debian kernel and
// its base initramfs, downloading the packages with `apt-get download` and
// building the archive when needed. Only cfg.Arch, cfg.CacheDir and cfg.Log
// are used. Missing host prerequisites are reported as *MissingError. When
// apt cannot be asked (no lists, say) but an earlier build is cached, that
// build is used and a note goes to cfg.Log.
func Prepare(ctx context.Context, cfg Config) (Kernel, error) {
	g, err := lookupGuest(cfg.Arch)
	if err != nil {
		return Kernel{}, err
	}
	log := logWriter(cfg.Log, g.arch)
	cacheDir := cfg.CacheDir
	if cacheDir == "" {
		if cacheDir, err = DefaultCacheDir(); err != nil {
			return Kernel{}, err
		}
	}
	archDir := filepath.Join(cacheDir, string(g.arch))
	unlock, err := lockDir(ctx, archDir)
	if err != nil {
		return Kernel{}, err
	}
	defer unlock()
	if g.local {
		return prepareLocal(g, archDir, log)
	}
	// With the lock held, build directories left behind are from killed runs.
	if stale, _ := filepath.Glob(filepath.Join(archDir, ".build-*")); len(stale) > 0 {
		for _, d := range stale {
			os.RemoveAll(d)
		}
	}

	kpkg, bpkg, err := lookupPackages(ctx, g, filepath.Join(cacheDir, "apt", "pkgcache.bin"))
	if err != nil {
		if k, cerr := readCurrent(archDir, g.arch); cerr == nil {
			fmt.Fprintf(log, "apt lookup failed (%v); using cached kernel %s\n", err, k.Version)
			return k, nil
		}
		return Kernel{}, err
	}
	ver := kernelVersionOf(kpkg.Name)
	key := baseKey(bpkg)
	verDir := filepath.Join(archDir, ver)
	if k, err := readBuild(verDir, key, g.arch, ver); err == nil {
		return k, writeCurrent(archDir, ver, key)
	}
	fmt.Fprintf(log, "building the base initramfs for kernel %s\n", ver)
	if err := build(ctx, g, filepath.Join(cacheDir, "debs"), archDir, kpkg, bpkg, key, log); err != nil {
		return Kernel{}, err
	}
	k, err := readBuild(verDir, key, g.arch, ver)
	if err != nil {
		return Kernel{}, err
	}
	return k, writeCurrent(archDir, ver, key)
}

// lookupPackages checks the host and asks apt for the kernel and busybox
// packages to use.
func lookupPackages(ctx context.Context, g guest, pkgcache string) (kernel, busybox debPackage, err error) {
	if err := checkAptHost(ctx, g); err != nil {
		return debPackage{}, debPackage{}, err
	}
	name, err := resolveKernel(ctx, g, pkgcache)
	if err != nil {
		return debPackage{}, debPackage{}, err
	}
	pkgs, err := showPackages(ctx, pkgcache, g.pkg(name), g.pkg("busybox-static"))
	if err != nil {
		return debPackage{}, debPackage{}, err
	}
	return pkgs[0], pkgs[1], nil
}

// baseKey names a base build: it hashes everything besides the kernel that
// goes into the base archive.
func baseKey(busybox debPackage) string {
	return baseKeyOf(fmt.Sprintf("busybox=%s %s\nmodules=%s\n", busybox.debFile(), busybox.SHA256,
		strings.Join(wantedModules, " ")))
}

// baseKeyOf hashes the layout's version, what (the base's inputs as
// lines) and the files the base's /etc holds.
func baseKeyOf(what string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s", layoutVersion, what)
	for _, k := range sortedKeys(baseEtc) {
		fmt.Fprintf(h, "%s=%q\n", k, baseEtc[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// build downloads and unpacks the packages, resolves and stages the
// modules and writes vmlinuz and the base archive into archDir/VERSION.
func build(ctx context.Context, g guest, debDir, archDir string, kpkg, bpkg debPackage, key string, log io.Writer) error {
	ver := kernelVersionOf(kpkg.Name)
	tmp, err := os.MkdirTemp(archDir, ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	kdeb, err := fetchDeb(ctx, debDir, kpkg, log)
	if err != nil {
		return err
	}
	bdeb, err := fetchDeb(ctx, debDir, bpkg, log)
	if err != nil {
		return err
	}
	kroot := filepath.Join(tmp, "kernel")
	if err := extractDeb(ctx, kdeb, kroot); err != nil {
		return err
	}
	broot := filepath.Join(tmp, "busybox")
	if err := extractDeb(ctx, bdeb, broot); err != nil {
		return err
	}
	busybox := filepath.Join(broot, "bin", "busybox")
	if _, err := os.Stat(busybox); err != nil {
		return fmt.Errorf("vmharness: %s has no bin/busybox", bdeb)
	}
	vmlinuz := filepath.Join(kroot, "boot", "vmlinuz-"+ver)
	if _, err := os.Stat(vmlinuz); err != nil {
		return fmt.Errorf("vmharness: %s has no boot/vmlinuz-%s", kdeb, ver)
	}
	modRoot := kroot // holds lib/modules/VERSION (usr/lib/modules on merged-/usr packages)
	if _, err := os.Stat(filepath.Join(modRoot, "lib", "modules", ver)); err != nil {
		modRoot = filepath.Join(kroot, "usr")
		if _, err := os.Stat(filepath.Join(modRoot, "lib", "modules", ver)); err != nil {
			return fmt.Errorf("vmharness: %s has no lib/modules/%s", kdeb, ver)
		}
	}
	depmod := func(root, v string) error {
		_, err := runTool(ctx, "", "busybox", "depmod", "-b", root, v)
		return err
	}
	if err := depmod(modRoot, ver); err != nil {
		return err
	}
	set, err := resolveModules(filepath.Join(modRoot, "lib", "modules", ver))
	if err != nil {
		return err
	}
	if len(set.Absent) > 0 {
		fmt.Fprintf(log, "kernel %s ships no module files for (built into other modules, or absent): %s\n", ver, strings.Join(set.Absent, " "))
	}
	base := filepath.Join(tmp, "base-"+key)
	stage := filepath.Join(base, "root")
	if err := stageModules(modRoot, stage, ver, set, depmod); err != nil {
		return err
	}
	if err := writeFileWith(filepath.Join(base, "base.cpio.gz"), func(w io.Writer) error {
		return writeBaseArchive(w, busybox, stage)
	}); err != nil {
		return err
	}
	if err := writeFileWith(filepath.Join(base, "manifest"), func(w io.Writer) error {
		return writeManifest(w, kpkg, bpkg, set)
	}); err != nil {
		return err
	}

	verDir := filepath.Join(archDir, ver)
	if err := os.MkdirAll(verDir, 0o755); err != nil {
		return err
	}
	if err := os.Rename(vmlinuz, filepath.Join(verDir, "vmlinuz")); err != nil {
		return err
	}
	// Bases for other keys stay: checkouts of different harness versions
	// may share the cache. A leftover of this key is incomplete.
	dst := filepath.Join(verDir, "base-"+key)
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	return os.Rename(base, dst)
}

// resolveModules reads modules.dep and modules.builtin in modDir
// (/lib/modules/VERSION) and resolves the wanted modules.
func resolveModules(modDir string) (moduleSet, error) {
	f, err := os.Open(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return moduleSet{}, err
	}
	defer f.Close()
	deps, err := parseModulesDep(f)
	if err != nil {
		return moduleSet{}, err
	}
	builtin := map[string]bool{}
	if bf, err := os.Open(filepath.Join(modDir, "modules.builtin")); err == nil {
		defer bf.Close()
		if builtin, err = parseModulesBuiltin(bf); err != nil {
			return moduleSet{}, err
		}
	}
	return closure(deps, builtin, wantedModules), nil
}

// writeManifest records what a base build holds.
func writeManifest(w io.Writer, kpkg, bpkg debPackage, set moduleSet) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "kernel %s %s %s\n", kpkg.Name, kpkg.Version, kpkg.Arch)
	fmt.Fprintf(bw, "busybox %s %s %s\n", bpkg.Name, bpkg.Version, bpkg.Arch)
	for _, m := range set.Files {
		fmt.Fprintf(bw, "module %s\n", m)
	}
	for _, m := range set.Builtin {
		fmt.Fprintf(bw, "builtin %s\n", m)
	}
	for _, m := range set.Absent {
		fmt.Fprintf(bw, "absent %s\n", m)
	}
	return bw.Flush()
}

// readBuild returns the cached build verDir/base-KEY, if it is complete.
func readBuild(verDir, key string, arch Arch, ver string) (Kernel, error) {
	k := Kernel{
		Arch:       arch,
		Version:    ver,
		Vmlinuz:    filepath.Join(verDir, "vmlinuz"),
		BaseInitrd: filepath.Join(verDir, "base-"+key, "base.cpio.gz"),
	}
	for _, p := range []string{k.Vmlinuz, k.BaseInitrd} {
		if _, err := os.Stat(p); err != nil {
			return Kernel{}, err
		}
	}
	data, err := os.ReadFile(filepath.Join(verDir, "base-"+key, "manifest"))
	if err != nil {
		return Kernel{}, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		kind, val, _ := strings.Cut(line, " ")
		switch kind {
		case "module":
			k.Modules = append(k.Modules, val)
		case "builtin":
			k.Builtin = append(k.Builtin, val)
		case "absent":
			k.Absent = append(k.Absent, val)
		}
	}
	return k, nil
}

// writeCurrent records the build in use, for offline runs.
func writeCurrent(archDir, ver, key string) error {
	return writeFileWith(filepath.Join(archDir, "current"), func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "%s %s\n", ver, key)
		return err
	})
}

// readCurrent returns the build named by archDir/current.
func readCurrent(archDir string, arch Arch) (Kernel, error) {
	data, err := os.ReadFile(filepath.Join(archDir, "current"))
	if err != nil {
		return Kernel{}, err
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return Kernel{}, errors.New("vmharness: malformed cache pointer")
	}
	return readBuild(filepath.Join(archDir, f[0]), f[1], arch, f[0])
}

// writeFileWith writes a file atomically: fill writes a temporary file in
// the same directory, which is then renamed over name.
func writeFileWith(name string, fill func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := fill(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}
