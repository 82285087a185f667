#!/usr/bin/env bash
# bench/density.sh - N guests from one snapshot (`cvisor restore --count N`):
# how fast they start and what each costs the host. The guest is the clone
# tiny guest (tests/kvm/guests/clone.c, 16 MiB, a vsock and with NET=user
# a --net user device), booted once and saved while it idles: after the
# restore it prints its new CID once (on the vsock transport reset) and
# then sleeps in HLT (tick_ms=60000, one timer tick a minute).
# For each N it reports:
#   restore     the time `cvisor restore --count N` took to return (all run)
#   first out   from starting it to the first clone's first serial output
#               after the restore (its log's mtime: nothing else is written)
#   last out    the same for the last clone, and guests/s = N / that
#   MiB/guest   the drop of MemAvailable with the N running, over N (KVM's
#               kernel memory included), other processes' anonymous memory
#               aside (AnonPages' change beyond the monitors' own)
#   PSS KiB     the monitors' mean PSS (smaps_rollup)
#   ls s        `cvisor ls` with the N running
# Then all are killed and the next N starts from a host without them.
# CVISOR=PATH times another build of cvisor; IRQCHIP=split boots the
# template (and so every clone) with --irqchip split (no PIC, IOAPIC or PIT
# in KVM). Run it under the heavy-run
# lock on a shared host:
#   flock /tmp/cvisor-heavy.lock bench/density.sh [N...]   (default 1 10 100 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
NS=${*:-1 10 100 1000}
NET=${NET:-user}
IRQCHIP=${IRQCHIP:-kernel}
OUT=build/bench/density
rm -rf "$OUT"
mkdir -p "$OUT/run"
make -s build/cvisor tiny
export CVISOR_RUN_DIR=$PWD/$OUT/run
CV=${CVISOR:-$PWD/build/cvisor} # another build to compare
TPL=dens-$$
net=()
[ "$NET" = user ] && net=(--net user)

cleanup() {
	local s
	for s in "$CVISOR_RUN_DIR"/*.sock; do
		[ -e "$s" ] && basename "$s" .sock
	done | xargs -r -P 32 -n 16 sh -c 'for n; do "$0" kill "$n" >/dev/null 2>&1; done' "$CV"
}
trap cleanup EXIT

meminfo() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }

"$CV" run -d --name "$TPL" --kernel build/tests/kvm/clone.elf --memory 16M \
	--vsock "3,uds=$PWD/$OUT/v" "${net[@]}" --irqchip "$IRQCHIP" --cmdline tick_ms=60000
for i in $(seq 100); do
	grep -q "^clone: ready" "$CVISOR_RUN_DIR/$TPL.log" && break
	sleep 0.1
done
"$CV" save "$TPL" "$OUT/snap"

printf '# %s, %s, load %s, NET=%s\n' "$(date -u '+%F %R UTC')" "$(uname -r)" \
	"$(cut -d' ' -f1-3 /proc/loadavg)" "$NET"
printf '| N | restore | first out | last out | guests/s | MiB/guest | PSS KiB | ls s |\n'
printf '| --- | --- | --- | --- | --- | --- | --- | --- |\n'
cid=1000
for n in $NS; do
	base=d$n
	sync
	mem0=$(meminfo MemAvailable)
	anon0=$(meminfo AnonPages)
	t0=$(date +%s.%N)
	"$CV" restore "$OUT/snap" --count "$n" --cid "$cid" --name "$base" -d
	t1=$(date +%s.%N)
	cid=$((cid + n))
	for i in $(seq 1200); do
		got=$(grep -l "^clone: reset" "$CVISOR_RUN_DIR/$base"-*.log 2>/dev/null | wc -l)
		[ "$got" -ge "$n" ] && break
		sleep 0.05
	done
	[ "$got" -ge "$n" ] || echo "# only $got of $n clones printed" >&2
	sleep 1 # let the last monitors settle before memory is read
	mem1=$(meminfo MemAvailable)
	anon1=$(meminfo AnonPages)
	pss=0 anon_own=0
	pids=$("$CV" ls --json | grep -o "\"name\":\"$base-[0-9]*\",\"pid\":[0-9]*" | sed 's/.*://')
	for p in $pids; do
		read -r v a < <(awk '/^Pss:/ { p = $2 } /^Anonymous:/ { a = $2 } END { print p, a }' \
			"/proc/$p/smaps_rollup")
		pss=$((pss + v))
		anon_own=$((anon_own + a))
	done
	tls0=$(date +%s.%N)
	"$CV" ls >/dev/null
	tls1=$(date +%s.%N)
	read -r first last < <(stat -c %.9Y "$CVISOR_RUN_DIR/$base"-*.log | sort -n |
		awk 'NR == 1 { f = $1 } { l = $1 } END { print f, l }')
	awk -v n="$n" -v t0="$t0" -v t1="$t1" -v first="$first" -v last="$last" -v m0="$mem0" \
		-v m1="$mem1" -v a0="$anon0" -v a1="$anon1" -v own="$anon_own" -v pss="$pss" \
		-v l0="$tls0" -v l1="$tls1" '
		BEGIN {
			others = (a1 - a0) - own
			printf "| %d | %.0f ms | %.0f ms | %.0f ms | %.0f | %.2f | %.0f | %.2f |\n",
				n, (t1 - t0) * 1000, (first - t0) * 1000, (last - t0) * 1000,
				n / (last - t0), (m0 - m1 - others) / 1024 / n, pss / n, l1 - l0
		}'
	seq -f "$base-%g" 1 "$n" | xargs -P 32 -n 16 sh -c 'for x; do "$0" kill "$x" >/dev/null 2>&1; done' "$CV"
	for i in $(seq 100); do
		[ -z "$(ls "$CVISOR_RUN_DIR" | grep "^$base-.*\.sock$")" ] && break
		sleep 0.1
	done
	sleep 3 # the kernel frees the VMs' memory a little after
done
