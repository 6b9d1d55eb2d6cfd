# shellcheck shell=bash
# Helpers for the shell-driven tests (testdata/vm/systemd/guest.sh,
# testdata/procd/check.sh), sourced by bash. Each check prints
# "ok - WHAT" or "not ok - WHAT"; a failed one also runs the sourcing
# script's diagnose function (what an admin would look at first) with its
# lines prefixed "#   ", and counts in $failed.
failed=0
ok() { echo "ok - $*"; }
bad() {
	echo "not ok - $*"
	failed=$((failed + 1))
	diagnose 2>&1 | sed 's/^/#   /'
}
# check WHAT COMMAND...: the command succeeds now.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
# eventually WHAT SECONDS COMMAND...: the command succeeds within SECONDS
# (the daemon reacts to netlink events; polling is only the test's way to
# wait for that).
eventually() {
	local what=$1 secs=$2
	shift 2
	local end=$((SECONDS + secs))
	while ! "$@"; do
		if [ $SECONDS -ge $end ]; then
			bad "$what (not within ${secs}s)"
			return 1
		fi
		sleep 0.2
	done
	ok "$what"
}
