# tests/tap.sh - TAP (version 14) for the runners that nest suites:
# scripts/run-tests.sh (a suite per subtest), scripts/run-unit.sh (a cmocka
# binary per subtest) and scripts/run-tsan.sh. Source it.
#
# A subtest is the child's TAP indented four spaces, closed by one test
# point of the parent's. Counting (tap_count) takes the leaves: a closing
# "not ok" counts as a failure only when no failure below it was counted
# (a timeout, a crash, a missing plan).
TAP_N=0
TAP_PASS=0
TAP_FAIL=0
TAP_SKIP=0

# tap_count < STREAM: "PASS FAIL SKIP TOP PLAN" of a TAP stream: its
# leaves at every depth, its own (unindented) test points and plan (-1:
# none). "# SKIP" and "# TODO" directives count as skipped; "Bail out!"
# as a failure.
tap_count() {
	awk '
	function mark(d, bad, k) {
		for (k = 0; k < d; k++) {
			child[k] = 1
			if (bad)
				below[k] = 1
		}
	}
	BEGIN { plan = -1 }
	{
		match($0, /^ */)
		d = int(RLENGTH / 4)
		s = substr($0, RLENGTH + 1)
	}
	s ~ /^(not )?ok( |$)/ {
		bad = s ~ /^not ok/
		skip = s ~ /[^\\]#[ \t]*([Ss][Kk][Ii][Pp]|[Tt][Oo][Dd][Oo])([^A-Za-z]|$)/
		counted = 0
		if (child[d]) {
			if (bad && !skip && !below[d]) {
				fail++
				counted = 1
			}
		} else if (skip) {
			skipped++
		} else if (bad) {
			fail++
			counted = 1
		} else {
			pass++
		}
		child[d] = below[d] = 0
		mark(d, counted)
		if (d == 0)
			top++
		next
	}
	d == 0 && s ~ /^1\.\.[0-9]+/ { plan = substr(s, 4) + 0; next }
	s ~ /^Bail out!/ { fail++; mark(d, 1) }
	END { printf "%d %d %d %d %d\n", pass, fail, skipped, top, plan }'
}

# tap_indent LOG: a child's output on stdin, indented four spaces on stdout
# as it comes, and kept as it was in LOG; lines that are not TAP (a
# program's own messages) become "# " comments.
tap_indent() {
	awk -v keep="$1" '
	!/^((not )?ok( |$)|1\.\.[0-9]|#|TAP version|Bail out!|    |$)/ { $0 = "# " $0 }
	{ print > keep; print "    " $0; fflush() }'
}

# tap_sub NAME SECONDS CMD...: CMD's TAP as a subtest "NAME", its stdin
# /dev/null, stopped after SECONDS (SIGTERM, SIGKILL 10 s later). Closes
# with "ok N - NAME", "ok N - NAME # SKIP why" (status 77 and plan 1..0),
# or "not ok N - NAME # why": timed out after SECONDS s, no plan, fewer test
# points than planned, failures, or a non-zero status. Adds its counts to
# TAP_PASS, TAP_FAIL and TAP_SKIP; status 1 on "not ok".
tap_sub() {
	local name=$1 secs=$2 log rc p f s top plan why="" t0=$SECONDS
	shift 2
	log=$(mktemp)
	TAP_N=$((TAP_N + 1))
	echo "# Subtest: $name"
	timeout -k 10 "$secs" "$@" </dev/null 2>&1 | tap_indent "$log"
	rc=${PIPESTATUS[0]}
	read -r p f s top plan < <(tap_count <"$log")
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		why="timed out after $secs s"
	elif [ "$rc" = 77 ] && [ "$plan" = 0 ] && [ "$f" = 0 ]; then
		why=$(sed -n 's/^1\.\.0 *# *[Ss][Kk][Ii][Pp] *//p' "$log" | head -n 1)
		echo "ok $TAP_N - $name # SKIP ${why:-skipped}"
		TAP_SKIP=$((TAP_SKIP + s + 1))
		rm -f "$log"
		return 0
	elif [ "$plan" -lt 0 ]; then
		why="no plan (status $rc)"
	elif [ "$top" != "$plan" ]; then
		why="planned $plan, ran $top (status $rc)"
	elif [ "$f" != 0 ]; then
		why="$f failed"
	elif [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
		why="exited with status $rc"
	fi
	rm -f "$log"
	echo "# $name: $p passed, $f failed, $s skipped in $((SECONDS - t0)) s"
	TAP_PASS=$((TAP_PASS + p))
	TAP_SKIP=$((TAP_SKIP + s))
	if [ -z "$why" ]; then
		echo "ok $TAP_N - $name"
		return 0
	fi
	[ "$f" = 0 ] && f=1
	TAP_FAIL=$((TAP_FAIL + f))
	echo "not ok $TAP_N - $name # $why"
	return 1
}

# tap_skip NAME WHY: a subtest this host cannot run.
tap_skip() {
	TAP_N=$((TAP_N + 1))
	TAP_SKIP=$((TAP_SKIP + 1))
	echo "ok $TAP_N - $1 # SKIP $2"
}

# tap_end: the plan, after the last subtest; status 1 if one failed.
tap_end() {
	echo "1..$TAP_N"
	[ "$TAP_FAIL" = 0 ]
}
