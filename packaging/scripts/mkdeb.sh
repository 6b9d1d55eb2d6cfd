#!/bin/sh
# mkdeb.sh: build the Debian package with dpkg-deb (no debhelper, no source
# package: the binary is the static cross build).
#
# Environment: BIN (the tunneld binary for DEB_ARCH), DEB_ARCH (amd64,
# arm64, armhf, armel, mipsel), PKG_VERSION (full, with the Debian
# revision), VERSION (git describe, for the changelog), SOURCE_DATE_EPOCH,
# OUT (output directory), PKG_MAINTAINER.
set -eu
: "${BIN:?}" "${DEB_ARCH:?}" "${PKG_VERSION:?}" "${SOURCE_DATE_EPOCH:?}" "${OUT:?}"
: "${VERSION:=$PKG_VERSION}" "${PKG_MAINTAINER:=tunneld developers <dev@tunneld.invalid>}"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
r=$work/root
doc=$r/usr/share/doc/tunneld
install -d -m 0755 "$r" "$r/DEBIAN" "$r/usr/sbin" "$r/lib/systemd/system" "$r/etc/tunneld" \
	"$doc" "$doc/examples" "$r/usr/share/man/man8" "$r/usr/share/lintian/overrides"

install -m 0755 "$BIN" "$r/usr/sbin/tunneld"
install -m 0644 "$root/init/tunneld.service" "$r/lib/systemd/system/tunneld.service"
install -m 0644 "$root/packaging/tunneld.toml" "$r/etc/tunneld/tunneld.toml"
install -m 0644 "$root/README.md" "$doc/README.md"
install -m 0644 "$root/testdata/reference.toml" "$doc/reference.toml"
install -m 0644 "$root"/testdata/examples/*.toml "$doc/examples/"
install -m 0644 "$root/packaging/README.md" "$doc/README.packaging.md"
install -m 0644 "$root/packaging/debian/copyright" "$doc/copyright"
gzip -9n <"$root/packaging/tunneld.8" >"$r/usr/share/man/man8/tunneld.8.gz"
install -m 0644 "$root/packaging/debian/lintian-overrides" "$r/usr/share/lintian/overrides/tunneld"
{
	echo "tunneld ($PKG_VERSION) unstable; urgency=medium"
	echo
	echo "  * Built from tunneld $VERSION."
	echo
	echo " -- $PKG_MAINTAINER  $(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$doc/changelog.Debian.gz"
chmod 0644 "$r/usr/share/man/man8/tunneld.8.gz" "$doc/changelog.Debian.gz"

for s in postinst prerm postrm; do
	install -m 0755 "$root/packaging/debian/$s" "$r/DEBIAN/$s"
done
echo /etc/tunneld/tunneld.toml >"$r/DEBIAN/conffiles"
(cd "$r" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -print | LC_ALL=C sort |
	sed 's|^\./||' | xargs md5sum) >"$r/DEBIAN/md5sums"

# Installed-Size in KiB, counted as dpkg-gencontrol does: each file rounded
# up to a KiB, each directory one.
size=$(cd "$r" && find . -path ./DEBIAN -prune -o \( -type f -printf '%s\n' -o -printf '1024\n' \) |
	awk '{ s += int(($1 + 1023) / 1024) } END { print s }')
{
	echo "Package: tunneld"
	echo "Version: $PKG_VERSION"
	echo "Architecture: $DEB_ARCH"
	echo "Maintainer: $PKG_MAINTAINER"
	echo "Installed-Size: $size"
	# The unit's ExecReload= runs /bin/kill, which is procps's (Priority
	# important, not Essential: a minbase system or a container lacks it).
	echo "Depends: procps"
	echo "Section: net"
	echo "Priority: optional"
	echo "Homepage: https://github.com/tunneld/tunneld"
	echo "Description: $PKG_SYNOPSIS"
	pkg_description ' '
} >"$r/DEBIAN/control"
chmod 0644 "$r/DEBIAN/control" "$r/DEBIAN/conffiles" "$r/DEBIAN/md5sums"

# Same bytes for the same inputs: fixed mtimes (dpkg-deb sorts the entries
# and dates the ar members by SOURCE_DATE_EPOCH itself).
find "$r" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$OUT"
deb=$OUT/tunneld_${PKG_VERSION}_${DEB_ARCH}.deb
SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH dpkg-deb --root-owner-group -Zxz --build "$r" "$deb" >/dev/null
echo "$deb"
