#!/usr/bin/env bash
# build.sh: the big-endian MIPS Malta guest's kernel and busybox, which
# Debian 12 does not ship (it has no big-endian mips port): a vmlinux
# from linux-source-6.1 with be.config's options built in, and a static
# busybox from Debian's busybox source with Debian's static
# configuration, both cross-compiled with gcc-mips-linux-gnu. As root it
# installs what it needs with apt-get; busybox's source comes through a
# private deb-src list, the system's apt sources are left as they are.
#
# Output, reused while the sources and be.config are unchanged:
#   $TUNNELD_VM_CACHE/mips-build/vmlinux and .../busybox
# (TUNNELD_VM_CACHE defaults to ~/.cache/tunneld-vm). It prints the two
# paths, for TUNNELD_VM_MIPS_KERNEL and TUNNELD_VM_MIPS_BUSYBOX. The
# kernel takes about 15 minutes on two cores, busybox about 2.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${TUNNELD_VM_CACHE:-$HOME/.cache/tunneld-vm}/mips-build
mkdir -p "$out"
cd "$out"

need=()
command -v mips-linux-gnu-gcc >/dev/null || need+=(gcc-mips-linux-gnu libc6-dev-mips-cross)
[ -e /usr/src/linux-source-6.1.tar.xz ] || need+=(linux-source-6.1)
for t in make bc flex bison xz bzip2 dpkg-source; do
	command -v $t >/dev/null || need+=($t)
done
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "build.sh: run as root, or apt-get install ${need[*]}" >&2
		exit 1
	fi
	# Tool names to packages: xz, bzip2 and dpkg-source are in xz-utils,
	# bzip2 and dpkg-dev.
	pkgs=$(printf '%s\n' "${need[@]}" | sed 's/^xz$/xz-utils/; s/^dpkg-source$/dpkg-dev/' | sort -u)
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $pkgs libc6-dev >/dev/null
fi

# The kernel: rebuilt when the source package or be.config changes.
ksrc=/usr/src/linux-source-6.1.tar.xz
kkey=$( (dpkg-query -W -f '${Version}' linux-source-6.1 2>/dev/null || true; cat "$here/be.config") | sha256sum | cut -c1-12)
if [ "$(cat vmlinux.key 2>/dev/null)" != "$kkey" ] || [ ! -s vmlinux ]; then
	rm -rf linux vmlinux vmlinux.key
	mkdir linux
	tar -xJf "$ksrc" -C linux --strip-components=1
	(
		cd linux
		export ARCH=mips CROSS_COMPILE=mips-linux-gnu-
		make -s malta_defconfig
		scripts/kconfig/merge_config.sh -m .config "$here/be.config" >/dev/null
		make -s olddefconfig
		# An option that did not stick would leave a driver out unseen.
		# NFT_COUNTER is part of the nf_tables core in 6.1 and has no
		# option of its own.
		while IFS= read -r l; do
			case $l in
			CONFIG_NFT_COUNTER=*) ;;
			CONFIG_*=*) grep -qx "$l" .config || { echo "build.sh: $l did not stick" >&2; exit 1; } ;;
			esac
		done <"$here/be.config"
		make -s -j"$(nproc)" vmlinux
	)
	cp linux/vmlinux vmlinux
	mkdir -p include/config && cp linux/include/config/kernel.release include/config/
	rm -rf linux
	echo "$kkey" >vmlinux.key
fi

# busybox: Debian's source and static configuration.
if [ ! -s busybox ]; then
	rm -rf bb && mkdir -p bb/lists/partial
	echo 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main' >bb/src.list
	aptsrc=(-o Dir::Etc::SourceList="$out/bb/src.list" -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$out/bb/lists")
	apt-get "${aptsrc[@]}" update -qq
	(cd bb && apt-get "${aptsrc[@]}" source -qq busybox >/dev/null)
	(
		cd bb/busybox-*/
		cp debian/config/pkg/static .config
		grep -q '^CONFIG_STATIC=y' .config || echo CONFIG_STATIC=y >>.config
		(set +o pipefail; yes '' | make -s CROSS_COMPILE=mips-linux-gnu- oldconfig >/dev/null)
		make -s -j"$(nproc)" CROSS_COMPILE=mips-linux-gnu- busybox
		mips-linux-gnu-strip -o "$out/busybox" busybox
	)
	rm -rf bb
fi
echo "$out/vmlinux"
echo "$out/busybox"
