#!/usr/bin/env bash
# tests/e2e/firmware-grub.sh - an installed system's boot: a partitioned
# disk with GRUB for BIOS (scripts/grub-disk.sh: boot.img, core.img in the
# post-MBR gap, an ext4 partition with the kernel, the initramfs and
# grub.cfg) and Debian's cloud kernel from the guest kit, booted by
# Debian's SeaBIOS (`cvisor run --firmware`). SeaBIOS, then GRUB on the
# serial console, then the kernel's first lines; the test stops the guest
# at its command line. GRUB's configuration carries the kernel options
# `cvisor host` prints (on a host that emulates guest kernel code, those
# that cvisor adds itself to a --kernel boot), as an operator would put
# them in GRUB_CMDLINE_LINUX, and the kernel must echo them.
#
# About 7 minutes on a host without VT-x: GRUB reads the 14 MiB kernel
# through SeaBIOS's int 13h and the kernel decompresses itself, all of it
# emulated. scripts/run-tests.sh starts this suite in the background at the
# start of the run (BG_SUITES), since it keeps one core busy and the suites
# before its place leave the other partly idle.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

BIOS=${BIOS:-/usr/share/seabios/bios.bin}
KIT=${KIT:-build/guest}
NAME="SeaBIOS, GRUB, then the Debian kernel from the disk"
[ -x "$CVISOR" ] || t_abort firmware-grub "$CVISOR is not built (make)"
[ -r "$BIOS" ] || t_skip_suite firmware-grub "no $BIOS (Debian package seabios)"
[ -w /dev/kvm ] || t_skip_suite firmware-grub "no usable /dev/kvm"
[ -f /usr/lib/grub/i386-pc/boot.img ] && command -v grub-mkimage >/dev/null ||
	t_skip_suite firmware-grub "no grub-pc-bin"
[ -f "$KIT/debian.bzImage" ] && [ -f "$KIT/initramfs.cpio" ] ||
	t_skip_suite firmware-grub "no guest kit (make guest)"

opts=$("$CVISOR" host | sed -n 's/^guest kernel options: //p')
if "$CVISOR" host | grep -q '^emulated host: yes' && [ -z "$opts" ]; then
	t_fail "cvisor host names the kernel options this host needs" "$("$CVISOR" host 2>&1)"
else
	t_pass "cvisor host names the kernel options this host needs (${opts:-none})"
fi

if ! bash scripts/grub-disk.sh "$T_TMP/grub.img" "$KIT/debian.bzImage" "$KIT/initramfs.cpio" \
	"earlyprintk=ttyS0 $opts" >"$T_TMP/grub-disk.log" 2>&1; then
	t_fail "$NAME" "grub-disk.sh: $(tail -n 3 "$T_TMP/grub-disk.log")"
	t_summary firmware-grub
	exit
fi
out=$T_TMP/grub.out
"$CVISOR" run --firmware "$BIOS" --disk "$T_TMP/grub.img" --memory 1G </dev/null >"$out" 2>&1 &
pid=$!
T_PIDS+=("$pid")
start=$SECONDS
end=$((SECONDS + 1500))
while ! grep -aq 'Kernel command line: .*earlyprintk=ttyS0' "$out" && [ "$SECONDS" -lt "$end" ] &&
	kill -0 "$pid" 2>/dev/null; do
	sleep 2
done
took=$((SECONDS - start))
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
cmdline_re='Kernel command line: .*earlyprintk=ttyS0'
[ -z "$opts" ] || cmdline_re="$cmdline_re ${opts%% *}"
missing=
for re in 'SeaBIOS \(version ' 'Welcome to GRUB' 'grub-disk: GRUB loading the kernel' \
	'Linux version [0-9].*cloud-amd64' 'BIOS-e820: ' "$cmdline_re"; do
	grep -aEq -- "$re" "$out" || missing="$missing '$re'"
done
if [ -z "$missing" ]; then
	t_pass "$NAME (${took} s to its command line)"
else
	t_fail "$NAME" "missing$missing after ${took} s: $(tr -d '\033' <"$out" | tail -n 5)"
fi
t_summary firmware-grub
