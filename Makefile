# tunneld — see README.md.
GO        ?= go
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
GOFLAGS_BUILD := -trimpath -ldflags='$(LDFLAGS)'

.PHONY: all build test test-unit test-cross deps-cross deps-test test-priv test-vm test-vm-amd64 test-vm-mipsle test-vm-mips test-systemd deps-vm deps-systemd demo bench lint clean

all: build

## build: the host binary ./tunneld
build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o tunneld ./cmd/tunneld

## test: unit tests (on the host, then built for big-endian mips and
## 32-bit mipsle and run under qemu-user: test-cross), the privileged host
## tests (root only), the same
## privileged tests and the seed scenarios in both VMs (real tunnel
## drivers), the package builds (test-pkg, packaging/packaging.mk) and the
## .deb under a live systemd (test-systemd, root only)
test: test-unit test-cross test-priv test-vm test-pkg test-systemd

test-unit: deps-test
	$(GO) test ./...

# The unit tests again as the routers' binaries: mips (big-endian: ath79's
# mips_24kc) and mipsle, both 32-bit, each test binary run by qemu-user.
# They catch byte-order and word-size mistakes the host's amd64 cannot.
# Tests that start their own binary again skip there (no binfmt_misc).
test-cross: deps-cross
	GOARCH=mips GOMIPS=softfloat CGO_ENABLED=0 $(GO) test -exec qemu-mips-static ./pkg/... ./cmd/...
	GOARCH=mipsle GOMIPS=softfloat CGO_ENABLED=0 $(GO) test -exec qemu-mipsel-static ./pkg/... ./cmd/...

deps-cross:
	@if ! command -v qemu-mips-static >/dev/null || ! command -v qemu-mipsel-static >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null; \
		else echo "deps-cross: run as root, or apt-get install qemu-user-static"; exit 1; fi; \
	fi

# dnsmasq: a real DNS server for pkg/resolve's tests (they skip without
# it), installed when missing and root.
deps-test:
	@if ! command -v dnsmasq >/dev/null && ! [ -x /usr/sbin/dnsmasq ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends dnsmasq-base >/dev/null; \
		else echo "deps-test: not root, dnsmasq not installed: pkg/resolve's dnsmasq tests will skip"; fi; \
	fi

# Privileged tests create their own network namespaces; they never touch the
# host's. Without root they skip with a reason.
test-priv: deps-test
	@if [ "$$(id -u)" = 0 ]; then \
		TUNNELD_PRIVILEGED=1 $(GO) test -count=1 ./pkg/...; \
	else echo "test-priv: not root, privileged tests skipped"; fi

## test-vm: the privileged tests and seed scenarios in the amd64 and
## mipsel Malta guests (test-vm-amd64 / test-vm-mipsle: one of them)
test-vm: deps-vm
	testdata/vm/suite.sh all

test-vm-amd64 test-vm-mipsle: test-vm-%: deps-vm
	testdata/vm/suite.sh $*

## test-vm-mips: the same suite in a big-endian MIPS Malta guest (ath79's
## byte order), whose kernel and busybox testdata/vm/mips/build.sh builds
## first (Debian 12 has no big-endian mips port; 12 minutes here the first
## time, then cached). Not part of test: run it by hand.
VM_CACHE ?= $(or $(TUNNELD_VM_CACHE),$(HOME)/.cache/tunneld-vm)
test-vm-mips: deps-vm
	testdata/vm/mips/build.sh >/dev/null
	TUNNELD_VM_MIPS_KERNEL=$(VM_CACHE)/mips-build/vmlinux TUNNELD_VM_MIPS_BUSYBOX=$(VM_CACHE)/mips-build/busybox \
		testdata/vm/suite.sh mips

## test-systemd: the .deb under a live systemd (Debian 12 booted in the
## amd64 VM): testdata/vm/systemd
test-systemd:
	@if [ "$$(id -u)" = 0 ]; then \
		$(MAKE) --no-print-directory deps-vm deps-systemd && testdata/vm/systemd/run.sh; \
	else echo "test-systemd: not root (debootstrap needs it), skipped"; fi

deps-systemd:
	@if ! command -v debootstrap >/dev/null || ! command -v cpio >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap cpio >/dev/null; \
		else echo "deps-systemd: run as root, or apt-get install debootstrap cpio"; exit 1; fi; \
	fi

# The host packages the VMs need (testdata/vm/REQUIREMENTS), installed when
# missing and root.
deps-vm:
	@if ! command -v qemu-system-x86_64 >/dev/null || ! command -v qemu-system-mipsel >/dev/null \
		|| ! command -v nft >/dev/null \
		|| ! dpkg --print-foreign-architectures | grep -qx mipsel; then \
		if [ "$$(id -u)" = 0 ]; then sh -e testdata/vm/REQUIREMENTS; \
		else echo "deps-vm: run as root, or install what testdata/vm/REQUIREMENTS lists"; exit 1; fi; \
	fi

## demo: seed 000 end to end — in the amd64 VM when this kernel has no ipip
demo:
	@CGO_ENABLED=0 $(GO) build -trimpath -o .cache/demo/tunneld ./cmd/tunneld
	@CGO_ENABLED=0 $(GO) test -c -trimpath -o .cache/demo/e2e.test ./pkg/e2e
	@if [ "$$(id -u)" = 0 ] && unshare -n sh -c 'ip link add tunneld-probe type ipip' 2>/dev/null; then \
		cd pkg/e2e && TUNNELD_DEMO=1 TUNNELD_PRIVILEGED=1 TUNNELD_BIN=$(CURDIR)/.cache/demo/tunneld \
			../../.cache/demo/e2e.test -test.run '^TestDemo$$' -test.count=1; \
	else \
		echo "This kernel has no ipip driver: booting Debian's amd64 kernel under qemu for the demo."; \
		$(MAKE) -s deps-vm && go run ./testdata/vm -arch amd64 -v -timeout 5m \
			-file $(CURDIR)/.cache/demo/tunneld:/t/tunneld -file $(CURDIR)/.cache/demo/e2e.test:/t/e2e.test \
			$$(for f in $$(git ls-files testdata/seeds); do printf -- '-file %s:/src/%s ' $(CURDIR)/$$f $$f; done) \
			-run 'mkdir -p /src/pkg/e2e && cd /src/pkg/e2e && TUNNELD_DEMO=1 TUNNELD_PRIVILEGED=1 TUNNELD_BIN=/t/tunneld /t/e2e.test -test.run "^TestDemo$$" -test.count=1'; \
	fi

## bench: the benchmarks in the amd64 VM (then mipsel, N=100); results in
## dist/bench-ARCH.{log,jsonl}; see BENCHMARKS.md
bench: deps-vm
	testdata/vm/bench.sh amd64
	testdata/vm/bench.sh mipsle
	testdata/vm/bench.sh native

## lint: gofmt, go vet, staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf tunneld dist .cache
include packaging/packaging.mk
