#!/usr/bin/env bash
# bench/blk.sh - virtio-blk sequential reads through the device model
# (src/virtio/blk*.c over synthetic guest memory, no KVM) against the host's
# own reads of the same file in the same run, on one core (taskset).
# usage: bench/blk.sh [FILE [MIB]]   (default build/bench/blk.img, 512 MiB)
#
# Rows: buffered = both sides read through the host page cache, which the
# harness fills first, so the figure is the CPU cost per byte of each path
# (the hardest case for the device: no disk time hides its overhead);
# direct = both sides O_DIRECT (the device with --disk ...,direct), so
# neither gains from the cache the other warmed and the figure is the disk.
# qd 1 compares with pread, qd 16 with the host's own io_uring at 16 in
# flight. Target (issue 3): device >= 0.9x host.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=build/bench
FILE=${1:-$OUT/blk.img}
MIB=${2:-512}
CPU=${CPU:-0}
mkdir -p "$OUT"
make -s build/libcvisor.a
gcc -std=c11 -D_GNU_SOURCE -Iinclude -Itests/lib -O2 -g -Wall -Wextra -Werror -o "$OUT/blk" \
	bench/blk.c bench/blkdrv.c tests/lib/vq_driver.c build/libcvisor.a \
	-Wl,-Bstatic -ljson-c -luring -lzstd -lz -Wl,-Bdynamic -lpthread -ldl
echo "bench/blk: $(nproc) CPUs, pinned to CPU $CPU; kernel $(uname -r); $(stat -f -c %T "$(dirname "$FILE")") at $FILE"
taskset -c "$CPU" "$OUT/blk" "$FILE" "$MIB"
