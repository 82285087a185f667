#!/usr/bin/env bash
# bench/guest-io.sh - disk and network throughput as a Linux guest's own
# tools measure them, against the host's own tools on the same resource,
# measured in the same run:
#   fio:    sequential write then read of SIZE MiB with BS blocks, O_DIRECT,
#           psync, on a raw image: in the guest on virtio-blk (pci), and on
#           the host on the same file;
#   iperf3: guest to host over a tap in a network namespace (10 s), and the
#           host's own iperf3 over the namespace's veth, the path's limit.
# Prints each figure and the guest/host ratio. Needs root, make, make guest.
# usage: bench/guest-io.sh [SIZE_MIB] [BS]
set -uo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-64}
BS=${2:-1M}
. tests/lib.sh
. tests/guest.sh
G_SUITE=bench-guest-io
ns=cvb$$
cleanup() {
	g_cleanup
	ip -n "$ns" link del cvtap0 2>/dev/null
	ip link del "cvv$$" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	t_cleanup
}
trap cleanup EXIT
g_kit bench-guest-io
img=$T_TMP/fio.img
truncate -s $((SIZE * 2))M "$img"

# fio_bw RW: "MB/s" from fio's group line (its own unit: 1 MB = 10^6 B).
fio_bw() { sed -nE "s/.*$1: bw=[^(]*\(([0-9.]+)([kMG])B\/s\).*/\1 \2/p" | awk '
	{ v = $1; if ($2 == "k") v /= 1000; if ($2 == "G") v *= 1000; printf "%.1f", v }'; }
fio_args="--bs=$BS --size=${SIZE}M --direct=1 --ioengine=psync --numjobs=1"

# ---- host ----
hw=$(fio --name=w --filename="$img" --rw=write $fio_args 2>&1 | fio_bw WRITE)
hr=$(fio --name=r --filename="$img" --rw=read $fio_args 2>&1 | fio_bw READ)

# ---- network namespace, tap, veth ----
ip netns add "$ns" && ip -n "$ns" link set lo up &&
	ip -n "$ns" tuntap add dev cvtap0 mode tap vnet_hdr &&
	ip -n "$ns" addr add 192.168.78.1/24 dev cvtap0 && ip -n "$ns" link set cvtap0 up &&
	ip link add "cvv$$" type veth peer name cvvp netns "$ns" &&
	ip addr add 192.168.79.2/24 dev "cvv$$" && ip link set "cvv$$" up &&
	ip -n "$ns" addr add 192.168.79.1/24 dev cvvp && ip -n "$ns" link set cvvp up || {
	echo "guest-io: cannot set up the namespace" >&2
	exit 1
}
ip netns exec "$ns" iperf3 -s -p 5201 >/dev/null 2>&1 &
T_PIDS+=("$!")
disown
sleep 1
host_net=$(iperf3 -c 192.168.79.1 -p 5201 -t 10 -f m 2>/dev/null |
	sed -nE 's/.* ([0-9.]+) Mbits\/sec.*receiver$/\1/p')

# ---- guest ----
g_start g "$BOOT_TIMEOUT" ip netns exec "$ns" build/cvisor run --kernel "$KERNEL" \
	--initrd "$INITRD" --memory 256M --cpus 2 --disk "$TOOLS,readonly,serial=cvtools" \
	--disk "$img" --net tap=cvtap0 --cmdline "quiet cvisor.shell=1" || {
	echo "guest-io: the guest did not reach its shell" >&2
	exit 1
}
g_run g 900 "fio --name=w --filename=/dev/vdb --rw=write $fio_args 2>&1 | grep WRITE:"
gw=$(fio_bw WRITE <<<"$G_OUT")
g_run g 900 "fio --name=r --filename=/dev/vdb --rw=read $fio_args 2>&1 | grep READ:"
gr=$(fio_bw READ <<<"$G_OUT")
g_run g 60 'ip addr add 192.168.78.2/24 dev eth0 && ip link set eth0 up'
g_run g 300 'iperf3 -c 192.168.78.1 -p 5201 -t 10 -f m 2>&1 | grep receiver'
guest_net=$(sed -nE 's/.* ([0-9.]+) Mbits\/sec.*receiver$/\1/p' <<<"$G_OUT")
g_type g poweroff
g_wait_exit g 120

ratio() { [ -n "$1" ] && [ -n "$2" ] && echo "scale=4; $1 / $2" | bc || echo "?"; }
echo "fio seq write $BS x ${SIZE} MiB, O_DIRECT: guest ${gw:-?} MB/s, host ${hw:-?} MB/s, ratio $(ratio "$gw" "$hw")"
echo "fio seq read  $BS x ${SIZE} MiB, O_DIRECT: guest ${gr:-?} MB/s, host ${hr:-?} MB/s, ratio $(ratio "$gr" "$hr")"
echo "iperf3 10 s: guest to host over tap ${guest_net:-?} Mbit/s, host over veth ${host_net:-?} Mbit/s, ratio $(ratio "$guest_net" "$host_net")"
