#!/usr/bin/env bash
# run-unit.sh [DIR]: every cmocka test binary in DIR (build/tests/unit) as a
# TAP subtest of cmocka's own TAP (CMOCKA_MESSAGE_OUTPUT=TAP), each stopped
# after UNIT_TIMEOUT (60) seconds: a test that hangs is named in its
# binary's TAP (tests/unit/unit_tap.c) and its binary fails "timed out".
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/tap.sh
dir=${1:-build/tests/unit}
export CMOCKA_MESSAGE_OUTPUT=TAP
for t in "$dir"/test_*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	tap_sub "$(basename "$t")" "${UNIT_TIMEOUT:-60}" "$t"
done
if [ "$TAP_N" = 0 ]; then
	echo "not ok 1 - setup # no test binaries in $dir (run make unit)"
	echo "1..1"
	exit 1
fi
tap_end
