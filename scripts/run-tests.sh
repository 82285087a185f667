#!/usr/bin/env bash
# Runs every test suite and ends with one line CI reads: "N passed, N failed".
#   format  clang-format conformance
#   fuzz  every libFuzzer target for FUZZ_SECONDS (15) each
#   unit  cmocka tests under ASan+UBSan (no KVM)
#   cli   bad input to `cvisor run`
#   kvm   tiny freestanding guests (milliseconds each)
#   toolstack  named guests, control sockets and the cvisor verbs (tiny guests)
#   snapshot  cvisor save / restore with tiny guests, and bad snapshots
#   migrate-cli  cvisor migrate / run --incoming end to end (tests/e2e/migrate.sh)
#   guest-shell  make run on a terminal, to the guest's prompt and poweroff
#   guest-devices  what a Linux guest sees of its machine and devices
#   guest-tap  virtio-net over tap in a network namespace, iperf3
#   guest-lifecycle  a guest's user space across save/restore and migration
#   linux-migrate  the microVM kernel saved, restored and live migrated mid-boot
# SUITES="unit cli" limits the run.
set -u
cd "$(dirname "$0")/.."
SUITES=${SUITES:-format unit fuzz cli kvm toolstack snapshot migrate migrate-cli guest-shell guest-devices guest-tap guest-lifecycle linux-migrate}
total_pass=0
total_fail=0

add() { total_pass=$((total_pass + $1)); total_fail=$((total_fail + $2)); }

# A suite's own last line "<name>: N passed, N failed" carries its counts.
run_suite() {
	local name=$1 log
	shift
	log=$(mktemp)
	echo "=== $name"
	"$@" 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}
	local line
	line=$(grep -E '^[a-z0-9_-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		local p f
		p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
		f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
		add "$p" "$f"
		if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
			echo "FAIL $name: exited $rc"
			add 0 1
		fi
	else
		echo "FAIL $name: no summary line (exit $rc)"
		add 0 1
	fi
	rm -f "$log"
}

unit_suite() {
	local p=0 f=0 t out
	for t in build/tests/unit/test_*; do
		[ -x "$t" ] || continue
		out=$("$t" 2>&1)
		local rc=$?
		printf '%s\n' "$out" | grep -E '^\[ *(PASSED|FAILED|  ERROR) *\]|^\[  FAILED  \]' | sed "s|^|$(basename "$t"): |"
		local tp tf
		tp=$(printf '%s\n' "$out" | sed -nE 's/^\[  PASSED  \] ([0-9]+) test.*/\1/p' | tail -n 1)
		tf=$(printf '%s\n' "$out" | sed -nE 's/^\[  FAILED  \] ([0-9]+) test.*/\1/p' | tail -n 1)
		p=$((p + ${tp:-0}))
		f=$((f + ${tf:-0}))
		if [ "$rc" != 0 ] && [ -z "$tf" ]; then
			echo "FAIL $(basename "$t"): exited $rc"
			printf '%s\n' "$out" | tail -n 20
			f=$((f + 1))
		fi
	done
	echo "unit: $p passed, $f failed"
	[ "$f" = 0 ]
}

for s in $SUITES; do
	case $s in
	format) run_suite format bash scripts/check-format.sh ;;
	unit) run_suite unit unit_suite ;;
	fuzz) run_suite fuzz bash scripts/run-fuzz.sh "${FUZZ_SECONDS:-15}" build/fuzz/fuzz_* ;;
	cli) run_suite cli bash tests/e2e/cli.sh ;;
	kvm) run_suite kvm bash tests/kvm/run.sh ;;
	toolstack) run_suite toolstack bash tests/e2e/toolstack.sh ;;
	snapshot) run_suite snapshot bash tests/e2e/snapshot.sh ;;
	migrate) run_suite migrate-engine bash tests/kvm/migrate.sh ;;
	migrate-cli) run_suite migrate-cli bash tests/e2e/migrate.sh ;;
	guest-*) run_suite "$s" bash "tests/e2e/$s.sh" ;;
	linux-migrate) run_suite linux-migrate bash tests/e2e/linux-migrate.sh ;;
	*) echo "unknown suite $s"; add 0 1 ;;
	esac
done
echo
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
