# tests/named.sh - helpers for suites that drive named, detached guests of
# the tiny test kernels in $GUESTS (source it after tests/lib.sh; set P,
# the run's guest name prefix, for cleanup). The guests run in a private
# $CVISOR_RUN_DIR; monitor pids go to T_PIDS, and sourcing this makes
# named_cleanup the EXIT trap.
GUESTS=${BUILD:-build}/tests/kvm
export CVISOR_RUN_DIR=$T_TMP/run

# named_cleanup: every guest with a socket in $CVISOR_RUN_DIR is told to
# end, what is left is killed (t_cleanup), and the cgroups of this run's
# guests (named $P...) are removed.
named_cleanup() {
	local s
	for s in "$CVISOR_RUN_DIR"/*.sock; do
		[ -e "$s" ] && timeout 5 "$CVISOR" kill "$(basename "$s" .sock)" >/dev/null 2>&1
	done
	t_cleanup
	[ -n "${P:-}" ] || return 0
	for s in /sys/fs/cgroup/cvisor/"$P"* /sys/fs/cgroup/*/cvisor/"$P"* \
		/sys/fs/cgroup/*/*/*/cvisor/"$P"*; do
		[ -d "$s" ] && rmdir "$s" 2>/dev/null
	done
}
trap named_cleanup EXIT

# need_kvm SUITE: ends the suite unless $CVISOR is built and /dev/kvm usable.
need_kvm() {
	[ -x "$CVISOR" ] || t_abort "$1" "$CVISOR not found (run make)"
	if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
		t_skip_suite "$1" "/dev/kvm is not accessible"
	fi
}

# need_guests SUITE GUEST...: ends the suite unless the tiny guests are built.
need_guests() {
	local suite=$1 g
	shift
	for g in "$@"; do
		[ -f "$GUESTS/$g.elf" ] || t_abort "$suite" "$GUESTS/$g.elf missing (run make tiny)"
	done
}

pid_of() { "$CVISOR" info "$1" --json 2>/dev/null | sed -n 's/.*"pid":\([0-9]*\).*/\1/p'; }

# track NAME: the guest's monitor goes to T_PIDS (if it still runs).
track() {
	local p
	p=$(pid_of "$1")
	[ -z "$p" ] || T_PIDS+=("$p")
}

# started WHAT NAME: the last t_run started guest NAME, detached: track it;
# or "FAIL WHAT NAME" and status 1.
started() {
	if [ "$T_RC" != 0 ]; then
		t_fail "$1 $2" "exit $T_RC: $T_ERR"
		return 1
	fi
	track "$2"
}

# run_d WHAT NAME [run args...]: cvisor run -d --name NAME, then started.
run_d() {
	local what=$1 name=$2
	shift 2
	t_run 10 "$CVISOR" run -d --name "$name" "$@"
	started "$what" "$name"
}

# start NAME GUEST [run args...]: a detached guest.
start() {
	local name=$1 guest=$2
	shift 2
	run_d start "$name" --kernel "$GUESTS/$guest.elf" "$@"
}

# gone NAME [PID]: within 10 s the socket and the lock are gone (and the
# process PID has ended).
gone() {
	local i
	for i in $(seq 100); do
		if [ ! -e "$CVISOR_RUN_DIR/$1.sock" ] && [ ! -e "$CVISOR_RUN_DIR/$1.lock" ] &&
			{ [ -z "$2" ] || ! kill -0 "$2" 2>/dev/null; }; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# Counts a guest logged: the last, the first (complete lines only).
last_count() { sed -n 's/^count \([0-9]*\)$/\1/p' "$CVISOR_RUN_DIR/$1.log" | tail -n 1; }

first_count() { sed -n 's/^count \([0-9]*\)$/\1/p' "$CVISOR_RUN_DIR/$1.log" | head -n 1; }

# wait_count NAME N [SECONDS]: up to SECONDS (20) until the guest has
# logged "count M", M >= N.
wait_count() {
	local i c
	for i in $(seq $((${3:-20} * 10))); do
		c=$(last_count "$1")
		[ -n "$c" ] && [ "$c" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# peek NAME GPA: the u64 at GPA in the guest's RAM (empty on failure).
peek() {
	"$CVISOR" ctl "$1" "{\"cmd\":\"peek\",\"gpa\":$2,\"len\":8}" 2>/dev/null |
		sed -n 's/.*"value":\([0-9]*\).*/\1/p'
}

# peek_above NAME GPA A: up to 20 s until the u64 at GPA is above A; prints
# the last value read. 0 when it moved (a loaded host is slower, never
# failed for it).
peek_above() {
	local b
	for _ in $(seq 200); do
		b=$(peek "$1" "$2")
		if [ -n "$b" ] && [ "$b" -gt "$3" ]; then
			echo "$b"
			return 0
		fi
		sleep 0.1
	done
	echo "$b"
	return 1
}

# console_until NAME FILE REGEX [LINE]: `cvisor console NAME` into FILE,
# LINE typed first, until FILE has a line matching REGEX (at most 30 s);
# then the reader is stopped. 0 when it matched.
console_until() {
	local pid rc=1
	{ [ -z "${4+x}" ] || printf '%s\n' "$4"; } | timeout 60 "$CVISOR" console "$1" >"$2" 2>&1 &
	pid=$!
	for _ in $(seq 300); do
		tr -d '\r' <"$2" | grep -q -- "$3" && rc=0 && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	# The reader may have ended just after writing it.
	[ "$rc" = 0 ] || ! tr -d '\r' <"$2" | grep -q -- "$3" || rc=0
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return $rc
}

# wait_log NAME TEXT SECONDS: until NAME's console log has TEXT.
wait_log() {
	local i
	for i in $(seq $(($3 * 10))); do
		grep -qF -- "$2" "$CVISOR_RUN_DIR/$1.log" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
