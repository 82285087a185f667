#!/usr/bin/env bash
# guest-kernel.sh OUTDIR: build the guest kit's kernels from Debian packages only.
#
# Produces in OUTDIR:
#   microvm.vmlinux   Linux 6.1 ELF vmlinux with the PVH entry note
#   microvm.bzImage   bzImage of the same build
#   microvm.kconfig   the full .config of that build (for reference)
#   debian.bzImage    Debian's stock cloud kernel (never installed)
#   gen_init_cpio     the kernel's own cpio writer (guest-initramfs.sh uses it)
#
# The kernels are cached under ${CVISOR_CACHE:-/var/cache/cvisor}/kernel-<key>/,
# key = sha256 of guest/microvm.config, this script and the linux-source-6.1
# version: nothing of the initramfs, so changing guest/ user space never
# rebuilds a kernel. See guest/README.md.
# Environment: CVISOR_CACHE (cache root), CVISOR_JOBS (make -j, default nproc).
set -euo pipefail

prog=guest-kernel
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ $# -eq 1 ] || die "usage: scripts/guest-kernel.sh OUTDIR"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self=$repo/scripts/guest-kernel.sh
fragment=$repo/guest/microvm.config
ksrc_tar=/usr/src/linux-source-6.1.tar.xz
jobs=${CVISOR_JOBS:-$(nproc)}
artifacts=(microvm.vmlinux microvm.bzImage microvm.kconfig debian.bzImage debian.version gen_init_cpio)

[ -f "$fragment" ] || die "$fragment: missing"
mkdir -p "$1" || die "$1: cannot create output directory"
outdir=$(cd "$1" && pwd)

# --- packages -----------------------------------------------------------------
# CI runs on a fresh machine with no stdin: install what is missing, quietly.
. "$repo/scripts/apt.sh"
apt_need linux-source-6.1 build-essential flex bison bc libelf-dev libssl-dev cpio dwarves \
	lz4 xz-utils binutils || die "cannot install the kernel's build packages"
[ -f "$ksrc_tar" ] || die "$ksrc_tar: missing although linux-source-6.1 is installed"

pkgver() { dpkg-query -W -f='${Version}' "$1"; }
ksrc_ver=$(pkgver linux-source-6.1)

# --- cache --------------------------------------------------------------------
key=$({
	cat "$fragment" "$self"
	printf 'linux-source-6.1 %s\n' "$ksrc_ver"
} | sha256sum | cut -c1-16)

cache=${CVISOR_CACHE:-/var/cache/cvisor}
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
	[ -z "${CVISOR_CACHE:-}" ] || die "$cache: not writable (set CVISOR_CACHE to a writable directory)"
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/cvisor
	mkdir -p "$cache"
	log "/var/cache/cvisor not writable, using $cache"
fi
kitdir=$cache/kernel-$key

install_kit() {
	local f
	for f in "${artifacts[@]}"; do
		cp -f "$kitdir/$f" "$outdir/$f"
	done
}

# Two builds of the same key (e.g. parallel make) wait for each other.
exec 9>"$cache/kernel-$key.lock"
if ! flock -n 9; then
	log "waiting for another build of kernel-$key"
	flock 9
fi

if [ -f "$kitdir/complete" ]; then
	install_kit
	log "used cached kit $kitdir -> $outdir"
	exit 0
fi

# --- build --------------------------------------------------------------------
start=$SECONDS
buildlog=$cache/kernel-$key.build.log
: >"$buildlog"
tmp=$(mktemp -d "$cache/build.XXXXXX")
current_step=
on_exit() {
	local rc=$?
	if [ "$rc" -ne 0 ] && [ -n "$current_step" ]; then
		log "error: $current_step failed (exit $rc); last lines of $buildlog:"
		tail -n 40 "$buildlog" >&2
	fi
	rm -rf "$tmp"
}
trap on_exit EXIT

# step DESCRIPTION CMD...: run CMD with its output in the build log.
step() {
	current_step=$1
	shift
	log "$current_step"
	printf '\n=== %s\n' "$current_step" >>"$buildlog"
	"$@" >>"$buildlog" 2>&1 </dev/null
	current_step=
}

log "building kernel-$key (linux-source-6.1 $ksrc_ver, -j$jobs)"
log "build log: $buildlog"
src=$tmp/linux-source-6.1
kit=$tmp/kit
mkdir -p "$kit"

kmake() {
	# Fixed build identity so that the same inputs give the same kernel.
	make -C "$src" ARCH=x86_64 \
		KBUILD_BUILD_USER=cvisor KBUILD_BUILD_HOST=cvisor \
		KBUILD_BUILD_TIMESTAMP="1970-01-01 00:00:00 UTC" "$@"
}

# Every line of the fragment must survive olddefconfig: a dependency that
# is not met silently drops an option, and that must not go unnoticed.
check_config() {
	local line sym bad=0
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*)
			if ! grep -qxF "$line" "$src/.config"; then
				sym=${line%%=*}
				log "config: wanted $line, got: $(grep "^$sym=" "$src/.config" || echo "$sym unset")"
				bad=1
			fi
			;;
		"# CONFIG_"*" is not set")
			sym=${line#\# }
			sym=${sym%% *}
			if grep -q "^$sym=" "$src/.config"; then
				log "config: wanted $sym off, got: $(grep "^$sym=" "$src/.config")"
				bad=1
			fi
			;;
		esac
	done <"$fragment"
	[ "$bad" = 0 ] || die "guest/microvm.config did not apply (missing dependency?); see above"
}

configure_kernel() {
	kmake tinyconfig
	(cd "$src" && ARCH=x86_64 scripts/kconfig/merge_config.sh -m .config "$fragment")
	kmake olddefconfig
}

# Debian's stock cloud kernel, for testing against a distribution build.
fetch_debian_kernel() {
	local pkg deb
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
	if [ -z "$pkg" ]; then
		apt_update
		pkg=$(apt-cache depends linux-image-cloud-amd64 |
			awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
	fi
	[ -n "$pkg" ] || { echo "cannot resolve linux-image-cloud-amd64"; return 1; }
	mkdir -p "$tmp/deb"
	(cd "$tmp/deb" && apt-get download -q "$pkg")
	deb=$(ls "$tmp"/deb/*.deb)
	dpkg-deb -x "$deb" "$tmp/deb/root"
	cp "$tmp"/deb/root/boot/vmlinuz-* "$kit/debian.bzImage"
	printf '%s %s\n' "$pkg" "$(dpkg-deb -f "$deb" Version)" >"$kit/debian.version"
}

# XEN_ELFNOTE_PHYS32_ENTRY (18) is what PVH loaders look for.
check_pvh_note() {
	local notes
	notes=$(readelf -n "$kit/microvm.vmlinux")
	grep -qiE '^ *Xen .*(unknown note type: \(0x0*12\)|PHYS32_ENTRY)' <<<"$notes" ||
		die "microvm.vmlinux has no XEN_ELFNOTE_PHYS32_ENTRY note (CONFIG_PVH?)"
}

step "fetching Debian cloud kernel" fetch_debian_kernel
log "debian.bzImage: $(cat "$kit/debian.version")"
step "extracting $ksrc_tar" tar -xf "$ksrc_tar" -C "$tmp"
step "configuring (tinyconfig + guest/microvm.config)" configure_kernel
check_config
step "building kernel (make -j$jobs bzImage, a few minutes)" kmake -j"$jobs" bzImage
cp "$src/vmlinux" "$kit/microvm.vmlinux"
cp "$src/arch/x86/boot/bzImage" "$kit/microvm.bzImage"
cp "$src/.config" "$kit/microvm.kconfig"
check_pvh_note
step "building gen_init_cpio" cc -O2 -o "$kit/gen_init_cpio" "$src/usr/gen_init_cpio.c"

# Publish atomically: the cache dir exists only once it is complete.
cp "$buildlog" "$kit/build.log"
printf 'key %s\nlinux-source-6.1 %s\n' "$key" "$ksrc_ver" >"$kit/complete"
rm -rf "$kitdir"
mv "$kit" "$kitdir"
install_kit
elapsed=$((SECONDS - start))
log "built kernel-$key in $((elapsed / 60))m$((elapsed % 60))s -> $outdir"
