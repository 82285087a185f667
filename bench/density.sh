#!/usr/bin/env bash
# bench/density.sh - how many idle guests this host carries and what each
# costs, for cvisor and, in the same run, QEMU with the same tiny guest.
# Kinds of guest (KINDS, default "tiny clone qemu"):
#   tiny   `cvisor run -d` of the idle guest (tests/kvm/guests/idle.S,
#          --memory 16M: prints "idle" once, then cli; hlt for good), PAR
#          (4) starts at a time
#   clone  `cvisor restore SNAP --count B -d` of the clone guest
#          (tests/kvm/guests/clone.c, 16 MiB, a vsock and with NET=user a
#          --net user device), booted once and saved while it idles; after
#          the restore each prints its new CID once and sleeps in HLT (one
#          timer tick a minute)
#   linux  `cvisor restore SNAP --count B -d` of the kit's microVM Linux
#          (build/guest/microvm.vmlinux and initramfs.cpio, LINUX_MEM (64M),
#          1 vCPU, no devices but COM1, --cmdline LINUX_CMDLINE: "quiet
#          cvisor.shell=1" and LINUX_ARGS), booted once to its busybox shell
#          (init prints CVISOR-SHELL, then the shell answers a typed line),
#          left LINUX_SETTLE (5) s and saved; the clones share the clone
#          kind's code. Linux prints nothing once idle, so each clone is
#          asked: guest K's console (`cvisor console`) gets the line
#          "p K", and its first output is its shell's answer "@@PK@@ 7K
#          LOC: ..." in its own log (p is a shell function the template
#          defined before the save: `echo @@""P$1@@ $(($1*7)) $(grep LOC
#          /proc/interrupts)`: each character typed costs an idle guest
#          about 20 ms of host CPU here, its interrupt, echo and system
#          calls being emulated kernel code; a 60-character line cost a
#          fresh clone over 1 s). Typed again, once, to those that have
#          not answered in PROBE_WAIT (60 + 2 a guest asked) s, which get
#          30 s more. A clone restored a moment ago answers its first line
#          slowly: its pages are mapped and its shadow page tables built
#          as it touches them (50 clones asked at once right after their
#          restore answered in 19 to 62 s here, 10 of them 10 s later
#          within 2 s). All N are asked
#          up to PROBE_ALL (100), above it PROBE_ALL of them spread evenly
#          (the first and the last among them). "answered" counts the
#          clones whose own log holds their own answer: alive, and each a
#          shell of its own.
#   qemu   qemu-system-x86_64 -M microvm, KVM, -m 16, the same idle ELF
#          (PVH), -daemonize, PAR at a time; only for N <= QEMU_MAX (100)
# Guests start in batches of BATCH (500); before each, MemAvailable must
# stay above MEM_FLOOR_MIB (4096) once the batch is added (at the MiB per
# guest measured so far), else the kind stops there and that N is recorded
# as the largest that fits, memory its limit. A guest that cannot start
# stops the kind too, with cvisor's line: "cannot start guest K: ...".
# For each N and kind one row:
#   started     guests running (N, or fewer with what stopped it)
#   guests/s    started / the time from the first start to the last
#               guest's first serial output (seen by polling the logs, 50 ms)
#   first, last the first guest's first output (its log's mtime) and the
#               last's, from the start (linux: the first answer seen, and
#               the time all asked had answered; polled, 0.5 s)
#   MiB/guest   the drop of MemAvailable over the guests (KVM's kernel
#               memory, page tables, cgroups included), other processes'
#               anonymous memory aside (AnonPages' change beyond the
#               monitors' own)
#   PSS KiB     the monitors' mean PSS (smaps_rollup)
#   CPU idle    the host CPU the idle guests burn, % of one CPU: the busy
#               time of /proc/stat over CPU_WIN (10) s with them, less the
#               same window just before they started (so other work on a
#               shared host moves it); and the monitors' own utime+stime
#               (/proc/PID/stat, all their threads)
#   ls, top, info  `cvisor ls`, `cvisor top --once` and `cvisor info` of
#               one guest with the N running, seconds
#   probe s     (linux) a console round trip to guest 1 after the CPU
#               window: the line typed (as above) to its answer in the log
#               (polled, 50 ms)
#   answered    (linux) guests whose shell answered their own line, of
#               those asked; and
#               guest 1's timer interrupts a second (LOC of its
#               /proc/interrupts, between a probe before the CPU window
#               and the one after)
#   left        after all are stopped (SIGTERM: each tears down as `cvisor
#               kill` does): monitors, sockets, locks, cgroups still there
#               (none expected), and how much of the memory came back
# The linux kind stops growing N at its first limit, named in a comment
# line with its measurement: memory (the floor above), CPU (the idle
# guests' monitors, whose time includes KVM's and its emulation of the
# guest kernel, over CPU_MAX (90) % of all CPUs: the host's busy time is
# shown beside it, but other work on a shared host moves that), a probe
# slower than PROBE_MAX (10) s, or a clone that did not answer.
# Host settings: N guests need about 4 N tasks (monitor, vCPU, KVM's
# NX-recovery thread, its PIT thread). With HOST=set (the default, root
# only) kernel.pid_max is raised to 4194304 for the run and put back at
# the end when it is too low; anything else too low is said and left.
# CVISOR=PATH times another build, LS_ALSO="PATH..." other builds' `ls`
# beside this one's with the same guests; IRQCHIP=split boots the guests with
# --irqchip split (no PIC, IOAPIC or PIT in KVM).
# On a shared host run it under the heavy-run lock:
#   flock /tmp/cvisor-heavy.lock bench/density.sh [N...]   (default 1 10 100 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
NS=${*:-1 10 100 1000}
KINDS=${KINDS:-tiny clone qemu}
NET=${NET:-user}
IRQCHIP=${IRQCHIP:-kernel}
PAR=${PAR:-4}
BATCH=${BATCH:-500}
MEM_FLOOR_MIB=${MEM_FLOOR_MIB:-4096}
CPU_WIN=${CPU_WIN:-10}
QEMU_MAX=${QEMU_MAX:-100}
LINUX_MEM=${LINUX_MEM:-64M}
LINUX_CMDLINE="quiet cvisor.shell=1${LINUX_ARGS:+ $LINUX_ARGS}"
LINUX_SETTLE=${LINUX_SETTLE:-5}
PROBE_MAX=${PROBE_MAX:-10}
PROBE_ALL=${PROBE_ALL:-100}
CPU_MAX=${CPU_MAX:-90}
HOST=${HOST:-set}
OUT=build/bench/density
rm -rf "$OUT"
mkdir -p "$OUT/run" "$OUT/qemu"
make -s build/cvisor tiny
[[ " $KINDS " != *" linux "* ]] || make -s guest >/dev/null
export CVISOR_RUN_DIR=$PWD/$OUT/run
CV=${CVISOR:-$PWD/build/cvisor} # another build to compare
IDLE=$PWD/build/tests/kvm/idle.elf
NCPU=$(nproc)
net=()
[ "$NET" = user ] && net=(--net user)
PIDS=$OUT/pids  # the running kind's monitor pids, one a line
P=d$$ # guest name prefix: cgroups are named after guests, host-wide
pid_max0=""

cleanup() {
	set +e # all of it, whatever fails (errexit and pipefail would stop it)
	[ -z "$pid_max0" ] || echo "$pid_max0" >/proc/sys/kernel/pid_max
	[ -s "$PIDS" ] && xargs -r kill -TERM <"$PIDS" 2>/dev/null
	local s
	for s in "$CVISOR_RUN_DIR"/*.sock; do
		[ -e "$s" ] && basename "$s" .sock
	done | xargs -r -P 8 -n 64 sh -c 'for n; do "$0" kill "$n" >/dev/null 2>&1; done' "$CV"
}
trap cleanup EXIT

meminfo() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
now() { date +%s.%N; }
# "busy total" jiffies of all CPUs (user nice system irq softirq steal)
cpu_jiffies() { awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat; }
# the host's busy time over CPU_WIN s, % of one CPU
host_busy() {
	local b0 t0 b1 t1
	read -r b0 t0 < <(cpu_jiffies)
	sleep "$CPU_WIN"
	read -r b1 t1 < <(cpu_jiffies)
	awk -v b="$((b1 - b0))" -v t="$((t1 - t0))" -v n="$NCPU" 'BEGIN { printf "%.2f", t ? 100 * n * b / t : 0 }'
}
# utime + stime of the pids in $PIDS, in clock ticks
pids_ticks() {
	sed 's|.*|/proc/&/stat|' "$PIDS" | xargs -r cat 2>/dev/null |
		awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { print t + 0 }'
}
# PSS and Anonymous of the pids in $PIDS, summed, KiB
pids_mem() {
	sed 's|.*|/proc/&/smaps_rollup|' "$PIDS" | xargs -r cat 2>/dev/null |
		awk '/^Pss:/ { p += $2 } /^Anonymous:/ { a += $2 } END { print p + 0, a + 0 }'
}

# Host settings for the largest N (4 tasks a guest, and the host's own).
max_n=0
for n in $NS; do [ "$n" -gt "$max_n" ] && max_n=$n; done
need=$((4 * max_n + 2000))
settings=""
if [ "$(cat /proc/sys/kernel/pid_max)" -lt "$need" ]; then
	if [ "$HOST" = set ] && [ -w /proc/sys/kernel/pid_max ]; then
		pid_max0=$(cat /proc/sys/kernel/pid_max)
		echo 4194304 >/proc/sys/kernel/pid_max
		settings+=" kernel.pid_max $pid_max0 -> 4194304 for the run;"
	else
		settings+=" kernel.pid_max $(cat /proc/sys/kernel/pid_max) < $need: the tasks will run out;"
	fi
fi
[ "$(cat /proc/sys/kernel/threads-max)" -ge "$need" ] ||
	settings+=" kernel.threads-max $(cat /proc/sys/kernel/threads-max) < $need;"
if [ "$(id -u)" != 0 ] && [ "$(ulimit -u)" != unlimited ] && [ "$(ulimit -u)" -lt "$need" ]; then
	settings+=" ulimit -u $(ulimit -u) < $need;"
fi

if [[ " $KINDS " == *" clone "* ]]; then
	TPL=dens-$$
	"$CV" run -d --name "$TPL" --kernel build/tests/kvm/clone.elf --memory 16M \
		--vsock "3,uds=$PWD/$OUT/v" "${net[@]}" --irqchip "$IRQCHIP" --cmdline tick_ms=60000
	for i in $(seq 100); do
		grep -q "^clone: ready" "$CVISOR_RUN_DIR/$TPL.log" && break
		sleep 0.1
	done
	"$CV" save "$TPL" "$OUT/snap"
	"$CV" kill "$TPL" >/dev/null 2>&1 || true # save may have ended it
fi

# probe NAME TOKEN [PREFIX]: type "PREFIXp TOKEN" on NAME's console (the
# linux kind's probe, header), then detach. A line typed at once after
# attaching was lost now and then here (the shell had not taken it): wait
# a little before and after.
probe() {
	{
		sleep 0.2
		printf '%sp %s\n' "${3:-}" "$2"
		sleep 0.2
		printf '\035'
	} | "$CV" console "$1" >/dev/null 2>&1
}
# The shell function p the template defines (so clones have it): each
# character typed costs an idle guest about 20 ms of host CPU here.
# shellcheck disable=SC2016
PDEF='p(){ echo @@""P$1@@ $(($1*7)) $(grep LOC /proc/interrupts);}; '
# lname K: the name of the linux kind's guest K (batch, then its place).
lname() { echo "${P}l-$((($1 - 1) / BATCH))-$((($1 - 1) % BATCH + 1))"; }
# answered: the K of each linux guest whose own log holds its own answer.
answered() {
	# shellcheck disable=SC2046
	{ grep -aoH '@@P[0-9]*@@ [0-9]*' $(logs linux) 2>/dev/null || true; } |
		awk -F'[:@ ]+' -v b="$BATCH" '{
			n = split($1, f, "-"); k = f[n - 1] * b + f[n] + 0
			t = $2; sub(/^P/, "", t)
			if (t == k && $3 == 7 * k) print k
		}' | sort -un
}
# asked N: the linux guests asked to answer, of N (the header)
asked() {
	awk -v n="$1" -v m="$PROBE_ALL" 'BEGIN {
		if (n <= m) { for (k = 1; k <= n; k++) print k; exit }
		for (i = 0; i < m; i++) { k = 1 + int(i * (n - 1) / (m - 1) + 0.5); if (k != last) print k; last = k }
	}'
}
# probe_wait NAME TOKEN LIMIT [PREFIX]: the seconds from typing to TOKEN's answer in
# NAME's log (the 0.2 s before typing taken off), and the answer's LOC
# count; "timeout -" past LIMIT s.
probe_wait() {
	local a t log=$CVISOR_RUN_DIR/$1.log i
	a=$(now)
	probe "$1" "$2" "${4:-}"
	for i in $(seq $(($3 * 20))); do
		if t=$(grep -ao "@@P$2@@ [0-9]* LOC: *[0-9]*" "$log" 2>/dev/null); then
			awk -v a="$a" -v b="$(now)" -v t="${t##* }" 'BEGIN { printf "%.2f %s %.3f\n", b - a - 0.2, t, b }'
			return
		fi
		sleep 0.05
	done
	echo "timeout - -"
}
export -f probe

if [[ " $KINDS " == *" linux "* ]]; then
	LTPL=dens-l$$
	"$CV" run -d --name "$LTPL" --kernel build/guest/microvm.vmlinux \
		--initrd build/guest/initramfs.cpio --memory "$LINUX_MEM" --irqchip "$IRQCHIP" \
		--cmdline "$LINUX_CMDLINE"
	tb=$(now)
	for i in $(seq 1500); do # 300 s: about 25 here
		grep -q "^CVISOR-SHELL" "$CVISOR_RUN_DIR/$LTPL.log" 2>/dev/null && break
		sleep 0.2
	done
	for i in $(seq 12); do # the shell answers (a line typed too early is lost)
		read -r rt _ < <(probe_wait "$LTPL" $((900000 + i)) 5 "$PDEF")
		[ "$rt" = timeout ] || break
	done
	[ "$rt" != timeout ] || { echo "density: the linux template's shell did not answer" >&2; exit 1; }
	echo "# linux template: $LINUX_MEM, --cmdline \"$LINUX_CMDLINE\", its shell answered $(awk -v a="$tb" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s after the start"
	sleep "$LINUX_SETTLE"
	"$CV" save "$LTPL" "$OUT/lsnap" >/dev/null
	"$CV" kill "$LTPL" >/dev/null 2>&1 || true
fi

# start_batch KIND N0 B: start guests N0+1 .. N0+B of KIND. Prints how many
# run; a guest that could not start leaves its line in $OUT/fail.
start_batch() {
	local kind=$1 n0=$2 b=$3 err
	case $kind in
	tiny)
		seq $((n0 + 1)) $((n0 + b)) | xargs -P "$PAR" -n 8 bash -c '
			for k; do
				if ! err=$("$CV" run -d --name "${P}t-$k" --kernel "$IDLE" --memory 16M \
					--irqchip "$IRQCHIP" 2>&1 </dev/null); then
					echo "cannot start guest $k: ${err#cvisor: }" >>"$OUT/fail"
					exit 255
				fi
			done' start 2>/dev/null || true
		;;
	clone | linux)
		local snap=$OUT/snap base=${P}c-$((n0 / BATCH)) cid=(--cid $((1000 + n0)))
		[ "$kind" = clone ] || { snap=$OUT/lsnap base=${P}l-$((n0 / BATCH)) cid=(); }
		if ! err=$("$CV" restore "$snap" --count "$b" "${cid[@]}" --name "$base" -d 2>&1 </dev/null); then
			echo "batch of guests $((n0 + 1))-$((n0 + b)): ${err#cvisor: }" >>"$OUT/fail"
		fi
		;;
	qemu)
		seq $((n0 + 1)) $((n0 + b)) | xargs -P "$PAR" -n 8 bash -c '
			for k; do
				qemu-system-x86_64 -M microvm -enable-kvm -m 16 -nodefaults -no-user-config \
					-display none -serial "file:$OUT/qemu/q-$k.log" -kernel "$IDLE" \
					-daemonize -pidfile "$OUT/qemu/q-$k.pid" 2>"$OUT/qemu/q-$k.err" </dev/null
				if [ ! -s "$OUT/qemu/q-$k.pid" ]; then
					echo "cannot start guest $k: $(grep -v "requested feature" "$OUT/qemu/q-$k.err" | head -1)" >>"$OUT/fail"
					exit 255
				fi
			done' start 2>/dev/null || true
		;;
	esac
}
export CV IDLE IRQCHIP OUT P

# running KIND: how many of the kind's guests run (their sockets or pid
# files: an `ls` after each batch would count in the start rate).
running() {
	case $1 in
	qemu) find "$OUT/qemu" -name '*.pid' | wc -l ;;
	*) find "$CVISOR_RUN_DIR" -name '*.sock' | wc -l ;;
	esac
}

# pids KIND: the pids of the kind's guests into $PIDS.
pids() {
	case $1 in
	qemu) cat "$OUT"/qemu/q-*.pid 2>/dev/null >"$PIDS" || : >"$PIDS" ;;
	*) "$CV" ls --json | grep -o '"pid":[0-9]*' | cut -d: -f2 >"$PIDS" ;;
	esac
}

logs() {
	case $1 in
	tiny) echo "$CVISOR_RUN_DIR/${P}t-"*.log ;;
	clone) echo "$CVISOR_RUN_DIR/${P}c-"*.log ;;
	linux) echo "$CVISOR_RUN_DIR/${P}l-"*.log ;;
	qemu) echo "$OUT"/qemu/q-*.log ;;
	esac
}
# the first output each kind prints
first_line() { case $1 in clone) echo "^clone: reset" ;; *) echo "^idle" ;; esac; }
# one guest `cvisor info` is timed on
info_name() { case $1 in tiny) echo "${P}t-$2" ;; clone) echo "${P}c-0-1" ;; *) lname 1 ;; esac; }

# stop KIND: SIGTERM every guest, then wait (bounded) until none is left.
# Prints what is left (monitors, sockets, locks, cgroups), or "none".
stop_all() {
	local kind=$1 left="" i p
	xargs -r kill -TERM <"$PIDS" 2>/dev/null || true
	for i in $(seq 600); do
		left=$(while read -r p; do kill -0 "$p" 2>/dev/null && echo "$p"; done <"$PIDS" | wc -l)
		[ "$left" = 0 ] && break
		sleep 0.2
	done
	left=$( (
		[ "$left" = 0 ] || echo "$left monitors"
		if [ "$kind" != qemu ]; then
			n=$(find "$CVISOR_RUN_DIR" -name '*.sock' -o -name '*.lock' | wc -l)
			[ "$n" = 0 ] || echo "$n sockets/locks"
			n=$(find /sys/fs/cgroup -maxdepth 6 -type d -path "*/cvisor/$P*" 2>/dev/null | wc -l)
			[ "$n" = 0 ] || echo "$n cgroups"
		fi
		n=$(ps -eo comm= | sed -n 's|^kvm-pit/||p' | grep -cFxf "$PIDS" || true)
		[ "$n" = 0 ] || echo "$n kvm-pit threads"
	) | paste -sd, -)
	echo "${left:-none}"
}

printf '# %s, %s, %s CPUs, %s MiB, load %s; NET=%s IRQCHIP=%s BATCH=%s PAR=%s floor %s MiB\n' \
	"$(date -u '+%F %R UTC')" "$(uname -r)" "$NCPU" "$(($(meminfo MemTotal) / 1024))" \
	"$(cut -d' ' -f1-3 /proc/loadavg)" "$NET" "$IRQCHIP" "$BATCH" "$PAR" "$MEM_FLOOR_MIB"
[ -z "$settings" ] || echo "# host settings:$settings"
printf '| N | kind | started | guests/s | first, last out | MiB/guest | PSS KiB | CPU idle %% (host, monitors) | ls s | top s | info s | probe s | answered | left after stop |\n'
printf '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n'
declare -A limit # a kind that met its limit (linux): no larger N
for n in $NS; do
	for kind in $KINDS; do
		[ "$kind" = qemu ] && [ "$n" -gt "$QEMU_MAX" ] && continue
		[ -z "${limit[$kind]:-}" ] || continue
		rm -f "$OUT/fail" "$OUT"/qemu/*
		sync
		sleep 2 # the last kind's memory comes back a little after
		busy0=$([ "$CPU_WIN" = 0 ] && echo 0 || host_busy)
		mem0=$(meminfo MemAvailable)
		anon0=$(meminfo AnonPages)
		tasks0=$(awk '{ split($4, a, "/"); print a[2] }' /proc/loadavg)
		memcg0=$(awk '$1 == "memory" { print $3 }' /proc/cgroups)
		per=2048 # KiB a guest, until measured
		got=0 why=""
		t0=$(now)
		while [ "$got" -lt "$n" ]; do
			b=$((n - got < BATCH ? n - got : BATCH))
			avail=$(meminfo MemAvailable)
			if [ $((avail - b * per)) -lt $((MEM_FLOOR_MIB * 1024)) ]; then
				why="MemAvailable $((avail / 1024)) MiB: $b more at $((per / 1024)).$((per % 1024 * 10 / 1024)) MiB would cross the $MEM_FLOOR_MIB MiB floor"
				break
			fi
			start_batch "$kind" "$got" "$b"
			got=$(running "$kind")
			[ -s "$OUT/fail" ] && { why=$(head -1 "$OUT/fail"); break; }
			if [ "$got" -gt 0 ]; then
				per=$(((mem0 - $(meminfo MemAvailable)) / got))
				[ "$per" -ge 512 ] || per=512
			fi
		done
		# every started guest's first output (bounded)
		tfirst="" ok=0 nask=0
		if [ "$kind" = linux ]; then # asked for: up to 3 rounds
			asked "$got" >"$OUT/asked"
			nask=$(wc -l <"$OUT/asked")
			for wait in "${PROBE_WAIT:-$((60 + 2 * nask))}" 30; do
				comm -23 <(sort "$OUT/asked") <(answered | sort) | sort -n |
					while read -r k; do echo "$(lname "$k") $k"; done |
					xargs -r -P 16 -n 2 bash -c 'probe "$0" "$1"'
				for i in $(seq $((wait * 2))); do
					ok=$(answered | wc -l)
					[ "$ok" -gt 0 ] && [ -z "$tfirst" ] && tfirst=$(now)
					[ "$ok" -ge "$nask" ] && break 2
					sleep 0.5
				done
			done
		else
			for i in $(seq 1200); do
				# shellcheck disable=SC2046
				out=$(grep -l "$(first_line "$kind")" $(logs "$kind") 2>/dev/null | wc -l)
				[ "$out" -ge "$got" ] && break
				sleep 0.05
			done
		fi
		# when the last first output was seen: a clone's log is written
		# again by its timer (a minute) once a start takes longer
		tall=$(now)
		pids "$kind"
		sleep 1 # let the last monitors settle before memory is read
		mem1=$(meminfo MemAvailable)
		anon1=$(meminfo AnonPages)
		tasks1=$(awk '{ split($4, a, "/"); print a[2] }' /proc/loadavg)
		one=$(head -1 "$PIDS")
		fds=$(ls "/proc/$one/fd" 2>/dev/null | wc -l)
		maps=$(wc -l <"/proc/$one/maps" 2>/dev/null || echo 0)
		read -r pss anon_own < <(pids_mem)
		rtt="-" loc="-"
		[ "$kind" != linux ] || read -r _ loca ta < <(probe_wait "$(lname 1)" $((2000000 + n)) 60)
		ticks0=$(pids_ticks)
		busy1=$([ "$CPU_WIN" = 0 ] && echo 0 || host_busy)
		ticks1=$(pids_ticks)
		if [ "$kind" = linux ]; then
			read -r rtt locb tb < <(probe_wait "$(lname 1)" $((3000000 + n)) 60)
			loc=$(awk -v a="$loca" -v b="$locb" -v ta="$ta" -v tb="$tb" \
				'BEGIN { if (a ~ /^[0-9]+$/ && b ~ /^[0-9]+$/ && tb > ta) printf "%.1f", (b - a) / (tb - ta); else print "-" }')
		fi
		tls="-" ttop="-" tinfo="-" lsalso="" lscpu=""
		if [ "$kind" != qemu ] && [ "$got" -gt 0 ]; then
			read -r j0 _ < <(cpu_jiffies)
			a=$(now)
			"$CV" ls >/dev/null
			b2=$(now)
			read -r j1 _ < <(cpu_jiffies)
			# the host's CPU time while ls ran, ms (monitors woken, ls itself, the rest)
			lscpu=$(((j1 - j0) * 1000 / $(getconf CLK_TCK)))
			"$CV" top --once >/dev/null
			c=$(now)
			"$CV" info "$(info_name "$kind" "$got")" >/dev/null
			d=$(now)
			tls=$(awk -v a="$a" -v b="$b2" 'BEGIN { printf "%.2f", b - a }')
			ttop=$(awk -v a="$b2" -v b="$c" 'BEGIN { printf "%.2f", b - a }')
			tinfo=$(awk -v a="$c" -v b="$d" 'BEGIN { printf "%.3f", b - a }')
			for bin in ${LS_ALSO:-}; do # other builds' ls, same guests, twice each
				for _ in 1 2; do
					a=$(now)
					"$bin" ls >/dev/null 2>&1 || true
					b2=$(now)
					lsalso+=" $(basename "$bin") $(awk -v a="$a" -v b="$b2" 'BEGIN { printf "%.2f", b - a }')"
				done
			done
		fi
		# shellcheck disable=SC2046
		read -r first last < <(stat -c %.9Y $(logs "$kind") 2>/dev/null | sort -n |
			awk -v tall="$tall" 'NR == 1 { f = $1 } END { printf "%.3f %.3f\n", f, tall }')
		[ -z "$tfirst" ] || first=$tfirst # a linux guest's log was written before it was asked
		left=$(stop_all "$kind")
		for _ in $(seq 10); do # the kernel frees the VMs' memory a little after
			[ $(($(meminfo MemAvailable) + 65536)) -ge "$mem0" ] && break
			sleep 1
		done
		mem2=$(meminfo MemAvailable)
		# The logs' page cache is charged to each guest's memory cgroup,
		# which stays (dying) until those pages go: remove them.
		sleep 1
		memcg1=$(awk '$1 == "memory" { print $3 }' /proc/cgroups)
		find "$CVISOR_RUN_DIR" "$OUT/qemu" -name '*.log' -delete
		sleep 1
		memcg2=$(awk '$1 == "memory" { print $3 }' /proc/cgroups)
		awk -v n="$n" -v kind="$kind" -v got="$got" -v t0="$t0" -v first="$first" \
			-v last="$last" -v m0="$mem0" -v m1="$mem1" -v m2="$mem2" -v a0="$anon0" \
			-v a1="$anon1" -v own="$anon_own" -v pss="$pss" -v busy0="$busy0" \
			-v busy1="$busy1" -v k0="$ticks0" -v k1="$ticks1" -v hz="$(getconf CLK_TCK)" \
			-v win="$CPU_WIN" -v tls="$tls" -v ttop="$ttop" -v tinfo="$tinfo" -v left="$left" \
			-v rtt="$rtt" -v ans="$([ "$kind" = linux ] && echo "$ok of $nask asked, guest 1 $loc timer irq/s" || echo -)" '
			BEGIN {
				others = (a1 - a0) - own
				g = got ? got : 1
				r = last > t0 ? got / (last - t0) : 0
				rs = sprintf(r < 10 ? "%.2f" : "%.0f", r) # linux clones: under 1 a second
				printf "| %d | %s | %d | %s | %.0f, %.0f ms | %.2f | %.0f | %.2f, %.2f | %s | %s | %s | %s | %s | %s; %.0f of %.0f MiB back |\n",
					n, kind, got, rs,
					(first > t0 ? (first - t0) * 1000 : 0), (last > t0 ? (last - t0) * 1000 : 0),
					(m0 - m1 - others) / 1024 / g, pss / g, busy1 - busy0,
					(win ? 100 * (k1 - k0) / hz / win : 0), tls, ttop, tinfo, rtt, ans, left,
					(m2 - m1) / 1024, (m0 - m1) / 1024
			}'
		echo "#   $kind N=$n: host tasks $tasks0 -> $tasks1 ($(((tasks1 - tasks0 + (got ? got : 1) / 2) / (got ? got : 1))) a guest, rounded), a monitor has $fds fds and $maps mappings, host CPU during ls ${lscpu:--} ms, memory cgroups $memcg0 before, $memcg1 after, $memcg2 once the logs are removed${lsalso:+; ls s:$lsalso}"
		[ -z "$why" ] || echo "#   $kind stopped at $got of $n: $why"
		if [ "$kind" = linux ]; then # its first limit ends the kind
			[ -z "$why" ] || limit[$kind]="memory or a start: $why"
			mon=$(awk -v k0="$ticks0" -v k1="$ticks1" -v hz="$(getconf CLK_TCK)" -v w="$CPU_WIN" 'BEGIN { printf "%.1f", w ? 100 * (k1 - k0) / hz / w : 0 }')
			awk -v b="$mon" -v m="$((CPU_MAX * NCPU))" 'BEGIN { exit !(b >= m) }' &&
				limit[$kind]="CPU: the $got idle guests' monitors took $mon % of $((100 * NCPU)), over CPU_MAX $CPU_MAX % of all CPUs (the host was busy $busy1 % with them, $busy0 % before them)"
			if [ "$rtt" = timeout ] || awk -v r="$rtt" -v m="$PROBE_MAX" 'BEGIN { exit !(r > m) }'; then
				limit[$kind]="response: a console round trip to guest 1 took ${rtt} s (PROBE_MAX $PROBE_MAX s)"
			fi
			[ "$ok" -ge "$nask" ] || limit[$kind]="response: $ok of the $nask clones asked answered (two rounds)"
			echo "#   linux N=$n: host busy $busy0 % before the guests, $busy1 % with them idle, their monitors $mon %; guest 1 answered in $rtt s, $loc timer interrupts a second${limit[$kind]:+; LIMIT: ${limit[$kind]}}"
		fi
		: >"$PIDS"
	done
done
