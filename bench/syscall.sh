#!/usr/bin/env bash
# bench/syscall.sh - the cost of a guest system call against the limit.
#
# The limit: the bare trap round trip of this host, measured with the ring3
# tiny guest (tests/kvm/guests/ring3.c, ring3.bare=1): `syscall` from ring
# 3, the monitor's trap and back, straight to user mode with a lone sysretq
# and no kernel code. It is (time for N calls - time for 0 calls) / N, the
# best of REPS runs each.
# The figure: a Linux guest's `dd if=/dev/zero of=/dev/null bs=1 count=C`
# (2C system calls: read and write), timed by the guest's own `time`, the
# best of REPS runs in one boot. The ratio is limit / per-call time; on a
# host with VT-x or AMD-V both sides run at hardware speed.
# usage: bench/syscall.sh [N_BARE] [C_DD] [REPS]   (needs make, make tiny, make guest)
set -uo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
C=${2:-20000}
REPS=${3:-3}
RING3=build/tests/kvm/ring3.elf
[ -f "$RING3" ] && [ -x build/cvisor ] || {
	echo "syscall: run make and make tiny first" >&2
	exit 1
}
. tests/lib.sh
. tests/guest.sh
trap 'g_cleanup; t_cleanup' EXIT

# bare_run CALLS: seconds for one run of the ring3 guest.
bare_run() {
	local t0 t1
	t0=$(date +%s%N)
	build/cvisor run --kernel "$RING3" --cmdline "ring3.bare=1 ring3.calls=$1" </dev/null |
		grep -q "ring3: bare ok $1" || echo "syscall: bare run of $1 calls failed" >&2
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000))
}
best() { sort -n | head -n 1; }
zero=$(for _ in $(seq "$REPS"); do bare_run 0; done | best)
full=$(for _ in $(seq "$REPS"); do bare_run "$N"; done | best)
bare_us=$(echo "scale=2; ($full - $zero) / $N" | bc)
echo "bare trap round trip: ${bare_us} us ($N calls in $(((full - zero) / 1000)) ms, best of $REPS)"

g_kit syscall
g_start g "$BOOT_TIMEOUT" build/cvisor run --kernel "$KERNEL" --initrd "$INITRD" --memory 256M \
	--cmdline "quiet cvisor.shell=1" || {
	echo "syscall: the guest did not reach its shell" >&2
	exit 1
}
per=()
for _ in $(seq "$REPS"); do
	g_run g 600 "time dd if=/dev/zero of=/dev/null bs=1 count=$C 2>&1 | grep real"
	s=$(sed -nE 's/^real\t*([0-9]+)m ?([0-9.]+)s$/\1 \2/p' <<<"$G_OUT" | awk '{ print $1 * 60 + $2 }')
	[ -n "$s" ] && per+=("$(echo "scale=2; $s * 1000000 / (2 * $C)" | bc)")
done
g_type g poweroff
g_wait_exit g 60
dd_us=$(printf '%s\n' "${per[@]}" | sort -n | head -n 1)
[ -n "$dd_us" ] || {
	echo "syscall: no dd timing from the guest" >&2
	exit 1
}
echo "guest dd bs=1 count=$C: ${dd_us} us per system call (best of $REPS: ${per[*]})"
echo "guest system calls per second: $(echo "1000000 / $dd_us" | bc)"
echo "ratio to the bare trap (limit): $(echo "scale=2; $bare_us / $dd_us" | bc)x"
