# common.sh: sourced by mkipk.sh and mkdeb.sh.
# shellcheck shell=sh

# The package description (the synopsis is the first line).
# shellcheck disable=SC2034 # used by the scripts that source this
PKG_SYNOPSIS='IP tunnel daemon: IPIP, GRE, SIT and ip6tnl tunnels from one TOML file'
pkg_description() {
	# $1: the prefix of continuation lines (" " for both formats).
	sed "s/^/$1/" <<'TXT'
tunneld keeps IPIP, GRE, SIT and ip6tnl tunnels, their addresses, routes
in any table, policy rules, ip_forward/proxy_arp and a small nftables
table (outer-packet protection, anti-spoofing, forward policy, MSS
clamping, NAT) in the state /etc/tunneld/tunneld.toml describes. It
follows WAN addresses and DNS names, reloads on SIGHUP and changes
only what it owns. The packaged configuration configures nothing.
TXT
}

# pkg_tar DIR OUT MEMBER...: a reproducible gzip'd tar of MEMBERs of DIR:
# GNU format, names sorted, owner root:root by number, every mtime
# SOURCE_DATE_EPOCH, no name or time in the gzip header.
pkg_tar() {
	_dir=$1
	_out=$2
	shift 2
	(cd "$_dir" && tar --format=gnu --sort=name --numeric-owner --owner=0 --group=0 \
		--mtime="@${SOURCE_DATE_EPOCH}" -cf - "$@") | gzip -9n >"$_out"
}
