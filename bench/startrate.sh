#!/usr/bin/env bash
# bench/startrate.sh BUILD [N]: how fast tiny guests start with many
# already running. Starts N (10000) `BUILD run -d` guests of the idle ELF,
# 4 at a time, --irqchip split, in a private run directory, and prints the
# start rate from 1000 to 2000 running and from N-1000 to N, counted from
# the sockets every 0.1 s. Root: kernel.pid_max is raised for the run and
# put back. All guests are stopped at the end. On a shared host:
#   flock /tmp/cvisor-heavy.lock bench/startrate.sh build/cvisor
set -u
cd "$(dirname "$0")/.."
CV=$(realpath "${1:?usage: bench/startrate.sh BUILD [N]}")
N=${2:-10000}
export CVISOR_RUN_DIR=/tmp/cvisor-startrate.$$
mkdir -p "$CVISOR_RUN_DIR"
pm0=$(cat /proc/sys/kernel/pid_max)
[ "$pm0" -ge $((4 * N + 1000)) ] || echo 4194304 >/proc/sys/kernel/pid_max
cleanup() {
	pgrep -f "$CV run -d --name sp$$-" | xargs -r kill -TERM 2>/dev/null
	for _ in $(seq 90); do pgrep -f "$CV run -d --name sp$$-" >/dev/null || break; sleep 1; done
	pgrep -f "$CV run -d --name sp$$-" | xargs -r kill -9 2>/dev/null
	echo "$pm0" >/proc/sys/kernel/pid_max
	rm -rf "$CVISOR_RUN_DIR"
}
trap cleanup EXIT
count() { ls "$CVISOR_RUN_DIR" | grep -c '\.sock$'; }
seq 1 "$N" | xargs -P 4 -n 8 bash -c 'for k; do "$0" run -d --name "sp'$$'-$k" --kernel build/tests/kvm/idle.elf --memory 16M --irqchip split >/dev/null 2>&1 || echo "guest $k did not start"; done' "$CV" &
starter=$!
out=""
for r in "1000 2000" "$((N - 1000)) $N"; do
	set -- $r
	while [ "$(count)" -lt "$1" ] && kill -0 $starter 2>/dev/null; do sleep 0.1; done
	t0=$(date +%s.%N)
	while [ "$(count)" -lt "$2" ] && kill -0 $starter 2>/dev/null; do sleep 0.1; done
	t1=$(date +%s.%N)
	out="$out $1-$2: $(echo "($(count) - $1) / ($t1 - $t0)" | bc)/s;"
done
wait $starter
echo "$(basename "$CV"):$out load $(cut -d' ' -f1 /proc/loadavg)"
