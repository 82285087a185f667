#!/usr/bin/env bash
# bench/scale.sh - linear scaling: N CPU-bound guests (tests/kvm/guests/
# burn.c, one vCPU each) on this host's cores, under cvisor and then under
# QEMU (-M microvm, KVM) in the same run, for N = 1, 2, 4, ... MAX.
#
# Work is what the guests report: burn prints "burn: K" after every ITERS
# loop iterations, so a guest's rate is the growth of its last K over a
# window. For each N it prints the total rate, that total against the
# total at N = (host CPUs), and the slowest and fastest guest against the
# fair share (total / N). Then (cvisor only) six guests with --cpu-weight
# 100, 100, 200, 200, 400, 400 on the same cores: the shares of the 200s
# and 400s against the 100s, ideally 2 and 4.
#
# usage: bench/scale.sh [MAX] (default 64; the window grows with N so a
# slow guest still reports some twenty counts)
set -euo pipefail
cd "$(dirname "$0")/.."
MAX=${1:-64}
ITERS=${ITERS:-5000}
make -s build/cvisor tiny
BURN=build/tests/kvm/burn.elf
CPUS=$(nproc)
RUN=$(mktemp -d /tmp/cvisor-scale.XXXXXX)
export CVISOR_RUN_DIR=$RUN

# cleanup: every guest of this run, found by its socket or its log name
# (the runs below are in subshells).
cleanup() {
	local s
	for s in "$RUN"/*.sock; do
		[ -e "$s" ] || continue
		s=${s##*/}
		timeout 10 build/cvisor kill "${s%.sock}" >/dev/null 2>&1 || true
	done
	pkill -f "serial file:$RUN/" 2>/dev/null || true
	for _ in $(seq 100); do pgrep -f "serial file:$RUN/" >/dev/null || break; sleep 0.1; done
}
trap 'cleanup; rm -rf "$RUN"' EXIT

# last LOG: the last count the guest printed in a whole line, 0 before
# its first (a line being written is not read: "burn: 4" of 45).
last() {
	local s
	s=$(tail -c 4096 "$1" 2>/dev/null; echo .)
	s=${s%.}
	s=${s%$'\n'*}
	{ grep -a -o '^burn: [0-9]*' <<<"$s" || true; } | awk '{ n = $2 } END { print n + 0 }'
}

# started LOG...: wait (at most 60 s) until every log has a count.
started() {
	local f t=0
	for f in "$@"; do
		until [ "$(last "$f")" -gt 0 ]; do
			[ $t -lt 600 ] || { echo "scale: $f printed no count in 60 s" >&2; exit 1; }
			sleep 0.1
			t=$((t + 1))
		done
	done
}

# measure W LOG...: each guest's rate (counts per second) over W seconds,
# one per line.
measure() {
	local w=$1 f
	shift
	local -a a b
	sleep 1
	for f in "$@"; do a+=("$(last "$f")"); done
	local t0=$(date +%s.%N)
	sleep "$w"
	for f in "$@"; do b+=("$(last "$f")"); done
	local t1=$(date +%s.%N)
	for i in "${!a[@]}"; do
		awk -v a="${a[$i]}" -v b="${b[$i]}" -v t0="$t0" -v t1="$t1" \
			'BEGIN { printf "%.3f\n", (b - a) / (t1 - t0) }'
	done
}

# summary RATES: "total T, slowest S x fair, fastest F x fair".
summary() {
	awk '{ r[NR] = $1; s += $1 } END {
		fair = s / NR; lo = hi = r[1]
		for (i = 1; i <= NR; i++) { if (r[i] < lo) lo = r[i]; if (r[i] > hi) hi = r[i] }
		printf "%.2f %.3f %.3f\n", s, lo / fair, hi / fair }'
}

# cvisor_run N [WEIGHTS...]: N burn guests; a weight each if given.
cvisor_run() {
	local n=$1 i logs=()
	shift
	for ((i = 1; i <= n; i++)); do
		local name=scale-$i w=()
		[ $# -ge $i ] && w=(--cpu-weight "${!i}")
		build/cvisor run -d --name "$name" --kernel "$BURN" --memory 16M --pit off \
			--cmdline "iters=$ITERS" "${w[@]}" >/dev/null
		logs+=("$RUN/$name.log")
	done
	started "${logs[@]}"
	measure "$W" "${logs[@]}"
	cleanup
}

qemu_run() {
	local n=$1 i logs=()
	for ((i = 1; i <= n; i++)); do
		local log=$RUN/q$i.log
		: >"$log"
		qemu-system-x86_64 -M microvm,pit=off -enable-kvm -m 16 -nographic -nodefaults \
			-no-user-config -serial "file:$log" -kernel "$BURN" \
			-append "iters=$ITERS" 2>/dev/null &
		logs+=("$log")
	done
	started "${logs[@]}"
	measure "$W" "${logs[@]}"
	cleanup
}

echo "# scale: $CPUS host CPUs, burn iters=$ITERS, $(date -u +%F)"
printf "%4s %4s | %10s %8s %8s %8s | %10s %8s %8s %8s\n" N win "cv total" "x@$CPUS" slowest fastest \
	"qemu total" "x@$CPUS" slowest fastest
cref=
qref=
for ((n = 1; n <= MAX; n *= 2)); do
	W=$((n / 2 > 5 ? n / 2 : 5))
	read -r ct cl ch < <(cvisor_run "$n" | summary)
	read -r qt ql qh < <(qemu_run "$n" | summary)
	if [ "$n" = "$CPUS" ]; then
		cref=$ct
		qref=$qt
	fi
	printf "%4d %3ds | %10s %8s %8s %8s | %10s %8s %8s %8s\n" "$n" "$W" "$ct" \
		"$([ -n "$cref" ] && awk -v a="$ct" -v b="$cref" 'BEGIN { printf "%.3f", a / b }' || echo -)" \
		"$cl" "$ch" "$qt" \
		"$([ -n "$qref" ] && awk -v a="$qt" -v b="$qref" 'BEGIN { printf "%.3f", a / b }' || echo -)" \
		"$ql" "$qh"
done

W=10
mapfile -t r < <(cvisor_run 6 100 100 200 200 400 400)
awk -v a="${r[0]}" -v b="${r[1]}" -v c="${r[2]}" -v d="${r[3]}" -v e="${r[4]}" -v f="${r[5]}" 'BEGIN {
	one = (a + b) / 2
	printf "weights 100:200:400 (cvisor, 6 guests, %ds): rates %.2f %.2f %.2f %.2f %.2f %.2f; 200/100 = %.2f (ideal 2), 400/100 = %.2f (ideal 4)\n",
		10, a, b, c, d, e, f, (c + d) / 2 / one, (e + f) / 2 / one }'
