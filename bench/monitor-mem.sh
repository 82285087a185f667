#!/usr/bin/env bash
# bench/monitor-mem.sh - what an idle tiny guest's monitor costs the host:
# N detached guests (tests/kvm/guests idle.elf, --memory 32M) started with
# the cvisor binary BIN, then after 2 s each monitor's /proc/PID/smaps_rollup
# (Rss, Pss, Pss_Anon) and its libssl/libcrypto mappings; the guests are
# killed at the end. Compare two builds by running it once with each.
# usage: bench/monitor-mem.sh [BIN] [N]   (default build/cvisor 3; make tiny first)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/cvisor}
N=${2:-3}
GUEST=build/tests/kvm/idle.elf
[ -f "$GUEST" ] || { echo "$GUEST missing (run make tiny)" >&2; exit 2; }
export CVISOR_RUN_DIR
CVISOR_RUN_DIR=$(mktemp -d /tmp/cvisor-mem.XXXXXX)
names=()
cleanup() {
	for n in "${names[@]}"; do "$BIN" kill "$n" >/dev/null 2>&1 || true; done
	rm -rf "$CVISOR_RUN_DIR"
}
trap cleanup EXIT
for i in $(seq "$N"); do
	names+=("mem$$-$i")
	"$BIN" run -d --name "mem$$-$i" --kernel "$GUEST" --memory 32M
done
sleep 2
echo "$BIN ($(ldd "$BIN" | grep -Ec 'libssl|libcrypto') of libssl/libcrypto linked)"
for n in "${names[@]}"; do
	pid=$("$BIN" info "$n" --json | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
	awk -v n="$n" -v ssl="$(grep -Ec 'libssl|libcrypto' "/proc/$pid/maps" || true)" '
		/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } /^Pss_Anon:/ { a = $2 }
		END { printf "%s: Rss %d KiB, Pss %d KiB, Pss_Anon %d KiB, ssl mappings %d\n", n, r, p, a, ssl }' \
		"/proc/$pid/smaps_rollup"
done
