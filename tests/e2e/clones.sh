#!/usr/bin/env bash
# tests/e2e/clones.sh - many guests from one snapshot: `cvisor restore FILE
# --count N --name BASE -d` with the clone tiny guest (tests/kvm/guests/
# clone.c), which after a restore prints the vsock CID and the MAC its
# devices give it and then counts on a slow timer. CLONES_N guests (500)
# start from one snapshot; each must say, on its own serial output, the
# identity that is its own (CID = the snapshot's + K, a MAC no other has)
# and count on; all are paused (their output stops while an unpaused one
# counts on), resumed (they count on), stopped through the ACPI power
# button, and then nothing of them is left: no monitor, socket, lock or
# cgroup, and MemAvailable back within MEM_SLACK_MIB (64) of before
# (other processes' anonymous memory aside).
# Bad combinations are refused with one line and status 2 before any
# guest starts; a resource limit hit on purpose (RLIMIT_NOFILE, a pids
# cgroup) names the guest that could not start, why and which limit of the
# host was reached (src/host/limits.c), and the ones
# started before it are stopped (all or none). Prints TAP (tests/lib.sh).
#
# Waits are on output (a log line, a count), each bounded; the guests
# tick once a second.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
. tests/named.sh

P=cl$$- # guest name prefix
PC="" # the pids cgroup of the limit case
trap 'named_cleanup; [ -z "$PC" ] || rmdir "$PC" 2>/dev/null' EXIT
N=${CLONES_N:-500}
MEM_SLACK_MIB=${MEM_SLACK_MIB:-64}
S=$T_TMP/snap
CID=3     # the template's
FIRST=1000 # --cid: clone K's CID is FIRST + K - 1

export CVISOR
need_kvm clones
need_guests clones clone idle

mem_avail() { awk '/^MemAvailable:/ { print $2 }' /proc/meminfo; }
anon() { awk '/^AnonPages:/ { print $2 }' /proc/meminfo; }

# names BASE: BASE-1 .. BASE-N, one a line.
names() { seq -f "$1-%g" 1 "$N"; }

# on_all CMD BASE: `cvisor CMD NAME` for every clone, 32 at a time; the
# names for which it failed are printed.
on_all() {
	names "$2" | xargs -P 32 -n 16 bash -c 'cmd=$1; shift
		for n; do timeout 20 "$CVISOR" "$cmd" "$n" >/dev/null 2>&1 || echo "$n"; done' \
		on_all "$1"
}

# reset_lines BASE: "NAME CID MAC" for every clone whose log has its
# post-restore identity line and a count after it.
reset_lines() {
	local f
	for f in "$CVISOR_RUN_DIR/$1"-*.log; do
		awk -v n="$(basename "$f" .log)" '
			/^clone: reset cid / { id = $4 " " $6 }
			id != "" && /^count [0-9]+$/ { print n, id; exit }' "$f"
	done
}

# log_sizes BASE: "NAME BYTES" of every clone's log.
log_sizes() { (cd "$CVISOR_RUN_DIR" && stat -c '%n %s' "$1"-*.log); }

# leftovers BASE: what is left of guests named BASE-*: monitors (by the
# pids recorded in $T_TMP/pids), sockets, locks, cgroups.
leftovers() {
	local p left=""
	if [ -s "$T_TMP/pids" ]; then
		while read -r p; do
			kill -0 "$p" 2>/dev/null && left+=" pid $p"
		done <"$T_TMP/pids"
	fi
	for p in "$CVISOR_RUN_DIR/$1"-*.sock "$CVISOR_RUN_DIR/$1"-*.lock \
		/sys/fs/cgroup/cvisor/"$1"-* /sys/fs/cgroup/*/cvisor/"$1"-* \
		/sys/fs/cgroup/*/*/*/cvisor/"$1"-*; do
		[ -e "$p" ] && left+=" $p"
	done
	echo "$left"
}

# ---- the snapshot: a clone guest booted and saved once it idles ----
TPL=${P}t
if start "$TPL" clone --memory 16M --vsock "$CID,uds=$T_TMP/v" --net user \
	--cmdline tick_ms=1000 && wait_log "$TPL" "clone: ready" 20 && wait_count "$TPL" 1; then
	if grep -q "^clone: cid $CID mac 52:54:00:12:34:56$" "$CVISOR_RUN_DIR/$TPL.log"; then
		t_pass "the guest reads its CID and MAC from its devices"
	else
		t_fail "the guest reads its CID and MAC" "$(head -c 400 "$CVISOR_RUN_DIR/$TPL.log")"
	fi
	t_run 30 "$CVISOR" save "$TPL" "$S"
	[ "$T_RC" = 0 ] || t_abort clones "save of the template: exit $T_RC: $T_ERR"
else
	t_abort clones "the clone guest did not start: $(tail -c 300 "$CVISOR_RUN_DIR/$TPL.log" 2>/dev/null)"
fi

# ---- bad combinations: one line, status 2, nothing started ----
B=${P}b
t_run 10 "$CVISOR" restore "$S" --count 3 --name "$B"
t_expect_err "--count without -d" 2 "--count needs -d and --name"
for v in 0 -1 abc 65536 ""; do
	t_run 10 "$CVISOR" restore "$S" --count "$v" --name "$B" -d
	t_expect_err "--count '$v'" 2 "--count.*(must be a number of guests from 1 to 65535|needs a value)"
done
t_run 10 "$CVISOR" restore "$S" --count 2 --name "$(printf 'n%.0s' $(seq 63))" -d
t_expect_err "a BASE too long for BASE-N" 2 "names .* must be 1 to 64"
t_run 10 "$CVISOR" restore "$S" --cid 7 --name "$B" -d
t_expect_err "--cid without --count" 2 "--cid goes with --count"
t_run 10 "$CVISOR" restore "$S" --count 2 --cid 2 --name "$B" -d
t_expect_err "--cid 2" 2 "--cid 2: must be a vsock CID from 3 to"
t_run 10 "$CVISOR" restore "$S" --count 2 --cid 4294967294 --name "$B" -d
t_expect_err "--cid past the last CID for clone 2" 2 "clone 2's CID 4294967295 would be above"
if start "$B-2" idle --memory 16M; then
	t_run 10 "$CVISOR" restore "$S" --count 3 --name "$B" -d
	t_expect_err "a clone's name already running" 2 "guest $B-2 is already running"
	[ -e "$CVISOR_RUN_DIR/$B-1.sock" ] && t_fail "nothing started" "$B-1 runs"
	timeout 10 "$CVISOR" kill "$B-2" >/dev/null 2>&1
fi
# A writable disk would be shared by every clone: refused; readonly is not.
truncate -s 1M "$T_TMP/disk.img"
for ro in "" ",readonly"; do
	W=${P}w${ro:+r}
	if start "$W" idle --memory 16M --disk "$T_TMP/disk.img$ro"; then
		t_run 30 "$CVISOR" save "$W" "$S.w"
		t_run 10 "$CVISOR" restore "$S.w" --count 2 --name "$W" -d
		if [ -z "$ro" ]; then
			t_expect_err "a writable disk with --count 2" 2 \
				"disk 0 \\($T_TMP/disk.img\\) is writable and clones must not share it"
			t_run 10 "$CVISOR" restore "$S.w" --count 2 --cid 9 --name "$W" -d
			t_expect_err "--cid for a guest without vsock" 2 "has no vsock device"
		elif [ "$T_RC" = 0 ] && [ -S "$CVISOR_RUN_DIR/$W-1.sock" ] &&
			[ -S "$CVISOR_RUN_DIR/$W-2.sock" ]; then
			t_pass "a readonly disk is shared by --count 2"
		else
			t_fail "a readonly disk is shared by --count 2" "exit $T_RC: $T_ERR"
		fi
		timeout 10 "$CVISOR" kill "$W-1" >/dev/null 2>&1
		timeout 10 "$CVISOR" kill "$W-2" >/dev/null 2>&1
	fi
done

# ---- --ksm: guest RAM mergeable (run and restore), refused without KSM ----
# mergeable PID: does the monitor have a mapping of 16 MiB (guest RAM)
# that KSM may merge (VmFlags mg)?
mergeable() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { big = 0 }
		/^Size: +16384 kB/ { big = 1 }
		big && /^VmFlags:.* mg/ { found = 1 }
		END { exit !found }' "/proc/$1/smaps"
}
K=${P}k
if [ ! -d /sys/kernel/mm/ksm ]; then
	t_skip "--ksm" "this host has no KSM"
elif start "$K" idle --memory 16M --ksm && start "$K-off" idle --memory 16M; then
	if mergeable "$(pid_of "$K")" && ! mergeable "$(pid_of "$K-off")"; then
		t_pass "run --ksm: guest RAM is MADV_MERGEABLE (and not without it)"
	else
		t_fail "run --ksm: guest RAM is MADV_MERGEABLE" "smaps of $(pid_of "$K") / $(pid_of "$K-off")"
	fi
	timeout 10 "$CVISOR" kill "$K-off" >/dev/null 2>&1
	t_run 30 "$CVISOR" save "$K" "$S.k"
	t_run 10 "$CVISOR" restore "$S.k" --name "$K-r" -d --ksm
	if started "restore --ksm" "$K-r" && mergeable "$(pid_of "$K-r")"; then
		t_pass "restore --ksm: the restored guest's RAM is MADV_MERGEABLE"
	else
		t_fail "restore --ksm" "exit $T_RC: $T_ERR"
	fi
	timeout 10 "$CVISOR" kill "$K-r" >/dev/null 2>&1
fi
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
	t_run 20 unshare -m sh -c 'mount -t tmpfs none /sys/kernel/mm && exec "$0" run --kernel "$1" --memory 16M --ksm' \
		"$CVISOR" "$GUESTS/idle.elf"
	t_expect_err "--ksm on a host without KSM" 2 "--ksm: this host has no KSM"
else
	t_skip "--ksm on a host without KSM" "needs root for a mount namespace"
fi

# ---- N clones ----
C=${P}c
sync
mem0=$(mem_avail)
anon0=$(anon)
t0=$(date +%s%N)
t_run 120 "$CVISOR" restore "$S" --count "$N" --cid "$FIRST" --name "$C" -d
t1=$(date +%s%N)
if [ "$T_RC" = 0 ] && [ -z "$T_ERR" ]; then
	t_pass "restore --count $N in $(((t1 - t0) / 1000000)) ms"
else
	t_abort clones "restore --count $N: exit $T_RC: $T_ERR"
fi
"$CVISOR" ls --json 2>/dev/null | grep -o "\"name\":\"$C-[0-9]*\",\"pid\":[0-9]*" |
	sed 's/.*"pid"://' >"$T_TMP/pids"
running=$(wc -l <"$T_TMP/pids")
while read -r p; do T_PIDS+=("$p"); done <"$T_TMP/pids"
if [ "$running" = "$N" ]; then
	t_pass "cvisor ls lists the $N clones"
else
	t_fail "cvisor ls lists the clones" "$running of $N"
fi

# Every clone says who it is, then counts (60 s at most for all).
for i in $(seq 600); do
	reset_lines "$C" >"$T_TMP/ids"
	[ "$(wc -l <"$T_TMP/ids")" -ge "$N" ] && break
	sleep 0.1
done
t2=$(date +%s%N)
mem1=$(mem_avail)
# Clone K: CID FIRST + K - 1; MAC the template's 52:54:00:12:34:56 with K
# added to its fourth and fifth bytes.
bad=$(awk -v first="$FIRST" '{ k = $1; sub(/.*-/, "", k); v = 4660 + k
	mac = sprintf("52:54:00:%02x:%02x:56", int(v / 256) % 256, v % 256)
	if ($2 != first + k - 1 || $3 != mac) print }' "$T_TMP/ids" | head -3)
cids=$(awk '{ print $2 }' "$T_TMP/ids" | sort -u | wc -l)
macs=$(awk '{ print $3 }' "$T_TMP/ids" | sort -u | wc -l)
if [ "$(wc -l <"$T_TMP/ids")" = "$N" ] && [ -z "$bad" ] && [ "$cids" = "$N" ] && [ "$macs" = "$N" ] &&
	! grep -q " 52:54:00:12:34:56$" "$T_TMP/ids"; then
	t_pass "each of the $N clones reports its own CID and MAC and counts on ($(((t2 - t0) / 1000000)) ms from restore to the last)"
else
	t_fail "each clone reports its own identity" "$(wc -l <"$T_TMP/ids") of $N reported; $cids CIDs, $macs MACs distinct; wrong CID or MAC: $bad"
fi
t_info "MemAvailable: $(((mem0 - mem1) / N)) KiB less per clone with $N running"

# ---- pause all but the last; their output stops while the last counts ----
REF=$C-$N
failed=$(names "$C" | grep -vx "$REF" | xargs -P 32 -n 16 bash -c \
	'for n; do timeout 20 "$CVISOR" pause "$n" >/dev/null 2>&1 || echo "$n"; done' pause)
paused=$("$CVISOR" ls 2>/dev/null | grep -c "^$C-[0-9]* .* paused ")
log_sizes "$C" | grep -v "^$REF.log " >"$T_TMP/sizes.paused"
ref=$(last_count "$REF")
if [ -z "$failed" ] && [ "$paused" = $((N - 1)) ] && wait_count "$REF" $((ref + 2)); then
	log_sizes "$C" | grep -v "^$REF.log " >"$T_TMP/sizes.later"
	moved=$(diff "$T_TMP/sizes.paused" "$T_TMP/sizes.later" | grep -c '^>')
	if [ "$moved" = 0 ]; then
		t_pass "pause: $paused clones print nothing while $REF counts $ref -> $(last_count "$REF")"
	else
		t_fail "pause stops the clones" "$moved paused clones printed on"
	fi
else
	t_fail "pause every clone" "not paused: $(echo $failed | head -c 200); ls shows $paused paused; $REF at $(last_count "$REF") from $ref"
fi

# ---- resume: every clone counts on ----
failed=$(names "$C" | grep -vx "$REF" | xargs -P 32 -n 16 bash -c \
	'for n; do timeout 20 "$CVISOR" resume "$n" >/dev/null 2>&1 || echo "$n"; done' resume)
for i in $(seq 300); do
	log_sizes "$C" | grep -v "^$REF.log " >"$T_TMP/sizes.resumed"
	moved=$(diff "$T_TMP/sizes.paused" "$T_TMP/sizes.resumed" | grep -c '^>')
	[ "$moved" -ge $((N - 1)) ] && break
	sleep 0.1
done
if [ -z "$failed" ] && [ "$moved" = $((N - 1)) ] &&
	[ "$("$CVISOR" ls 2>/dev/null | grep -c "^$C-[0-9]* .* running ")" = "$N" ]; then
	t_pass "resume: all $N clones run and count on"
else
	t_fail "resume every clone" "not resumed: $(echo $failed | head -c 200); $moved of $((N - 1)) printed again"
fi

# ---- stop all through the power button; nothing is left ----
failed=$(names "$C" | xargs -P 64 -n 8 bash -c \
	'for n; do timeout 30 "$CVISOR" stop "$n" --timeout 20 >/dev/null 2>&1 || echo "$n"; done' stop)
pressed=$(grep -l "^clone: power button$" "$CVISOR_RUN_DIR/$C"-*.log | wc -l)
if [ -z "$failed" ] && [ "$pressed" = "$N" ]; then
	t_pass "stop: all $N clones powered off (ACPI power button)"
else
	t_fail "stop every clone" "failed: $(echo $failed | head -c 200); $pressed saw the button"
fi
for i in $(seq 100); do
	left=$(leftovers "$C")
	[ -z "$left" ] && break
	sleep 0.1
done
if [ -z "$left" ]; then
	t_pass "no monitor, socket, lock or cgroup of the clones is left"
else
	t_fail "nothing of the clones is left" "$(echo $left | head -c 400)"
fi
# The kernel frees a VM's memory a little after its process ends. Other
# processes on a shared host change MemAvailable meanwhile: with the
# clones gone, a change of AnonPages is theirs (what a monitor could leave
# behind is kernel memory, which AnonPages does not count), so it is
# taken out of the drop.
for i in $(seq 200); do
	mem2=$(mem_avail)
	drop=$((mem0 - mem2 - ($(anon) - anon0)))
	[ "$drop" -le $((MEM_SLACK_MIB * 1024)) ] && break
	sleep 0.1
done
if [ "$drop" -le $((MEM_SLACK_MIB * 1024)) ]; then
	t_pass "MemAvailable back within $MEM_SLACK_MIB MiB ($((drop / 1024)) MiB below before, other processes' anonymous memory aside; $(((mem0 - mem1) / 1024)) MiB with the clones)"
else
	t_fail "MemAvailable back" "$((drop / 1024)) MiB below before, other processes' anonymous memory aside (bound $MEM_SLACK_MIB MiB; $(((mem0 - mem1) / 1024)) MiB with the clones)"
fi

# ---- a resource limit hit on purpose ----
# RLIMIT_NOFILE: the monitors (and this one's client) run out of fds.
L=${P}f
(
	ulimit -n 30
	exec "$CVISOR" restore "$S" --count 5 --cid 2000 --name "$L" -d
) </dev/null >"$T_TMP/out" 2>"$T_TMP/err"
T_RC=$?
T_ERR=$(cat "$T_TMP/err")
if [ "$T_RC" != 0 ] && [ "$(printf '%s' "$T_ERR" | grep -c .)" = 1 ] &&
	printf '%s' "$T_ERR" | grep -Eq "^cvisor: cannot start guest [1-5] of 5 \\($L-[1-5]\\): .*Too many open files \\(this process may open 30 files, RLIMIT_NOFILE: raise ulimit -n"; then
	t_pass "RLIMIT_NOFILE 30: $T_ERR (exit $T_RC)"
else
	t_fail "RLIMIT_NOFILE names the guest that could not start" "exit $T_RC: $T_ERR"
fi
left=$(leftovers "$L")
[ -z "$left" ] || t_fail "nothing left after RLIMIT_NOFILE" "$left"

# SIGINT while the clones start (Ctrl-C): all or none holds, the one line
# says so, and nothing is left. The signal goes once the first clone
# runs; should all 300 have started before it lands, the case is skipped.
I=${P}i
"$CVISOR" restore "$S" --count 300 --cid 3000 --name "$I" -d </dev/null >"$T_TMP/out" 2>"$T_TMP/err" &
ipid=$!
for _ in $(seq 200); do
	[ -e "$CVISOR_RUN_DIR/$I-1.sock" ] && break
	kill -0 "$ipid" 2>/dev/null || break
	sleep 0.05
done
kill -INT "$ipid" 2>/dev/null
wait "$ipid"
T_RC=$?
T_ERR=$(cat "$T_TMP/err")
if [ "$T_RC" = 0 ]; then
	for k in $(seq 300); do timeout 10 "$CVISOR" kill "$I-$k" >/dev/null 2>&1; done
	t_skip "SIGINT while clones start" "all 300 started before the signal"
elif [ "$T_RC" = 130 ] && [ "$(printf '%s' "$T_ERR" | grep -c .)" = 1 ] &&
	printf '%s' "$T_ERR" | grep -Eq "^cvisor: cannot start guest [0-9]+ of 300 \\($I-[0-9]+\\): interrupted \\(SIGINT\\); the guests started were stopped$"; then
	t_pass "SIGINT while clones start: $T_ERR"
else
	t_fail "SIGINT while clones start" "exit $T_RC: $T_ERR"
fi
left=$(leftovers "$I")
pgrep -f -- "--name $I " >/dev/null && left+=" monitors: $(pgrep -f -- "--name $I " | tr '\n' ' ')"
[ -z "$left" ] || t_fail "nothing left after SIGINT" "$left"

# A pids cgroup of 20 tasks for the client and its monitors (3 tasks
# each, 8 starting at once): some clone cannot start, and the ones
# started are stopped.
for d in /sys/fs/cgroup/pids /sys/fs/cgroup; do
	if mkdir "$d/cvisor-test-$$" 2>/dev/null; then
		[ -e "$d/cvisor-test-$$/pids.max" ] && PC=$d/cvisor-test-$$ && break
		rmdir "$d/cvisor-test-$$"
	fi
done
if [ -z "$PC" ]; then
	t_skip "a pids limit names the guest that could not start" "no pids cgroup here"
else
	L=${P}p
	echo 20 >"$PC/pids.max"
	: >"$T_TMP/pids"
	t_run 60 bash -c 'echo $$ >"$1/cgroup.procs" && exec "$2" restore "$3" --count 10 --cid 3000 --name "$4" -d' \
		pids "$PC" "$CVISOR" "$S" "$L"
	if [ "$T_RC" != 0 ] && [ "$(printf '%s' "$T_ERR" | grep -c .)" = 1 ] &&
		printf '%s' "$T_ERR" | grep -Eq "^cvisor: cannot start guest ([1-9]|10) of 10 \\($L-([1-9]|10)\\): .*Resource temporarily unavailable \\(the pids cgroup $PC allows 20 tasks and has [0-9]+: raise its pids.max\\)"; then
		t_pass "pids.max 20: $T_ERR (exit $T_RC)"
	else
		t_fail "a pids limit names the guest that could not start" "exit $T_RC: $T_ERR"
	fi
	for i in $(seq 50); do
		left=$(leftovers "$L")
		[ -z "$left" ] && [ ! -s "$PC/cgroup.procs" ] && break
		sleep 0.1
	done
	if [ -z "$left" ] && [ ! -s "$PC/cgroup.procs" ]; then
		t_pass "the clones started before the limit were stopped: nothing left"
	else
		t_fail "nothing left after the pids limit" "$left; tasks: $(cat "$PC/cgroup.procs" | tr '\n' ' ')"
	fi
	rmdir "$PC" 2>/dev/null
fi

t_summary clones
