#!/usr/bin/env bash
# Runs the privileged tests and the seed scenarios in the test VMs.
# usage: testdata/vm/suite.sh [amd64|mipsle|all] [extra testdata/vm flags]
set -euo pipefail
cd "$(dirname "$0")/../.."
arch=${1:-all}
shift || true
case $arch in
all) arches="amd64 mipsle" ;;
amd64 | mipsle) arches=$arch ;;
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
	esac
	env CGO_ENABLED=0 GOOS=linux $goenv go build -trimpath -o "$out/$a/tunneld" ./cmd/tunneld
	for p in $pkgs; do
		env CGO_ENABLED=0 GOOS=linux $goenv go test -c -trimpath -o "$out/$a/$p.test" "./pkg/$p"
	done
done
files=(-file "$out/{arch}/tunneld:/t/tunneld")
for p in $pkgs; do
	files+=(-file "$out/{arch}/$p.test:/t/$p.test")
done
while IFS= read -r f; do
	files+=(-file "$PWD/$f:/src/$f")
done < <(git ls-files testdata/seeds testdata/examples testdata/reference.toml 'pkg/*/testdata/*' 'pkg/*/testdata/**/*')
exec go run ./testdata/vm -arch "$arch" -timeout "${TUNNELD_VM_TIMEOUT:-15m}" -script testdata/vm/guest.sh "${files[@]}" "$@"
