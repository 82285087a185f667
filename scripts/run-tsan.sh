#!/usr/bin/env bash
# run-tsan.sh: the ThreadSanitizer builds (make tsan) as TAP: the unit tests
# (scripts/run-unit.sh) and the migration harness's cases (tests/kvm/
# migrate.sh), where vCPU threads, the main loop and the migration pump
# share state. A race report makes its binary exit 66: a failure.
#
# Not under TSan (5 to 15 times slower): what asserts speed, dirty-burst
# (converges without being forced) and, on the ring path, guests that
# write much (a ring that overflows on a PVM host while the slowed
# harvest runs); ring-overflow covers the ring-full exit on the vCPU
# thread against the migration thread.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/tap.sh
B=${BUILD:-build}
H=$B/tsan/tests/kvm/migrate_harness
export TSAN_OPTIONS=${TSAN_OPTIONS:-second_deadlock_stack=1}
export MIGRATE_HARNESS=$H MIGRATE_CASE_TIMEOUT=300

# Built here too (make test does it first): TSan binaries older than the
# sources would pass for them.
if ! out=$(timeout 1200 make -s -j2 tsan 2>&1); then
	echo "not ok 1 - make tsan # the build failed"
	printf '%s\n' "$out" | tail -n 20 | sed 's/^/#   /'
	echo "1..1"
	exit 1
fi
tap_sub unit 900 env UNIT_TIMEOUT=120 bash scripts/run-unit.sh "$B/tsan/tests/unit"
CVISOR_DIRTY=bitmap tap_sub "migrate-engine bitmap" 1200 bash tests/kvm/migrate.sh \
	basic paused restored cut-hello cut-round0 cut-later cut-state refuse corrupt \
	dirty-force dirty-giveup storage
if [ "$(CVISOR_DIRTY=ring timeout 60 "$H" dirty-mode 2>/dev/null | tail -n 1)" = ring ]; then
	CVISOR_DIRTY=ring tap_sub "migrate-engine ring" 600 bash tests/kvm/migrate.sh \
		basic paused restored cut-round0 corrupt
	CVISOR_DIRTY=ring:256 tap_sub "migrate-engine ring:256" 300 bash tests/kvm/migrate.sh \
		ring-overflow
else
	tap_skip "migrate-engine ring" "no dirty ring here (or no $H: make tsan)"
fi
tap_end
