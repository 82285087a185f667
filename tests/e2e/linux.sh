#!/usr/bin/env bash
# One boot of the microVM kernel checks several things at once, because a
# Linux boot takes minutes on an emulating (PVM) host:
#   - it reaches "Run /init as init process";
#   - --cpus 2 brings up 2 CPUs;
#   - --memory 192M shows up as ~192 MiB;
#   - the 8250 console was probed at COM1 with IRQ 4;
#   - cvisor ends with status 0 within the timeout: either init printed its
#     markers and powered off (hosts where user space runs), or init died at
#     its first system call and the kernel panicked and rebooted (panic=-1).
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

KERNEL=${KERNEL:-build/guest/microvm.vmlinux}
INITRD=${INITRD:-build/guest/initramfs.cpio}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-900}
LOGDIR=build/test-logs
mkdir -p "$LOGDIR"

if [ ! -f "$KERNEL" ] || [ ! -f "$INITRD" ]; then
	t_fail "guest kit" "$KERNEL or $INITRD missing (run make guest)"
	t_summary linux
	exit 1
fi

marker="e2e-$$"
start=$(date +%s)
t_run "$BOOT_TIMEOUT" "$CVISOR" run --kernel "$KERNEL" --initrd "$INITRD" --cpus 2 --memory 192M \
	--cmdline "panic=-1 cvisor.marker=$marker"
took=$(($(date +%s) - start))
printf '%s\n' "$T_OUT" >"$LOGDIR/linux-boot.log"
printf '%s\n' "$T_ERR" >"$LOGDIR/linux-boot.err"
echo "boot took ${took}s, exit $T_RC; log in $LOGDIR/linux-boot.log"

if grep -q "Run /init as init process" <<<"$T_OUT"; then
	t_pass "reaches Run /init"
else
	t_fail "reaches Run /init" "not in the log; last lines: $(tail -n 3 <<<"$T_OUT")"
fi
if grep -Eq "smp: Brought up 1 node, 2 CPUs" <<<"$T_OUT"; then
	t_pass "--cpus 2 brings up 2 CPUs"
else
	t_fail "--cpus 2 brings up 2 CPUs" "$(grep -E 'smp:|Brought up' <<<"$T_OUT" | head -n 2)"
fi
# "Memory: 171234K/196088K available": the second figure is all RAM the
# kernel found; 192M within 4 MiB (the BIOS hole and EBDA are not RAM).
total_k=$(sed -nE 's/.*Memory: [0-9]+K\/([0-9]+)K available.*/\1/p' <<<"$T_OUT" | head -n 1)
if [ -n "$total_k" ] && [ $((total_k / 1024)) -ge 188 ] && [ $((total_k / 1024)) -le 192 ]; then
	t_pass "--memory 192M shows ${total_k}K"
else
	t_fail "--memory 192M" "kernel reports '${total_k:-nothing}' K"
fi
if grep -Eq "ttyS0 at I/O 0x3f8 \(irq = 4" <<<"$T_OUT"; then
	t_pass "8250 probed at COM1 IRQ 4"
else
	t_fail "8250 probed at COM1 IRQ 4" "$(grep -i serial <<<"$T_OUT" | head -n 2)"
fi
if [ "$T_RC" = 0 ]; then
	t_pass "guest ends cvisor with status 0 (in ${took}s)"
else
	t_fail "guest ends cvisor with status 0" "exit $T_RC: $T_ERR"
fi
if grep -q "CVISOR-MARKER $marker" <<<"$T_OUT"; then
	echo "user space ran: $(grep -E '^CVISOR-' <<<"$T_OUT" | tr '\r\n' '  ')"
	if grep -q "CVISOR-CPUS 2" <<<"$T_OUT"; then t_pass "init sees 2 CPUs"; else t_fail "init sees 2 CPUs" "$(grep CVISOR-CPUS <<<"$T_OUT")"; fi
else
	echo "user space did not run here: $(grep -E 'Kernel panic|Attempted to kill init|segfault|invalid opcode' <<<"$T_OUT" | head -n 2 | tr '\r\n' '  ')"
fi

# Boot A (virtio-mmio): the kernel mounts a host-made ext4 image as its
# root read-write, gets an address by DHCP over user-mode networking, and
# binds the rng and vsock drivers. No initramfs: root= is what it mounts.
mkfs_ok=1
command -v mkfs.ext4 >/dev/null || mkfs_ok=0
if [ $mkfs_ok = 1 ]; then
	img=$T_TMP/root.img
	truncate -s 64M "$img" && mkfs.ext4 -q -F "$img"
	before=$(dumpe2fs -h "$img" 2>/dev/null | sed -nE 's/^Mount count: *([0-9]+)/\1/p')
	start=$(date +%s)
	CVISOR_DEBUG=1 t_run "$BOOT_TIMEOUT" "$CVISOR" run --kernel "$KERNEL" --virtio mmio \
		--disk "$img" --net user --rng --vsock 3,uds="$T_TMP/vsock.sock" \
		--cmdline "root=/dev/vda rw rootfstype=ext4 ip=dhcp panic=-1 i8042.noaux"
	took=$(($(date +%s) - start))
	printf '%s\n' "$T_OUT" >"$LOGDIR/linux-virtio-mmio.log"
	printf '%s\n' "$T_ERR" >"$LOGDIR/linux-virtio-mmio.err"
	echo "virtio-mmio boot took ${took}s, exit $T_RC; log in $LOGDIR/linux-virtio-mmio.log"
	after=$(dumpe2fs -h "$img" 2>/dev/null | sed -nE 's/^Mount count: *([0-9]+)/\1/p')
	mtime=$(dumpe2fs -h "$img" 2>/dev/null | sed -nE 's/^Last mount time: *(.*)/\1/p')
	if grep -Eq "EXT4-fs \(vda\): mounted filesystem" <<<"$T_OUT" &&
		grep -q "VFS: Mounted root (ext4 filesystem)" <<<"$T_OUT"; then
		t_pass "kernel mounts the virtio-blk root read-write"
	else
		t_fail "kernel mounts the virtio-blk root" "$(grep -E 'EXT4|VFS|vda' <<<"$T_OUT" | head -n 3)"
	fi
	if [ -n "$after" ] && [ "$after" -gt "${before:-0}" ] && [ "$mtime" != "n/a" ]; then
		t_pass "the guest's mount wrote the superblock (mount count $before -> $after, $mtime)"
	else
		t_fail "superblock written through virtio-blk" "mount count ${before:-?} -> ${after:-?}, last mount '$mtime'"
	fi
	if grep -Eq "IP-Config: Got DHCP answer from 10\.0\.2\.2, my address is 10\.0\.2\.15" <<<"$T_OUT"; then
		t_pass "ip=dhcp over --net user (virtio-net both ways)"
	else
		t_fail "ip=dhcp over --net user" "$(grep -E 'IP-Config|DHCP|eth0' <<<"$T_OUT" | head -n 3)"
	fi
	for dev in virtio-rng virtio-vsock; do
		if grep -q "$dev: driver ready" <<<"$T_ERR"; then
			t_pass "the kernel drives $dev"
		else
			t_fail "the kernel drives $dev" "no 'driver ready' from cvisor"
		fi
	done
	if grep -q "NET: Registered PF_VSOCK" <<<"$T_OUT"; then
		t_pass "vsock transport registered"
	else
		t_fail "vsock transport registered" "no PF_VSOCK line"
	fi
	[ "$T_RC" = 0 ] && t_pass "virtio-mmio guest ends with status 0" ||
		t_fail "virtio-mmio guest ends with status 0" "exit $T_RC: $(tail -n 2 <<<"$T_ERR")"

	# Boot B (virtio-pci, as a stock kernel finds devices): a clean image
	# (boot A's was not unmounted: its journal would need a replay that a
	# read-only device cannot take), readonly, mounted read-only, and not
	# one byte changed.
	img=$T_TMP/ro.img
	truncate -s 64M "$img" && mkfs.ext4 -q -F "$img"
	cp "$img" "$T_TMP/ro-before.img"
	start=$(date +%s)
	CVISOR_DEBUG=1 t_run "$BOOT_TIMEOUT" "$CVISOR" run --kernel "$KERNEL" --virtio pci \
		--disk "$img,readonly" --cmdline "root=/dev/vda ro rootfstype=ext4 panic=-1 i8042.noaux"
	took=$(($(date +%s) - start))
	printf '%s\n' "$T_OUT" >"$LOGDIR/linux-virtio-pci.log"
	printf '%s\n' "$T_ERR" >"$LOGDIR/linux-virtio-pci.err"
	echo "virtio-pci boot took ${took}s, exit $T_RC; log in $LOGDIR/linux-virtio-pci.log"
	if grep -Eq "virtio_blk virtio0: \[vda\]" <<<"$T_OUT" && grep -q "virtio-blk 0: driver ready" <<<"$T_ERR"; then
		t_pass "virtio-pci: the kernel finds the disk on the PCI bus"
	else
		t_fail "virtio-pci disk found" "$(grep -iE 'pci|virtio' <<<"$T_OUT" | tail -n 3)"
	fi
	if grep -Eq "VFS: Mounted root \(ext4 filesystem\) readonly" <<<"$T_OUT"; then
		t_pass "kernel mounts the readonly disk read-only"
	else
		t_fail "readonly root mounted" "$(grep -E 'EXT4|VFS' <<<"$T_OUT" | head -n 3)"
	fi
	if cmp -s "$img" "$T_TMP/ro-before.img"; then
		t_pass "readonly image byte-for-byte unchanged"
	else
		t_fail "readonly image unchanged" "cmp found a difference"
	fi
else
	t_fail "virtio boots" "mkfs.ext4 missing (apt-get install e2fsprogs)"
fi
t_summary linux
