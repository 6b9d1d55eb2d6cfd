#!/usr/bin/env bash
# usage: testdata/vm/systemd/run.sh
#
# The live systemd test (make test-systemd): boots Debian 12 with systemd
# as PID 1 in the amd64 qemu guest (the harness's kernel and tunnel
# modules), installs tunneld's .deb there and runs guest.sh against the
# real unit: start, Type=notify, reload, the watchdog, the capabilities and
# the sandbox, a bad configuration, stop and purge. Needs root on the host
# (debootstrap) and the packages of testdata/vm/REQUIREMENTS plus
# debootstrap and cpio. The Debian tree is cached beside the harness's
# kernels; the guest's console is kept in dist/systemd-console.log.
set -euo pipefail
cd "$(dirname "$0")/../../.."
here=testdata/vm/systemd
suite=bookworm
mirror=${TUNNELD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
include=systemd,systemd-sysv,udev,dbus,iproute2,nftables,kmod,procps,man-db

for tool in debootstrap cpio qemu-system-x86_64; do
	command -v "$tool" >/dev/null || { echo "systemd test: $tool is missing (apt-get install debootstrap cpio qemu-system-x86)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "systemd test: debootstrap needs root" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=${DIST:-dist}
mkdir -p "$out"

# The guest kernel and its modules, from the harness's cache: -prepare
# names the kernel and the base archive, whose directory holds the module
# tree (pkg/vmharness/cache.go); the cache's root is two levels above the
# kernel.
go run ./testdata/vm -arch amd64 -prepare | tee "$work/prepare"
kver=$(sed -n 's/^PREPARED amd64: kernel \([^,]*\),.*/\1/p' "$work/prepare")
vmlinuz=$(awk '$1 == "vmlinuz" { print $2 }' "$work/prepare")
base=$(awk '$1 == "base" { print $2 }' "$work/prepare")
modules=$(dirname "$base")/root/lib/modules/$kver
cache=$(cd "$(dirname "$vmlinuz")/../.." && pwd)
if [ ! -f "$vmlinuz" ] || [ ! -d "$modules" ]; then
	echo "systemd test: no kernel or modules in the harness's answer" >&2
	exit 1
fi

# The package under test.
make -s deb DEB_ARCH=amd64 DIST="$work/dist" >/dev/null
deb=$(ls "$work"/dist/tunneld_*_amd64.deb)

# Debian's own tree, made once per package list.
tag=$(printf '%s %s %s' "$suite" "$include" "$mirror" | sha256sum | cut -c1-12)
tree=$cache/systemd/$suite-$tag.tar
if [ ! -f "$tree" ]; then
	mkdir -p "$cache/systemd"
	echo "systemd test: debootstrap $suite (once; cached in $tree)"
	debootstrap --variant=minbase --include="$include" "$suite" "$work/ds" "$mirror" >"$work/debootstrap.log" 2>&1 ||
		{ tail -20 "$work/debootstrap.log" >&2; exit 1; }
	rm -rf "$work"/ds/usr/share/{doc,man,info,locale} "$work"/ds/var/cache/apt/* "$work"/ds/var/lib/apt/lists/*
	tar -C "$work/ds" -cf "$tree.tmp" . && mv "$tree.tmp" "$tree"
	rm -rf "$work/ds"
fi

# The guest's root: the tree, the modules, the package, the test and a
# unit that runs it once the system is up, then powers off.
root=$work/root
mkdir "$root"
tar -C "$root" -xf "$tree"
mkdir -p "$root/lib/modules"
cp -a "$modules" "$root/lib/modules/"
install -m 0644 "$deb" "$root/root/tunneld.deb"
install -m 0755 "$here/guest.sh" "$root/root/guest.sh"
install -m 0644 testdata/shtest/checks.sh "$root/root/checks.sh"
cat >"$root/etc/systemd/system/tunneld-systemd-test.service" <<'EOF'
[Unit]
Description=tunneld's live systemd test
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/bash -c '/root/guest.sh; systemctl poweroff --no-block'
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
[Install]
WantedBy=multi-user.target
EOF
ln -s ../tunneld-systemd-test.service "$root/etc/systemd/system/multi-user.target.wants/"
# No login prompts: a getty on ttyS0 would hang up the test's output.
ln -s /dev/null "$root/etc/systemd/system/serial-getty@.service"
ln -s /dev/null "$root/etc/systemd/system/getty@.service"
echo tunneld-test >"$root/etc/hostname"
# A machine id: without one systemd boots as a first boot (presets).
echo 5f1d2c3b4a5948e7a6b5c4d3e2f1a0b9 >"$root/etc/machine-id"
# The initramfs root cannot be a mount namespace's root (systemd's sandbox
# needs one): /init copies it onto a tmpfs and switches to that.
cat >"$root/init" <<'EOF'
#!/bin/sh
mkdir -p /newroot /proc
mount -t proc proc /proc
echo "init: copying the root onto a tmpfs, up $(cut -d' ' -f1 /proc/uptime)s" >/dev/console
mount -t tmpfs -o size=1200m,mode=0755 tmpfs /newroot
for d in /*; do
	case $d in /newroot|/proc|/sys|/dev|/init) ;; *) cp -a "$d" /newroot/ ;; esac
done
mkdir -p /newroot/proc /newroot/sys /newroot/dev
echo "init: starting systemd, up $(cut -d' ' -f1 /proc/uptime)s" >/dev/console
umount /proc
exec switch_root /newroot /lib/systemd/systemd
EOF
chmod 0755 "$root/init"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) >"$work/initrd.cpio"
rm -rf "$root"

console=$out/systemd-console.log
echo "systemd test: booting $kver with systemd (TCG; a few minutes)"
timeout 20m qemu-system-x86_64 -accel tcg -m 2048 -smp 1 -nographic -no-reboot -nic none \
	-kernel "$vmlinuz" -initrd "$work/initrd.cpio" \
	-append "console=ttyS0 rdinit=/init panic=-1 quiet loglevel=3 systemd.show_status=0" </dev/null |
	stdbuf -o0 tr -d '\r' | tee "$console" | grep --line-buffered -E '^(ok|not ok|#|guest:|init:|TUNNELD-SYSTEMD-RESULT)' || true
result=$(grep -o 'TUNNELD-SYSTEMD-RESULT failed=[0-9]*' "$console" || true)
if [ "$result" != "TUNNELD-SYSTEMD-RESULT failed=0" ]; then
	echo "systemd test: FAIL (${result:-no result line}); the whole console is in $console" >&2
	[ -n "$result" ] || tail -40 "$console" >&2
	exit 1
fi
echo "systemd test: PASS ($(grep -c '^ok - ' "$console") checks)"
