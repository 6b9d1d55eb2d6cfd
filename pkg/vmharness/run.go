package vmharness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"time"
)

// DefaultTimeout bounds a run whose Config leaves Timeout zero. TCG is slow
// and the host may be busy; boot alone takes a few seconds.
const DefaultTimeout = 5 * time.Minute

// File is a host file to put into the guest's initramfs.
type File struct {
	// Host is the file's path on the host.
	Host string
	// Guest is the absolute path it gets in the guest; missing parent
	// directories are created.
	Guest string
	// Mode is its permission bits in the guest; zero keeps the host's.
	Mode fs.FileMode
}

// Config describes one guest run.
type Config struct {
	// Arch selects the guest (AMD64 or MIPSLE).
	Arch Arch
	// Files are added to the initramfs of this run.
	Files []File
	// Script is the workload: a busybox sh script run as root in /root after
	// boot, with stdout and stderr on the console and stdin from /dev/null.
	// Its exit status decides the run.
	Script string
	// Timeout bounds the whole run, boot included (DefaultTimeout if zero).
	// The context passed to Run can end it earlier.
	Timeout time.Duration
	// Console, if set, receives the cleaned guest console as it arrives,
	// one whole line (ending in "\n") per Write call.
	Console io.Writer
	// Log, if set, receives progress notes (downloads, cache builds).
	Log io.Writer
	// CacheDir overrides DefaultCacheDir.
	CacheDir string
	// MemoryMiB overrides the guest's memory size (512 MiB on amd64, 256
	// MiB on mipsle, where a Malta guest cannot use more).
	MemoryMiB int
	// CPUs overrides the guest's vCPU count (1 by default: a second TCG
	// vCPU gave no measurable gain on a 2-core host).
	CPUs int
	// KernelArgs are added to the guest kernel's command line, such as
	// highres=off (the benchmarks' mipsel guest: see BENCHMARKS.md).
	KernelArgs []string
}

// Result reports a finished guest run.
type Result struct {
	// Arch is the guest that ran.
	Arch Arch
	// Kernel is the guest kernel's release (uname -r).
	Kernel string
	// Status is the workload's exit status, or -1 if the end marker was
	// never seen (panic, timeout, qemu failure).
	Status int
	// Console is the whole cleaned console output, one line per "\n".
	Console string
	// Boot is the time from starting qemu to the workload starting; zero if
	// it never started.
	Boot time.Duration
	// Elapsed is the wall time of qemu, boot and workload included
	// (preparing the cache is not counted).
	Elapsed time.Duration
}

// Run boots cfg.Arch's guest under qemu (TCG) with the cached base
// initramfs plus a per-run archive holding cfg.Files, the workload and
// /init, and waits for the guest to power off. The run passes only if the
// console shows the end marker with status 0; any other outcome (non-zero
// status, panic, timeout, qemu failure) returns the Result so far and a
// *GuestError that carries the console tail. Missing host prerequisites
// give a *MissingError before anything boots.
func Run(ctx context.Context, cfg Config) (Result, error) {
	res := Result{Arch: cfg.Arch, Status: -1}
	g, err := lookupGuest(cfg.Arch)
	if err != nil {
		return res, err
	}
	if err := checkFiles(cfg.Files); err != nil {
		return res, err
	}
	qemu, err := exec.LookPath(g.qemu)
	if err != nil {
		return res, &MissingError{What: g.qemu, Fix: "apt-get install -y --no-install-recommends " + g.qemuPkg}
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	k, err := Prepare(ctx, cfg)
	if err != nil {
		return res, err
	}
	res.Kernel = k.Version

	nonce, err := newNonce()
	if err != nil {
		return res, err
	}
	initrd, err := writeInitrd(k.BaseInitrd, initScript(nonce, wantedModules), cfg.Script, cfg.Files)
	if err != nil {
		return res, err
	}
	defer os.Remove(initrd)

	q := qemuRun{
		bin:     qemu,
		args:    qemuArgs(g, k.Vmlinuz, initrd, cfg.MemoryMiB, cfg.CPUs, cfg.KernelArgs),
		nonce:   nonce,
		timeout: timeout,
		console: cfg.Console,
	}
	out := q.run(ctx)
	res.Console = out.console
	res.Boot = out.boot
	res.Elapsed = out.elapsed
	res.Status = out.status
	if out.ok && out.status == 0 {
		return res, nil
	}
	return res, &GuestError{Arch: g.arch, Reason: out.reason(timeout), Status: out.status, Tail: out.tail}
}

// writeInitrd writes the run's initrd to a temporary file: a copy of the
// cached base archive followed by the per-run archive (the kernel unpacks
// concatenated archives in order).
func writeInitrd(base, init, script string, files []File) (string, error) {
	in, err := os.Open(base)
	if err != nil {
		return "", err
	}
	defer in.Close()
	f, err := os.CreateTemp("", "tunneld-vm-initrd-*.cpio.gz")
	if err != nil {
		return "", err
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", err
	}
	if _, err := io.Copy(f, in); err != nil {
		return fail(err)
	}
	if err := writeRunArchive(f, init, script, files); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

func newNonce() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("vmharness: nonce: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// prefixLogger writes each Write as one line prefixed with the arch.
type prefixLogger struct {
	w      io.Writer
	prefix string
}

func (p prefixLogger) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix+string(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}

func logWriter(w io.Writer, arch Arch) io.Writer {
	if w == nil {
		return io.Discard
	}
	return prefixLogger{w: w, prefix: "vmharness: " + string(arch) + ": "}
}
