#!/usr/bin/env bash
# tests/kvm/migrate.sh - the live migration engine end to end, without the
# CLI: build/tests/kvm/migrate_harness runs a source VM and a target VM in
# one process over loopback TCP through a proxy that can cut or corrupt the
# stream (see the cases at the top of tests/kvm/migrate_harness.c). Every
# successful case also compares the target's RAM with the paused source's,
# byte for byte, before the target starts.
# Prints each case's PASS/FAIL line, then "migrate-engine: N passed, N failed".
cd "$(dirname "$0")/../.." || exit 1
H=${BUILD:-build}/tests/kvm/migrate_harness
CASES="basic paused restored cut-hello cut-round0 cut-later cut-state refuse corrupt dirty-force dirty-giveup storage"
pass=0
fail=0
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "SKIP migrate-engine: /dev/kvm is not accessible"
	echo "migrate-engine: 0 passed, 0 failed"
	exit 77
fi
make -s migrate-harness tiny >/dev/null || exit 1
[ $# -gt 0 ] || set -- $CASES
for c in "$@"; do
	out=$(timeout 120 "$H" "$c" "${BUILD:-build}/tests/kvm" 2>&1)
	rc=$?
	line=$(printf '%s\n' "$out" | grep -E '^(PASS|FAIL) ' | tail -n 1)
	if [ "$rc" = 0 ] && [ "${line#PASS}" != "$line" ]; then
		echo "$line"
		pass=$((pass + 1))
	else
		echo "${line:-FAIL $c: exit $rc}"
		printf '%s\n' "$out" | tail -n 5 | sed 's/^/    /'
		fail=$((fail + 1))
	fi
done
echo "migrate-engine: $pass passed, $fail failed"
[ "$fail" = 0 ]
