#!/usr/bin/env bash
# libvirt-build.sh VERSION: libvirt with only the Cloud Hypervisor ("ch")
# driver, built from Debian's own source package, for the libvirt suite
# (tests/e2e/libvirt.sh). Prints the meson build directory on stdout and
# nothing else; progress goes to stderr.
#
#   VERSION  9.0   libvirt 9.0.0 of Debian 12 (bookworm), the ch driver
#                  of the Cloud Hypervisor v2x era (YAJL, old vm.create)
#            11.3  libvirt 11.3.0 of Debian 13 (trixie), built with
#                  bookworm's tools (json-c, payload, tap fds, events)
#
# Debian builds libvirt without the ch driver, so neither version can be
# installed from the archive. The source comes from deb.debian.org through
# a throw-away apt configuration (deb-src lines in a temporary directory,
# the machine's own apt setup untouched), is unpacked with dpkg-source -x
# (Debian's patches applied), and configured with meson so that only the
# ch driver, the daemons and the remote driver are built: every other
# driver, storage backend and optional feature is disabled.
#
# Cached under ${CVISOR_CACHE:-/var/cache/cvisor}/libvirt-VERSION-KEY/
# (falling back to ~/.cache/cvisor, as scripts/guest-kernel.sh does):
#   src/       the unpacked source    build/    the meson build tree
#   prefix/    --prefix; its var/ is empty: the suite mounts a private
#              directory over it for each daemon it runs
#   complete   written last: version, key, source package
# KEY = sha256 of this script and scripts/cache.sh (this one holds the meson options and the pinned
# Debian versions) and the Debian source version built. A meson build tree
# records its absolute path (the `run` script, the paths compiled into the
# daemon for running from the tree), so it cannot be built elsewhere and
# renamed: it is built in place under the lock, and published by renaming
# its `complete` marker into place. A directory without one is rebuilt.
# Environment: CVISOR_CACHE (cache root), CVISOR_JOBS (ninja -j, default nproc).
set -euo pipefail

prog=libvirt-build
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ $# -eq 1 ] || die "usage: scripts/libvirt-build.sh 9.0|11.3"
version=$1
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self=$repo/scripts/libvirt-build.sh
jobs=${CVISOR_JOBS:-$(nproc)}

# The Debian source package of each version: the suite it comes from and
# the version pinned (a newer one in that suite is used, with a warning,
# once the archive drops this one). Then what differs in the options.
case "$version" in
9.0)
	suite=bookworm
	pinned=9.0.0-4+deb12u2
	deps=(libyajl-dev)
	opts=(-Dyajl=enabled)
	;;
11.3)
	suite=trixie
	pinned=11.3.0-3+deb13u3
	deps=(libjson-c-dev)
	opts=(-Djson_c=enabled -Dnbdkit=disabled -Dssh_proxy=disabled
		-Duserfaultfd_sysctl=disabled)
	;;
*) die "unknown version '$version' (9.0 or 11.3)" ;;
esac

# Every feature that is not named here is disabled (auto_features): no
# other hypervisor driver, storage backend, network, firewall, security
# driver, docs, tests or translations.
opts+=(--buildtype=plain -Dauto_features=disabled -Dinit_script=none
	-Ddriver_ch=enabled -Ddriver_libvirtd=enabled -Ddriver_remote=enabled
	-Dcurl=enabled -Dlibnl=enabled -Ddocs=disabled -Dtests=disabled -Dnls=disabled)

# --- packages -----------------------------------------------------------------
. "$repo/scripts/apt.sh"
apt_need meson ninja-build pkgconf build-essential dpkg-dev libglib2.0-dev libxml2-dev \
	libxml2-utils libgnutls28-dev libtirpc-dev libcurl4-gnutls-dev python3-docutils xsltproc \
	libnl-3-dev libnl-route-3-dev "${deps[@]}" || die "cannot install libvirt's build packages"

# --- cache --------------------------------------------------------------------
. "$repo/scripts/cache.sh"
cache_root

keyof() { { cat "$self" "$repo/scripts/cache.sh"; printf 'libvirt %s\n' "$1"; } | sha256sum | cut -c1-16; }

# kit SRCVERSION: set key, name and kitdir for that Debian version; if it
# is built, print its build tree and end, else hold its lock (and check
# again: another build may just have finished it).
kit() {
	srcver=$1
	key=$(keyof "$srcver")
	name=libvirt-$version-$key
	kitdir=$cache/$name
	if [ ! -f "$kitdir/complete" ]; then
		cache_lock "$name"
		[ -f "$kitdir/complete" ] || return 0
	fi
	echo "$kitdir/build"
	exit 0
}
kit "$pinned"

# --- source -------------------------------------------------------------------
start=$SECONDS
tmp=$(mktemp -d "$cache/libvirt-src.XXXXXX")
buildlog=$tmp/fetch.log
trap step_trap EXIT

# The throw-away apt configuration: only deb-src lines, lists in $tmp.
chmod 755 "$tmp" # apt downloads as _apt when it can
aptdir=$tmp/apt
mkdir -p "$aptdir/lists/partial" "$tmp/dl"
printf 'deb-src http://deb.debian.org/debian %s main\n' "$suite" >"$aptdir/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$aptdir/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o "Dir::State::Lists=$aptdir/lists" -o Debug::NoLocking=1)
step "reading the $suite source index" apt-get "${apt_opts[@]}" update

# The Sources record of one version, as apt-cache prints it.
record() {
	apt-cache "${apt_opts[@]}" showsrc libvirt |
		awk -v v="$1" '/^Package:/ { keep = 0; buf = "" } /^Version:/ { keep = ($2 == v) }
			{ buf = buf $0 "\n" } /^$/ { if (keep) { printf "%s", buf; keep = 0; exit } }
			END { if (keep) printf "%s", buf }'
}

if [ -z "$(record "$pinned")" ]; then
	newest=$(apt-cache "${apt_opts[@]}" showsrc libvirt | awk '/^Version:/ { print $2 }' |
		sort -V | tail -n 1)
	[ -n "$newest" ] || die "no libvirt source package in $suite"
	log "warning: libvirt $pinned is gone from $suite, using $newest (update the pin in $self)"
	kit "$newest"
fi

# apt-get checks every file against the signed index. The archive may
# not serve the .dsc itself (a caching proxy on the project's machine
# answers 404 for trixie's): then the same fields come from the index
# record (the .dsc less its signature), and dpkg-source still checks each
# tarball's size and checksums against them.
fetch_source() {
	(cd "$tmp/dl" && apt-get "${apt_opts[@]}" source --download-only "libvirt=$srcver") ||
		echo "apt-get source failed; checking which files arrived"
	local upstream=${srcver%-*}
	upstream=${upstream#*:}
	ls "$tmp/dl/libvirt_$upstream.orig.tar.xz" "$tmp/dl/libvirt_${srcver#*:}.debian.tar.xz" ||
		return 1
	dsc=$tmp/dl/libvirt_${srcver#*:}.dsc
	if [ ! -f "$dsc" ]; then
		echo "no .dsc from the archive: writing it from the $suite index"
		record "$srcver" | awk -v asc="$(ls "$tmp"/dl/*.asc 2>/dev/null | head -n 1)" '
			/^Package:/ { sub(/^Package:/, "Source:") }
			/^(Directory|Priority|Section):/ { next }
			/^ / && ($NF ~ /\.dsc$/ || ($NF ~ /\.asc$/ && !asc)) { next }
			{ print }' >"$dsc"
	fi
}
step "downloading libvirt $srcver ($suite)" fetch_source

# --- build --------------------------------------------------------------------
rm -rf "$kitdir"
mkdir -p "$kitdir"
mv "$buildlog" "$kitdir/build.log"
buildlog=$kitdir/build.log
log "building $name (libvirt $srcver, -j$jobs); log: $buildlog"
step "unpacking (dpkg-source -x)" dpkg-source -x "$dsc" "$kitdir/src"

prefix=$kitdir/prefix
mkdir -p "$prefix/var"
step "configuring (meson, only the ch driver)" meson setup "$kitdir/build" "$kitdir/src" \
	--prefix="$prefix" -Drunstatedir="$prefix/var/run" "${opts[@]}"
# The options must have done what they say: the ch driver in, QEMU out.
grep -q '^#define WITH_CH 1' "$kitdir/build/meson-config.h" ||
	die "meson did not enable the ch driver; see $buildlog"
! grep -q '^#define WITH_QEMU 1' "$kitdir/build/meson-config.h" ||
	die "meson enabled the QEMU driver; see $buildlog"
t_ninja=$SECONDS
step "building (ninja -j$jobs, a minute or two)" ninja -C "$kitdir/build" -j"$jobs"
ninja_s=$((SECONDS - t_ninja))
for f in src/libvirtd tools/virsh src/libvirt_driver_ch.so; do
	[ -e "$kitdir/build/$f" ] || die "the build made no $f; see $buildlog"
done

elapsed=$((SECONDS - start))
printf 'version %s\nkey %s\nsource libvirt %s (%s)\nseconds %s (ninja %s)\n' "$version" "$key" \
	"$srcver" "$suite" "$elapsed" "$ninja_s" >"$kitdir/complete.tmp"
mv "$kitdir/complete.tmp" "$kitdir/complete"
log "built $name in $((elapsed / 60))m$((elapsed % 60))s (ninja ${ninja_s}s) -> $kitdir/build"
echo "$kitdir/build"
