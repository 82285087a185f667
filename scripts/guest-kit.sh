#!/usr/bin/env bash
# guest-kit.sh OUTDIR: the guest kit from Debian packages only (see
# guest/README.md): the kernels (scripts/guest-kernel.sh, a cached kernel
# build) and the user space (scripts/guest-initramfs.sh, seconds).
set -euo pipefail
[ $# -eq 1 ] || {
	echo "usage: scripts/guest-kit.sh OUTDIR" >&2
	exit 1
}
here=$(dirname "${BASH_SOURCE[0]}")
mkdir -p "$1"
bash "$here/guest-kernel.sh" "$1"
bash "$here/guest-initramfs.sh" "$1"
