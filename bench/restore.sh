#!/usr/bin/env bash
# bench/restore.sh - restore to running: the time from starting the restore
# process to the guest's first serial byte after it, for a 256 MiB guest,
# cvisor and QEMU (-M microvm, KVM) in the same run, same guest: the
# counter tiny guest (tests/kvm/guests/counter.c) with spin=1, so that it
# prints all the time and its first byte comes as soon as it runs.
#   cvisor: cvisor save NAME FILE, then   cvisor restore FILE
#   QEMU:   migrate "exec:cat > FILE" in its monitor, then
#           qemu-system-x86_64 ... -incoming "exec:cat FILE"
# runstat (bench/runstat.c) starts each restore RUNS times, times the first
# byte on its stdout, and kills it there (-k). Prints the medians and the
# ratio. SECCOMP=compare also times `cvisor restore --seccomp off` in the
# same run (on is the default) and prints the seccomp overhead; JAIL=compare
# (root) times `cvisor restore --jail` too (runstat's SIGKILL at the first
# byte hits the keeper; the jailed monitor follows it by its parent-death
# signal).
# usage: [SECCOMP=compare] [JAIL=compare] bench/restore.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-20}
OUT=build/bench/restore
rm -rf "$OUT"
mkdir -p "$OUT/run"
gcc -O2 -Wall -o build/bench/runstat bench/runstat.c
make -s build/cvisor tiny
GUEST=build/tests/kvm/counter.elf
export CVISOR_RUN_DIR=$OUT/run
NAME=bench-restore-$$

# --- cvisor: save a running guest ---
build/cvisor run -d --name "$NAME" --kernel "$GUEST" --memory 256M --cmdline spin=1
sleep 1
build/cvisor save "$NAME" "$OUT/cvisor.snap"

# --- QEMU: the same guest, migrated to a file ---
qemu=(qemu-system-x86_64 -M microvm -enable-kvm -m 256 -nographic -nodefaults
	-no-user-config -serial stdio -no-reboot -kernel "$GUEST" -append spin=1)
"${qemu[@]}" -monitor "unix:$OUT/mon.sock,server,nowait" >/dev/null 2>&1 &
qpid=$!
sleep 1
python3 - "$OUT/mon.sock" "$OUT/qemu.state" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(0.2)
def cmd(c):
    s.sendall((c + "\n").encode())
    time.sleep(0.1)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except socket.timeout:
        pass
    return out.decode(errors="replace")
cmd("")
cmd('migrate "exec:cat > %s"' % sys.argv[2])
for _ in range(100):
    r = cmd("info migrate")
    if "Migration status: completed" in r:
        break
    if "failed" in r:
        sys.exit("qemu: migration failed")
else:
    sys.exit("qemu: migration did not complete")
cmd("quit")
EOF
wait "$qpid" || true

echo "snapshot sizes: cvisor $(stat -c %s "$OUT/cvisor.snap") + $(du -k "$OUT/cvisor.snap.mem" | cut -f1) KiB of RAM data, qemu $(($(stat -c %s "$OUT/qemu.state") / 1024)) KiB"
# Warm the page cache for both.
build/bench/runstat -n 2 -k -- build/cvisor restore "$OUT/cvisor.snap" >/dev/null
build/bench/runstat -n 2 -k -- "${qemu[@]}" -incoming "exec:cat $OUT/qemu.state" >/dev/null 2>&1

c=$(build/bench/runstat -n "$RUNS" -k -- build/cvisor restore "$OUT/cvisor.snap")
q=$(build/bench/runstat -n "$RUNS" -k -- "${qemu[@]}" -incoming "exec:cat $OUT/qemu.state" 2>/dev/null)
echo "cvisor: $c"
echo "qemu:   $q"
get() { sed -nE "s/.*$1=([0-9.]+).*/\1/p" <<<"$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo "restore to running (256 MiB): cvisor $(get first_byte_ms "$c") ms, qemu $(get first_byte_ms "$q") ms, ratio $(ratio "$(get first_byte_ms "$c")" "$(get first_byte_ms "$q")") (target: <= 5 ms)"
echo "restore peak RSS:             cvisor $(get maxrss_kib "$c") KiB, qemu $(get maxrss_kib "$q") KiB"
if [ "${SECCOMP:-}" = compare ]; then
	o=$(build/bench/runstat -n "$RUNS" -k -- build/cvisor restore "$OUT/cvisor.snap" --seccomp off)
	echo "cvisor --seccomp off: $o"
	for k in first_byte_ms maxrss_kib; do
		echo "seccomp on/off $k: $(get $k "$c") / $(get $k "$o") = $(ratio "$(get $k "$c")" "$(get $k "$o")")"
	done
fi
if [ "${JAIL:-}" = compare ]; then
	j=$(build/bench/runstat -n "$RUNS" -k -- build/cvisor restore "$OUT/cvisor.snap" --jail)
	echo "cvisor --jail: $j"
	for k in first_byte_ms maxrss_kib; do
		echo "jail on/off $k: $(get $k "$j") / $(get $k "$c") = $(ratio "$(get $k "$j")" "$(get $k "$c")")"
	done
fi
