#!/usr/bin/env bash
# run-fuzz.sh SECONDS FUZZER... : run each libFuzzer target for SECONDS on a
# scratch copy of its seed corpus (tests/fuzz/corpus/NAME); a finding fails.
# Ends with "fuzz: N passed, N failed".
set -u
secs=$1
shift
pass=0
fail=0
for f in "$@"; do
	name=$(basename "$f")
	name=${name#fuzz_}
	work=$(mktemp -d)
	[ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/"
	if "$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$work/" \
		"$work" >"$work.log" 2>&1; then
		echo "PASS fuzz $name: $(grep -aEo "Done [0-9]+ runs in [0-9]+ second" "$work.log" | tail -n 1)"
		pass=$((pass + 1))
	else
		echo "FAIL fuzz $name: finding (see below)"
		tail -n 30 "$work.log"
		ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null
		fail=$((fail + 1))
	fi
	rm -rf "$work" "$work.log"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" = 0 ]
