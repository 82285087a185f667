#!/usr/bin/env bash
# guest-initramfs.sh OUTDIR: the guest kit's user space, from Debian packages.
#
# Produces in OUTDIR:
#   initramfs.cpio  uncompressed newc cpio: busybox-static, guest/init as
#                   /init, its helper scripts, a few /etc files
#   tools.img       ext4 image (read-only disk, serial "cvtools") with fio,
#                   iperf3 and socat from Debian and every library they load;
#                   guest/init mounts it at /opt/tools
#
# Needs OUTDIR/gen_init_cpio (scripts/guest-kernel.sh puts it there). Cached
# under ${CVISOR_CACHE:-/var/cache/cvisor}/userspace-<key>/, key = sha256 of
# this script, guest/'s user-space files and the content of every binary
# and library that goes in (a Debian update of any of them rebuilds).
set -euo pipefail

prog=guest-initramfs
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

[ $# -eq 1 ] || die "usage: scripts/guest-initramfs.sh OUTDIR"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
outdir=$(cd "$1" && pwd) || die "$1: no such directory"
gen_cpio=$outdir/gen_init_cpio
[ -x "$gen_cpio" ] || die "$gen_cpio: missing (run scripts/guest-kernel.sh $1 first)"
guest_files=(init udhcpc.script acpi-power)
tools=(/usr/bin/fio /usr/bin/iperf3 /usr/bin/socat)

. "$repo/scripts/apt.sh"
apt_need busybox-static fio iperf3 socat e2fsprogs || die "cannot install the guest's packages"

# Every shared object the tools load, by their real paths, plus the loader.
tool_libs() {
	local t
	for t in "${tools[@]}"; do
		ldd "$t" | awk '/=> \// { print $3 } /^\t\/lib64\// { print $1 }'
	done | xargs -r readlink -f | sort -u
}
libs=$(tool_libs)
[ -n "$libs" ] || die "ldd found no libraries for ${tools[*]}"

key=$({
	cat "${BASH_SOURCE[0]}"
	for f in "${guest_files[@]}"; do cat "$repo/guest/$f"; done
	sha256sum /bin/busybox "${tools[@]}" $libs
} | sha256sum | cut -c1-16)

cache=${CVISOR_CACHE:-/var/cache/cvisor}
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/cvisor
	mkdir -p "$cache"
fi
kitdir=$cache/userspace-$key
exec 9>"$cache/userspace-$key.lock"
flock 9
if [ -f "$kitdir/complete" ]; then
	cp -f "$kitdir/initramfs.cpio" "$kitdir/tools.img" "$outdir/"
	log "used cached $kitdir -> $outdir"
	exit 0
fi

tmp=$(mktemp -d "$cache/userspace.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- initramfs.cpio ------------------------------------------------------------
# gen_init_cpio writes device nodes and root ownership without needing root.
{
	for d in /dev /proc /sys /tmp /root /run /var /var/log /bin /sbin /usr /usr/bin \
		/usr/sbin /etc /etc/udhcpc /etc/acpi /etc/acpi/PWRF /mnt /opt \
		/opt/tools; do
		mode=0755
		case $d in /tmp) mode=1777 ;; /root) mode=0700 ;; esac
		echo "dir $d $mode 0 0"
	done
	echo "nod /dev/console 0600 0 0 c 5 1"
	echo "nod /dev/null 0666 0 0 c 1 3"
	echo "file /bin/busybox /bin/busybox 0755 0 0"
	# Links for programs started other than by busybox's shell: #! lines,
	# socat's and acpid's exec, and the kernel's poweroff path.
	for l in /bin/sh /sbin/poweroff /sbin/reboot /bin/mount; do
		echo "slink $l /bin/busybox 0777 0 0"
	done
	echo "file /init $repo/guest/init 0755 0 0"
	echo "file /etc/udhcpc/default.script $repo/guest/udhcpc.script 0755 0 0"
	echo "file /etc/acpi/PWRF/00000080 $repo/guest/acpi-power 0755 0 0"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$tmp/passwd"
	printf 'root:x:0:\n' >"$tmp/group"
	printf '127.0.0.1 localhost\n' >"$tmp/hosts"
	echo "file /etc/passwd $tmp/passwd 0644 0 0"
	echo "file /etc/group $tmp/group 0644 0 0"
	echo "file /etc/hosts $tmp/hosts 0644 0 0"
} >"$tmp/initramfs.list"
"$gen_cpio" -t 0 "$tmp/initramfs.list" >"$tmp/initramfs.cpio"

# --- tools.img -------------------------------------------------------------------
# Programs at /opt/tools/bin: wrappers that run Debian's binary (in
# libexec) through the image's own loader with --library-path, so nothing
# of the guest's root has to change.
root=$tmp/tools
mkdir -p "$root/bin" "$root/libexec" "$root/lib"
for lib in $libs; do
	cp "$lib" "$root/lib/"
done
# The sonames the programs ask for, as links to the real files.
for t in "${tools[@]}"; do
	ldd "$t" | awk '/=> \// { print $1, $3 }' | while read -r soname path; do
		real=$(basename "$(readlink -f "$path")")
		[ "$soname" = "$real" ] || ln -sf "$real" "$root/lib/$soname"
	done
done
loader=$(basename "$(readlink -f /lib64/ld-linux-x86-64.so.2)")
[ "$loader" = ld-linux-x86-64.so.2 ] || ln -sf "$loader" "$root/lib/ld-linux-x86-64.so.2"
for t in "${tools[@]}"; do
	name=$(basename "$t")
	cp "$t" "$root/libexec/$name"
	cat >"$root/bin/$name" <<EOF
#!/bin/sh
exec /opt/tools/lib/ld-linux-x86-64.so.2 --library-path /opt/tools/lib --argv0 $name \\
	/opt/tools/libexec/$name "\$@"
EOF
	chmod 0755 "$root/bin/$name"
done
size_kb=$(($(du -sk "$root" | cut -f1) * 5 / 4 + 4096))
mke2fs -q -t ext4 -O ^has_journal -L cvtools -E root_owner=0:0 -d "$root" \
	"$tmp/tools.img" "${size_kb}k" >/dev/null || die "mke2fs of tools.img failed"

mkdir -p "$tmp/kit"
mv "$tmp/initramfs.cpio" "$tmp/tools.img" "$tmp/kit/"
echo "key $key" >"$tmp/kit/complete"
rm -rf "$kitdir"
mv "$tmp/kit" "$kitdir"
cp -f "$kitdir/initramfs.cpio" "$kitdir/tools.img" "$outdir/"
log "built userspace-$key: initramfs.cpio $(stat -c %s "$outdir/initramfs.cpio") bytes," \
	"tools.img $((size_kb / 1024)) MiB -> $outdir"
