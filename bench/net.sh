#!/usr/bin/env bash
# bench/net.sh - virtio-net host-side packet path: 64-byte frames through
# the tap backend without vhost, the device model's transmit path against a
# plain loop writing the same frames to the same tap, in the same run, on
# one core (taskset). Needs root (creates the tap; deleted on exit).
# usage: bench/net.sh [FRAMES]   (default 1000000)
# Target (issue 3): device >= 0.8x plain.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=build/bench
FRAMES=${1:-1000000}
CPU=${CPU:-0}
TAP=${TAP:-cvbench$$}
TAP=${TAP:0:15}
mkdir -p "$OUT"
make -s build/libcvisor.a
gcc -std=c11 -D_GNU_SOURCE -Iinclude -Itests/lib -O2 -g -Wall -Wextra -Werror -o "$OUT/net" \
	bench/net.c tests/lib/vq_driver.c build/libcvisor.a \
	-Wl,-Bstatic -ljson-c -luring -lzstd -lz -Wl,-Bdynamic -lpthread -ldl
if [ "$(id -u)" != 0 ]; then
	echo "bench/net: needs root to create a tap device" >&2
	exit 2
fi
ip tuntap add dev "$TAP" mode tap
trap 'ip link del "$TAP" 2>/dev/null || true' EXIT
ip link set "$TAP" up
echo "bench/net: $(nproc) CPUs, pinned to CPU $CPU; kernel $(uname -r); tap $TAP; /dev/vhost-net $([ -e /dev/vhost-net ] && echo present || echo absent)"
taskset -c "$CPU" "$OUT/net" "$TAP" "$FRAMES"
