#!/bin/sh
# pkgversion.sh VERSION EPOCH: the package version (without the release)
# for a `git describe --tags --always --dirty` string, valid for both dpkg
# and opkg (starts with a digit; only [0-9A-Za-z.+~]):
#   v1.2.3                -> 1.2.3
#   v1.2.3-4-gabc1234     -> 1.2.3+4.gabc1234
#   v1.2.3-dirty          -> 1.2.3+dirty
#   0af2767 (no tag yet)  -> 0.0.0~git20261122.143005.0af2767
#   0af2767-dirty         -> 0.0.0~git20261122.143005.0af2767.dirty
# EPOCH (seconds, SOURCE_DATE_EPOCH: by default HEAD's commit time) dates
# the untagged form, to the second in UTC, so that untagged builds order by
# commit time: dpkg and opkg compare YYYYMMDD and HHMMSS as numbers, and
# reach the hash (which orders nothing) only for two commits of one second.
set -eu
v=${1#v}
epoch=${2:-0}
case $v in
[0-9]*.[0-9]*)
	# tag[-N-gHASH][-dirty]
	printf '%s\n' "$v" | sed -e 's/-\([0-9][0-9]*\)-g\([0-9a-f]*\)/+\1.g\2/' \
		-e 's/-\(rc\|alpha\|beta\|pre\)/~\1/' -e 's/-dirty$/.dirty/' -e 's/^\([^+]*\)\.dirty$/\1+dirty/' -e 's/[^0-9A-Za-z.+~]/./g'
	;;
*)
	when=$(date -u -d "@$epoch" +%Y%m%d.%H%M%S 2>/dev/null || echo 19700101.000000)
	printf '0.0.0~git%s.%s\n' "$when" "$(printf '%s' "$v" | sed 's/[^0-9A-Za-z.+~]/./g')"
	;;
esac
