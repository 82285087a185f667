#!/usr/bin/env bash
# bench/boot.sh - (c) process start to "Run /init as init process" with the
# microVM kernel, under cvisor (PVH vmlinux and bzImage) and QEMU (-M microvm,
# KVM, the same bzImage, initrd and command line), and (d) how far and how
# fast the stock Debian cloud kernel gets under cvisor. One run each, as a
# boot costs minutes on an emulating host; each has a time limit, and the
# last kernel line is recorded for a run that does not get there.
# usage: bench/boot.sh [LIMIT_SECONDS]   (needs `make guest`)
set -uo pipefail
cd "$(dirname "$0")/.."
LIMIT=${1:-900}
G=build/guest
OUT=build/bench
mkdir -p "$OUT"
gcc -O2 -Wall -o "$OUT/runstat" bench/runstat.c
make -s build/cvisor
MARK="Run /init as init process"
CMD="console=ttyS0 panic=-1 i8042.noaux"

# run NAME CMD...: time to the marker, the exit, and the last line printed.
run() {
	local name=$1
	shift
	local log="$OUT/boot-$name.log"
	local t0 t1
	t0=$(date +%s.%N)
	"$@" </dev/null >"$log" 2>&1 &
	local pid=$! waited=0
	# QEMU stops the guest on an emulation failure but keeps running:
	# end it then, and anything at the time limit.
	while kill -0 "$pid" 2>/dev/null; do
		if grep -aq "KVM internal error" "$log" || [ "$waited" -ge "$LIMIT" ]; then
			kill "$pid" 2>/dev/null
			break
		fi
		sleep 1
		waited=$((waited + 1))
	done
	wait "$pid"
	local rc=$?
	t1=$(date +%s.%N)
	local at
	at=$(grep -a -m1 "$MARK" "$log" | sed -nE 's/^\[ *([0-9.]+)\].*/\1/p')
	local wall
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	if [ -n "$at" ]; then
		echo "$name: reached '$MARK' at guest time ${at}s; process ran ${wall}s, exit $rc"
	else
		echo "$name: did not reach it in ${wall}s (exit $rc); last kernel line and the stop:"
		grep -a '^\[ *[0-9]' "$log" | tail -n 1 | sed 's/^/    /'
		grep -aE 'KVM internal error|refused instruction|^Code=' "$log" | tail -n 2 | sed 's/^/    /'
	fi
}

echo "== (c) microVM kernel to Run /init (limit ${LIMIT}s each)"
run cvisor-pvh build/cvisor run --kernel $G/microvm.vmlinux --initrd $G/initramfs.cpio --cmdline "$CMD"
run cvisor-bzimage build/cvisor run --kernel $G/microvm.bzImage --initrd $G/initramfs.cpio --cmdline "$CMD"
run qemu-bzimage qemu-system-x86_64 -M microvm -enable-kvm -m 256 -nographic -nodefaults \
	-no-user-config -serial stdio -no-reboot -kernel $G/microvm.bzImage -initrd $G/initramfs.cpio \
	-append "$CMD"
echo "== (d) Debian cloud kernel under cvisor"
run cvisor-debian build/cvisor run --kernel $G/debian.bzImage --initrd $G/initramfs.cpio --memory 512M \
	--cmdline "$CMD"
