#!/bin/bash
# The live systemd test, run inside a Debian 12 guest booted with systemd
# as PID 1 (see run.sh): installs tunneld's .deb and drives the unit the
# way an admin would, checking what the unit file promises. Each check
# prints "ok - ..." or "not ok - ..."; the last line is the result marker
# run.sh looks for.
set -u
PATH=/usr/sbin:/usr/bin:/sbin:/bin
cfg=/etc/tunneld/tunneld.toml
# shellcheck source=testdata/shtest/checks.sh
. /root/checks.sh
diagnose() {
	ip -br addr show dev wan
	ip -d link show moe
	journalctl -u tunneld.service -o short-monotonic --no-pager -n 15
}
prop() { systemctl show -p "$1" --value tunneld.service; }
mainpid() { prop MainPID; }
has_link() { ip -d link show "$1" 2>/dev/null | grep -q -- "$2"; }
no_link() { ! ip link show "$1" >/dev/null 2>&1; }
# mark prints the journal's current cursor; journal_since CURSOR prints the
# unit's messages after it (timestamps have only seconds).
mark() { journalctl -n 1 -o cat --show-cursor --no-pager | sed -n 's/^-- cursor: //p'; }
journal_since() { journalctl -u tunneld.service -o cat --no-pager --after-cursor "$1"; }
export -f prop journal_since

echo "guest: $(uname -r), systemd $(systemctl --version | sed -n 1p), up $(cut -d" " -f1 /proc/uptime)s"
depmod -a 2>/dev/null # the harness ships modules without modules.order

# The network: a WAN device with an address, and state that belongs to
# someone else, which must survive everything below.
ip link add wan type veth peer name peer0
ip link set wan up
ip link set peer0 up
ip addr add 192.0.2.1/24 dev wan
ip rule add from 203.0.113.0/24 table 100 priority 500
ip route add 203.0.113.0/24 dev lo table 100
nft add table inet foreign
foreign_ok() {
	ip rule show | grep -q 'from 203.0.113.0/24 lookup 100' &&
		ip route show table 100 | grep -q '203.0.113.0/24 dev lo' &&
		nft list tables | grep -q 'inet foreign'
}
sysctl -qw net.ipv4.ip_forward=0

# Install: postinst enables and starts the unit with the default
# configuration (no tunnels).
check "dpkg -i installs the package" dpkg -i /root/tunneld.deb
check "the unit is enabled" systemctl -q is-enabled tunneld.service
eventually "the unit is active after install" 60 systemctl -q is-active tunneld.service
check "systemd-analyze verify is clean on a live system" \
	bash -c 'out=$(systemd-analyze verify tunneld.service 2>&1); [ -z "$out" ] || { echo "$out" | sed "s|^|#   |"; false; }'

# The test configuration, taken by `systemctl reload` (SIGHUP).
cat >"$cfg" <<'EOF'
[global]
ip_forward = true
firewall = true
resync_interval = "10s"
[tables]
moe = 42
[tunnel.moe]
mode = "ipip"
local = "wan"
remote = "198.51.100.1"
address = ["10.9.0.1/30"]
hook = "/etc/tunneld/hook.sh"
[[route]]
to = "10.10.0.0/24"
dev = "moe"
table = "moe"
[[rule]]
from = "10.9.0.0/30"
table = "moe"
EOF
# The tunnel's hook, in the unit's sandbox: /run/tunneld is the one
# place it can write.
cat >/etc/tunneld/hook.sh <<'EOF'
#!/bin/sh
echo "$TUNNELD_REASON $TUNNELD_TUNNEL $TUNNELD_LOCAL uid=$(id -u)" >>/run/tunneld/hook-ran
EOF
chmod 0755 /etc/tunneld/hook.sh
t0=$(mark)
check "systemctl reload takes a valid configuration" systemctl reload tunneld.service
eventually "the tunnel exists, following wan's address" 30 has_link moe "ipip remote 198.51.100.1 local 192.0.2.1"
eventually "its route is in table 42" 10 bash -c 'ip route show table 42 | grep -q "10.10.0.0/24 dev moe"'
eventually "its rule is in place" 10 bash -c 'ip rule show | grep -q "from 10.9.0.0/30 lookup 42"'
check "its nftables table is in place" bash -c "nft list table inet tunneld >/dev/null"
eventually "the tunnel's hook ran, as the dynamic user, in the sandbox" 10 bash -c 'grep -q "^up moe 192.0.2.1 uid=[1-9]" /run/tunneld/hook-ran'
check "its run is logged" bash -c "journal_since '$t0' | grep -q 'hook /etc/tunneld/hook.sh: exit status 0'"
check "ip_forward was set" test "$(sysctl -n net.ipv4.ip_forward)" = 1
check "the reload is logged" bash -c "journal_since '$t0' | grep -q 'configuration reloaded'"
# A root-only hook: the daemon's user cannot run it, and the check the
# unit runs before a reload, as that user, says so.
chmod 0700 /etc/tunneld/hook.sh
t1=$(mark)
check "systemctl reload with a root-only hook still works" systemctl reload tunneld.service
check "its check, as the dynamic user, warns that it cannot run the hook" \
	bash -c "journal_since '$t1' | grep -q 'hook /etc/tunneld/hook.sh: not executable by uid [1-9]'"
chmod 0755 /etc/tunneld/hook.sh

# What the unit promises about privileges and the sandbox.
pid=$(mainpid)
check "the daemon runs (MainPID $pid)" test "$pid" -gt 0
status=/proc/$pid/status
check "it runs as a dynamic user, not root" bash -c "awk '/^Uid:/ { exit !(\$2 != 0 && \$3 != 0) }' $status"
for c in CapEff CapPrm CapBnd CapAmb; do
	check "$c is CAP_NET_ADMIN only" bash -c "grep -q '^$c:[[:space:]]*0000000000001000$' $status"
done
check "no new privileges" grep -q '^NoNewPrivs:[[:space:]]*1$' "$status"
check "a seccomp filter is on" grep -q '^Seccomp:[[:space:]]*2$' "$status"
check "Type=notify: STATUS= reaches systemd" bash -c '[[ "$(prop StatusText)" == *"1/1 tunnels up"* ]]'
check "the recorded sysctl originals are in /run/tunneld" bash -c 'ls /run/tunneld | grep -q .'
check "tunneld status (root, over the status socket) answers" bash -c 'tunneld status | grep -q moe'

# Self-healing inside the sandbox: netlink events still reach the daemon.
# A new lease in another subnet (in the same one, deleting the primary
# address would take the new secondary with it).
ip addr add 198.18.0.2/24 dev wan
ip addr del 192.0.2.1/24 dev wan
eventually "a new WAN address moves the tunnel" 10 has_link moe "local 198.18.0.2"
ip rule del from 10.9.0.0/30 lookup 42
eventually "a deleted rule comes back" 10 bash -c 'ip rule show | grep -q "from 10.9.0.0/30 lookup 42"'

# The watchdog: pings at half of WatchdogSec keep the service alive. A
# shorter period than the unit's 30 s, so that the test waits less; long
# enough that a host busy enough to stall the emulated CPU for a moment does
# not make it trip.
mkdir -p /run/systemd/system/tunneld.service.d
printf '[Service]\nWatchdogSec=8s\n' >/run/systemd/system/tunneld.service.d/watchdog.conf
systemctl daemon-reload
systemctl restart tunneld.service
check "WatchdogSec is in force" test "$(prop WatchdogUSec)" = 8s
pid=$(mainpid)
sleep 25
check "the daemon outlives three watchdog periods" test "$(mainpid)" = "$pid"
check "no watchdog restarts" test "$(prop NRestarts)" = 0
rm -r /run/systemd/system/tunneld.service.d
systemctl daemon-reload

# A bad configuration: reload refuses it and the running one stays; a
# (re)start fails in ExecStartPre with the file:line:col message, and the
# restarts stop at the start limit.
cp "$cfg" /root/good.toml
printf '[global]\nip_forward = "yes"\n' >"$cfg"
pid=$(mainpid)
t0=$(mark)
check "systemctl reload refuses an invalid configuration" bash -c '! systemctl reload tunneld.service'
check "the daemon keeps running" test "$(mainpid)" = "$pid"
check "the tunnel stays" has_link moe ipip
check "the refusal names file, line and column" bash -c "journal_since '$t0' | grep -q '$cfg:2:'"
# (Not --after-cursor: with -p it missed the line here, which the
# journal keeps in the dynamic user's file.)
check "the refusal is logged at err priority" bash -c "journalctl -u tunneld.service -p err -o cat --no-pager | grep -q '$cfg:2:'"
check "the daemon's info lines are at info priority, the prefix taken off" bash -c "journalctl -u tunneld.service -p info..info -o cat --no-pager | grep -q '^time=.* level=INFO msg='"
check "no info line at err priority" bash -c "! journalctl -u tunneld.service -p err -o cat --no-pager | grep -q 'level=INFO'"
# The daemon's own error line: a SIGHUP that bypasses ExecReload's check.
kill -HUP "$pid"
eventually "the daemon's refusal of a SIGHUP is at err priority" 10 bash -c "journalctl -u tunneld.service -p err -o cat --no-pager | grep -q 'level=ERROR msg=\"reload refused: $cfg:2:'"
check "the daemon still runs" test "$(mainpid)" = "$pid"
# An upgrade (the package again) with that file: postinst's check fails,
# so it does not restart the daemon (whose stop would tear everything
# down before ExecStartPre refused the start), and says so.
check "an upgrade with it installs" bash -c "dpkg -i /root/tunneld.deb >/root/upgrade.out 2>&1"
check "the upgrade leaves the daemon running" test "$(mainpid)" = "$pid"
check "and its tunnel" has_link moe ipip
check "the upgrade says it did not restart the daemon, and why" grep -q "not restarted after the upgrade.*$cfg:2:" /root/upgrade.out
t0=$(mark)
check "a restart with it fails" bash -c '! systemctl restart tunneld.service'
# RestartSec=5s, StartLimitBurst=5: the fifth failure is the last.
eventually "the retries stop at the start limit" 120 bash -c "journal_since '$t0' | grep -q 'Start request repeated too quickly'"
check "the unit is left failed" test "$(prop ActiveState)" = failed
n=$(journal_since "$t0" | grep -c "$cfg:2:")
check "each failed start logs the error ($n times; at most StartLimitBurst=5)" test "$n" -ge 1 -a "$n" -le 5
check "the stop before the failed start tore the tunnel down" no_link moe
check "someone else's rule, route and nftables table are untouched" foreign_ok
cp /root/good.toml "$cfg"
systemctl reset-failed tunneld.service
check "after fixing the file, start works" systemctl start tunneld.service
eventually "the tunnel is back" 30 has_link moe ipip

# Stop tears down what tunneld owns, and only that.
check "systemctl stop" systemctl stop tunneld.service
check "the tunnel is gone" no_link moe
check "its rule is gone" bash -c '! ip rule show | grep -q "lookup 42"'
check "its nftables table is gone" bash -c '! nft list table inet tunneld >/dev/null 2>&1'
check "ip_forward is restored" test "$(sysctl -n net.ipv4.ip_forward)" = 0
check "someone else's rule, route and nftables table are untouched" foreign_ok

# Removal: prerm stops it (already stopped here), purge removes the config.
check "dpkg --purge removes the package" dpkg --purge tunneld
check "the configuration is gone after purge" test ! -e "$cfg"

echo "guest: done, up $(cut -d" " -f1 /proc/uptime)s"
echo "TUNNELD-SYSTEMD-RESULT failed=$failed"
