#!/usr/bin/env bash
# make bench: tunneld's benchmarks in the test VMs (see pkg/bench).
# usage: testdata/vm/bench.sh [amd64|mipsle|native] [OUTDIR]
# amd64 compares with Debian's iproute2 (this machine's /usr/bin/ip and its
# libraries, copied into the guest); mipsel has only busybox's ip, so it
# measures N=100 against one busybox ip process per operation.
# TUNNELD_BENCH_BASELINE=REV builds tunneld at git revision REV too, and the
# reaction and resync benchmarks time it side by side with this tree's.
set -euo pipefail
cd "$(dirname "$0")/../.."
arch=${1:-amd64}
outdir=${2:-dist}
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
# baseline GOENV...: builds TUNNELD_BENCH_BASELINE's tunneld as $build/tunneld.base.
baseline() {
	[ -n "${TUNNELD_BENCH_BASELINE:-}" ] || return 0
	mkdir "$build/base"
	git archive "$TUNNELD_BENCH_BASELINE" | tar -x -C "$build/base"
	(cd "$build/base" && env CGO_ENABLED=0 GOOS=linux "$@" go build -trimpath -ldflags='-s -w' -o "$build/tunneld.base" ./cmd/tunneld)
}
case $arch in
amd64) goenv="GOARCH=amd64" ns="${TUNNELD_BENCH_N:-10 100 1000}" ;;
mipsle)
	# highres=off: with high-resolution timers the Malta guest's clock
	# loses whole periods of its counter (see BENCHMARKS.md).
	goenv="GOARCH=mipsle GOMIPS=softfloat" ns="${TUNNELD_BENCH_N:-100}" kargs="highres=off" ;;
native)
	# This machine's own kernel has no tunnel drivers: only the reaction,
	# approximated (see TestReactionNative), runs here, as root.
	mkdir -p "$outdir"
	CGO_ENABLED=0 go build -trimpath -o "$build/tunneld" ./cmd/tunneld
	CGO_ENABLED=0 go test -c -trimpath -o "$build/bench.test" ./pkg/bench
	baseline GOARCH="$(go env GOARCH)"
	base=""
	[ -z "${TUNNELD_BENCH_BASELINE:-}" ] || base="$build/tunneld.base"
	(cd "$build" && TUNNELD_BENCH_BASELINE_BIN="$base" TUNNELD_BENCH_BASELINE="${TUNNELD_BENCH_BASELINE:-}" TUNNELD_BENCH=1 TUNNELD_BENCH_NATIVE=1 TUNNELD_PRIVILEGED=1 TUNNELD_BIN="$build/tunneld" \
		./bench.test -test.v -test.count=1 -test.run '^TestReactionNative$') | tee "$outdir/bench-native.log"
	sed -n 's/.*BENCH //p' "$outdir/bench-native.log" >"$outdir/bench-native.jsonl"
	go run ./testdata/vm/benchtable <"$outdir/bench-native.jsonl"
	exit 0
	;;
*) echo "bench.sh: unknown arch $arch" >&2; exit 2 ;;
esac
env CGO_ENABLED=0 GOOS=linux $goenv go build -trimpath -ldflags='-s -w' -o "$build/tunneld" ./cmd/tunneld
env CGO_ENABLED=0 GOOS=linux $goenv go test -c -trimpath -o "$build/bench.test" ./pkg/bench
files=(-file "$build/tunneld:/t/tunneld" -file "$build/bench.test:/t/bench.test")
guestenv=""
baseline $goenv
if [ -n "${TUNNELD_BENCH_BASELINE:-}" ]; then
	files+=(-file "$build/tunneld.base:/t/tunneld.base")
	guestenv="TUNNELD_BENCH_BASELINE_BIN=/t/tunneld.base TUNNELD_BENCH_BASELINE=$TUNNELD_BENCH_BASELINE"
fi
if [ "$arch" = amd64 ]; then
	files+=(-file /usr/bin/ip:/opt/iproute2/ip)
	for lib in $(ldd /usr/bin/ip | grep -o '/[^ ]*'); do
		files+=(-file "$(readlink -f "$lib"):$lib")
	done
	guestenv="$guestenv TUNNELD_BENCH_IP=/opt/iproute2/ip"
fi
script="cd /t && TUNNELD_BENCH=1 TUNNELD_BENCH_PROFILE=1 TUNNELD_PRIVILEGED=1 TUNNELD_BIN=/t/tunneld TUNNELD_BENCH_ARCH=$arch \
TUNNELD_BENCH_N='$ns' ${TUNNELD_BENCH_RUNS:+TUNNELD_BENCH_RUNS=$TUNNELD_BENCH_RUNS} ${TUNNELD_BENCH_IDLE:+TUNNELD_BENCH_IDLE=$TUNNELD_BENCH_IDLE} ${TUNNELD_BENCH_LOG:+TUNNELD_BENCH_LOG=$TUNNELD_BENCH_LOG} $guestenv \
/t/bench.test -test.v -test.count=1 -test.timeout=90m ${TUNNELD_BENCH_RUN:+-test.run='$TUNNELD_BENCH_RUN'}"
mkdir -p "$outdir"
log="$outdir/bench-$arch.log"
go run ./testdata/vm -arch "$arch" -timeout 100m -v -kernel-args "${kargs:-}" -run "$script" "${files[@]}" | tee "$log"
sed -n 's/.*BENCH //p' "$log" | tr -d '\r' >"$outdir/bench-$arch.jsonl"
go run ./testdata/vm/benchtable <"$outdir/bench-$arch.jsonl"
