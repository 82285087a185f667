#!/usr/bin/env bash
# grub-disk.sh OUT KERNEL INITRD [CMDLINE]: a raw disk image that boots the
# way an installed Debian does on a PC with a BIOS, built from Debian
# packages with no loop device and no root-only tool:
#   sector 0        GRUB's boot.img (grub-pc-bin) and an MBR partition table
#   sectors 1-2047  core.img (grub-mkimage -O i386-pc), in the post-MBR gap
#   from 1 MiB      one bootable Linux partition, ext4 made with mkfs.ext4 -d:
#                   /boot/vmlinuz, /boot/initrd.img, /boot/grub/grub.cfg and
#                   GRUB's modules under /boot/grub/i386-pc
# boot.img loads core.img from sector 1 (its default kernel sector) and
# core.img's first sector (diskboot.img) the rest from sector 2: the
# layout grub-install makes on an msdos disk, without grub-bios-setup.
# grub.cfg puts GRUB on the serial console (0x3f8) and boots KERNEL with
# "console=ttyS0 CMDLINE" at once.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: scripts/grub-disk.sh OUT KERNEL INITRD [CMDLINE]" >&2; exit 2; }
out=$1 kernel=$2 initrd=$3 cmdline=${4:-}
grubdir=/usr/lib/grub/i386-pc
[ -f "$grubdir/boot.img" ] || { echo "grub-disk: no $grubdir (apt-get install grub-pc-bin)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/grub-disk.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

root=$tmp/root
mkdir -p "$root/boot/grub/i386-pc"
cp "$kernel" "$root/boot/vmlinuz"
cp "$initrd" "$root/boot/initrd.img"
cp "$grubdir"/*.mod "$grubdir"/*.lst "$root/boot/grub/i386-pc/"
cat >"$root/boot/grub/grub.cfg" <<CFG
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
echo 'grub-disk: GRUB loading the kernel'
menuentry 'linux' {
	linux /boot/vmlinuz console=ttyS0 $cmdline
	initrd /boot/initrd.img
}
CFG

# The partition: what it holds plus 8 MiB, in whole MiB.
mib=$(($(du -sm "$root" | cut -f1) + 8))
mkfs.ext4 -q -F -L grubroot -d "$root" "$tmp/part.img" "${mib}M"

# core.img: enough to find the partition and read ext4; the rest of GRUB
# (normal mode, linux, serial) loads from the prefix as modules.
grub-mkimage -O i386-pc -o "$tmp/core.img" -p '(hd0,msdos1)/boot/grub' \
	biosdisk part_msdos ext2
core_sectors=$((($(stat -c %s "$tmp/core.img") + 511) / 512))
[ "$core_sectors" -le 2047 ] || { echo "grub-disk: core.img is $core_sectors sectors" >&2; exit 1; }

start=2048
sectors=$((mib * 2048))
rm -f "$out"
truncate -s $(((start + sectors) * 512)) "$out"
dd if="$grubdir/boot.img" of="$out" bs=440 count=1 conv=notrunc status=none
le32() { printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 24 & 255)))"; }
# One entry at 446: active, CHS fields saturated (LBA is what counts),
# type 0x83, then the LBA start and length; the signature at 510.
{
	printf '\x80\xfe\xff\xff\x83\xfe\xff\xff'
	le32 "$start"
	le32 "$sectors"
} | dd of="$out" bs=1 seek=446 conv=notrunc status=none
printf '\x55\xaa' | dd of="$out" bs=1 seek=510 conv=notrunc status=none
dd if="$tmp/core.img" of="$out" bs=512 seek=1 conv=notrunc status=none
dd if="$tmp/part.img" of="$out" bs=512 seek="$start" conv=notrunc status=none
echo "grub-disk: $out: $((start + sectors)) sectors, core.img $core_sectors sectors, ext4 ${mib} MiB"
