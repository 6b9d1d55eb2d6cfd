#!/bin/sh
# mkipk.sh: build an OpenWrt .ipk without the SDK.
#
# Environment: BIN (the tunneld binary for ARCH), ARCH (OpenWrt package
# architecture, e.g. mipsel_24kc), PKG_VERSION (full, with the release),
# SOURCE_DATE_EPOCH, OUT (output directory), PKG_MAINTAINER, PKG_LICENSE.
#
# Format: what OpenWrt's own scripts/ipkg-build writes and opkg reads: an
# outer gzip'd GNU tar holding ./debian-binary ("2.0"), ./data.tar.gz and
# ./control.tar.gz, in that order. (opkg also still reads the older ar(1)
# container, but OpenWrt has only produced the tar.gz form for years, so
# that is what an installed opkg is sure to accept.) Every member is owned
# by 0:0 and dated SOURCE_DATE_EPOCH: the same inputs give the same bytes.
set -eu
: "${BIN:?}" "${ARCH:?}" "${PKG_VERSION:?}" "${SOURCE_DATE_EPOCH:?}" "${OUT:?}"
: "${PKG_MAINTAINER:=tunneld developers <dev@tunneld.invalid>}" "${PKG_LICENSE:=unspecified}"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
data=$work/data
ctrl=$work/control
mkdir "$data" "$ctrl"
# The data tar's "./" entry lands on / of the router: never 0700.
chmod 0755 "$data" "$ctrl"

install -d -m 0755 "$data/usr" "$data/usr/sbin" "$data/etc" "$data/etc/init.d" "$data/etc/tunneld"
install -m 0755 "$BIN" "$data/usr/sbin/tunneld"
install -m 0755 "$root/init/tunneld.init" "$data/etc/init.d/tunneld"
# 0600 like the feed's INSTALL_CONF: the daemon runs as root on OpenWrt.
install -m 0600 "$root/packaging/tunneld.toml" "$data/etc/tunneld/tunneld.toml"
# The fw4 includes, opt-in (see packaging/README.md): not in
# /usr/share/nftables.d, where fw4 would load them on its own.
(cd "$root/packaging/openwrt/files" && find usr -type d) | while read -r d; do
	install -d -m 0755 "$data/$d"
done
(cd "$root/packaging/openwrt/files" && find usr -type f) | while read -r f; do
	install -m 0644 "$root/packaging/openwrt/files/$f" "$data/$f"
done

pkg_tar "$data" "$work/data.tar.gz" .
# As ipkg-build: the size of the uncompressed data tar, in bytes.
size=$(gzip -dc "$work/data.tar.gz" | wc -c | tr -d ' ')

{
	echo "Package: tunneld"
	echo "Version: $PKG_VERSION"
	echo "Depends: kmod-ipip, kmod-gre, kmod-sit, kmod-ip6-tunnel, kmod-nft-core, kmod-nft-nat"
	echo "Source: packaging/openwrt"
	echo "SourceName: tunneld"
	echo "License: $PKG_LICENSE"
	echo "Section: net"
	echo "SourceDateEpoch: $SOURCE_DATE_EPOCH"
	echo "URL: https://github.com/tunneld/tunneld"
	echo "Maintainer: $PKG_MAINTAINER"
	echo "Architecture: $ARCH"
	echo "Installed-Size: $size"
	echo "Description: $PKG_SYNOPSIS"
	pkg_description ' '
} >"$ctrl/control"
echo /etc/tunneld/tunneld.toml >"$ctrl/conffiles"
install -m 0755 "$root/packaging/ipk/postinst" "$ctrl/postinst"
install -m 0755 "$root/packaging/ipk/prerm" "$ctrl/prerm"
chmod 0644 "$ctrl/control" "$ctrl/conffiles"
pkg_tar "$ctrl" "$work/control.tar.gz" .

echo 2.0 >"$work/debian-binary"
chmod 0644 "$work/debian-binary" "$work/data.tar.gz" "$work/control.tar.gz"
mkdir -p "$OUT"
ipk=$OUT/tunneld_${PKG_VERSION}_${ARCH}.ipk
pkg_tar "$work" "$ipk.tmp" ./debian-binary ./data.tar.gz ./control.tar.gz
mv "$ipk.tmp" "$ipk"
echo "$ipk"
