#!/usr/bin/env bash
# tests/kvm/qemu-cvisor.sh - development aid, not a test: a stand-in for
# `cvisor run` built on QEMU's software emulator (TCG), to check the tiny
# guests and run.sh without the monitor:
#     CVISOR=tests/kvm/qemu-cvisor.sh tests/kvm/run.sh
# Accepts: run --kernel ELF [--cpus N] [--memory SIZE] [--cmdline STR].
# Mimics cvisor's exit statuses: 0 on poweroff/reset, 3 (and a stderr line)
# on a triple fault, 143 on SIGTERM.
# Known differences from the cvisor PC, so these cases fail here by design:
#   acpi_reset - QEMU's PIIX4 has no reset register at port 0x606;
#   unclaimed  - QEMU reads unassigned MMIO as 0, not all ones.
# QEMU's PIIX4 only powers off for SLP_TYP 0 or its S4 value, so the S4
# value is set to 5, the S5 type of cvisor's DSDT. -smp uses one socket per
# cpu because SeaBIOS lists only one MP-table entry per package.
set -u
[ "${1:-}" = run ] || { echo "usage: $0 run --kernel ELF [--cpus N] [--memory SIZE] [--cmdline STR]" >&2; exit 2; }
shift
kernel="" cpus=1 mem=64M cmdline=""
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2 ;;
	--cpus) cpus=$2 ;;
	--memory) mem=$2 ;;
	--cmdline) cmdline=$2 ;;
	*) echo "qemu-cvisor: unknown option $1" >&2; exit 2 ;;
	esac
	shift 2
done
log=$(mktemp /tmp/qemu-cvisor.XXXXXX)
qemu-system-x86_64 -accel tcg -M pc -m "$mem" -smp "$cpus,sockets=$cpus" \
	-display none -serial stdio -monitor none -no-reboot \
	-global PIIX4_PM.s4_val=5 -d cpu_reset -D "$log" \
	-kernel "$kernel" -append "$cmdline" </dev/null > >(sed -u '1s/^.*Booting from ROM\.\.//') &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid; rm -f "$log"; exit 143' TERM INT
wait $pid
st=$?
if grep -q 'Triple fault' "$log"; then
	echo "qemu-cvisor: guest triple fault" >&2
	st=3
fi
rm -f "$log"
exit $st
