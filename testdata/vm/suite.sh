#!/usr/bin/env bash
# Runs the privileged tests and the seed scenarios in the test VMs.
# usage: testdata/vm/suite.sh [amd64|mipsle|all|mips] [extra testdata/vm flags]
# (mips, the big-endian guest, needs TUNNELD_VM_MIPS_KERNEL and
# TUNNELD_VM_MIPS_BUSYBOX: make test-vm-mips sets them)
set -euo pipefail
cd "$(dirname "$0")/../.."
arch=${1:-all}
shift || true
case $arch in
all) arches="amd64 mipsle" ;;
amd64 | mipsle | mips) arches=$arch ;;
*) echo "suite.sh: unknown arch $arch" >&2; exit 2 ;;
esac
out=${TUNNELD_VM_BUILD:-$(mktemp -d)}
trap 'rm -rf "$out"' EXIT
pkgs="netnstest watch nft linux e2e"
for a in $arches; do
	mkdir -p "$out/$a"
	case $a in
	amd64) goenv="GOARCH=amd64" ;;
	mipsle) goenv="GOARCH=mipsle GOMIPS=softfloat" ;;
	mips) goenv="GOARCH=mips GOMIPS=softfloat" ;;
	esac
	env CGO_ENABLED=0 GOOS=linux $goenv go build -trimpath -o "$out/$a/tunneld" ./cmd/tunneld
	for p in $pkgs; do
		env CGO_ENABLED=0 GOOS=linux $goenv go test -c -trimpath -o "$out/$a/$p.test" "./pkg/$p"
	done
done
files=(-file "$out/{arch}/tunneld:/t/tunneld")
# The host's iproute2 ip and nft, with their libraries, for the amd64
# guest only (pkg/e2e's TestPastedPlan runs the printed plans with them).
if [ "$arch" != mipsle ] && [ "$arch" != mips ]; then
	if ! command -v nft >/dev/null; then
		echo "suite.sh: no nft on this host: install nftables (testdata/vm/REQUIREMENTS)" >&2
		exit 1
	fi
	mkdir -p "$out/amd64/iproute2"
	declare -A shipped
	for prog in "$(command -v ip)" "$(command -v nft)"; do
		cp "$prog" "$out/amd64/iproute2/"
		files+=(-file-if-present "$out/{arch}/iproute2/$(basename "$prog"):/opt/iproute2/$(basename "$prog")")
		for lib in $(ldd "$prog" | grep -o '/[^ ]*'); do
			[ -z "${shipped[$lib]:-}" ] || continue
			shipped[$lib]=1
			mkdir -p "$out/amd64/lib$(dirname "$lib")"
			cp "$(readlink -f "$lib")" "$out/amd64/lib$lib"
			files+=(-file-if-present "$out/{arch}/lib$lib:$lib")
		done
	done
fi
for p in $pkgs; do
	files+=(-file "$out/{arch}/$p.test:/t/$p.test")
done
while IFS= read -r f; do
	files+=(-file "$PWD/$f:/src/$f")
done < <(git ls-files testdata/seeds testdata/examples testdata/reference.toml 'pkg/*/testdata/*' 'pkg/*/testdata/**/*')
exec go run ./testdata/vm -arch "$arch" -timeout "${TUNNELD_VM_TIMEOUT:-15m}" -script testdata/vm/guest.sh "${files[@]}" "$@"
