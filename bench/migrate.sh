#!/usr/bin/env bash
# bench/migrate.sh - live migration on loopback, cvisor and QEMU side by side
# in one run, the same guest ELF for both (tests/kvm/guests/dirtier.c, a
# PVH image QEMU's microvm boots too):
#   idle  256 MiB guest that touched 1 MiB and halted ("mb=1 fill=1");
#   fill  1 GiB guest with 600 MiB of data written, then halted
#         ("mb=600 fill=1": a non-zero word in each page: neither VMM
#         compresses, both send the 4 KiB pages whole).
# For each: total time, downtime, bytes, throughput (bytes / total time),
# and the CPU time both ends used during the migration.
#   cvisor: the CLI, two processes: `cvisor run --name SRC` (in the
#           foreground under /usr/bin/time, so that its CPU time is known
#           after it exits), `cvisor run -d --incoming 127.0.0.1:PORT`, and
#           `cvisor migrate SRC 127.0.0.1:PORT --json`; its own summary
#           (downtime = pause on the source to "running" from the target,
#           measured on the source). CPU: the source's at exit (time) minus
#           its /proc/PID/stat before `migrate`, plus the target's
#           /proc/PID/stat across `migrate`, plus the `cvisor migrate`
#           client's (time: with TLS it runs the session and the relay).
#   QEMU:   qemu-system-x86_64 -M microvm -enable-kvm, `migrate` over QMP to
#           a second QEMU started with -incoming tcp:..., max-bandwidth
#           lifted (100 GiB/s), downtime-limit 50 ms; query-migrate's
#           total-time, downtime, transferred and mbps; CPU from both
#           processes' /proc/PID/stat across the migration.
# With MODE tls (bench/migrate.sh RUNS tls) the fill case runs twice per
# run and QEMU not at all: cvisor plain ("fill") against cvisor through
# TLS 1.3 with a pre-shared key ("fill-tls": --tls-psk on both ends, a key
# made for the run), and the ratio of their median throughputs.
# usage: bench/migrate.sh [RUNS] [qemu|tls]   (default 3 qemu; prints every run and medians)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
RUNS=${1:-3}
MODE=${2:-qemu}
OUT=build/bench/migrate
mkdir -p "$OUT"
make -s build/cvisor tiny >/dev/null || exit 1
ELF=build/tests/kvm/dirtier.elf
CVISOR=build/cvisor
export CVISOR_RUN_DIR=$OUT/run
mkdir -p "$CVISOR_RUN_DIR"
PORT=$((30000 + $$ % 20000))
QPIDS=()

cleanup() {
	local p
	for p in "${QPIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "$CVISOR_RUN_DIR"/*.sock; do
		[ -e "$p" ] && timeout 5 "$CVISOR" kill "$(basename "$p" .sock)" >/dev/null 2>&1
	done
}
trap cleanup EXIT

# wait_log FILE TEXT: up to 120 s (filling 600 MiB takes seconds here).
wait_log() {
	for _ in $(seq 1200); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# CPU seconds a live process has used (utime + stime).
cpu_of() {
	awk -v t="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.3f", ($12 + $13) / t }' \
		"/proc/$1/stat"
}

pid_of() {
	"$CVISOR" info "$1" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])'
}

# Result lines: "VMM CASE total_ms downtime_ms bytes gbit_s cpu_s" (cpu_s: the
# CPU time both ends used during the migration). Arguments after the
# third go to both `run --incoming` and `migrate` (--tls-psk FILE).
cvisor_cli() {
	local name=$1 mem=$2 cmd=$3 s=bsrc$$ d=bdst$$ line tpid spid dpid s0 d0 d1
	local sec=("${@:4}")
	PORT=$((PORT + 1))
	rm -f "$OUT/$s.time" "$OUT/$s.log"
	/usr/bin/time -f '%U %S' -o "$OUT/$s.time" "$CVISOR" run --name "$s" --kernel "$ELF" \
		--memory "$mem" --cmdline "$cmd" </dev/null >"$OUT/$s.log" 2>&1 &
	tpid=$!
	if wait_log "$OUT/$s.log" "dirtier: filled" &&
		"$CVISOR" run -d --name "$d" --incoming "127.0.0.1:$PORT" "${sec[@]}" &&
		spid=$(pid_of "$s") && dpid=$(pid_of "$d") &&
		s0=$(cpu_of "$spid") && d0=$(cpu_of "$dpid"); then
		line=$(/usr/bin/time -f '%U %S' -o "$OUT/$s.ctime" "$CVISOR" migrate "$s" \
			"127.0.0.1:$PORT" --json "${sec[@]}" | tail -n 1)
		d1=$(cpu_of "$dpid")
	fi
	# The source ends once migrated; after a failure it is still there.
	timeout 10 "$CVISOR" kill "$s" >/dev/null 2>&1
	wait "$tpid"
	timeout 10 "$CVISOR" kill "$d" >/dev/null 2>&1
	case ${line:-} in
	*'"migrated"'*) ;;
	*) echo "cvisor $name: the migration failed: ${line:-no answer}" >&2; return 1 ;;
	esac
	python3 -c '
import json, sys
m = json.loads(sys.argv[2])["migrated"]
u, s = map(float, open(sys.argv[3]).read().split()[-2:])
cu, cs = map(float, open(sys.argv[7]).read().split()[-2:])
cpu = u + s - float(sys.argv[4]) + float(sys.argv[6]) - float(sys.argv[5]) + cu + cs
print("cvisor %s %.1f %.3f %d %.2f %.3f" % (sys.argv[1], m["total_ms"], m["downtime_ms"],
      m["bytes"], m["bytes"] * 8 / m["total_ms"] / 1e6, cpu))' \
		"$name" "$line" "$OUT/$s.time" "$s0" "$d0" "$d1" "$OUT/$s.ctime"
}

qemu_run() {
	local name=$1 mem=$2 cmd=$3 q=$OUT/q$$
	local base=(qemu-system-x86_64 -M microvm -enable-kvm -cpu host -m "$mem" -nodefaults
		-no-user-config -display none -kernel "$ELF" -append "$cmd")
	PORT=$((PORT + 1))
	rm -f "$q".*
	"${base[@]}" -serial "file:$q.src.log" -qmp "unix:$q.src.qmp,server,nowait" 2>"$q.src.err" &
	QPIDS+=($!)
	"${base[@]}" -serial "file:$q.dst.log" -qmp "unix:$q.dst.qmp,server,nowait" \
		-incoming "tcp:127.0.0.1:$PORT" 2>"$q.dst.err" &
	QPIDS+=($!)
	wait_log "$q.src.log" "dirtier: filled" || return
	python3 - "$q.src.qmp" "$PORT" "$name" "${QPIDS[@]}" <<'EOF'
import json, os, socket, sys, time
def cpu(pids):
    t = 0
    for p in pids:
        with open("/proc/%s/stat" % p) as f:
            v = f.read().rsplit(")", 1)[1].split()
        t += int(v[11]) + int(v[12])
    return t / os.sysconf("SC_CLK_TCK")
s = socket.socket(socket.AF_UNIX)
for _ in range(100):
    try:
        s.connect(sys.argv[1]); break
    except OSError:
        time.sleep(0.05)
f = s.makefile("rw")
json.loads(f.readline())
def cmd(c, **a):
    f.write(json.dumps({"execute": c, "arguments": a}) + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            return r
cmd("qmp_capabilities")
cmd("migrate-set-parameters", **{"max-bandwidth": 100 << 30, "downtime-limit": 50})
c0 = cpu(sys.argv[4:])
cmd("migrate", uri="tcp:127.0.0.1:" + sys.argv[2])
while True:
    r = cmd("query-migrate")["return"]
    if r.get("status") in ("completed", "failed"):
        break
    time.sleep(0.01)
c1 = cpu(sys.argv[4:])
ram = r["ram"]
print("qemu %s %.1f %.3f %d %.2f %.3f" % (sys.argv[3], r["total-time"], r["downtime"],
      ram["transferred"], ram["transferred"] * 8 / r["total-time"] / 1e6, c1 - c0))
EOF
	kill "${QPIDS[@]}" 2>/dev/null
	wait "${QPIDS[@]}" 2>/dev/null
	QPIDS=()
}

# Not a pipe into grep -q: with pipefail, the usage's exit status 2 (or a
# SIGPIPE) would fail the test although the command is there.
case $("$CVISOR" migrate 2>&1) in
*"usage: cvisor migrate"*) ;;
*) echo "bench/migrate.sh: $CVISOR has no migrate command (make build/cvisor)" >&2; exit 1 ;;
esac
echo "cvisor: the CLI (cvisor migrate -> cvisor run --incoming), two processes"
echo "host: $(nproc) CPUs, $(uname -r), $(qemu-system-x86_64 --version | head -n 1)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
res=$OUT/results.txt
: >"$res"
if [ "$MODE" = tls ]; then
	(umask 077 && printf 'bench:%s\n' "$(openssl rand -hex 32)" >"$OUT/bench.psk") || exit 1
	for r in $(seq "$RUNS"); do
		cvisor_cli fill 1G "mb=600 fill=1" | tee -a "$res"
		cvisor_cli fill-tls 1G "mb=600 fill=1" --tls-psk "$OUT/bench.psk" | tee -a "$res"
		echo "-- run $r done"
	done
	echo "== medians over $RUNS runs: total ms, downtime ms, MB sent, Gbit/s, CPU s (both ends)"
	for c in fill fill-tls; do
		awk -v c=$c 'BEGIN { n = 0 }
			$1 == "cvisor" && $2 == c { t[n] = $3; d[n] = $4; b[n] = $5; g[n] = $6; u[n] = $7; n++ }
			function med(a, n,   i, j, x) { for (i = 0; i < n; i++) for (j = i + 1; j < n; j++)
				if (a[j] + 0 < a[i] + 0) { x = a[i]; a[i] = a[j]; a[j] = x } return a[int(n / 2)] }
			END { if (n) printf "cvisor %-8s total %8.1f ms  downtime %7.3f ms  %7.1f MB  %5.2f Gbit/s  cpu %s s  (%d runs)\n",
				c, med(t, n), med(d, n), med(b, n) / 1e6, med(g, n), med(u, n), n }' "$res"
	done
	awk '$1 == "cvisor" { g[$2, n[$2]++] = $6 }
		function med(c,   i, j, x, a, k) { k = n[c]; for (i = 0; i < k; i++) a[i] = g[c, i]
			for (i = 0; i < k; i++) for (j = i + 1; j < k; j++)
				if (a[j] + 0 < a[i] + 0) { x = a[i]; a[i] = a[j]; a[j] = x } return a[int(k / 2)] }
		END { if (n["fill"] && n["fill-tls"] && med("fill") > 0)
			printf "TLS-PSK / plain throughput: %.2fx\n", med("fill-tls") / med("fill") }' "$res"
	echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
	exit 0
fi
for r in $(seq "$RUNS"); do
	for c in idle fill; do
		if [ $c = idle ]; then m=256M a="mb=1 fill=1"; else m=1G a="mb=600 fill=1"; fi
		cvisor_cli $c $m "$a" | tee -a "$res"
		qemu_run $c $m "$a" | tee -a "$res"
	done
	echo "-- run $r done"
done
echo "== medians over $RUNS runs: total ms, downtime ms, MB sent, Gbit/s, CPU s (both ends)"
for v in cvisor qemu; do
	for c in idle fill; do
		awk -v v=$v -v c=$c 'BEGIN { n = 0 }
			$1 == v && $2 == c { t[n] = $3; d[n] = $4; b[n] = $5; g[n] = $6; u[n] = $7; n++ }
			function med(a, n,   i, j, x) { for (i = 0; i < n; i++) for (j = i + 1; j < n; j++)
				if (a[j] + 0 < a[i] + 0) { x = a[i]; a[i] = a[j]; a[j] = x } return a[int(n / 2)] }
			END { if (n) printf "%-6s %-4s total %8.1f ms  downtime %7.3f ms  %7.1f MB  %5.2f Gbit/s  cpu %s s  (%d runs)\n",
				v, c, med(t, n), med(d, n), med(b, n) / 1e6, med(g, n), med(u, n), n }' "$res"
	done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
