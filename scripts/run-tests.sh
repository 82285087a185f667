#!/usr/bin/env bash
# Runs every test suite and ends with one line CI reads: "N passed, N failed".
#   format  clang-format conformance
#   unit  cmocka tests under ASan+UBSan (no KVM)
#   fuzz  every libFuzzer target for FUZZ_SECONDS (10) each
#   tsan  the unit tests and the migration engine under ThreadSanitizer
#   cli   bad input to `cvisor run`
#   kvm   tiny freestanding guests (milliseconds each)
#   toolstack  named guests, control sockets and the cvisor verbs (tiny guests)
#   chapi  Cloud Hypervisor's REST API (cloud-hypervisor --api-socket) over curl (tiny guests; vm.add-net with the kit's Linux guest)
#   jail  --jail: the jailed monitor, the toolstack against it, the keeper
#   snapshot  cvisor save / restore with tiny guests, and bad snapshots
#   clones  500 guests from one snapshot (restore --count), resource limits
#   hostile  the hostile-input campaign under ASan/UBSan (mutated snapshots,
#            special files; tests/e2e/hostile.sh)
#   migrate  the migration engine in one process (tests/kvm/migrate.sh)
#   migrate-cli  cvisor migrate / run --incoming end to end (tests/e2e/migrate.sh)
#   guest-shell  make run on a terminal, to the guest's prompt and poweroff
#   guest-devices  what a Linux guest sees of its machine and devices
#   guest-tap  virtio-net over tap in a network namespace, iperf3
#   guest-rate  disk and network rate limits as fio and iperf3 in a guest measure them
#   guest-lifecycle  a guest's user space across save/restore and migration
#   guest-console  virtio-console and the 8250 on ptys: typed into, saved, restored
#   linux-migrate  the microVM kernel saved, restored and live migrated mid-boot
#   firmware  SeaBIOS (--firmware) boots a virtio-blk disk's MBR (tests/e2e/firmware.sh)
#   multiboot multiboot kernels (fw_cfg, isa-debug-exit, modules, SMP), side by side
#             with QEMU pc where installed (tests/e2e/multiboot.sh)
#   libvirt  virsh -c ch:///system of libvirt 9.0 and 11.3 (built from Debian's
#            sources, scripts/libvirt-build.sh, cached per machine) driving cvisor
#            as cloud-hypervisor
# SUITES="unit cli" limits the run.
#
# The output is TAP (version 14, tests/tap.sh): each suite a subtest, its
# own TAP indented, closed by "ok N - SUITE" or "not ok N - SUITE # why".
# The counts are the leaves of every suite (a cmocka test, a kvm case, ...);
# a skipped one counts neither way. Each suite is stopped after its bound
# below (SUITE_TIMEOUT=S sets one for all): "not ok N - SUITE # timed out
# after S s", a failure.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/tap.sh
SUITES=${SUITES:-format unit fuzz tsan cli kvm toolstack chapi jail snapshot clones hostile migrate migrate-cli guest-shell guest-devices guest-tap guest-rate guest-lifecycle guest-console linux-migrate firmware multiboot libvirt}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
fuzzers=(build/fuzz/fuzz_*)

# suite SECONDS NAME CMD...: one suite, bounded by SECONDS unless
# SUITE_TIMEOUT says otherwise.
suite() {
	local secs=${SUITE_TIMEOUT:-$1}
	shift
	tap_sub "$1" "$secs" "${@:2}"
}

echo "TAP version 14"
echo "1..$(wc -w <<<"$SUITES")"
for s in $SUITES; do
	case $s in
	format) suite 300 format bash scripts/check-format.sh ;;
	unit) suite 900 unit bash scripts/run-unit.sh ;;
	fuzz) suite $((${#fuzzers[@]} * (FUZZ_SECONDS + 70) + 60)) fuzz \
		bash scripts/run-fuzz.sh "$FUZZ_SECONDS" "${fuzzers[@]}" ;;
	tsan) suite 2700 tsan bash scripts/run-tsan.sh ;;
	cli) suite 300 cli bash tests/e2e/cli.sh ;;
	kvm) suite 600 kvm bash tests/kvm/run.sh ;;
	toolstack) suite 900 toolstack bash tests/e2e/toolstack.sh ;;
	chapi) suite 600 chapi bash tests/e2e/chapi.sh ;;
	jail) suite 600 jail bash tests/e2e/jail.sh ;;
	snapshot) suite 900 snapshot bash tests/e2e/snapshot.sh ;;
	clones) suite 600 clones bash tests/e2e/clones.sh ;;
	hostile) suite 1200 hostile bash tests/e2e/hostile.sh ;;
	migrate) suite 1200 migrate bash tests/kvm/migrate.sh ;;
	migrate-cli) suite 1200 migrate-cli bash tests/e2e/migrate.sh ;;
	guest-*) suite 2400 "$s" bash "tests/e2e/$s.sh" ;;
	linux-migrate) suite 2400 linux-migrate bash tests/e2e/linux-migrate.sh ;;
	firmware) suite 1200 firmware bash tests/e2e/firmware.sh ;;
	multiboot) suite 1200 multiboot bash tests/e2e/multiboot.sh ;;
	libvirt) suite 2400 libvirt bash tests/e2e/libvirt.sh ;;
	*)
		TAP_N=$((TAP_N + 1))
		TAP_FAIL=$((TAP_FAIL + 1))
		echo "not ok $TAP_N - $s # unknown suite"
		;;
	esac
done
echo "# $TAP_SKIP skipped"
echo
echo "$TAP_PASS passed, $TAP_FAIL failed"
[ "$TAP_FAIL" = 0 ]
