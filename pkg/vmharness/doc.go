// Package vmharness runs workloads under real Debian kernels in qemu
// guests, for tests that need kernel features the host lacks (the ipip,
// gre, sit and ip6tnl drivers, nftables).
//
// Each run boots a Debian 12 kernel — the cloud kernel on AMD64, the
// 4kc-malta kernel on MIPSLE — under qemu's TCG emulator (never KVM) with
// a busybox initramfs made of two concatenated gzip'd cpio archives: a
// cached base (busybox, the needed modules and their modules.dep/alias)
// and a per-run part (/init, the workload script and the caller's files,
// such as a cross-compiled `go test -c` binary).
//
// The generated /init runs the workload as root and prints a marker line
// with a per-run nonce and the workload's exit status, then powers off. The
// host decides pass or fail from that line alone: qemu's exit status says
// nothing (it is 0 after a guest panic too), and a missing marker is a
// failure.
//
// Kernels and busybox come from the host's apt (`apt-get download`); the
// harness never installs system packages, but reports a missing one as a
// *MissingError naming the command that fixes it. See testdata/vm for the
// command-line front end and REQUIREMENTS for the host packages.
package vmharness
