#!/usr/bin/env bash
# tests/e2e/guest-lifecycle.sh - a Linux guest's user space across a
# snapshot and a live migration, every monitor jailed (--jail: the save
# goes through file descriptors the client passes). One boot of the kit's
# microVM kernel (2 vCPUs, 256 MiB, detached, named) with a shell on its
# console, driven through `cvisor console` (tests/guest.sh):
#   1. a shell loop pinned to vCPU 1 prints "COUNT n uptime" once a second;
#   2. `cvisor save` ends the guest, `cvisor restore -d` starts it again;
#   3. `cvisor migrate` moves it over loopback to `cvisor run --incoming`;
#   4. `cvisor stop` powers it off on the target (ACPI power button).
# After each hop the count goes on from where it was (never back to 1, no
# number skipped beyond what the hop's pause allows), the guest's uptime
# never goes backwards, and a process on each vCPU still makes system calls.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
. tests/named.sh
. tests/guest.sh
g_named_suite guest-lifecycle "gl$$-"
S=${P}src
R=${P}rst
T=${P}dst

# counts ID: the "COUNT n uptime" lines so far, as "n uptime".
counts() { g_log "$1" | sed -n 's/^COUNT \([0-9]*\) \([0-9.]*\)$/\1 \2/p'; }

# wait_counts ID N: until ID's console shows N more counts than now.
wait_counts() {
	local have want end=$((SECONDS + 120))
	have=$(counts "$1" | wc -l)
	want=$((have + $2))
	while [ "$(counts "$1" | wc -l)" -lt "$want" ]; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.5
	done
}

# hop_check WHAT BEFORE_ID AFTER_ID: the counter went on across a hop.
hop_check() {
	local what=$1 last first lu fu bad
	read -r last lu < <(counts "$2" | tail -n 1)
	if ! wait_counts "$3" 3; then
		t_fail "$what: the counter goes on" "no new counts: $(g_log "$3" | tail -n 3 | tr '\n' ' ')"
		return
	fi
	read -r first fu < <(counts "$3" | head -n 1)
	# Consecutive after the hop, and each uptime at least the last.
	bad=$(counts "$3" | awk -v n="$first" -v u="$fu" \
		'NR > 1 && ($1 != n + 1 || $2 < u) { print "count " n " (" u ") then " $1 " (" $2 ")"; exit }
		 { n = $1; u = $2 }')
	if [ -z "$last" ] || [ -z "$first" ]; then
		t_fail "$what: the counter goes on" "last before '$last', first after '$first'"
	elif [ "$first" -le "$last" ] || [ "$first" -gt $((last + 5)) ]; then
		t_fail "$what: the counter goes on" "last count before $last, first after $first"
	elif awk -v a="$lu" -v b="$fu" 'BEGIN { exit !(b < a) }'; then
		t_fail "$what: guest time is monotonic" "uptime $lu before, $fu after"
	elif [ -n "$bad" ]; then
		t_fail "$what: counting after the hop" "$bad"
	else
		t_pass "$what: count $last -> $first and on, uptime $lu s -> $fu s"
	fi
}

# both_cpus ID WHAT: a process pinned to each vCPU makes system calls.
both_cpus() {
	local cpus
	g_run "$1" 60 'for c in 0 1; do taskset -c $c cat /proc/self/stat | cut -d" " -f39; done'
	# The counter prints meanwhile.
	cpus=$(grep -v '^COUNT ' <<<"$G_OUT" | tr '\n' ' ')
	if [ "$G_RC" = 0 ] && [ "$cpus" = "0 1 " ]; then
		t_pass "$2: processes on both vCPUs make system calls"
	else
		t_fail "$2: processes on both vCPUs" "status $G_RC: CPUs '$cpus'"
	fi
}

t_run 30 "$CVISOR" run -d --jail --name "$S" --kernel "$KERNEL" --initrd "$INITRD" --cpus 2 \
	--memory 256M --cmdline "quiet cvisor.shell=1"
started "start" "$S" || {
	t_summary guest-lifecycle
	exit 1
}
if ! g_start s "$BOOT_TIMEOUT" "$CVISOR" console "$S"; then
	t_fail "boot to a shell" "$(g_log s | tail -n 5 | tr '\n' ' ')"
	t_summary guest-lifecycle
	exit 1
fi
t_pass "the detached guest's shell answers through cvisor console"
g_run s 30 'taskset -c 1 sh -c '"'"'i=0; while :; do i=$((i+1)); read u _ </proc/uptime; echo "COUNT $i $u"; sleep 1; done'"'"' &'
if wait_counts s 3; then
	t_pass "the counter runs: $(counts s | tail -n 1)"
else
	t_fail "the counter runs" "$(g_log s | tail -n 3 | tr '\n' ' ')"
fi

# ---- snapshot ----
t_run 120 "$CVISOR" save "$S" "$T_TMP/snap"
g_wait_exit s 30
if [ "$T_RC" != 0 ]; then
	t_fail "cvisor save" "exit $T_RC: $T_ERR"
else
	t_pass "cvisor save ends the guest"
	t_run 60 "$CVISOR" restore "$T_TMP/snap" --name "$R" -d --jail
	if started "restore" "$R" && g_attach r 60 "$R"; then
		hop_check "restore" s r
		both_cpus r "restore"
	else
		t_fail "restore: the shell answers" "$T_ERR $(g_log r | tail -n 3 | tr '\n' ' ')"
	fi
fi

# ---- live migration ----
port=$(g_port)
t_run 30 "$CVISOR" run -d --jail --name "$T" --incoming "127.0.0.1:$port"
if started "incoming" "$T"; then
	t_run 300 "$CVISOR" migrate "$R" "127.0.0.1:$port" --json
	g_wait_exit r 30
	if [ "$T_RC" = 0 ] && g_attach t 60 "$T"; then
		t_pass "cvisor migrate: $(tail -n 1 <<<"$T_OUT" | cut -c1-160)"
		hop_check "migration" r t
		both_cpus t "migration"
	else
		t_fail "cvisor migrate" "exit $T_RC: $T_ERR"
	fi
	t_run 200 "$CVISOR" stop "$T" --timeout 180
	if [ "$T_RC" = 0 ] && g_log t | grep -q "power button pressed"; then
		t_pass "cvisor stop powers the migrated guest off through the power button"
	else
		t_fail "cvisor stop on the target" "exit $T_RC: $T_ERR"
	fi
fi
t_summary guest-lifecycle
