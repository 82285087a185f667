#!/usr/bin/env bash
# Installs the Debian packages cvisor builds and tests with; skips apt when
# every one is already there. Run as root (sudo need not exist), or as a
# user with passwordless sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/apt.sh
PKGS=(build-essential clang libclang-rt-14-dev libcmocka-dev libseccomp-dev liburing-dev
	libslirp-dev libjson-c-dev curl pkg-config flex bison bc libelf-dev libssl-dev openssl cpio xz-utils
	kmod linux-source-6.1 busybox-static qemu-system-x86 e2fsprogs iproute2 util-linux time
	fio iperf3 socat tmux procps python3 zlib1g-dev libzstd-dev qemu-utils libhttp-parser-dev
	seabios grub-pc-bin
	meson ninja-build pkgconf dpkg-dev libglib2.0-dev libxml2-dev libxml2-utils libgnutls28-dev
	libtirpc-dev libcurl4-gnutls-dev python3-docutils xsltproc libnl-3-dev libnl-route-3-dev
	libyajl-dev)
apt_need "${PKGS[@]}"
echo "install-deps: all ${#PKGS[@]} packages present"
