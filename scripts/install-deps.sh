#!/usr/bin/env bash
# Installs the Debian packages cvisor builds and tests with; skips apt when
# every one is already there.
set -euo pipefail
PKGS=(build-essential clang libclang-rt-14-dev libcmocka-dev libseccomp-dev liburing-dev
	libslirp-dev libjson-c-dev pkg-config flex bison bc libelf-dev libssl-dev cpio xz-utils
	kmod linux-source-6.1 busybox-static qemu-system-x86 e2fsprogs iproute2 util-linux time)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#PKGS[@]} packages present"
	exit 0
fi
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
