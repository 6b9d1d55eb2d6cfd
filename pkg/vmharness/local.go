package vmharness

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Environment variables naming a locally built guest (the MIPS arch).
const (
	EnvMIPSKernel  = "TUNNELD_VM_MIPS_KERNEL"  // an ELF vmlinux qemu -M malta loads
	EnvMIPSBusybox = "TUNNELD_VM_MIPS_BUSYBOX" // a static busybox for the guest
)

// prepareLocal builds (or reuses) the base initramfs of a guest whose
// kernel and busybox are local files. The kernel is expected to have
// every wanted driver built in: no modules are shipped. The kernel
// release is read from include/config/kernel.release next to vmlinux.
func prepareLocal(g guest, archDir string, log io.Writer) (Kernel, error) {
	kpath, bpath := os.Getenv(EnvMIPSKernel), os.Getenv(EnvMIPSBusybox)
	if kpath == "" || bpath == "" {
		return Kernel{}, &MissingError{What: "a local kernel and busybox for " + string(g.arch),
			Fix: "set " + EnvMIPSKernel + " and " + EnvMIPSBusybox}
	}
	for _, p := range []string{kpath, bpath} {
		if _, err := os.Stat(p); err != nil {
			return Kernel{}, fmt.Errorf("vmharness: %w", err)
		}
	}
	ver := "local"
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(kpath), "include", "config", "kernel.release")); err == nil {
		ver = strings.TrimSpace(string(b))
	}
	what := "local\n"
	for _, p := range []string{kpath, bpath} {
		sum, err := fileSHA256(p)
		if err != nil {
			return Kernel{}, err
		}
		what += sum + "\n"
	}
	key := baseKeyOf(what)
	dir := filepath.Join(archDir, "local-"+key)
	k := Kernel{Arch: g.arch, Version: ver, Vmlinuz: filepath.Join(dir, "vmlinux"), BaseInitrd: filepath.Join(dir, "base.cpio.gz")}
	if _, err := os.Stat(k.BaseInitrd); err == nil {
		return k, nil
	}
	fmt.Fprintf(log, "building the base initramfs for local kernel %s\n", ver)
	stage := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(stage, "lib", "modules", ver), 0o755); err != nil {
		return Kernel{}, err
	}
	if err := copyFile(kpath, k.Vmlinuz, 0o644); err != nil {
		return Kernel{}, err
	}
	if err := writeFileWith(k.BaseInitrd, func(w io.Writer) error {
		return writeBaseArchive(w, bpath, stage)
	}); err != nil {
		return Kernel{}, err
	}
	return k, nil
}
