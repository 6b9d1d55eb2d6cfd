# packaging.mk: cross builds, packages and installation (included by the
# top-level Makefile; uses its GO, VERSION, LDFLAGS and GOFLAGS_BUILD).
# See packaging/README.md.
#
#   make cross                     static binaries for every router/host arch
#   make size                      their sizes, against a yardstick
#   make install [DESTDIR= PREFIX=/usr/local]
#   make ipk [ARCH=mipsel_24kc]    OpenWrt package, without the SDK
#   make deb [DEB_ARCH=amd64]      Debian package
#   make test-pkg                  the packaging tests (packaging/pkgtest)

DIST        ?= dist
PKG_RELEASE ?= 1
PKG_MAINTAINER ?= tunneld developers <dev@tunneld.invalid>
PKG_LICENSE ?= unspecified
# The commit's time: the date every packaged file carries.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
PKG_VERSION_UPSTREAM = $(shell sh packaging/scripts/pkgversion.sh '$(VERSION)' '$(SOURCE_DATE_EPOCH)')
PKG_FULL_VERSION = $(PKG_VERSION_UPSTREAM)-$(PKG_RELEASE)

# Cross targets: dist/tunneld-linux-NAME. Static (CGO_ENABLED=0), stripped
# (-s -w in LDFLAGS), -trimpath, and -buildvcs=false so that the binary
# depends on the source and the Go version only, not on the checkout's
# path or VCS state: two builds of one commit are byte-identical.
CROSS_TARGETS := mipsle-softfloat mips-softfloat armv7 armv5 arm64 amd64
PKG_GOENV_mipsle-softfloat := GOARCH=mipsle GOMIPS=softfloat
PKG_GOENV_mips-softfloat   := GOARCH=mips GOMIPS=softfloat
PKG_GOENV_armv7            := GOARCH=arm GOARM=7
PKG_GOENV_armv5            := GOARCH=arm GOARM=5
PKG_GOENV_arm64            := GOARCH=arm64 GOARM64=v8.0
PKG_GOENV_amd64            := GOARCH=amd64 GOAMD64=v1

.PHONY: cross size install uninstall ipk deb test-pkg deps-pkg _pkg_force

## cross: static, stripped, reproducible binaries in $(DIST)/
cross: $(addprefix $(DIST)/tunneld-linux-,$(CROSS_TARGETS))

# Always handed to go build, whose cache makes an up-to-date build cheap.
$(DIST)/tunneld-linux-%: _pkg_force
	@test -n "$(PKG_GOENV_$*)" || { echo "no cross target '$*' (one of: $(CROSS_TARGETS))"; exit 1; }
	@mkdir -p $(@D)
	CGO_ENABLED=0 GOOS=linux $(PKG_GOENV_$*) $(GO) build $(GOFLAGS_BUILD) -buildvcs=false -o $@ ./cmd/tunneld

_pkg_force:

## size: the size of every cross binary, gzip -9 compressed too (about
## what an overlay or a download costs), and mipsle against the yardstick
## of a program that only touches the same libraries (testdata/sizefloor)
size: cross
	@printf '%-40s %12s %9s %12s\n' binary bytes MiB gzip-9
	@for t in $(CROSS_TARGETS); do \
		f=$(DIST)/tunneld-linux-$$t; s=$$(wc -c <$$f); z=$$(gzip -9c <$$f | wc -c); \
		printf '%-40s %12d %9s %12d\n' $$f $$s $$(awk "BEGIN{printf \"%.2f\", $$s/1048576}") $$z; \
	done
	@CGO_ENABLED=0 GOOS=linux $(PKG_GOENV_mipsle-softfloat) $(GO) build $(GOFLAGS_BUILD) -buildvcs=false -o $(DIST)/sizefloor-linux-mipsle-softfloat ./testdata/sizefloor
	@f=$(DIST)/sizefloor-linux-mipsle-softfloat; s=$$(wc -c <$$f); t=$$(wc -c <$(DIST)/tunneld-linux-mipsle-softfloat); \
		printf '%-40s %12d %9s %12d  (tunneld is %s times this)\n' $$f $$s $$(awk "BEGIN{printf \"%.2f\", $$s/1048576}") $$(gzip -9c <$$f | wc -c) $$(awk "BEGIN{printf \"%.2f\", $$t/$$s}")

## install: binary, systemd unit, example config (only if absent), docs
## (with testdata/examples: 6in4, DS-Lite, ip6ip6)
PREFIX      ?= /usr/local
SBINDIR     ?= $(PREFIX)/sbin
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
DOCDIR      ?= $(PREFIX)/share/doc/tunneld
MANDIR      ?= $(PREFIX)/share/man

install: build
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/tunneld \
		$(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(MANDIR)/man8
	install -m 0755 tunneld $(DESTDIR)$(SBINDIR)/tunneld
	sed -e 's|/usr/sbin/tunneld|$(SBINDIR)/tunneld|g' -e 's|/etc/tunneld/|$(SYSCONFDIR)/tunneld/|g' \
		-e 's|/usr/share/doc/tunneld/|$(DOCDIR)/|g' init/tunneld.service >$(DESTDIR)$(UNITDIR)/tunneld.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/tunneld.service
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/tunneld/tunneld.toml ]; then \
		echo "keeping $(DESTDIR)$(SYSCONFDIR)/tunneld/tunneld.toml"; \
	else \
		echo "install -m 0644 packaging/tunneld.toml $(DESTDIR)$(SYSCONFDIR)/tunneld/tunneld.toml"; \
		install -m 0644 packaging/tunneld.toml $(DESTDIR)$(SYSCONFDIR)/tunneld/tunneld.toml; \
	fi
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -m 0644 testdata/reference.toml $(DESTDIR)$(DOCDIR)/reference.toml
	install -m 0644 testdata/examples/*.toml $(DESTDIR)$(DOCDIR)/examples/
	install -m 0644 packaging/README.md $(DESTDIR)$(DOCDIR)/README.packaging.md
	install -m 0644 packaging/tunneld.8 $(DESTDIR)$(MANDIR)/man8/tunneld.8
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

## uninstall: what install put there, except the configuration
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/tunneld $(DESTDIR)$(UNITDIR)/tunneld.service \
		$(DESTDIR)$(MANDIR)/man8/tunneld.8
	rm -rf $(DESTDIR)$(DOCDIR)

## ipk: $(DIST)/tunneld_VERSION_ARCH.ipk for OpenWrt (ARCH: mipsel_24kc,
## mips_24kc, aarch64_*, arm_*, x86_64; mapped in packaging/scripts/goarch.sh)
ARCH ?= mipsel_24kc
ipk:
	@t=$$(sh packaging/scripts/goarch.sh ipk '$(ARCH)') && \
	$(MAKE) --no-print-directory $(DIST)/tunneld-linux-$$t && \
	BIN=$(DIST)/tunneld-linux-$$t ARCH='$(ARCH)' PKG_VERSION='$(PKG_FULL_VERSION)' \
	SOURCE_DATE_EPOCH='$(SOURCE_DATE_EPOCH)' OUT='$(DIST)' \
	PKG_MAINTAINER='$(PKG_MAINTAINER)' PKG_LICENSE='$(PKG_LICENSE)' \
	sh packaging/scripts/mkipk.sh

## deb: $(DIST)/tunneld_VERSION_DEBARCH.deb (DEB_ARCH: amd64, arm64,
## armhf, armel, mipsel)
DEB_ARCH ?= amd64
deb:
	@t=$$(sh packaging/scripts/goarch.sh deb '$(DEB_ARCH)') && \
	$(MAKE) --no-print-directory $(DIST)/tunneld-linux-$$t && \
	BIN=$(DIST)/tunneld-linux-$$t DEB_ARCH='$(DEB_ARCH)' PKG_VERSION='$(PKG_FULL_VERSION)' \
	VERSION='$(VERSION)' SOURCE_DATE_EPOCH='$(SOURCE_DATE_EPOCH)' OUT='$(DIST)' \
	PKG_MAINTAINER='$(PKG_MAINTAINER)' \
	sh packaging/scripts/mkdeb.sh

## test-pkg: build the packages and check them (packaging/pkgtest)
test-pkg: deps-pkg
	TUNNELD_PKG_TEST=1 $(GO) test -count=1 -timeout 30m -v ./packaging/pkgtest/

# The Debian packages test-pkg needs, installed when missing and root.
PKG_TEST_APT := lintian systemd shellcheck nftables man-db
deps-pkg:
	@for c in dpkg-deb lintian systemd-analyze shellcheck nft man; do \
		command -v $$c >/dev/null || missing=1; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq --no-install-recommends $(PKG_TEST_APT) >/dev/null; \
		else echo "deps-pkg: run as root, or apt-get install $(PKG_TEST_APT)"; exit 1; fi; \
	fi
