// Package pkgtest holds the packaging tests: reproducible cross builds,
// the OpenWrt .ipk and the Debian .deb built by packaging/packaging.mk,
// lintian, systemd-analyze verify, the init and maintainer scripts and
// the fw4 includes. Its tests build several cross binaries, so they run
// only with TUNNELD_PKG_TEST=1 (make test-pkg) and skip otherwise. It has
// no code of its own.
package pkgtest
