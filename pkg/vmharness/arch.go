package vmharness

import (
	"fmt"
	"strings"
)

// Arch names a guest architecture by its Go GOARCH value.
type Arch string

// The guest architectures the harness can boot.
const (
	// AMD64 is an x86-64 guest: qemu-system-x86_64 with Debian's cloud
	// kernel (linux-image-*-cloud-amd64).
	AMD64 Arch = "amd64"
	// MIPSLE is a little-endian 32-bit MIPS guest: qemu-system-mipsel on the
	// Malta board with Debian's linux-image-*-4kc-malta:mipsel kernel.
	MIPSLE Arch = "mipsle"
	// MIPS is a big-endian 32-bit MIPS guest: qemu-system-mips on the Malta
	// board. Debian 12 has no big-endian MIPS port, so the kernel (an ELF
	// vmlinux) and a static busybox are built locally and named by
	// TUNNELD_VM_MIPS_KERNEL and TUNNELD_VM_MIPS_BUSYBOX (see local.go).
	// Not part of Arches(): "all" stays amd64 and mipsle.
	MIPS Arch = "mips"
)

// Arches returns every supported architecture, in a fixed order.
func Arches() []Arch { return []Arch{AMD64, MIPSLE} }

// ParseArch returns the Arch named s ("amd64" or "mipsle"; "x86_64" and
// "mipsel" are accepted as aliases).
func ParseArch(s string) (Arch, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "amd64", "x86_64", "x86-64":
		return AMD64, nil
	case "mipsle", "mipsel":
		return MIPSLE, nil
	case "mips", "mipsbe", "mips-be":
		return MIPS, nil
	}
	return "", fmt.Errorf("vmharness: unknown arch %q (want amd64, mipsle or mips)", s)
}

// GoEnv returns the environment settings that cross-compile a Go binary
// (for example `go test -c`) that runs in this guest.
func (a Arch) GoEnv() []string {
	switch a {
	case MIPSLE:
		return []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=mipsle", "GOMIPS=softfloat"}
	case MIPS:
		return []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=mips", "GOMIPS=softfloat"}
	default:
		return []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + string(a)}
	}
}

// guest describes how to obtain and boot one architecture's kernel.
type guest struct {
	arch       Arch
	debArch    string   // Debian architecture name
	qemu       string   // qemu binary
	qemuPkg    string   // Debian package shipping it
	machine    []string // extra qemu arguments selecting the board
	kernelMeta string   // metapackage depending on the current kernel
	console    string   // serial console device in the guest
	memMiB     int
	cpus       int
	local      bool // kernel and busybox come from the environment, not apt
}

var guests = map[Arch]guest{
	AMD64: {
		arch:       AMD64,
		debArch:    "amd64",
		qemu:       "qemu-system-x86_64",
		qemuPkg:    "qemu-system-x86",
		kernelMeta: "linux-image-cloud-amd64",
		console:    "ttyS0",
		memMiB:     512,
		cpus:       1,
	},
	MIPSLE: {
		arch:       MIPSLE,
		debArch:    "mipsel",
		qemu:       "qemu-system-mipsel",
		qemuPkg:    "qemu-system-mips",
		machine:    []string{"-M", "malta"},
		kernelMeta: "linux-image-4kc-malta",
		console:    "ttyS0",
		memMiB:     256, // the Malta memory map gives the kernel 256 MiB at most
		cpus:       1,
	},
	MIPS: {
		arch:    MIPS,
		debArch: "mips",
		qemu:    "qemu-system-mips",
		qemuPkg: "qemu-system-mips",
		machine: []string{"-M", "malta"},
		console: "ttyS0",
		memMiB:  256,
		cpus:    1,
		local:   true,
	},
}

func lookupGuest(a Arch) (guest, error) {
	g, ok := guests[a]
	if !ok {
		return guest{}, fmt.Errorf("vmharness: unknown arch %q (want amd64, mipsle or mips)", string(a))
	}
	return g, nil
}

// pkg qualifies a Debian package name with the guest's architecture.
func (g guest) pkg(name string) string { return name + ":" + g.debArch }
