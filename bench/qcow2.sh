#!/usr/bin/env bash
# bench/qcow2.sh - virtio-blk on a qcow2 image against the same device on
# a raw image with the same content, in the same run, through the device
# model (bench/qcow2.c; no KVM), on one core (taskset).
# usage: bench/qcow2.sh [DIR [MIB]]   (default build/bench, 256 MiB)
# Target (issue 14): qcow2 >= 0.9x raw for sequential reads of allocated data.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=build/bench
DIR=${1:-$OUT}
MIB=${2:-256}
CPU=${CPU:-0}
mkdir -p "$OUT" "$DIR"
make -s build/libcvisor.a
gcc -std=c11 -D_GNU_SOURCE -Iinclude -Itests/lib -O2 -g -Wall -Wextra -Werror -o "$OUT/qcow2" \
	bench/qcow2.c bench/blkdrv.c tests/lib/vq_driver.c build/libcvisor.a \
	-Wl,-Bstatic -ljson-c -luring -lzstd -lz -Wl,-Bdynamic -lpthread -ldl
echo "bench/qcow2: $(nproc) CPUs, pinned to CPU $CPU; kernel $(uname -r); $(stat -f -c %T "$DIR") at $DIR; $(qemu-img --version | head -n 1)"
taskset -c "$CPU" "$OUT/qcow2" "$DIR" "$MIB"
