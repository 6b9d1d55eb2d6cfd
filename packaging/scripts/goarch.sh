#!/bin/sh
# goarch.sh ipk|deb ARCH: the cross target (the suffix of
# dist/tunneld-linux-SUFFIX, see CROSS_TARGETS in packaging.mk) that runs on
# an OpenWrt package architecture (ipk) or a Debian architecture (deb).
#
# OpenWrt names are CPU_TYPE[_FPU]. The mapping follows the OpenWrt Go
# feed's golang-values.mk:
#   mips*/mipsel*   always GOMIPS=softfloat: it runs with or without an FPU
#                   (the feed uses hardfloat only for CONFIG_HAS_FPU targets;
#                   softfloat is correct there too, only slower at floats,
#                   which tunneld does not use)
#   arm_CPU         no FPU in the name: GOARM=5 (e.g. arm_cortex-a7,
#                   arm_arm926ej-s, arm_xscale)
#   arm_CPU_vfp*2   GOARM=6 in the feed; GOARM=5 here (only 5 and 7 are
#                   built; 5 runs on every ARMv6 too)
#   arm_CPU_FPU     any other FPU (neon-vfpv4, vfpv3-d16, ...): GOARM=7
#   arm_fa526, arm_arm920t
#                   refused: ARMv4/ARMv4T (the two ARMv4 CPU types in
#                   OpenWrt's include/target.mk, gemini's FA526 and the
#                   ARM920T). Go's oldest ARM is ARMv5 (GOARM=5); its code
#                   dies with SIGILL on ARMv4
#   aarch64_*       arm64 (GOARM64=v8.0, the baseline)
#   x86_64          amd64 (GOAMD64=v1)
set -eu
kind=${1:?ipk or deb}
arch=${2:?architecture}
case $kind in
ipk)
	case $arch in
	mipsel_*) echo mipsle-softfloat ;;
	mips_*) echo mips-softfloat ;;
	aarch64_*) echo arm64 ;;
	x86_64) echo amd64 ;;
	arm_fa526 | arm_fa526_* | arm_arm920t | arm_arm920t_*)
		echo "goarch.sh: no Go build for OpenWrt architecture '$arch': an ARMv4 CPU, and Go needs ARMv5 or later (GOARM=5 code dies there with SIGILL)" >&2
		exit 1
		;;
	arm_*_vfp | arm_*_vfpv2) echo armv5 ;;
	arm_*_*) echo armv7 ;;
	arm_*) echo armv5 ;;
	*)
		echo "goarch.sh: no Go build for OpenWrt architecture '$arch'" >&2
		exit 1
		;;
	esac
	;;
deb)
	case $arch in
	amd64) echo amd64 ;;
	arm64) echo arm64 ;;
	armhf) echo armv7 ;;
	armel) echo armv5 ;;
	mipsel) echo mipsle-softfloat ;;
	*)
		echo "goarch.sh: no Go build for Debian architecture '$arch'" >&2
		exit 1
		;;
	esac
	;;
*)
	echo "goarch.sh: first argument must be ipk or deb" >&2
	exit 1
	;;
esac
