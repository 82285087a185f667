#!/usr/bin/env bash
# tests/e2e/linux-migrate.sh - the microVM kernel saved, restored and live
# migrated in the middle of its boot. One boot (minutes on an emulating
# host) carries the whole chain:
#   1. `cvisor run -d` boots the kernel (2 vCPUs, 192 MiB, initramfs);
#   2. at "smp: Brought up 1 node, 2 CPUs" (~13 s of guest time in)
#      `cvisor save` ends it and `cvisor restore -d` starts it again;
#   3. at "Unpacking initramfs..." (~22 s in, while the kernel writes the
#      initramfs into page cache: memory keeps changing) the restored guest
#      is live migrated over loopback to `cvisor run --incoming`, with
#      --verify (RAM checksums compared after the last round);
#   4. the boot goes on to "Run /init as init process" on the target,
#      which the source never printed; init reports both CPUs and powers
#      off, and the target monitor ends.
# Guest time across each hop: the kernel's printk timestamps (TSC-based
# sched_clock) go on from where they were, neither backwards nor with a
# jump, and the kernel declares no clock unstable.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
. tests/named.sh

KERNEL=${KERNEL:-build/guest/microvm.vmlinux}
INITRD=${INITRD:-build/guest/initramfs.cpio}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-900}
LOGDIR=build/test-logs
N=lm$$-
PORT=$((20000 + ($$ + 7) % 20000))
mkdir -p "$LOGDIR"

cleanup() {
	local s
	for s in "$CVISOR_RUN_DIR"/*.sock; do
		[ -e "$s" ] && timeout 5 "$CVISOR" kill "$(basename "$s" .sock)" >/dev/null 2>&1
	done
	for s in src rst dst; do
		[ -f "$CVISOR_RUN_DIR/$N$s.log" ] && cp "$CVISOR_RUN_DIR/$N$s.log" "$LOGDIR/linux-migrate-$s.log"
	done
	t_cleanup
}
trap cleanup EXIT

if [ ! -f "$KERNEL" ] || [ ! -f "$INITRD" ]; then
	t_fail "guest kit" "$KERNEL or $INITRD missing (run make guest)"
	t_summary linux-migrate
	exit 1
fi

# wait_for NAME TEXT: until NAME's console log has TEXT (BOOT_TIMEOUT), or
# the monitor is gone without it.
wait_for() {
	local log=$CVISOR_RUN_DIR/$1.log i
	for i in $(seq $((BOOT_TIMEOUT * 5))); do
		grep -qF -- "$2" "$log" 2>/dev/null && return 0
		if [ ! -e "$CVISOR_RUN_DIR/$1.sock" ]; then
			grep -qF -- "$2" "$log" 2>/dev/null
			return
		fi
		sleep 0.2
	done
	return 1
}

# ends NAME SECONDS: the monitor ended (socket removed) within SECONDS.
ends() {
	local i
	for i in $(seq $(($2 * 10))); do
		[ ! -e "$CVISOR_RUN_DIR/$1.sock" ] && return 0
		sleep 0.1
	done
	return 1
}

# Printk timestamps in a log, in microseconds, one per line.
stamps() { sed -nE 's/^\[ *([0-9]+)\.([0-9]{6})\].*/\1\2/p' "$CVISOR_RUN_DIR/$1.log" | sed 's/^0*//;s/^$/0/'; }

# hop_time FROM TO WHAT: the first timestamp TO printed is not before the
# last FROM printed, and not ahead of the host's clock: the guest's clock
# started at 0 with the boot and cannot have run longer than the host
# seconds since then (a TSC or kvmclock carried wrong jumps by far more).
hop_time() {
	local a b host
	a=$(stamps "$1" | tail -n 1)
	b=$(stamps "$2" | head -n 1)
	host=$(($(date +%s) - start + 1))
	if [ -z "$a" ] || [ -z "$b" ]; then
		t_fail "$3: guest time goes on" "no timestamps (last before '$a', first after '$b')"
	elif [ "$b" -lt "$a" ]; then
		t_fail "$3: guest time goes on" "went back from $a us to $b us"
	elif [ "$b" -gt $((host * 1000000)) ]; then
		t_fail "$3: guest time goes on" "jumped from $a us to $b us, ahead of the $host s the host has run it"
	else
		t_pass "$3: guest time goes on ($a us -> $b us, within the host's $host s)"
	fi
}

# raced NAME WHAT: the hop came after NAME's boot had reached init (a host
# that runs the kernel natively boots in about a second, faster than this
# script can catch a line): nothing mid-boot to test, so say so and stop.
raced() {
	if grep -q "Run /init as init process" "$CVISOR_RUN_DIR/$1.log"; then
		t_skip "mid-boot $2" "the boot reached Run /init before the $2 (a fast host)"
		t_summary linux-migrate
		exit 0
	fi
}

# After a hop: a clock the kernel declared unstable is a failure (its TSC
# or kvmclock jumped). RCU stalls, lockup and hung-task reports are only
# shown: this host emulates the guest kernel, and under load a long
# initcall runs for more than the 21 s RCU allows whether or not the
# guest moved (seen on a boot that was never migrated, too).
no_alarms() {
	local bad
	bad=$(grep -Ei "clocksource.*unstable|Marking clocksource .* as unstable|TSC.*(unstable|skew)" \
		"$CVISOR_RUN_DIR/$1.log" | head -n 2)
	if [ -z "$bad" ]; then
		t_pass "$2: no clock declared unstable"
	else
		t_fail "$2: no clock declared unstable" "$bad"
	fi
	bad=$(grep -Ei "rcu.*(stall|self-detected)|soft lockup|hard LOCKUP|hung_task" \
		"$CVISOR_RUN_DIR/$1.log" | head -n 1)
	[ -n "$bad" ] && t_info "$2: the kernel reported (host load): $bad"
	return 0
}

start=$(date +%s)
t_run 20 "$CVISOR" run -d --name "${N}src" --kernel "$KERNEL" --initrd "$INITRD" --cpus 2 \
	--memory 192M --cmdline "panic=-1"
if [ "$T_RC" != 0 ]; then
	t_fail "boot" "exit $T_RC: $T_ERR"
	t_summary linux-migrate
	exit 1
fi
track "${N}src"

# --- save and restore at the SMP bring-up ---
if ! wait_for "${N}src" "smp: Brought up 1 node, 2 CPUs"; then
	t_fail "boot reaches SMP bring-up" "last lines: $(tail -n 3 "$CVISOR_RUN_DIR/${N}src.log")"
	t_summary linux-migrate
	exit 1
fi
t_run 60 "$CVISOR" save "${N}src" "$T_TMP/mid.snap"
if [ "$T_RC" = 0 ] && gone "${N}src"; then
	t_pass "save in the middle of the boot ends the guest"
else
	t_fail "save in the middle of the boot" "exit $T_RC: $T_ERR"
	t_summary linux-migrate
	exit 1
fi
raced "${N}src" save
t_run 20 "$CVISOR" restore "$T_TMP/mid.snap" --name "${N}rst" -d
if [ "$T_RC" != 0 ]; then
	t_fail "restore" "exit $T_RC: $T_ERR"
	t_summary linux-migrate
	exit 1
fi
track "${N}rst"
t_pass "restore -d starts it again"

# --- live migration while the initramfs unpacks ---
if wait_for "${N}rst" "Unpacking initramfs"; then
	t_pass "the restored kernel goes on booting"
else
	t_fail "the restored kernel goes on booting" "last lines: $(tail -n 3 "$CVISOR_RUN_DIR/${N}rst.log")"
	t_summary linux-migrate
	exit 1
fi
hop_time "${N}src" "${N}rst" "restore"
t_run 20 "$CVISOR" run -d --name "${N}dst" --incoming "127.0.0.1:$PORT"
if [ "$T_RC" != 0 ]; then
	t_fail "target listens" "exit $T_RC: $T_ERR"
	t_summary linux-migrate
	exit 1
fi
track "${N}dst"
t_run 120 "$CVISOR" migrate "${N}rst" "127.0.0.1:$PORT" --verify --json
summary=$(tail -n 1 <<<"$T_OUT")
if [ "$T_RC" = 0 ] && grep -q '"migrated"' <<<"$summary" && gone "${N}rst"; then
	t_pass "live migration mid-boot with --verify ($(sed -nE 's/.*"total_ms":([0-9.]+).*"downtime_ms":([0-9.]+).*/\1 ms, downtime \2 ms/p' <<<"$summary"))"
else
	t_fail "live migration mid-boot" "exit $T_RC: $T_ERR $summary"
	t_summary linux-migrate
	exit 1
fi
raced "${N}rst" migration

if wait_for "${N}dst" "Run /init as init process"; then
	t_pass "the boot goes on to Run /init on the target"
else
	t_fail "the boot goes on to Run /init on the target" \
		"last lines: $(tail -n 3 "$CVISOR_RUN_DIR/${N}dst.log")"
fi
hop_time "${N}rst" "${N}dst" "migration"
# The end: init runs on the target (both CPUs online, as it reports) and
# powers off; the target monitor ends.
if ends "${N}dst" 300; then
	t_pass "the target monitor ends with the guest ($(($(date +%s) - start)) s in all)"
else
	t_fail "the target monitor ends with the guest" "still running after 300 s"
fi
if grep -qx "CVISOR-CPUS 2" <(tr -d '\r' <"$CVISOR_RUN_DIR/${N}dst.log"); then
	t_pass "init runs on the target and sees both CPUs"
else
	t_fail "init runs on the target" "no 'CVISOR-CPUS 2' in the target's log"
fi
no_alarms "${N}rst" "after restore"
no_alarms "${N}dst" "after migration"
t_summary linux-migrate
