# tests/lib.sh - shared helpers for the shell test suites. Source it.
# A suite prints TAP: a test point per case, "ok N - name", "not ok N -
# name # why" (the rest of a long why on "#" lines below it) or "ok N -
# name # SKIP why", then (t_summary) the plan "1..N" and a comment
# "# <suite>: N passed, N failed, N skipped". Other output of a suite goes
# on "# " lines.
T_PASS=0
T_FAIL=0
T_SKIP=0
T_N=0
T_TMP=$(mktemp -d /tmp/cvisor-test.XXXXXX)
T_PIDS=()
CVISOR=${CVISOR:-build/cvisor}

t_cleanup() {
	local p
	for p in "${T_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T_TMP"
}
trap t_cleanup EXIT

# t_stop PID: SIGTERM, up to 5 s to end, then SIGKILL.
t_stop() {
	kill -0 "$1" 2>/dev/null || return 0
	kill -TERM "$1" 2>/dev/null
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.5
	done
	kill -KILL "$1" 2>/dev/null
}
trap 'exit 130' INT TERM

# t_point OK NAME [WHY]: test point T_N+1 ('#' in NAME escaped); WHY's
# first line ends it after a '#', its other lines follow as comments.
t_point() {
	local why=${3:-}
	T_N=$((T_N + 1))
	printf '%s %d - %s%s\n' "$1" "$T_N" "${2//#/\\#}" "${why:+ # ${why%%$'\n'*}}"
	case $why in *$'\n'*) printf '%s\n' "${why#*$'\n'}" | sed 's/^/#   /' ;; esac
	return 0
}

t_pass() {
	T_PASS=$((T_PASS + 1))
	t_point ok "$1"
}

t_fail() {
	local why=$2
	T_FAIL=$((T_FAIL + 1))
	# A why that starts with "skip" or "todo" would read as a directive.
	case ${why,,} in skip* | todo*) why="- $why" ;; esac
	t_point "not ok" "$1" "$why"
}

# t_skip NAME WHY: a case this host cannot run, counted neither way.
t_skip() {
	T_SKIP=$((T_SKIP + 1))
	t_point ok "$1" "SKIP $2"
}

# t_info TEXT...: a comment line in the suite's output.
t_info() { echo "# $*"; }

# t_run TIMEOUT CMD... : run with stdin from /dev/null; sets T_OUT, T_ERR, T_RC.
t_run() {
	local to=$1
	shift
	timeout -k 5 "$to" "$@" </dev/null >"$T_TMP/out" 2>"$T_TMP/err"
	T_RC=$?
	T_OUT=$(cat "$T_TMP/out")
	T_ERR=$(cat "$T_TMP/err")
}

# t_expect NAME RC REGEX_ON_STDERR: the last t_run exited RC with one stderr line matching.
t_expect_err() {
	local name=$1 rc=$2 re=$3 lines
	lines=$(printf '%s' "$T_ERR" | grep -c .)
	if [ "$T_RC" != "$rc" ]; then
		t_fail "$name" "exit $T_RC, want $rc (stderr: $T_ERR)"
	elif ! printf '%s' "$T_ERR" | grep -Eqi -- "$re"; then
		t_fail "$name" "stderr '$T_ERR' does not match '$re'"
	elif [ "$lines" != 1 ]; then
		t_fail "$name" "want one stderr line, got $lines: $T_ERR"
	else
		t_pass "$name"
	fi
}

# t_expect_out NAME REGEX...: the last t_run exited 0 and each REGEX matches
# a line of its stdout.
t_expect_out() {
	local name=$1 re bad=$T_RC
	shift
	for re in "$@"; do
		printf '%s\n' "$T_OUT" | grep -Eq -- "$re" || bad=1
	done
	if [ "$bad" = 0 ]; then
		t_pass "$name"
	else
		t_fail "$name" "exit $T_RC: $T_OUT"
	fi
}

t_summary() {
	echo "1..$T_N"
	echo "# $1: $T_PASS passed, $T_FAIL failed, $T_SKIP skipped"
	[ "$T_FAIL" = 0 ]
}

# End SUITE before its first case: t_abort SUITE WHY when something the
# build makes is missing (status 1), t_skip_suite SUITE WHY when the host
# lacks what the suite needs (status 77).
t_abort() {
	t_fail setup "$2"
	t_summary "$1"
	exit 1
}

t_skip_suite() {
	if [ "$T_N" = 0 ]; then
		echo "1..0 # SKIP $2"
	else
		t_skip "$1" "$2"
		t_summary "$1"
	fi
	exit 77
}
