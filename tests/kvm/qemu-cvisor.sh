#!/usr/bin/env bash
# tests/kvm/qemu-cvisor.sh - development aid, not a test: a stand-in for
# `cvisor run` built on QEMU's software emulator (TCG), to check the tiny
# guests and run.sh without the monitor:
#     CVISOR=tests/kvm/qemu-cvisor.sh tests/kvm/run.sh
# Accepts: run --kernel ELF [--cpus N] [--memory SIZE] [--cmdline STR]
#          [--virtio pci|mmio] [--disk PATH[,readonly][,serial=ID]]... [--rng].
# Virtio devices: modern virtio-pci on `-M pc`, or virtio-mmio version 2
# (force-legacy=false) on `-M microvm` at QEMU's own addresses (0xfeb00000
# up) and GSIs, announced on the command line by QEMU itself. microvm has
# no PIIX4: an isa-debug-exit at port 0x604 stands in for PM1a_CNT, and its
# exit status 1 becomes 0.
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
kernel="" cpus=1 mem=64M cmdline="" transport=pci ndisk=0 rng=0
disks=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2 ;;
	--cpus) cpus=$2 ;;
	--memory) mem=$2 ;;
	--cmdline) cmdline=$2 ;;
	--virtio) transport=$2 ;;
	--disk) disks+=("$2") ;;
	--rng) rng=1; shift; continue ;;
	*) echo "qemu-cvisor: unknown option $1" >&2; exit 2 ;;
	esac
	shift 2
done
machine=(-M pc -global PIIX4_PM.s4_val=5)
sfx=-pci opt=,disable-legacy=on
if [ "$transport" = mmio ]; then
	# shellcheck disable=SC2054 # commas inside QEMU option values
	machine=(-M microvm,rtc=on,ioapic2=off,acpi=off -global virtio-mmio.force-legacy=false
		-device isa-debug-exit,iobase=0x604,iosize=2)
	sfx=-device opt=
fi
devs=()
for d in "${disks[@]}"; do
	path=${d%%,*} ro="" serial=""
	case ",$d," in *,readonly,*) ro=,readonly=on ;; esac
	case ",$d" in *,serial=*) serial=${d#*serial=}; serial=,serial=${serial%%,*} ;; esac
	devs+=(-drive "file=$path,if=none,id=disk$ndisk,format=raw$ro"
		-device "virtio-blk$sfx,drive=disk$ndisk$serial$opt")
	ndisk=$((ndisk + 1))
done
[ "$rng" = 1 ] && devs+=(-device "virtio-rng$sfx$opt")
log=$(mktemp /tmp/qemu-cvisor.XXXXXX)
fifo=$log.out
mkfifo "$fifo"
# The console goes through a FIFO to a filter we wait for, so that nothing
# the guest printed just before powering off is lost.
sed -u '1s/^.*Booting from ROM\.\.//' <"$fifo" &
filter=$!
qemu-system-x86_64 -accel tcg "${machine[@]}" -m "$mem" -smp "$cpus,sockets=$cpus" \
	-display none -serial stdio -monitor none -no-reboot \
	-d cpu_reset -D "$log" "${devs[@]}" \
	-kernel "$kernel" -append "$cmdline" </dev/null >"$fifo" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid; wait $filter; rm -f "$log" "$fifo"; exit 143' TERM INT
wait $pid
st=$?
wait $filter
if grep -q 'Triple fault' "$log"; then
	echo "qemu-cvisor: guest triple fault" >&2
	st=3
fi
rm -f "$log" "$fifo"
[ "$transport" = mmio ] && [ "$st" = 1 ] && st=0 # isa-debug-exit: (0x3400 << 1 | 1) & 0xff
exit $st
