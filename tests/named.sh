# tests/named.sh - helpers for suites that drive named, detached guests of
# the tiny test kernels (source it after tests/lib.sh; needs GUESTS and
# CVISOR_RUN_DIR set, and pushes monitor pids to T_PIDS for cleanup).

pid_of() { "$CVISOR" info "$1" --json 2>/dev/null | sed -n 's/.*"pid":\([0-9]*\).*/\1/p'; }

track() {
	local p
	p=$(pid_of "$1")
	[ -n "$p" ] && T_PIDS+=("$p")
}

# start NAME GUEST [run args...]: a detached guest.
start() {
	local name=$1 guest=$2
	shift 2
	t_run 10 "$CVISOR" run -d --name "$name" --kernel "$GUESTS/$guest.elf" "$@"
	if [ "$T_RC" != 0 ]; then
		t_fail "start $name" "exit $T_RC: $T_ERR"
		return 1
	fi
	track "$name"
}

# gone NAME: within 10 s the socket and the lock are gone.
gone() {
	local i
	for i in $(seq 100); do
		[ ! -e "$CVISOR_RUN_DIR/$1.sock" ] && [ ! -e "$CVISOR_RUN_DIR/$1.lock" ] && return 0
		sleep 0.1
	done
	return 1
}

# Counts a guest logged: the last, the first (complete lines only).
last_count() { sed -n 's/^count \([0-9]*\)$/\1/p' "$CVISOR_RUN_DIR/$1.log" | tail -n 1; }

first_count() { sed -n 's/^count \([0-9]*\)$/\1/p' "$CVISOR_RUN_DIR/$1.log" | head -n 1; }

# wait_count NAME N: up to 20 s until the guest has logged "count M", M >= N.
wait_count() {
	local i c
	for i in $(seq 200); do
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
