#!/usr/bin/env bash
# bench/migrate-qcow2.sh - migrate --with-storage of a guest on a qcow2
# chain (1 GiB virtual; 96 MiB of random data in a qcow2 base, 8 MiB in the
# overlay) against the same content as a sparse raw image, in the same
# run: the time and the bytes sent (cvisor migrate --json), then the
# target's qcow2 checked (qemu-img check) and its content compared with
# the raw copy's past the 32 KiB the blkcount guest rewrites.
# usage: bench/migrate-qcow2.sh   (needs qemu-utils; run under the heavy lock)
set -euo pipefail
cd "$(dirname "$0")/.."
C=$PWD/build/cvisor G=$PWD/build/tests/kvm/blkcount.elf
B=$(mktemp -d /tmp/cvisor-migq-XXXXXX)
export CVISOR_RUN_DIR=$B/run
# shellcheck disable=SC2154 # n is the loop's, inside the quotes
trap 'for n in btqcow2 btraw bsqcow2 bsraw; do "$C" kill $n >/dev/null 2>&1 || true; done; rm -rf "$B"' EXIT
mkdir -p "$B/dq" "$B/dr" "$B/run"
truncate -s 1G "$B/base.raw"
for i in $(seq 0 11); do
	dd if=/dev/urandom of="$B/base.raw" bs=1M count=8 seek=$((i * 80)) conv=notrunc status=none
done
qemu-img convert -O qcow2 "$B/base.raw" "$B/base.qcow2"
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$B/top.qcow2" 1G
qemu-io -f qcow2 -c "write -P 0x61 100M 4M" -c "write -P 0x62 500M 4M" "$B/top.qcow2" >/dev/null
qemu-img convert -O raw "$B/top.qcow2" "$B/same.raw"
port=$((24000 + $$ % 2000))
for kind in qcow2 raw; do
	port=$((port + 1))
	if [ $kind = qcow2 ]; then disk="$B/top.qcow2,format=qcow2" dst=$B/dq; else disk="$B/same.raw,format=raw" dst=$B/dr; fi
	"$C" run -d --name bt$kind --incoming 127.0.0.1:$port --storage-dir "$dst"
	"$C" run -d --name bs$kind --kernel "$G" --memory 64M --disk "$disk"
	sleep 1
	printf '%s: ' $kind
	"$C" migrate bs$kind 127.0.0.1:$port --with-storage --json | tail -n 1 |
		sed 's/.*"total_ms":\([0-9.]*\).*"bytes":\([0-9]*\).*"disk_bytes":\([0-9]*\).*/total \1 ms, \2 bytes sent (disk \3)/'
	"$C" kill bt$kind >/dev/null
done
qemu-img check -q "$B/dq/top.qcow2" && echo "target qcow2: check clean"
qemu-img convert -O raw "$B/dq/top.qcow2" "$B/dq.raw"
cmp -i 32768 "$B/dq.raw" "$B/same.raw" && echo "target qcow2: the chain's content"
