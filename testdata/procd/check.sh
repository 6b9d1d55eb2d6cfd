#!/bin/bash
# usage: unshare -m -n --propagation private testdata/procd/check.sh PROCD_ENV TUNNELD_BIN
#
# Drives init/tunneld.init under OpenWrt's procd, the way an admin on a
# router would, and checks what the script promises: start runs `tunneld
# check` first and makes one instance, its output reaches the log, reload
# and the config.change trigger send SIGHUP (same process), a killed daemon
# is respawned, an invalid file gives one log line and no instance to
# respawn (and restart refuses it without stopping the daemon), stop tears down (or not, with keep_on_exit), enable makes the
# rc.d links. Prints "ok - ..." / "not ok - ..." and fails if any check
# failed.
#
# Not part of `make test`: it needs PROCD_ENV, a procd + ubusd + busybox
# userland (OpenWrt's procd, ubus, libubox, uci and base-files' rc.common,
# functions.sh and procd.sh, built from source) whose start.sh brings
# ubusd, a syslog and procd (not as PID 1) up inside the current, private
# mount namespace, overlaying /etc, /usr, /run and /dev there so that the
# OpenWrt paths exist; its env.sh sets PROCD_ENV_LOG. Neither OpenWrt's
# sources nor its images can be downloaded on the CI machines. The host
# kernel needs no tunnel driver: the configuration has a route and a rule
# but no tunnel.
#
# Checked on 2026-12-02, and again on 2026-12-03 (41 ok, including the
# start with an invalid file while the daemon runs), with procd 2c1834ab, ubus 3cc98db1, libubox
# 1aa36ee7, uci 66127cd7, udebug 875e1a7a, ubox 6f78fa49 and jsonpath
# afe72ad, built with cmake on Debian 12 with Lua, jail, seccomp and utrace
# off, and busybox ash as /bin/sh in the namespace. Per the environment's
# build notes (not re-checked here): procd was patched to refuse
# reboot/sysupgrade when it is not PID 1, and dash cannot run procd.sh
# and jshn.sh.
#
# Checked again on 2026-12-04 (52 ok, with restart refusing an invalid file
# without stopping the daemon, and a valid restart making a new process;
# the four restart checks fail against the script before that change) with
# the same procd, ubus, libubox, uci, udebug and jsonpath versions, built by
# another session's notes (unpatched procd), its start.sh/env.sh/stop.sh a
# small adapter around that userland; run with unshare -m -n (a pid
# namespace with its own /proc fails the check above).
set -u
env=${1:?usage: check.sh PROCD_ENV TUNNELD_BIN}
bin=${2:?usage: check.sh PROCD_ENV TUNNELD_BIN}
here=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(readlink /proc/self/ns/net)" = "$(readlink /proc/1/ns/net)" ]; then
	echo "check.sh: run it under unshare -m -n (its own network and mount namespaces)" >&2
	exit 1
fi

work=$(mktemp -d)
mkdir -p "$work/init.d"
install -m 0755 "$here/init/tunneld.init" "$work/init.d/tunneld"
"$env/start.sh" "$work/init.d" >/dev/null || exit 1
# shellcheck disable=SC1091
. "$env/env.sh"
trap '/etc/init.d/tunneld stop >/dev/null 2>&1; "$env/stop.sh" >/dev/null 2>&1; rm -rf "$work"' EXIT
install -m 0755 "$bin" /usr/sbin/tunneld
mkdir -p /etc/tunneld
cfg=/etc/tunneld/tunneld.toml

# shellcheck source=testdata/shtest/checks.sh
. "$here/testdata/shtest/checks.sh"
diagnose() {
	ubus call service list '{"name":"tunneld"}'
	tail -n 8 "$PROCD_ENV_LOG"
}
pid() { ubus call service list '{"name":"tunneld"}' | jsonfilter -e '@.tunneld.instances.tunneld.pid'; }
instances() { ubus call service list '{"name":"tunneld"}' | jsonfilter -e '@.tunneld.instances.*.command[0]' | grep -c .; }
has_rule() { ip rule show | grep -q "from $1 lookup 42"; }
log_lines() { wc -l <"$PROCD_ENV_LOG"; }
log_after() { tail -n +"$(($1 + 1))" "$PROCD_ENV_LOG"; }
export -f pid has_rule log_after
export PROCD_ENV_LOG

ip link add wan type veth peer name peer0
ip link set wan up
ip link set peer0 up
ip addr add 192.0.2.1/24 dev wan
ip rule add from 203.0.113.0/24 table 100 priority 500
foreign_ok() { ip rule show | grep -q 'from 203.0.113.0/24 lookup 100'; }
sysctl -qw net.ipv4.ip_forward=0

config() { # config EXTRA_RULE_SOURCE [KEEP_ON_EXIT]
	cat >"$cfg" <<EOF
[global]
ip_forward = true
keep_on_exit = ${2:-false}
[tables]
moe = 42
[[route]]
to = "10.10.0.0/24"
dev = "wan"
table = "moe"
[[rule]]
from = "10.9.0.0/30"
table = "moe"
EOF
	[ -z "$1" ] || printf '[[rule]]\nfrom = "%s"\ntable = "moe"\n' "$1" >>"$cfg"
}
config ""

check "start" /etc/init.d/tunneld start
eventually "one instance runs" 10 bash -c '[ -n "$(pid)" ]'
check "procd runs it as \`tunneld run -log-split -c $cfg\`" bash -c "ubus call service list '{\"name\":\"tunneld\"}' | jsonfilter -e '@.tunneld.instances.tunneld.command[*]' | tr '\n' ' ' | grep -q '^/usr/sbin/tunneld run -log-split -c $cfg \$'"
eventually "its rule is in place" 10 has_rule 10.9.0.0/30
check "its route is in table 42" bash -c 'ip route show table 42 | grep -q "10.10.0.0/24 dev wan"'
check "ip_forward was set" test "$(sysctl -n net.ipv4.ip_forward)" = 1
eventually "its output reaches the log (stdout/stderr 1)" 10 grep -q 'tunneld.*converged\|tunneld.*changed' "$PROCD_ENV_LOG"
check "its info lines are logged at info priority" grep -q 'daemon\.info tunneld.*level=INFO' "$PROCD_ENV_LOG"
check "no info line at err priority" bash -c "! grep -q 'daemon\.err tunneld.*level=INFO' '$PROCD_ENV_LOG'"
check "respawn is set (3600 s, 5 s, 5 retries)" bash -c "ubus call service list '{\"name\":\"tunneld\"}' | jsonfilter -e '@.tunneld.instances.tunneld.respawn' | tr -d ' \n' | grep -q '\"threshold\":3600,\"timeout\":5,\"retry\":5'"

# reload: SIGHUP, the same process takes the new file.
p=$(pid)
config 10.8.0.0/30
check "reload" /etc/init.d/tunneld reload
eventually "reload: the new rule appears" 10 has_rule 10.8.0.0/30
check "reload: the same process (SIGHUP, no restart)" test "$(pid)" = "$p"

# The config.change trigger for package tunneld reloads it too.
config 10.7.0.0/30
ubus call service event '{"type":"config.change","data":{"package":"tunneld"}}'
eventually "the config.change trigger reloads" 15 has_rule 10.7.0.0/30
check "trigger: the same process" test "$(pid)" = "$p"

# A crashed daemon is respawned.
kill -KILL "$p"
eventually "a killed daemon is respawned" 20 bash -c "q=\$(pid); [ -n \"\$q\" ] && [ \"\$q\" != $p ]"
p=$(pid)
check "the rules survive the crash" has_rule 10.7.0.0/30

# An invalid file: reload refuses it with one log line, the daemon stays.
cp "$cfg" "$work/good.toml"
printf '[global]\nip_forward = "yes"\n' >"$cfg"
n=$(log_lines)
check "reload refuses an invalid file" bash -c '! /etc/init.d/tunneld reload 2>/dev/null'
check "the daemon stays" test "$(pid)" = "$p"
check "its rules stay" has_rule 10.7.0.0/30
check "one log line names the file, line and column" test "$(log_after "$n" | grep -c "not started/reloaded: .*$cfg:2:")" = 1
# The daemon's own refusal (a SIGHUP that bypasses the script) is an
# error, logged at err priority.
kill -HUP "$p"
eventually "a refused SIGHUP is logged at err priority" 10 bash -c "log_after $n | grep -q 'daemon\.err tunneld.*level=ERROR.*$cfg:2:'"

# start while it runs (LuCI's Start, a script): refused, the daemon stays.
# rc.common would otherwise send procd an empty instance list, which stops
# the running daemon and tears everything down.
check "start refuses an invalid file while running" bash -c '! /etc/init.d/tunneld start 2>/dev/null'
check "start: the daemon stays" test "$(pid)" = "$p"
check "start: its rules stay" has_rule 10.7.0.0/30

# restart with it (an upgrade's postinst runs restart too): refused before
# the stop, which would tear everything down for a start that makes nothing.
n=$(log_lines)
check "restart refuses an invalid file" bash -c '! /etc/init.d/tunneld restart 2>/dev/null'
check "restart: the daemon stays" test "$(pid)" = "$p"
check "restart: its rules stay" has_rule 10.7.0.0/30
check "restart: one log line, not restarted" test "$(log_after "$n" | grep -c "not restarted (nothing stopped): .*$cfg:2:")" = 1

# Stopped, then started with it (as at boot): no instance, no respawn loop.
check "stop (invalid file)" /etc/init.d/tunneld stop
check "stop: its rules are gone" bash -c '! ip rule show | grep -q "lookup 42"'
check "ip_forward restored by that stop" test "$(sysctl -n net.ipv4.ip_forward)" = 0
n=$(log_lines)
/etc/init.d/tunneld start 2>/dev/null
check "start: no instance with an invalid file" test "$(instances)" = 0
sleep 12
check "no respawn loop: one log line in 12 s" test "$(log_after "$n" | grep -c 'not started/reloaded')" = 1
check "still no instance" test "$(instances)" = 0

# Fixed: reload starts it (the script's reload starts a stopped service).
cp "$work/good.toml" "$cfg"
check "reload after fixing the file" /etc/init.d/tunneld reload
eventually "it runs again" 10 has_rule 10.7.0.0/30

# A valid file restarts: a new process, with the rules in place.
p=$(pid)
check "restart with a valid file" /etc/init.d/tunneld restart
eventually "restart: a new process" 10 bash -c "q=\$(pid); [ -n \"\$q\" ] && [ \"\$q\" != $p ]"
eventually "restart: its rules are in place" 10 has_rule 10.7.0.0/30

# stop tears down; someone else's rule stays.
check "stop" /etc/init.d/tunneld stop
check "stop: its rules are gone" bash -c '! ip rule show | grep -q "lookup 42"'
check "stop: its route is gone" bash -c '[ -z "$(ip route show table 42)" ]'
check "stop: ip_forward restored" test "$(sysctl -n net.ipv4.ip_forward)" = 0
check "stop: someone else's rule is untouched" foreign_ok

# keep_on_exit = true: stop leaves the state in place.
config "" true
check "start (keep_on_exit)" /etc/init.d/tunneld start
eventually "keep_on_exit: running" 10 has_rule 10.9.0.0/30
check "stop (keep_on_exit)" /etc/init.d/tunneld stop
check "keep_on_exit: its rule stays after stop" has_rule 10.9.0.0/30
tunneld down -c "$cfg" >/dev/null

# enable: boot links after network (20) and before the usual services.
check "enable" /etc/init.d/tunneld enable
check "enabled" /etc/init.d/tunneld enabled
check "boot links S30tunneld and K80tunneld" test -L /etc/rc.d/S30tunneld -a -L /etc/rc.d/K80tunneld

echo "procd check: $failed failed"
[ "$failed" = 0 ]
