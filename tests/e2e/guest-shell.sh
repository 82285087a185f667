#!/usr/bin/env bash
# tests/e2e/guest-shell.sh - the README's first command on a terminal: `make
# run` in a tmux pane (a pseudo-terminal, so cvisor puts it in raw mode)
# reaches the guest's busybox prompt, a typed command's output comes back,
# and `poweroff` ends it with status 0. Also records the time from `make
# run` to the prompt. Then the same kernel with --irqchip split (cvisor's
# IOAPIC, no PIC, no PIT) and virtio-mmio disks: a typed line comes back
# over COM1 (IRQ 4 through cvisor's IOAPIC), the guest's /proc/interrupts
# shows the serial and virtio interrupts on the IO-APIC, a block written
# to a disk in the guest is in the image on the host, and `cvisor stop`
# powers it off through the ACPI power button (the SCI: IRQ 9, level).
# Before that, with --on-reboot restart, `reboot -f` in the guest resets
# the machine in place and the same monitor boots the kernel again.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
. tests/guest.sh
command -v tmux >/dev/null || t_abort guest-shell "tmux missing (bash scripts/install-deps.sh)"
[ -x "$CVISOR" ] || t_abort guest-shell "$CVISOR not found (run make)"
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	t_skip_suite guest-shell "/dev/kvm is not accessible"
fi
BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}
LOGDIR=${LOGDIR:-build/test-logs}
mkdir -p "$LOGDIR"
sock=cvisor-test-$$
tm() { tmux -L "$sock" "$@"; }
cleanup() {
	tm capture-pane -p -S - -t run >"$LOGDIR/guest-shell.log" 2>/dev/null
	tm kill-server 2>/dev/null
	G_SUITE=guest-shell g_cleanup
	for d in /sys/fs/cgroup/cvisor/"$split_name" /sys/fs/cgroup/*/cvisor/"$split_name"; do
		[ -d "$d" ] && rmdir "$d" 2>/dev/null
	done
	t_cleanup
}
trap cleanup EXIT

# wait_pane REGEX SECONDS: until a line of the pane matches REGEX (tmux
# drops trailing blanks: the prompt reads "/ #").
wait_pane() {
	local end=$((SECONDS + $2))
	until tm capture-pane -p -S - -t run 2>/dev/null | grep -qE -- "$1"; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.2
	done
}

start=$(date +%s.%N)
tm new-session -d -s run -x 160 -y 48 \
	"make -s run; echo \"MAKE-RUN-EXIT \$?\" >$T_TMP/status; sleep 3600" ||
	t_abort guest-shell "tmux new-session failed"
if wait_pane "^CVISOR-SHELL" "$BOOT_TIMEOUT" && wait_pane "^/ #" 60; then
	took=$(echo "$(date +%s.%N) - $start" | bc)
	t_pass "make run reaches the busybox prompt on a terminal in $(printf '%.1f' "$took") s"
	t_info "boot to the shell prompt: $(printf '%.1f' "$took") s wall"
else
	t_fail "make run reaches the prompt" "$(tm capture-pane -p -t run | grep . | tail -n 4 | tr '\n' ' ')"
	t_summary guest-shell
	exit 1
fi
tm send-keys -t run 'echo typed-$((6 * 7)) on $(uname -n)' Enter
if wait_pane "^typed-42 on cvisor" 60; then
	t_pass "a command typed at the prompt runs in the guest and prints back"
else
	t_fail "typed command" "$(tm capture-pane -p -t run | grep . | tail -n 4 | tr '\n' ' ')"
fi
tm send-keys -t run 'poweroff' Enter
end=$((SECONDS + 120))
until [ -s "$T_TMP/status" ] || [ "$SECONDS" -ge "$end" ]; do sleep 0.2; done
st=$(sed -n 's/^MAKE-RUN-EXIT //p' "$T_TMP/status" 2>/dev/null)
if [ "$st" = 0 ]; then
	t_pass "poweroff at the prompt ends make run with status 0"
else
	t_fail "poweroff ends make run" "status '${st:-none}': $(tm capture-pane -p -t run | grep . | tail -n 3 | tr '\n' ' ')"
fi

# ---- --irqchip split ----
split_name=gsplit$$
export CVISOR_RUN_DIR=$T_TMP/run
data=$T_TMP/split-data.img
token="split-$$-$RANDOM"
truncate -s 16M "$data"
start_s=$SECONDS
if g_start s "$BOOT_TIMEOUT" "$CVISOR" run --name "$split_name" --irqchip split --virtio mmio --kernel "$KERNEL" \
	--initrd "$INITRD" --memory 256M --disk "$TOOLS,readonly,serial=cvtools" --disk "$data" \
	--on-reboot restart --cmdline "quiet cvisor.shell=1"; then
	t_pass "--irqchip split: the microVM kernel reaches its shell in $((SECONDS - start_s)) s"
	g_run s 60 'echo typed-$((6 * 7)) split'
	if [ "$G_RC" = 0 ] && [ "$G_OUT" = "typed-42 split" ]; then
		t_pass "--irqchip split: a typed line runs in the guest and prints back"
	else
		t_fail "--irqchip split: typed line" "rc $G_RC: $G_OUT"
	fi
	# /proc/interrupts: "  4:  N  IO-APIC  4-edge  ttyS0" (level if the
	# guest chose it); the disks' virtio-mmio lines likewise.
	g_run s 60 'cat /proc/interrupts'
	irqs=$G_OUT
	tty=$(printf '%s\n' "$irqs" | grep -E '^ *4: .*IO-APIC.*ttyS0')
	vio=$(printf '%s\n' "$irqs" | grep -E 'IO-APIC.*virtio' | awk '$2 > 0' | head -n 1)
	if [ -n "$tty" ] && [ -n "$vio" ]; then
		t_pass "--irqchip split: ttyS0 and virtio interrupts through the IO-APIC ($(echo $tty | awk '{print $2}') on IRQ 4)"
	else
		t_fail "--irqchip split: interrupts" "$(printf '%s\n' "$irqs" | grep -E 'ttyS0|virtio|IO-APIC' | tr -s ' ' | head -n 4 | tr '\n' ';')"
	fi
	g_run s 60 "printf '%s' $token | dd of=/dev/vdb bs=512 count=1 conv=sync 2>/dev/null && sync && head -c ${#token} /dev/vdb && echo"
	g_check_disk=$G_OUT
	# --on-reboot restart: `reboot -f` resets the machine in place; the same
	# monitor boots the kernel again (a second CVISOR-SHELL), a mark left in
	# the guest's tmpfs is gone, and the disk written before reads back.
	g_run s 30 'echo x >/dev/shm/rbmark'
	g_type s 'reboot -f'
	end=$((SECONDS + BOOT_TIMEOUT))
	until [ "$(g_log s | grep -c '^CVISOR-SHELL$')" -ge 2 ] || [ "$SECONDS" -ge "$end" ] ||
		! kill -0 "${G_PID[s]}" 2>/dev/null; do
		sleep 0.5
	done
	for i in $(seq 10); do g_run s 10 true && break; done
	g_run s 60 "[ -e /dev/shm/rbmark ] && echo MARK-KEPT || echo MARK-GONE; head -c ${#token} /dev/vdb; echo"
	if [ "$G_RC" = 0 ] && [ "$G_OUT" = "MARK-GONE
$token" ] && grep -q 'the guest reset' "$T_TMP/s.err"; then
		t_pass "--on-reboot restart: reboot -f boots the kernel again in the same monitor (tmpfs mark gone, disk reads back)"
	else
		t_fail "--on-reboot restart: reboot -f boots again" "rc $G_RC: $(tr '\n' ' ' <<<"$G_OUT"); $(tail -n 2 "$T_TMP/s.err" | tr '\n' ' ')"
	fi
	t_run 200 "$CVISOR" stop "$split_name" --timeout 180
	g_wait_exit s 60
	if [ "$T_RC" = 0 ] && [ "$G_RC" = 0 ] && g_log s | grep -q "power button pressed"; then
		t_pass "--irqchip split: cvisor stop powers the guest off through the power button (the SCI, level), status 0"
	else
		t_fail "--irqchip split: cvisor stop" "stop exit $T_RC ($T_ERR), monitor $G_RC: $(g_log s | tail -n 3 | tr '\n' ' ')"
	fi
	if [ "$(head -c ${#token} "$data")" = "$token" ] && [ "$g_check_disk" = "$token" ]; then
		t_pass "--irqchip split: a block written on virtio-blk reads back in the guest and is in the host's image"
	else
		t_fail "--irqchip split: disk" "guest read '$g_check_disk', image '$(head -c ${#token} "$data" | tr -d '\0')'"
	fi
else
	t_fail "--irqchip split boots to a shell" "$(g_log s | tail -n 5 | tr '\n' ' ') $(tail -n 2 "$T_TMP/s.err" 2>/dev/null)"
fi
t_summary guest-shell
