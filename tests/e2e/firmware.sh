#!/usr/bin/env bash
# tests/e2e/firmware.sh - `cvisor run --firmware`: Debian's SeaBIOS
# (bios.bin) boots a raw disk on virtio-blk over PCI the way a PC does. The
# disk's MBR is a few bytes of real-mode code that writes a line to the
# 8250 at 0x3f8 and powers off through the ACPI PM1a control port; the
# line on the console means SeaBIOS found the disk through fw_cfg's
# "bootorder", read sector 0 to 0x7c00 and jumped to it. SeaBIOS's own
# text (its banner, "Booting from Hard Disk...") reaches the console
# through its serial console ("etc/sercon-port"). Each run is bounded; a
# slow boot on an emulating host is fine.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

BIOS=${BIOS:-/usr/share/seabios/bios.bin}
[ -x "$CVISOR" ] || t_abort firmware "$CVISOR is not built (make)"
[ -r "$BIOS" ] || t_skip_suite firmware "no $BIOS (Debian package seabios)"
[ -w /dev/kvm ] || t_skip_suite firmware "no usable /dev/kvm"

# The MBR, assembled by hand (as --32, .code16, linked at 0x7c00):
#   fa          cli
#   31 c0       xor  %ax,%ax
#   8e d8       mov  %ax,%ds
#   be 1d 7c    mov  $msg,%si        (msg at 0x7c1d)
#   ba f8 03    mov  $0x3f8,%dx
# 1:ac          lodsb
#   84 c0       test %al,%al
#   74 03       jz   2f
#   ee          out  %al,(%dx)
#   eb f8       jmp  1b
# 2:ba 04 06    mov  $0x604,%dx      (PM1a_CNT)
#   b8 00 34    mov  $0x3400,%ax     (SLP_EN | SLP_TYP 5: soft off)
#   ef          out  %ax,(%dx)
# 3:f4          hlt
#   eb fd       jmp  3b
# msg: the line, NUL-terminated; 0x55 0xaa at offset 510.
MSG='cvisor-mbr: booted from virtio-blk'
mbr() {
	printf '\xfa\x31\xc0\x8e\xd8\xbe\x1d\x7c\xba\xf8\x03\xac\x84\xc0\x74\x03\xee\xeb\xf8'
	printf '\xba\x04\x06\xb8\x00\x34\xef\xf4\xeb\xfd'
	printf '%s\r\n\0' "$MSG"
}
DISK=$T_TMP/disk.img
truncate -s 1M "$DISK"
mbr | dd of="$DISK" conv=notrunc status=none
printf '\x55\xaa' | dd of="$DISK" bs=1 seek=510 conv=notrunc status=none
NOBOOT=$T_TMP/noboot.img
truncate -s 1M "$NOBOOT"

# boot NAME ARGS...: a boot to the MBR's line and poweroff.
boot() {
	local name=$1
	shift
	t_run 300 "$CVISOR" run --firmware "$BIOS" --disk "$DISK" "$@"
	t_expect_out "$name" 'SeaBIOS \(version ' 'Booting from Hard Disk' "$MSG"
	t_info "$name: $(printf '%s' "$T_OUT" | tr -d '\033' | tr '\r\n' '  ' | cut -c1-300)"
}
boot "SeaBIOS boots the MBR of a virtio-blk disk (1 vCPU)"
boot "SeaBIOS boots the MBR with 2 vCPUs and 1 GiB" --cpus 2 --memory 1G

# A disk without the 0x55aa signature: SeaBIOS reads it and says so, then
# waits to retry; the test stops it once the line is there (bounded).
out=$T_TMP/noboot.out
"$CVISOR" run --firmware "$BIOS" --disk "$NOBOOT" </dev/null \
	>"$out" 2>&1 &
pid=$!
T_PIDS+=("$pid")
end=$((SECONDS + 240))
while ! grep -q 'No bootable device' "$out" && [ "$SECONDS" -lt "$end" ] &&
	kill -0 "$pid" 2>/dev/null; do
	sleep 1
done
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
if grep -q 'not a bootable disk' "$out" && grep -q 'No bootable device' "$out"; then
	t_pass "a disk without a boot signature: read, refused, no bootable device"
else
	t_fail "a disk without a boot signature: read, refused, no bootable device" \
		"$(tr -d '\033' <"$out" | tail -n 5)"
fi

# An installed system's boot: a partitioned disk with GRUB for BIOS
# (scripts/grub-disk.sh: boot.img, core.img in the post-MBR gap, an ext4
# partition with the kernel, the initramfs and grub.cfg), Debian's cloud
# kernel from the guest kit. SeaBIOS, then GRUB on the serial console, then
# the kernel's first lines; the test stops the guest there (bounded: GRUB
# reads the 14 MiB kernel through SeaBIOS's int 13h at emulated speed on a
# host without VT-x, minutes). FIRMWARE_GRUB=0 leaves it out.
KIT=${KIT:-build/guest}
if [ "${FIRMWARE_GRUB:-1}" = 0 ]; then
	t_skip "SeaBIOS, GRUB, then the Debian kernel from the disk" "FIRMWARE_GRUB=0"
elif [ ! -f /usr/lib/grub/i386-pc/boot.img ] || ! command -v grub-mkimage >/dev/null; then
	t_skip "SeaBIOS, GRUB, then the Debian kernel from the disk" "no grub-pc-bin"
elif [ ! -f "$KIT/debian.bzImage" ] || [ ! -f "$KIT/initramfs.cpio" ]; then
	t_skip "SeaBIOS, GRUB, then the Debian kernel from the disk" "no guest kit (make guest)"
elif ! bash scripts/grub-disk.sh "$T_TMP/grub.img" "$KIT/debian.bzImage" "$KIT/initramfs.cpio" \
	"earlyprintk=ttyS0" >"$T_TMP/grub-disk.log" 2>&1; then
	t_fail "SeaBIOS, GRUB, then the Debian kernel from the disk" "grub-disk.sh: $(tail -n 3 "$T_TMP/grub-disk.log")"
else
	out=$T_TMP/grub.out
	"$CVISOR" run --firmware "$BIOS" --disk "$T_TMP/grub.img" --memory 1G </dev/null >"$out" 2>&1 &
	pid=$!
	T_PIDS+=("$pid")
	start=$SECONDS
	end=$((SECONDS + 1200))
	while ! grep -q 'Kernel command line: .*earlyprintk=ttyS0' "$out" && [ "$SECONDS" -lt "$end" ] &&
		kill -0 "$pid" 2>/dev/null; do
		sleep 2
	done
	took=$((SECONDS - start))
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	missing=
	for re in 'SeaBIOS \(version ' 'Welcome to GRUB' 'grub-disk: GRUB loading the kernel' \
		'Linux version [0-9].*cloud-amd64' 'BIOS-e820: ' 'Kernel command line: '; do
		grep -Eq -- "$re" "$out" || missing="$missing '$re'"
	done
	if [ -z "$missing" ]; then
		t_pass "SeaBIOS, GRUB, then the Debian kernel from the disk (${took} s to its command line)"
	else
		t_fail "SeaBIOS, GRUB, then the Debian kernel from the disk" \
			"missing$missing after ${took} s: $(tr -d '\033' <"$out" | tail -n 5)"
	fi
fi
t_summary firmware
