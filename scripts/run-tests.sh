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
#   firmware-grub  SeaBIOS, GRUB and Debian's cloud kernel from a partitioned disk
#                  (about 7 minutes here; a background suite, below)
#   multiboot multiboot kernels (fw_cfg, isa-debug-exit, modules, SMP), side by side
#             with QEMU pc where installed (tests/e2e/multiboot.sh)
#   libvirt  virsh -c ch:///system of libvirt 9.0 and 11.3 (built from Debian's
#            sources, scripts/libvirt-build.sh, cached per machine) driving cvisor
#            as cloud-hypervisor
# SUITES="unit cli" limits the run.
#
# Background suites (BG_SUITES, default "firmware-grub") are each one long
# guest that keeps one core busy for minutes while most suites leave the
# other core partly idle: one in SUITES starts in the background before the
# first suite, and its output is reported at its place in SUITES (with the
# same bound, counted from its start). BG_SUITES= runs every suite in turn.
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
SUITES=${SUITES:-format unit fuzz tsan cli kvm toolstack chapi jail snapshot clones hostile migrate migrate-cli guest-shell guest-devices guest-tap guest-rate guest-lifecycle guest-console linux-migrate firmware multiboot libvirt firmware-grub}
BG_SUITES=${BG_SUITES-firmware-grub}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
fuzzers=(build/fuzz/fuzz_*)

# suite SECONDS NAME CMD...: one suite, bounded by SECONDS unless
# SUITE_TIMEOUT says otherwise.
suite() {
	local secs=${SUITE_TIMEOUT:-$1}
	shift
	tap_sub "$1" "$secs" "${@:2}"
}

# bg_start SECONDS NAME CMD...: run a background suite now, its output and
# status kept in $BG_DIR for bg_replay.
BG_DIR=$(mktemp -d /tmp/cvisor-bg.XXXXXX)
BG_PIDS=()
trap 'for p in "${BG_PIDS[@]}"; do kill -- "-$p" 2>/dev/null; done; rm -rf "$BG_DIR"' EXIT
bg_start() {
	local secs=${SUITE_TIMEOUT:-$1} name=$2
	shift 2
	set -m
	(
		timeout -k 10 "$secs" "$@" </dev/null >"$BG_DIR/$name.out" 2>&1
		echo $? >"$BG_DIR/$name.rc.tmp" && mv "$BG_DIR/$name.rc.tmp" "$BG_DIR/$name.rc"
	) &
	BG_PIDS+=($!)
	set +m
}

# bg_collect SECONDS NAME CMD...: a background suite's subtest at its
# place: wait for it, then its output and status, as tap_sub reads a
# suite's own (its bound ran from its start; 60 s more to collect it).
bg_collect() {
	suite $(($1 + 60)) "$2" bash -c 'while [ ! -e "$1/$2.rc" ]; do sleep 1; done
		cat "$1/$2.out"; exit "$(cat "$1/$2.rc")"' bg "$BG_DIR" "$2"
}

# run_suite FN NAME: the suite's bound and command, given to FN (suite;
# bg_start and bg_collect for a background suite).
run_suite() {
	local fn=$1 s=$2
	case $s in
	format) "$fn" 300 format bash scripts/check-format.sh ;;
	unit) "$fn" 900 unit bash scripts/run-unit.sh ;;
	fuzz) "$fn" $((${#fuzzers[@]} * (FUZZ_SECONDS + 70) + 60)) fuzz \
		bash scripts/run-fuzz.sh "$FUZZ_SECONDS" "${fuzzers[@]}" ;;
	tsan) "$fn" 2700 tsan bash scripts/run-tsan.sh ;;
	cli) "$fn" 300 cli bash tests/e2e/cli.sh ;;
	kvm) "$fn" 600 kvm bash tests/kvm/run.sh ;;
	toolstack) "$fn" 900 toolstack bash tests/e2e/toolstack.sh ;;
	chapi) "$fn" 600 chapi bash tests/e2e/chapi.sh ;;
	jail) "$fn" 600 jail bash tests/e2e/jail.sh ;;
	snapshot) "$fn" 900 snapshot bash tests/e2e/snapshot.sh ;;
	clones) "$fn" 600 clones bash tests/e2e/clones.sh ;;
	hostile) "$fn" 1200 hostile bash tests/e2e/hostile.sh ;;
	migrate) "$fn" 1200 migrate bash tests/kvm/migrate.sh ;;
	migrate-cli) "$fn" 1200 migrate-cli bash tests/e2e/migrate.sh ;;
	guest-*) "$fn" 2400 "$s" bash "tests/e2e/$s.sh" ;;
	linux-migrate) "$fn" 2400 linux-migrate bash tests/e2e/linux-migrate.sh ;;
	firmware) "$fn" 1200 firmware bash tests/e2e/firmware.sh ;;
	multiboot) "$fn" 1200 multiboot bash tests/e2e/multiboot.sh ;;
	libvirt) "$fn" 2400 libvirt bash tests/e2e/libvirt.sh ;;
	firmware-grub) "$fn" 1800 firmware-grub bash tests/e2e/firmware-grub.sh ;;
	*)
		[ "$fn" = suite ] || return 1
		TAP_N=$((TAP_N + 1))
		TAP_FAIL=$((TAP_FAIL + 1))
		echo "not ok $TAP_N - $s # unknown suite"
		;;
	esac
}

bg=" $BG_SUITES "
for s in $SUITES; do
	[[ $bg != *" $s "* ]] || run_suite bg_start "$s" || bg=${bg/ $s / }
done
echo "TAP version 14"
echo "1..$(wc -w <<<"$SUITES")"
for s in $SUITES; do
	if [[ $bg == *" $s "* ]]; then
		run_suite bg_collect "$s"
	else
		run_suite suite "$s"
	fi
done
echo "# $TAP_SKIP skipped"
echo
echo "$TAP_PASS passed, $TAP_FAIL failed"
[ "$TAP_FAIL" = 0 ]
