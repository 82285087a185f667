#!/usr/bin/env bash
# run-fuzz.sh SECONDS FUZZER... : run each libFuzzer target for SECONDS on a
# scratch copy of its seed corpus (tests/fuzz/corpus/NAME); a finding fails,
# and so does a target still running 60 s after its SECONDS. Prints TAP: a
# test point per target, the tail of its log under a failing one.
set -u
secs=$1
shift
bound=$((secs + 60))
n=0
fail=0
for f in "$@"; do
	name=$(basename "$f")
	name=${name#fuzz_}
	n=$((n + 1))
	work=$(mktemp -d)
	[ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/"
	timeout -k 10 "$bound" "$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$work/" "$work" >"$work.log" 2>&1
	rc=$?
	if [ "$rc" = 0 ]; then
		echo "ok $n - $name # $(grep -aEo "Done [0-9]+ runs in [0-9]+ second" "$work.log" | tail -n 1)"
	else
		why="finding (status $rc)"
		[ "$rc" = 124 ] || [ "$rc" = 137 ] && why="timed out after $bound s"
		echo "not ok $n - $name # $why"
		tail -n 30 "$work.log" | sed 's/^/#   /'
		ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null | sed 's/^/#   /'
		fail=$((fail + 1))
	fi
	rm -rf "$work" "$work.log"
done
echo "1..$n"
echo "# fuzz: $((n - fail)) passed, $fail failed"
[ "$fail" = 0 ]
