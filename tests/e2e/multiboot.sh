#!/usr/bin/env bash
# tests/e2e/multiboot.sh - multiboot (v1) kernels as QEMU's -kernel boots
# them, and the pc machine's conventions test suites rely on (fw_cfg's CPU
# count and RAM size, isa-debug-exit at 0xf4). The test kernel
# (tests/kvm/guests/multiboot/mbtest.c) checks its boot information,
# fw_cfg, an exception in 32-bit mode and AP bring-up by INIT/SIPI, prints
# "mbtest:" lines and exits through 0xf4: 0 (status 1) when all passed.
# The same runs go through cvisor and, where it is installed, through
# qemu-system-x86_64 -machine pc: both must give the same exit status and
# the same "mbtest:" lines. QEMU_ACCEL=kvm|tcg forces QEMU's accelerator
# (default: kvm if it boots the kernel here, else tcg, said in a comment).
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

K=build/tests/kvm/mbtest.elf
KBIN=build/tests/kvm/mbtest_aout.bin
QEMU=${QEMU:-qemu-system-x86_64}
[ -x "$CVISOR" ] || t_abort multiboot "$CVISOR is not built (make)"
[ -f "$K" ] && [ -f "$KBIN" ] || t_abort multiboot "$K is not built (make tiny)"
[ -w /dev/kvm ] || t_skip_suite multiboot "no usable /dev/kvm"

ENV=$T_TMP/env
MOD=$T_TMP/mod
printf 'NR_CPUS=2\nMEMSIZE=128\n' >"$ENV"
printf 'second module\nline two\n' >"$MOD"

# mb_lines FILE: the kernel's lines, carriage returns dropped.
mb_lines() { tr -d '\r' <"$1" | grep -a '^mbtest: '; }

# cv NAME CPUS MEM_MIB KERNEL ARGS [cvisor flags...]: a run through cvisor;
# its output in $T_TMP/NAME.cv, its status in $T_TMP/NAME.cv.rc.
cv() {
	local name=$1 cpus=$2 mem=$3 kernel=$4 args=$5
	shift 5
	timeout -k 5 300 "$CVISOR" run --kernel "$kernel" --cmdline "$args" --cpus "$cpus" \
		--memory "${mem}M" "$@" </dev/null >"$T_TMP/$name.cv" 2>"$T_TMP/$name.cv.err"
	echo $? >"$T_TMP/$name.cv.rc"
}

# expect_cv NAME WHAT WANT_RC REGEX...: the cv run NAME's status and lines.
expect_cv() {
	local name=$1 what=$2 want=$3 re missing= rc
	shift 3
	rc=$(cat "$T_TMP/$name.cv.rc")
	for re in "$@"; do
		mb_lines "$T_TMP/$name.cv" | grep -Eq -- "$re" || missing="$missing '$re'"
	done
	if [ "$rc" = "$want" ] && [ -z "$missing" ]; then
		t_pass "cvisor: $what (status $rc)"
	else
		t_fail "cvisor: $what" "status $rc (want $want), missing$missing:
$(mb_lines "$T_TMP/$name.cv")
$(cat "$T_TMP/$name.cv.err")"
	fi
}

cv smp2 2 128 "$K" "cpus=2 mem=128" --initrd "$ENV" --module "$MOD,hello world"
expect_cv smp2 "2 vCPUs, the environment as --initrd, a module with arguments" 1 '^mbtest: args "cpus=2 mem=128"$' '^mbtest: fw_cfg cpus 2 ram 128M$' \
	'^mbtest: 2 modules$' '^mbtest: module 0 args "" size 22 first line "NR_CPUS=2"$' \
	'^mbtest: module 1 args "hello world" size 23 first line "second module"$' \
	'^mbtest: exceptions ok$' '^mbtest: 1 APs up$' '^mbtest: PASSED$'
cv smp4 4 256 "$K" "cpus=4 mem=256"
expect_cv smp4 "4 vCPUs, no module" 1 '^mbtest: 0 modules$' '^mbtest: 3 APs up$' '^mbtest: PASSED$'
cv aout 1 64 "$KBIN" "cpus=1 mem=64" --module "$MOD"
expect_cv aout "a flat kernel with the a.out kludge" 1 '^mbtest: 1 modules$' '^mbtest: PASSED$'
cv exit127 1 64 "$K" "cpus=1 mem=64 exit=0x7f"
expect_cv exit127 "isa-debug-exit 0x7f is status 255" 255 '^mbtest: PASSED$'
cv exit200 1 64 "$K" "cpus=1 mem=64 exit=200"
expect_cv exit200 "isa-debug-exit 200 is status 145, (v << 1 | 1) & 0xff" 145 '^mbtest: PASSED$'
cv fail 1 64 "$K" "cpus=1 mem=64 fail=1"
expect_cv fail "a failed check exits 1 through 0xf4: status 3" 3 '^mbtest: FAILED$'
cv wrongmem 1 64 "$K" "cpus=1 mem=65"
expect_cv wrongmem "fw_cfg's RAM size is checked (mem=65 against 64M)" 3 '^mbtest: FAIL fw_cfg RAM_SIZE$'

# ---- save and restore, migration, mid-run ----
# wait=N has the kernel tick N times (about 0.2 s apart) with fw_cfg's
# RAM_SIZE item selected and half read, then read the rest and check it
# (tests/kvm/guests/multiboot/mbtest.c). A guest saved at its third tick
# and restored, or migrated there to a `run --incoming` target, must give
# the lines of an unsaved run (the two logs end to end) and, restored,
# the same isa-debug-exit status: its fw_cfg selector, offset and items,
# its isa-debug-exit port and its module went along.
export CVISOR_RUN_DIR=$T_TMP/run
MB=mb$$
WARGS="cpus=2 mem=64 wait=30 exit=5"
mb_pid() { "$CVISOR" info "$1" --json 2>/dev/null | sed -n 's/.*"pid":\([0-9]*\).*/\1/p'; }

# mb_start NAME: the wait=30 kernel, detached, until its third tick (60 s).
mb_start() {
	local p i
	t_run 10 "$CVISOR" run -d --name "$1" --kernel "$K" --cmdline "$WARGS" --cpus 2 \
		--memory 64M --module "$MOD,hello world"
	[ "$T_RC" = 0 ] || return 1
	p=$(mb_pid "$1")
	[ -z "$p" ] || T_PIDS+=("$p")
	for i in $(seq 600); do
		grep -q '^mbtest: tick 3' "$CVISOR_RUN_DIR/$1.log" && return 0
		sleep 0.1
	done
	return 1
}

# same_lines WHAT FILE...: the files end to end hold the unsaved run's lines.
same_lines() {
	local what=$1
	shift
	if cat "$@" >"$T_TMP/joined" && diff <(mb_lines "$T_TMP/joined") \
		<(mb_lines "$T_TMP/wait.cv") >"$T_TMP/wait.diff"; then
		return 0
	fi
	t_fail "$what" "lines differ from the unsaved run: $(cat "$T_TMP/wait.diff")"
	return 1
}

cv wait 2 64 "$K" "$WARGS" --module "$MOD,hello world"
expect_cv wait "wait=30: 30 ticks, fw_cfg read across them, exit=5" 11 '^mbtest: tick 30$' \
	'^mbtest: waited$' '^mbtest: PASSED$'
if mb_start "${MB}s"; then
	t_run 30 "$CVISOR" save "${MB}s" "$T_TMP/mbsnap"
	if [ "$T_RC" != 0 ]; then
		t_fail "save of a multiboot guest mid-run" "exit $T_RC: $T_ERR"
	else
		timeout -k 5 120 "$CVISOR" restore "$T_TMP/mbsnap" </dev/null >"$T_TMP/rest.out" \
			2>"$T_TMP/rest.err"
		rc=$?
		want=$(cat "$T_TMP/wait.cv.rc")
		if ! grep -q '^mbtest: tick' "$T_TMP/rest.out" || grep -q '^mbtest: start' "$T_TMP/rest.out"; then
			t_fail "a multiboot guest saved mid-run and restored" "no tick after the restore, or it started again: $(head -c 300 "$T_TMP/rest.out")"
		elif [ "$rc" != "$want" ]; then
			t_fail "a multiboot guest saved mid-run and restored" "status $rc, unsaved $want: $(cat "$T_TMP/rest.err")"
		elif same_lines "a multiboot guest saved mid-run and restored" \
			"$CVISOR_RUN_DIR/${MB}s.log" "$T_TMP/rest.out"; then
			t_pass "a multiboot guest saved at tick $(grep -c '^mbtest: tick' "$CVISOR_RUN_DIR/${MB}s.log") and restored: the unsaved run's lines and status $rc"
		fi
	fi
else
	t_fail "a multiboot guest with wait=30 starts and ticks" "$T_ERR $(tail -c 200 "$CVISOR_RUN_DIR/${MB}s.log" 2>/dev/null)"
fi
PORT=$((20000 + $$ % 20000))
t_run 10 "$CVISOR" run -d --name "${MB}t" --incoming "127.0.0.1:$PORT"
tp=$(mb_pid "${MB}t")
[ -z "$tp" ] || T_PIDS+=("$tp")
if [ "$T_RC" = 0 ] && mb_start "${MB}m"; then
	t_run 60 "$CVISOR" migrate "${MB}m" "127.0.0.1:$PORT"
	for _ in $(seq 600); do kill -0 "$tp" 2>/dev/null || break; sleep 0.1; done
	if [ "$T_RC" != 0 ]; then
		t_fail "a multiboot guest migrated mid-run" "exit $T_RC: $T_ERR"
	elif kill -0 "$tp" 2>/dev/null; then
		t_fail "a multiboot guest migrated mid-run" "the target did not end: $(tail -c 200 "$CVISOR_RUN_DIR/${MB}t.log")"
	elif same_lines "a multiboot guest migrated mid-run" "$CVISOR_RUN_DIR/${MB}m.log" \
		"$CVISOR_RUN_DIR/${MB}t.log"; then
		t_pass "a multiboot guest migrated mid-run: the target gives the unsaved run's lines and ends"
	fi
else
	t_fail "a multiboot guest migrated mid-run: source and target start" "$T_ERR"
fi

# Refusals: one line, status 2, before any guest runs.
BAD=$T_TMP/badsum.elf
cp "$K" "$BAD"
off=$(LC_ALL=C grep -obUaP '\x02\xb0\xad\x1b' "$BAD" | head -n 1 | cut -d: -f1)
printf '\x00\x00\x00\x00' | dd of="$BAD" bs=1 seek=$((off + 8)) conv=notrunc status=none
t_run 30 "$CVISOR" run --kernel "$BAD"
t_expect_err "a multiboot header with a wrong checksum is refused" 2 'wrong checksum'
objcopy -O elf64-x86-64 "$K" "$T_TMP/k64.elf"
t_run 30 "$CVISOR" run --kernel "$T_TMP/k64.elf"
t_expect_err "an ELF64 multiboot kernel is refused, as QEMU does" 2 'ELF64: give a 32-bit one'
truncate -s 100M "$T_TMP/big"
t_run 30 "$CVISOR" run --kernel "$K" --memory 64M --module "$T_TMP/big"
t_expect_err "a module larger than RAM is refused" 2 'does not fit in guest memory'
t_run 30 "$CVISOR" run --kernel "$K" --module "$T_TMP/none"
t_expect_err "a missing module file is refused" 2 "--module $T_TMP/none"
printf 'not a kernel\n' >"$T_TMP/plain"
t_run 30 "$CVISOR" run --kernel "$T_TMP/plain" --module "$MOD"
t_expect_err "--module with a kernel that is not multiboot is refused" 2 'not a multiboot kernel'

# The same kernels under QEMU's pc machine, side by side.
if ! command -v "$QEMU" >/dev/null; then
	t_skip "QEMU pc side by side" "no $QEMU (Debian package qemu-system-x86)"
	t_summary multiboot
	exit
fi

# qemu NAME CPUS MEM_MIB KERNEL ARGS [INITRD]: status in Q_RC, output in
# $T_TMP/NAME.qemu. Q_TIMEOUT bounds it (QEMU waits forever after a KVM
# emulation failure).
qemu() {
	local name=$1 cpus=$2 mem=$3 kernel=$4 args=$5 initrd=${6:-}
	timeout -k 5 "${Q_TIMEOUT:-300}" "$QEMU" -machine pc -accel "$ACCEL" -kernel "$kernel" -append "$args" \
		${initrd:+-initrd "$initrd"} -device isa-debug-exit,iobase=0xf4,iosize=4 \
		-smp "$cpus" -m "$mem" -display none -serial stdio -monitor none -no-reboot \
		</dev/null >"$T_TMP/$name.qemu" 2>"$T_TMP/$name.qemu.err"
	Q_RC=$?
}

ACCEL=${QEMU_ACCEL:-}
if [ -z "$ACCEL" ]; then
	# This host's KVM (no VT-x, guest kernel code emulated) refuses a
	# 32-bit iret, which QEMU does not complete as cvisor does: QEMU
	# then stops with "KVM internal error. Suberror: 1".
	ACCEL=kvm
	Q_TIMEOUT=20 qemu probe 1 64 "$K" "cpus=1 mem=64"
	if [ "$Q_RC" != 1 ]; then
		t_info "QEMU -accel kvm: status $Q_RC, $(grep -m1 -a 'KVM internal error' "$T_TMP/probe.qemu.err" || echo "no KVM error line"); using -accel tcg"
		ACCEL=tcg
	fi
fi
t_info "QEMU: $("$QEMU" --version | head -n 1), -accel $ACCEL"

# side NAME: the cvisor run NAME and the QEMU run NAME agree.
side() {
	local name=$1 rc
	rc=$(cat "$T_TMP/$name.cv.rc")
	if [ "$rc" = "$Q_RC" ] && diff <(mb_lines "$T_TMP/$name.cv") \
		<(mb_lines "$T_TMP/$name.qemu") >"$T_TMP/$name.diff"; then
		t_pass "cvisor and QEMU pc agree: $name (status $rc)"
	else
		t_fail "cvisor and QEMU pc agree: $name" "status cvisor $rc, QEMU $Q_RC:
$(cat "$T_TMP/$name.diff")
$(head -c 500 "$T_TMP/$name.qemu.err")"
	fi
}

qemu smp2 2 128 "$K" "cpus=2 mem=128" "$ENV,$MOD hello world"
side smp2
qemu smp4 4 256 "$K" "cpus=4 mem=256"
side smp4
qemu aout 1 64 "$KBIN" "cpus=1 mem=64" "$MOD"
side aout
qemu exit127 1 64 "$K" "cpus=1 mem=64 exit=0x7f"
side exit127
qemu exit200 1 64 "$K" "cpus=1 mem=64 exit=200"
side exit200
qemu fail 1 64 "$K" "cpus=1 mem=64 fail=1"
side fail
qemu wrongmem 1 64 "$K" "cpus=1 mem=65"
side wrongmem
t_summary multiboot
