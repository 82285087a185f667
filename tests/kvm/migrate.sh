#!/usr/bin/env bash
# tests/kvm/migrate.sh - the live migration engine end to end, without the
# CLI: build/tests/kvm/migrate_harness runs a source VM and a target VM in
# one process over loopback TCP through a proxy that can cut or corrupt the
# stream (see the cases at the top of tests/kvm/migrate_harness.c). Every
# successful case also compares the target's RAM with the paused source's,
# byte for byte, before the target starts.
#
# Both dirty tracking paths (src/mem/dirty.c), chosen with CVISOR_DIRTY:
#  - bitmap: every case;
#  - ring, when this host's KVM has a dirty ring: every case too where the
#    ring is the default; on a host whose KVM overflows rings (PVM, where
#    auto takes the bitmap) the cases whose guests never fill a ring, and
#    ring-overflow on a 256-entry ring, which checks that the overflow is
#    caught.
# With arguments: those cases, once, with the CVISOR_DIRTY of the caller.
# MIGRATE_HARNESS names another build of the harness (the TSan one: make
# tsan); each case is stopped after MIGRATE_CASE_TIMEOUT (120) seconds.
# Prints TAP (tests/lib.sh): a test point per case, the harness's PASS or
# FAIL line as its description.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
H=${MIGRATE_HARNESS:-${BUILD:-build}/tests/kvm/migrate_harness}
TMO=${MIGRATE_CASE_TIMEOUT:-120}
CASES="basic paused restored cut-hello cut-round0 cut-later cut-state refuse corrupt verify-mismatch dirty-force dirty-giveup dirty-burst storage storage-qcow2"
# Guests that write slowly: they never fill a 4096-entry ring between syncs.
CALM="basic paused restored cut-hello cut-round0 cut-state refuse corrupt verify-mismatch storage storage-qcow2"
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	t_skip_suite migrate-engine "/dev/kvm is not accessible"
fi
[ -x "$H" ] || t_abort migrate-engine "$H missing (run make migrate-harness)"
[ -f "${BUILD:-build}/tests/kvm/dirtier.elf" ] || t_abort migrate-engine "the tiny guests are missing (run make tiny)"

# run_cases LABEL CASE... (CVISOR_DIRTY as exported by the caller)
run_cases() {
	local label=$1 c out rc line
	shift
	for c in "$@"; do
		out=$(timeout -k 10 "$TMO" "$H" "$c" "${BUILD:-build}/tests/kvm" 2>&1)
		rc=$?
		line=$(printf '%s\n' "$out" | grep -E '^(PASS|FAIL) ' | tail -n 1)
		if [ "$rc" = 0 ] && [ "${line#PASS }" != "$line" ]; then
			t_pass "${line#PASS }${label:+ [$label]}"
			continue
		fi
		if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
			t_fail "$c${label:+ [$label]}" "timed out after $TMO s"
		elif [ -n "$line" ]; then
			t_fail "$c${label:+ [$label]}" "${line#FAIL } (status $rc)"
		else
			t_fail "$c${label:+ [$label]}" "status $rc"
		fi
		printf '%s\n' "$out" | tail -n 30 | sed 's/^/#     /'
	done
}

if [ $# -gt 0 ]; then
	run_cases "${CVISOR_DIRTY:-}" "$@"
else
	auto=$(env -u CVISOR_DIRTY timeout 60 "$H" dirty-mode 2>/dev/null | tail -n 1)
	ring=$(CVISOR_DIRTY=ring timeout 60 "$H" dirty-mode 2>/dev/null | tail -n 1)
	echo "# dirty tracking: auto takes the ${auto:-?}; ring path ${ring:-not available}"
	CVISOR_DIRTY=bitmap run_cases bitmap $CASES
	if [ "$ring" != ring ]; then
		t_skip "ring path" "this host's KVM has no dirty ring"
	elif [ "$auto" = ring ]; then
		CVISOR_DIRTY=ring run_cases ring $CASES
	else
		CVISOR_DIRTY=ring run_cases ring $CALM
		# The smallest ring: it overflows at its first ring-full exit.
		CVISOR_DIRTY=ring:256 run_cases ring:256 ring-overflow
	fi
fi
t_summary migrate-engine
