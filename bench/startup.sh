#!/usr/bin/env bash
# bench/startup.sh - (a) the VMM floor and (b) time to first serial byte:
# cvisor and QEMU (-M microvm, KVM) boot the same stub guest (bench/stub.S)
# in the same run; prints the medians and the ratios.
# SECCOMP=compare also measures cvisor with --seccomp off in the same run
# and prints the seccomp overhead (on is the default). JAIL=compare (root)
# also measures cvisor with --jail in the same run and prints its overhead.
# IRQCHIP=compare also measures cvisor with --pit off and with --irqchip
# split (cvisor's IOAPIC, no PIC, no PIT) in the same run, first byte and
# exit separately.
# usage: [SECCOMP=compare] [JAIL=compare] [IRQCHIP=compare] bench/startup.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-20}
OUT=build/bench
mkdir -p "$OUT"
gcc -O2 -Wall -o "$OUT/runstat" bench/runstat.c
gcc -c bench/stub.S -o "$OUT/stub.o"
ld -n -Ttext=0x100000 -e start -o "$OUT/stub.elf" "$OUT/stub.o"
make -s build/cvisor

qemu=(qemu-system-x86_64 -M microvm -enable-kvm -m 256 -nographic -nodefaults
	-no-user-config -serial stdio -no-reboot -device isa-debug-exit,iobase=0xf4
	-kernel "$OUT/stub.elf")
cv=(build/cvisor run --kernel "$OUT/stub.elf" --memory 256M)

# warm the page cache for both binaries
"${cv[@]}" >/dev/null 2>&1 || true
"${qemu[@]}" >/dev/null 2>&1 || true

c=$("$OUT/runstat" -n "$RUNS" -- "${cv[@]}")
q=$("$OUT/runstat" -n "$RUNS" -- "${qemu[@]}" 2>/dev/null)
echo "cvisor: $c"
echo "qemu:   $q (nonzero exits are isa-debug-exit's status 1)"
get() { sed -nE "s/.*$1=([0-9.]+).*/\1/p" <<<"$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo "(a) VMM floor wall:  cvisor $(get wall_ms "$c") ms, qemu $(get wall_ms "$q") ms, ratio $(ratio "$(get wall_ms "$c")" "$(get wall_ms "$q")")"
echo "(a) VMM floor RSS:   cvisor $(get maxrss_kib "$c") KiB, qemu $(get maxrss_kib "$q") KiB, ratio $(ratio "$(get maxrss_kib "$c")" "$(get maxrss_kib "$q")")"
echo "(b) first byte:      cvisor $(get first_byte_ms "$c") ms, qemu $(get first_byte_ms "$q") ms, ratio $(ratio "$(get first_byte_ms "$c")" "$(get first_byte_ms "$q")")"
if [ "${SECCOMP:-}" = compare ]; then
	o=$("$OUT/runstat" -n "$RUNS" -- "${cv[@]}" --seccomp off)
	echo "cvisor --seccomp off: $o"
	for k in wall_ms maxrss_kib first_byte_ms; do
		echo "seccomp on/off $k: $(get $k "$c") / $(get $k "$o") = $(ratio "$(get $k "$c")" "$(get $k "$o")")"
	done
fi
if [ "${JAIL:-}" = compare ]; then
	# Unnamed guests: each jail is RUN_DIR/jail/pid-N, removed at its end.
	jrun=$(mktemp -d /tmp/cvisor-bench.XXXXXX)
	j=$(CVISOR_RUN_DIR=$jrun "$OUT/runstat" -n "$RUNS" -- "${cv[@]}" --jail)
	rm -rf "$jrun"
	echo "cvisor --jail: $j"
	for k in wall_ms maxrss_kib first_byte_ms; do
		echo "jail on/off $k: $(get $k "$j") / $(get $k "$c") = $(ratio "$(get $k "$j")" "$(get $k "$c")")"
	done
fi
if [ "${IRQCHIP:-}" = compare ]; then
	p=$("$OUT/runstat" -n "$RUNS" -- "${cv[@]}" --pit off)
	s=$("$OUT/runstat" -n "$RUNS" -- "${cv[@]}" --irqchip split)
	echo "cvisor --pit off: $p"
	echo "cvisor --irqchip split: $s"
	for k in wall_ms first_byte_ms maxrss_kib; do
		echo "irqchip kernel / kernel --pit off / split $k: $(get $k "$c") / $(get $k "$p") / $(get $k "$s")"
	done
	# After the first byte: the stub's exit and cvisor's teardown.
	for r in "kernel:$c" "kernel --pit off:$p" "split:$s"; do
		echo "exit after first byte ($r): $(awk -v w="$(get wall_ms "${r#*:}")" \
			-v f="$(get first_byte_ms "${r#*:}")" 'BEGIN { printf "%.1f", w - f }') ms (${r%%:*})"
	done
	echo "split / qemu wall: $(ratio "$(get wall_ms "$s")" "$(get wall_ms "$q")")"
fi
