#!/usr/bin/env bash
# tests/e2e/firmware.sh - `cvisor run --firmware`: Debian's SeaBIOS
# (bios.bin) boots a raw disk on virtio-blk over PCI the way a PC does. The
# disk's MBR is a few bytes of real-mode code that writes a line to the
# 8250 at 0x3f8, looks for the ACPI RSDP in the F segment, says whether it
# found it and powers off through the ACPI PM1a control port; the first
# line on the console means SeaBIOS found the disk through fw_cfg's
# "bootorder", read sector 0 to 0x7c00 and jumped to it, the second that
# it ran cvisor's "etc/table-loader". SeaBIOS's own
# text (its banner, "Booting from Hard Disk...") reaches the console
# through its serial console ("etc/sercon-port"). Each run is bounded; a
# slow boot on an emulating host is fine.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

BIOS=${BIOS:-/usr/share/seabios/bios.bin}
[ -x "$CVISOR" ] || t_abort firmware "$CVISOR is not built (make)"
[ -r "$BIOS" ] || t_skip_suite firmware "no $BIOS (Debian package seabios)"
[ -w /dev/kvm ] || t_skip_suite firmware "no usable /dev/kvm"

# The MBR (as --32 .code16, linked at 0x7c00; objdump -m i8086 listing):
#   7c00 fa             cli
#   7c01 31 c0          xor  %ax,%ax
#   7c03 8e d8          mov  %ax,%ds
#   7c05 be 4d 7c       mov  $msg,%si
#   7c08 e8 36 00       call puts
#   7c0b b8 00 f0       mov  $0xf000,%ax      scan the F segment for the RSDP
#   7c0e 8e c0          mov  %ax,%es          (which the table loader puts
#   7c10 31 ff          xor  %di,%di          there), on 16-byte boundaries
#   7c12 26 66 81 3d 52 53 44 20  cmpl $0x20445352,%es:(%di)   "RSD "
#   7c1a 75 0b          jne  7c27
#   7c1c 26 66 81 7d 04 50 54 52 20  cmpl $0x20525450,%es:4(%di)   "PTR "
#   7c25 74 0a          je   7c31
#   7c27 83 c7 10       add  $16,%di
#   7c2a 75 e6          jnz  7c12
#   7c2c be 9b 7c       mov  $none,%si
#   7c2f eb 03          jmp  7c34
#   7c31 be 72 7c       mov  $rsdp,%si
#   7c34 e8 0a 00       call puts
#   7c37 ba 04 06       mov  $0x604,%dx       PM1a_CNT
#   7c3a b8 00 34       mov  $0x3400,%ax      SLP_EN | SLP_TYP 5: soft off
#   7c3d ef             out  %ax,(%dx)
#   7c3e f4 eb fd       hlt; jmp 7c3e
# puts: 7c41 ba f8 03   mov $0x3f8,%dx; 7c44 ac lodsb; 84 c0 test %al,%al;
#   74 03 jz ret; ee out %al,(%dx); eb f8 jmp 7c44; 7c4c c3 ret
# msg at 7c4d, rsdp at 7c72, none at 7c9b, NUL-terminated; 0x55 0xaa at 510.
MSG='cvisor-mbr: booted from virtio-blk'
RSDP='cvisor-mbr: ACPI RSDP in the F segment'
mbr() {
	printf '\xfa\x31\xc0\x8e\xd8\xbe\x4d\x7c\xe8\x36\x00\xb8\x00\xf0\x8e\xc0\x31\xff'
	printf '\x26\x66\x81\x3d\x52\x53\x44\x20\x75\x0b\x26\x66\x81\x7d\x04\x50\x54\x52'
	printf '\x20\x74\x0a\x83\xc7\x10\x75\xe6\xbe\x9b\x7c\xeb\x03\xbe\x72\x7c\xe8\x0a'
	printf '\x00\xba\x04\x06\xb8\x00\x34\xef\xf4\xeb\xfd\xba\xf8\x03\xac\x84\xc0\x74'
	printf '\x03\xee\xeb\xf8\xc3'
	printf '%s\r\n\0' "$MSG" "$RSDP" 'cvisor-mbr: no ACPI RSDP'
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
	t_expect_out "$name" 'SeaBIOS \(version ' 'Booting from Hard Disk' "$MSG" "$RSDP"
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

# --on-reboot restart: `cvisor reboot` resets a firmware guest in place.
# The same disk; once SeaBIOS has said "No bootable device", the reset
# brings its banner and the same search again (its copy below 1 MiB
# written anew, the BARs it moved put back and moved again, fw_cfg read
# again), in the same monitor.
export CVISOR_RUN_DIR=$T_TMP/run
RB=fwrb$$
log=$CVISOR_RUN_DIR/$RB.log
nb() { grep -c 'No bootable device' "$log" 2>/dev/null; }
t_run 30 "$CVISOR" run -d --name "$RB" --firmware "$BIOS" --disk "$NOBOOT" --on-reboot restart
if [ "$T_RC" = 0 ]; then
	rbpid=$("$CVISOR" info "$RB" --json 2>/dev/null | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
	[ -n "$rbpid" ] && T_PIDS+=("$rbpid")
	end=$((SECONDS + 240))
	while [ "$(nb)" -lt 1 ] && [ "$SECONDS" -lt "$end" ]; do sleep 1; done
	t_run 10 "$CVISOR" reboot "$RB"
	rc=$T_RC
	while [ "$(nb)" -lt 2 ] && [ "$SECONDS" -lt "$end" ]; do sleep 1; done
	banners=$(grep -c 'SeaBIOS (version' "$log")
	if [ "$rc" = 0 ] && [ "$banners" = 2 ] && [ "$(nb)" = 2 ] &&
		[ "$(grep -c 'not a bootable disk' "$log")" = 2 ] && kill -0 "$rbpid" 2>/dev/null; then
		t_pass "cvisor reboot: SeaBIOS boots again in the same monitor and reads the disk again"
	else
		t_fail "cvisor reboot: SeaBIOS boots again in the same monitor" \
			"reboot exit $rc, $banners banners: $(tr -d '\033' <"$log" | tail -n 4 | tr '\n' ' ')"
	fi
	"$CVISOR" kill "$RB" >/dev/null 2>&1
else
	t_fail "a firmware guest with --on-reboot restart starts" "$T_ERR"
fi

# ---- save, restore, clones and migration of a firmware guest ----
# The disk's MBR counts on the serial console (tests/e2e/fw_count.S), about
# twice a second on the BIOS timer, and resets the machine at count
# $RESET_AT. One SeaBIOS boot (--on-reboot restart, a readonly disk so that
# clones may share it) is saved once SeaBIOS has run the MBR; the snapshot
# carries the firmware image, fw_cfg and the BARs SeaBIOS assigned, so each
# guest restored from it counts on from the saved count without SeaBIOS
# running again: one restored guest, two clones (restore --count), and the
# restored guest migrated to a `run --incoming` target on this host. The
# target's own reset then ends it with the line the README documents (a
# restored or migrated guest has no boot state). Waits are on output,
# each bounded (300 s for SeaBIOS's boot, slow on an emulating host); the
# counts leave the checks some 25 s before the reset.
P=fw$$-
. tests/named.sh
RESET_AT=60
CDISK=$T_TMP/count.img
S=$T_TMP/fwsnap
PORT=$((20000 + $$ % 20000))
NORESTART='no boot state to restart from, so it ends'
if ! as --32 --defsym RESET_AT=$RESET_AT -o "$T_TMP/count.o" tests/e2e/fw_count.S ||
	! ld -m elf_i386 -Ttext=0x7c00 --oformat=binary -e _start -o "$T_TMP/count.bin" \
		"$T_TMP/count.o"; then
	t_fail "the counting boot sector assembles (binutils)" "as/ld failed"
fi
truncate -s 1M "$CDISK"
dd if="$T_TMP/count.bin" of="$CDISK" conv=notrunc status=none

# counts_on NAME LAST WHAT: NAME (restored or received) counts on from
# LAST: its first count is LAST + 1 to LAST + 5, it reaches LAST + 3, and
# SeaBIOS did not run again in it (no banner, no "counting" line).
counts_on() {
	local name=$1 last=$2 what=$3 first
	if ! wait_count "$name" $((last + 3)); then
		t_fail "$what" "no count past $((last + 3)): $(tail -c 200 "$CVISOR_RUN_DIR/$name.log")"
		return 1
	fi
	first=$(first_count "$name")
	if [ -z "$first" ] || [ "$first" -le "$last" ] || [ "$first" -gt $((last + 5)) ] ||
		grep -q 'SeaBIOS\|cvisor-mbr: counting' "$CVISOR_RUN_DIR/$name.log"; then
		t_fail "$what" "first count $first after $last, or SeaBIOS ran again: $(head -c 200 "$CVISOR_RUN_DIR/$name.log")"
		return 1
	fi
	t_pass "$what: count $last -> $first"
}

A=${P}a
if run_d "a counting firmware guest starts" "$A" --firmware "$BIOS" --disk "$CDISK,readonly" \
	--memory 64M --on-reboot restart && wait_count "$A" 3 300; then
	t_run 60 "$CVISOR" save "$A" "$S"
	if [ "$T_RC" = 0 ] && gone "$A"; then
		t_pass "save of a firmware guest that booted its disk ends it"
	else
		t_fail "save of a firmware guest" "exit $T_RC: $T_ERR"
	fi
	last=$(last_count "$A")

	R=${P}r
	t_run 30 "$CVISOR" restore "$S" --name "$R" -d
	if started restore "$R" && counts_on "$R" "$last" "the restored firmware guest counts on"; then
		t_run 10 "$CVISOR" info "$R" --json
		if grep -q '"firmware":"[^"]*bios[^"]*\.bin"' <<<"$T_OUT"; then
			t_pass "info of the restored guest names its firmware"
		else
			t_fail "info of the restored guest names its firmware" "$T_OUT"
		fi
		T=${P}t
		PORT=$((PORT + 1))
		if run_d incoming "$T" --incoming "127.0.0.1:$PORT" --disk "$CDISK"; then
			t_run 60 "$CVISOR" migrate "$R" "127.0.0.1:$PORT"
			if [ "$T_RC" != 0 ]; then
				t_fail "migrate of a restored firmware guest" "exit $T_RC: $T_ERR"
			elif ! gone "$R"; then
				t_fail "migrate of a restored firmware guest" "the source still runs"
			else
				counts_on "$T" "$(last_count "$R")" "the migrated firmware guest counts on (target)"
			fi
			# Its own reset at RESET_AT ends it, with the documented line.
			end=$((SECONDS + 120))
			while [ -e "$CVISOR_RUN_DIR/$T.sock" ] && [ "$SECONDS" -lt "$end" ]; do sleep 0.5; done
			if gone "$T" && grep -q 'cvisor-mbr: resetting' "$CVISOR_RUN_DIR/$T.log" &&
				grep -q "$NORESTART" "$CVISOR_RUN_DIR/$T.log" &&
				! grep -q 'SeaBIOS' "$CVISOR_RUN_DIR/$T.log"; then
				t_pass "the migrated firmware guest's reset ends it: '$NORESTART'"
			else
				t_fail "the migrated firmware guest's reset ends it" \
					"$(tail -c 300 "$CVISOR_RUN_DIR/$T.log")"
			fi
		fi
	fi

	C=${P}c
	t_run 60 "$CVISOR" restore "$S" --count 2 --name "$C" -d
	if [ "$T_RC" = 0 ]; then
		track "$C-1"
		track "$C-2"
		counts_on "$C-1" "$last" "clone 1 of a firmware guest counts on" &&
			counts_on "$C-2" "$last" "clone 2 of a firmware guest counts on"
		"$CVISOR" kill "$C-1" >/dev/null 2>&1
		"$CVISOR" kill "$C-2" >/dev/null 2>&1
	else
		t_fail "restore --count 2 of a firmware guest" "exit $T_RC: $T_ERR"
	fi
else
	t_fail "a counting firmware guest starts and counts" \
		"$(tr -d '\033' <"$CVISOR_RUN_DIR/$A.log" 2>/dev/null | tail -c 300)"
fi

# SeaBIOS, GRUB and Debian's cloud kernel from a partitioned disk: the
# firmware-grub suite (tests/e2e/firmware-grub.sh).
t_summary firmware
