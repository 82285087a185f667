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
t_summary linux
