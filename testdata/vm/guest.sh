# The VM test suite, run as root inside each guest (busybox sh). The test
# binaries are in /t, built for the guest's architecture; the repository's
# test data is under /src at the paths the tests expect. Every privileged
# test runs for real here: a missing tunnel driver is a failure, not a skip.
export TUNNELD_PRIVILEGED=1 TUNNELD_REQUIRE_DRIVERS=1 TUNNELD_BIN=/t/tunneld
# iproute2's ip and nft, where the suite put them (the amd64 guest).
if [ -x /opt/iproute2/nft ]; then
	export TUNNELD_IPROUTE2=/opt/iproute2
fi
rc=0
for p in netnstest watch nft linux e2e; do
	echo "=== VM suite: pkg/$p"
	mkdir -p "/src/pkg/$p"
	if ! (cd "/src/pkg/$p" && "/t/$p.test" -test.v -test.count=1 -test.timeout=10m); then
		echo "=== VM suite: pkg/$p FAILED"
		rc=1
	fi
done
exit $rc
