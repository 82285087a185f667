#!/usr/bin/env bash
# tests/e2e/migrate.sh - live migration between two cvisor monitors with
# tiny guests (tests/kvm/guests): on loopback and between two network
# namespaces joined by a veth pair; the counter goes on without a reset and
# guest memory checksums agree; a guest that dirties memory faster than a
# throttled link converges by force or gives up, as asked; the link cut in
# each phase, a refusing target and a corrupt stream leave the source
# running; storage migration copies the disk byte for byte. Hostile peers:
# a stream patched to name a host file, a recorded stream replayed, and
# garbage are refused, and the target waits on for a real source.
#
# The CLI it drives (wired by src/main.c and src/ctl, see the report):
#   cvisor run -d --name N --incoming HOST:PORT [--storage-dir DIR]
#       [--disk PATH]... [--net SPEC]... [--vsock SPEC]
#       returns once the monitor listens; the guest comes from the stream,
#       its host resources from these flags. A connection that fails the
#       handshake is dropped with one line in N.log and the monitor waits
#       on; a migration that fails later ends it with one line there.
#   cvisor migrate N HOST:PORT [--downtime-ms MS] [--with-storage] [--json]
#       [--no-force] [--max-rounds N] [--max-bandwidth RATE] [--verify]
#       0 and a "migrated to ..." line when the guest runs on the target
#       (the source monitor then ends); 1 and one line otherwise, the guest
#       still running on the source.
#   cvisor ctl N '{"cmd":"memsum"}' -> {"ok":true,"memsum":"<16 hex digits>"}
#   cvisor ctl N '{"cmd":"peek","gpa":A,"len":8}' -> {...,"value":U64}
# Prints TAP (tests/lib.sh).
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
. tests/named.sh

P=mg$$- # guest name prefix
NS_SRC=cvm-src$$
NS_DST=cvm-dst$$
MAGIC=8247338268279133763 # the counter's "CVCountr" at 0x5008
PORT=$((20000 + $$ % 20000))

cleanup() {
	named_cleanup
	ip netns del "$NS_SRC" 2>/dev/null
	ip netns del "$NS_DST" 2>/dev/null
}
trap cleanup EXIT

next_port() { PORT=$((PORT + 1)); }

# incoming NAME ADDR [args...]: a detached target listening on ADDR.
incoming() {
	local name=$1 addr=$2
	shift 2
	run_d incoming "$name" --incoming "$addr" "$@"
}

# state NAME: what info says the guest is doing ("incoming" while waiting).
state() {
	"$CVISOR" info "$1" --json 2>/dev/null | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p'
}

# proxy PORT TARGET_PORT ARGS...: tests/e2e/migproxy.py in the background
# (its pid in ppid), once it listens.
proxy() {
	# Emptied here first: the background job's own truncation may come
	# after the first grep, which would then see the last proxy's "ready".
	: >"$T_TMP/proxy.out"
	python3 tests/e2e/migproxy.py proxy "$@" >"$T_TMP/proxy.out" 2>&1 &
	ppid=$!
	for _ in $(seq 100); do grep -q ready "$T_TMP/proxy.out" && return 0; sleep 0.05; done
	return 1
}

# dropped NAME N: within 30 s the target's log holds more than N lines of
# dropped connections; the last one is printed.
dropped() {
	local i
	for i in $(seq 300); do
		if [ "$(grep -c "dropped the connection" "$CVISOR_RUN_DIR/$1.log")" -gt "$2" ]; then
			grep "dropped the connection" "$CVISOR_RUN_DIR/$1.log" | tail -n 1
			return 0
		fi
		sleep 0.1
	done
	return 1
}

memsum() {
	"$CVISOR" ctl "$1" '{"cmd":"memsum"}' 2>/dev/null | sed -n 's/.*"memsum":"\([0-9a-f]*\)".*/\1/p'
}

# advances NAME WHAT: the u64 at 0x5000 (count or passes) grows within 20 s.
advances() {
	local a b
	a=$(peek "$1" 20480)
	if [ -n "$a" ] && b=$(peek_above "$1" 20480 "$a"); then
		t_pass "$2 ($a -> $b)"
		return 0
	fi
	t_fail "$2" "the guest's count stays at '$a' ('$b')"
	return 1
}

# migrated SRC DST LAST WHAT: the source is gone, the target counts on from
# the source's last count without a restart, in its log and in memory.
# That count is read from the source's log once its monitor has ended: read
# when `cvisor migrate` returns, the monitor may not have written its last
# console lines yet (LAST, read then, is only a floor).
migrated() {
	local src=$1 dst=$2 last=$3 what=$4 first final
	if ! gone "$src"; then
		t_fail "$what" "the source monitor still runs after the migration"
		return 1
	fi
	final=$(last_count "$src")
	if [ -z "$final" ] || [ "$final" -lt "$last" ]; then
		t_fail "$what" "the source's log ends at count '$final', below $last seen earlier; the log: $(ls -l "$CVISOR_RUN_DIR/$src.log" 2>&1), ends $(tail -c 160 "$CVISOR_RUN_DIR/$src.log" 2>&1 | od -c | tail -n 4 | tr -s ' ' | tr '\n' '|')"
		return 1
	fi
	last=$final
	if ! wait_count "$dst" $((last + 3)); then
		t_fail "$what" "no count past $((last + 3)) on the target: $(tail -c 200 "$CVISOR_RUN_DIR/$dst.log")"
		return 1
	fi
	first=$(first_count "$dst")
	if [ -z "$first" ] || [ "$first" -le "$last" ] || [ "$first" -gt $((last + 5)) ] ||
		grep -q '^counter:' "$CVISOR_RUN_DIR/$dst.log"; then
		t_fail "$what" "first count on the target $first, last on the source $last (or a restart)"
		return 1
	fi
	if [ "$(peek "$dst" 20488)" != "$MAGIC" ]; then
		t_fail "$what" "the counter's magic is not at 0x5008 on the target"
		return 1
	fi
	t_pass "$what: count $last -> $first"
}

need_kvm migrate
# Until the CLI is wired (cvisor migrate, run --incoming), say so and skip.
if ! "$CVISOR" migrate 2>&1 | grep -q "usage: cvisor migrate"; then
	t_skip_suite migrate "this cvisor has no migrate command yet"
fi
need_guests migrate counter dirtier blkcount

# ---- loopback, running guest, the target verifying a RAM checksum ----
A=${P}a A2=${P}a2
next_port
if start "$A" counter --memory 128M && wait_count "$A" 5 && incoming "$A2" "127.0.0.1:$PORT"; then
	t_run 60 "$CVISOR" migrate "$A" "127.0.0.1:$PORT" --verify
	last=$(last_count "$A")
	if [ "$T_RC" = 0 ] && printf '%s' "$T_OUT" | grep -Eq "^migrated to 127.0.0.1:$PORT in [0-9.]+ s: .* downtime [0-9.]+ ms"; then
		t_pass "migrate on loopback: $T_OUT"
		migrated "$A" "$A2" "$last" "the counter goes on on the target"
	else
		t_fail "migrate on loopback" "exit $T_RC: $T_OUT $T_ERR"
	fi
	# And back again, with --json: progress lines, then the summary.
	A3=${P}a3
	next_port
	if incoming "$A3" "127.0.0.1:$PORT"; then
		t_run 60 "$CVISOR" migrate "$A2" "127.0.0.1:$PORT" --json
		last=$(last_count "$A2")
		if [ "$T_RC" = 0 ] && printf '%s\n' "$T_OUT" | grep -q '^{"progress":{"event":"round"' &&
			printf '%s\n' "$T_OUT" | tail -n 1 | grep -q '^{"ok":true,"migrated":{"total_ms":'; then
			t_pass "migrate --json: $(printf '%s\n' "$T_OUT" | wc -l) lines"
			migrated "$A2" "$A3" "$last" "a second migration, back"
		else
			t_fail "migrate --json" "exit $T_RC: $T_OUT $T_ERR"
		fi
	fi
	timeout 10 "$CVISOR" kill "$A3" >/dev/null 2>&1
fi

# ---- a paused guest: the RAM checksum before equals the one after ----
B=${P}b B2=${P}b2
next_port
if start "$B" counter --memory 64M && wait_count "$B" 3 && incoming "$B2" "127.0.0.1:$PORT"; then
	"$CVISOR" pause "$B" >/dev/null
	before=$(memsum "$B")
	t_run 60 "$CVISOR" migrate "$B" "127.0.0.1:$PORT"
	after=$(memsum "$B2")
	state=$("$CVISOR" info "$B2" --json 2>/dev/null | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p')
	if [ "$T_RC" = 0 ] && [ -n "$before" ] && [ "$before" = "$after" ] && [ "$state" = paused ]; then
		t_pass "paused guest: memory checksum $before on both ends, still paused"
	else
		t_fail "paused guest" "exit $T_RC ($T_ERR); checksum '$before' -> '$after'; state '$state'"
	fi
	"$CVISOR" resume "$B2" >/dev/null
	advances "$B2" "the paused guest counts on after resume"
	timeout 10 "$CVISOR" kill "$B2" >/dev/null 2>&1
fi

# ---- --irqchip split: the target builds cvisor's IOAPIC from the CONFIG
# the source sends, and the guest counts on ----
E=${P}e E2=${P}e2
next_port
if start "$E" counter --memory 64M --irqchip split && wait_count "$E" 3 &&
	incoming "$E2" "127.0.0.1:$PORT"; then
	t_run 60 "$CVISOR" migrate "$E" "127.0.0.1:$PORT"
	last=$(last_count "$E")
	if [ "$T_RC" != 0 ]; then
		t_fail "migrate a --irqchip split guest" "exit $T_RC: $T_ERR"
	elif migrated "$E" "$E2" "${last:-0}" "migrate a --irqchip split guest"; then
		if "$CVISOR" info "$E2" 2>/dev/null | grep -q '^device .*mmio 0xfec00000 .*ioapic$'; then
			t_pass "the migrated split guest runs on cvisor's IOAPIC"
		else
			t_fail "migrated split guest" "cvisor info lists no ioapic device on the target"
		fi
	fi
	timeout 10 "$CVISOR" kill "$E2" >/dev/null 2>&1
fi

# ---- where the target runs the guest: its own flags ----
# The source's limits carry over unless the target gives its own; its host
# CPUs do not (they are another host's): only the target's --cpu-affinity.
if [ "$(nproc)" -ge 2 ]; then
	C=${P}p C2=${P}p2
	next_port
	if start "$C" counter --memory 64M --cpu-cap 30 --cpu-weight 200 --cpu-affinity 1 &&
		wait_count "$C" 2 &&
		incoming "$C2" "127.0.0.1:$PORT" --cpu-affinity 0 --cpu-weight 300; then
		t_run 60 "$CVISOR" migrate "$C" "127.0.0.1:$PORT"
		info=$("$CVISOR" info "$C2" --json 2>/dev/null)
		if [ "$T_RC" = 0 ] && grep -q '"cpu_cap":30,' <<<"$info" &&
			grep -q '"cpu_weight":300,' <<<"$info" &&
			grep -q '"cpu_affinity":"0"' <<<"$info" &&
			grep -q '"vcpu":\[{"id":0,"affinity":"0"' <<<"$info"; then
			t_pass "the target's placement: cap carried, weight and CPUs its own"
		else
			t_fail "the target's placement" "exit $T_RC ($T_ERR): $info"
		fi
		timeout 10 "$CVISOR" kill "$C2" >/dev/null 2>&1
	fi
else
	t_skip "the target's placement" "needs 2 host CPUs, this host has $(nproc)"
fi
next_port
t_run 10 "$CVISOR" run -d --name "${P}bad" --incoming "127.0.0.1:$PORT" --cpu-affinity 1000
t_expect_err "run --incoming with a CPU this host lacks" 2 "CPU 1000 is not available"
t_run 10 "$CVISOR" run --incoming "127.0.0.1:$PORT" --cpu-cap nope
t_expect_err "run --incoming with a bad --cpu-cap" 2 "cpu-cap"

# ---- two network namespaces joined by a veth pair ----
if ip netns add "$NS_SRC" 2>/dev/null && ip netns add "$NS_DST" 2>/dev/null &&
	ip link add "vs$$" netns "$NS_SRC" type veth peer name "vd$$" netns "$NS_DST" 2>/dev/null; then
	ip -n "$NS_SRC" addr add 10.200.0.1/24 dev "vs$$"
	ip -n "$NS_DST" addr add 10.200.0.2/24 dev "vd$$"
	ip -n "$NS_SRC" link set "vs$$" up
	ip -n "$NS_DST" link set "vd$$" up
	ip -n "$NS_SRC" link set lo up
	ip -n "$NS_DST" link set lo up
	N=${P}n N2=${P}n2
	next_port
	t_run 10 ip netns exec "$NS_SRC" "$CVISOR" run -d --name "$N" --kernel "$GUESTS/counter.elf" --memory 64M
	track "$N"
	t_run 10 ip netns exec "$NS_DST" "$CVISOR" run -d --name "$N2" --incoming "10.200.0.2:$PORT" --insecure
	track "$N2"
	# The client connects (and passes the socket to the monitor): from
	# the source's namespace.
	if wait_count "$N" 3; then
		t_run 60 ip netns exec "$NS_SRC" "$CVISOR" migrate "$N" "10.200.0.2:$PORT" --verify --insecure
		last=$(last_count "$N")
		if [ "$T_RC" = 0 ]; then
			t_pass "migrate across namespaces over veth: $T_OUT"
			migrated "$N" "$N2" "$last" "the counter goes on in the other namespace"
		else
			t_fail "migrate across namespaces" "exit $T_RC: $T_ERR"
		fi
	fi
	timeout 10 "$CVISOR" kill "$N2" >/dev/null 2>&1
else
	t_skip "network namespaces" "cannot create namespaces or a veth pair (not root?)"
fi

# ---- a guest dirtying memory faster than a throttled link ----
D=${P}d D2=${P}d2
next_port
if start "$D" dirtier --memory 128M --cmdline "mb=32 every=0" && sleep 1 && incoming "$D2" "127.0.0.1:$PORT"; then
	# A 1 ms target: only a dirtier that stopped altogether (a starved vCPU
	# on a loaded host dirties less) could let the rest fit.
	t_run 120 "$CVISOR" migrate "$D" "127.0.0.1:$PORT" --max-bandwidth 8M --max-rounds 3 --no-force --downtime-ms 1
	if [ "$T_RC" = 1 ] && printf '%s' "$T_ERR" | grep -q "cannot meet the downtime target of 1 ms"; then
		t_pass "--no-force gives up: $T_ERR"
	else
		t_fail "--no-force gives up" "exit $T_RC: $T_OUT $T_ERR"
	fi
	[ -e "$CVISOR_RUN_DIR/$D.sock" ] && advances "$D" "the dirtier runs on at the source"
	gone "$D2" || t_fail "the target of a given-up migration" "its monitor still runs"
	next_port
	if incoming "$D2" "127.0.0.1:$PORT"; then
		t_run 120 "$CVISOR" migrate "$D" "127.0.0.1:$PORT" --max-bandwidth 8M --max-rounds 3 --downtime-ms 1
		if [ "$T_RC" = 0 ] && printf '%s' "$T_OUT" | grep -q "forced"; then
			t_pass "forced convergence: $T_OUT"
			gone "$D" && advances "$D2" "the dirtier runs on at the target"
		else
			t_fail "forced convergence" "exit $T_RC: $T_OUT $T_ERR"
		fi
	fi
	timeout 10 "$CVISOR" kill "$D2" >/dev/null 2>&1
fi

# ---- a target that stops reading: the source keeps serving its guest ----
# The target is stopped (SIGSTOP) in the middle of round 0 (1.5 GiB): the
# source's socket fills, and while it waits its event loop still answers
# info, and kill ends the migration at once.
H=${P}h H2=${P}h2
next_port
if start "$H" dirtier --memory 2G --cmdline "mb=1500 fill=1" &&
	wait_log "$H" "dirtier: filled" 120 && incoming "$H2" "127.0.0.1:$PORT"; then
	hpid=$(pid_of "$H2")
	"$CVISOR" migrate "$H" "127.0.0.1:$PORT" --json >"$T_TMP/h.out" 2>"$T_TMP/h.err" &
	mpid=$!
	for _ in $(seq 500); do
		grep -q '"event":"tick"' "$T_TMP/h.out" && break
		sleep 0.02
	done
	kill -STOP "$hpid"
	if grep -q '"migrated"' "$T_TMP/h.out"; then
		t_skip "a target that stops reading" "round 0 ended before the target could be stopped"
	else
		sleep 1
		# Caps well inside the source's 30 s send-stall timeout.
		t_run 10 "$CVISOR" info "$H"
		info_rc=$T_RC
		t_run 10 "$CVISOR" kill "$H"
		wait "$mpid"
		rc=$?
		if [ "$info_rc" = 0 ] && [ "$T_RC" = 0 ] && [ "$rc" = 1 ] &&
			grep -q "the guest stopped during the migration" "$T_TMP/h.err"; then
			t_pass "a target that stops reading: info and kill still served at the source"
		else
			t_fail "a target that stops reading" "info exit $info_rc, kill exit $T_RC, migrate exit $rc: $(cat "$T_TMP/h.err")"
		fi
	fi
	kill -CONT "$hpid" 2>/dev/null
	timeout 10 "$CVISOR" kill "$H2" >/dev/null 2>&1
	timeout 10 "$CVISOR" kill "$H" >/dev/null 2>&1
fi

# ---- a target that does not answer the connect: the same ----
# A listener whose accept queue is full (backlog 0, one connection queued,
# none accepted) drops further SYNs: the connect hangs (in SYN-SENT, seen
# with ss). A monitor asked to connect itself (a request without the
# connection: older clients) must still answer info, and end the
# migration at once on kill; cvisor migrate, which connects in the client,
# gives up after 10 s with one line, the guest untouched.
C=${P}c
next_port
python3 -c '
import socket, sys, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen(0)
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print("ready", flush=True); time.sleep(60)' "$PORT" >"$T_TMP/c.py" 2>&1 &
cpy=$!
for _ in $(seq 100); do grep -q ready "$T_TMP/c.py" && break; sleep 0.05; done
if start "$C" counter --memory 32M && wait_count "$C" 2; then
	t_run 20 "$CVISOR" migrate "$C" "127.0.0.1:$PORT"
	t_expect_err "a connect that hangs: the client gives up" 1 \
		"cannot connect to 127.0.0.1:$PORT: Connection timed out.*the guest keeps running here"
	advances "$C" "a connect that hangs: the source runs on"
	"$CVISOR" ctl "$C" "{\"cmd\":\"migrate\",\"dest\":\"127.0.0.1:$PORT\"}" >"$T_TMP/c.out" 2>"$T_TMP/c.err" &
	mpid=$!
	for _ in $(seq 100); do
		ss -tn state syn-sent "dport = :$PORT" | grep -q "127.0.0.1:$PORT" && break
		sleep 0.05
	done
	syn=$(ss -tn state syn-sent "dport = :$PORT" | grep -c "127.0.0.1:$PORT")
	# Both inside the monitor's 10 s connect timeout, even on a loaded host.
	t_run 4 "$CVISOR" info "$C"
	info_rc=$T_RC
	t_run 4 "$CVISOR" kill "$C"
	wait "$mpid"
	rc=$?
	if [ "$syn" -ge 1 ] && [ "$info_rc" = 0 ] && [ "$T_RC" = 0 ] && [ "$rc" = 1 ] &&
		grep -q "the guest stopped during the migration" "$T_TMP/c.out" "$T_TMP/c.err"; then
		t_pass "a connect that hangs: info and kill still served at the source"
	else
		t_fail "a connect that hangs" "SYN-SENT sockets $syn, info exit $info_rc, kill exit $T_RC, migrate exit $rc: $(cat "$T_TMP/c.err")"
	fi
	timeout 10 "$CVISOR" kill "$C" >/dev/null 2>&1
fi
kill "$cpy" 2>/dev/null
wait "$cpy" 2>/dev/null

# ---- the link cut in each phase: the source runs on ----
# cut NAME WHEN WHAT: migrate the dirtier at 8 MiB/s (or $BW), kill -9 the target
# once WHEN holds for the --json output in $T_TMP/cut.out.
cut() {
	local when=$1 what=$2 S=${P}c$RANDOM T=${P}t$RANDOM pid tpid
	next_port
	start "$S" dirtier --memory 128M --cmdline "mb=24 every=0" || return
	incoming "$T" "127.0.0.1:$PORT" || return
	tpid=$(pid_of "$T")
	"$CVISOR" migrate "$S" "127.0.0.1:$PORT" --json --max-bandwidth "${BW:-8M}" --no-force \
		--max-rounds 30 --downtime-ms "${DT:-50}" >"$T_TMP/cut.out" 2>"$T_TMP/cut.err" &
	pid=$!
	for _ in $(seq 300); do
		eval "$when" && break
		sleep 0.1
	done
	kill -9 "$tpid" 2>/dev/null
	wait "$pid"
	local rc=$? err
	err=$(cat "$T_TMP/cut.err")
	if [ "$rc" = 1 ] && [ "$(printf '%s\n' "$err" | grep -c .)" = 1 ]; then
		t_pass "$what: source says: $err"
	else
		t_fail "$what" "migrate exit $rc: $err"
	fi
	advances "$S" "$what: the source guest runs on"
	timeout 10 "$CVISOR" kill "$S" >/dev/null 2>&1
}
# Round 0 sends 24 MiB: 3 s at 8 MiB/s; the first second is round 0.
cut 'sleep 1; true' "target killed during round 0"
cut 'grep -q "\"round\":1" "$T_TMP/cut.out"' "target killed during a later round"
# A downtime target of 10 s: the final pass (24 MiB at 4 MiB/s, 6 s) is on
# the downtime path, guest paused; kill the target 1 s into it (5 s of room
# for a slow shell on a loaded host).
DT=10000 BW=4M cut 'grep -q "\"round\":0" "$T_TMP/cut.out" && sleep 1' "target killed during the final state"

# ---- a target that refuses: storage without --storage-dir ----
R=${P}r R2=${P}r2
next_port
head -c 1M /dev/urandom >"$T_TMP/r.img"
if start "$R" blkcount --memory 64M --disk "$T_TMP/r.img" && wait_count "$R" 2 &&
	incoming "$R2" "127.0.0.1:$PORT"; then
	t_run 60 "$CVISOR" migrate "$R" "127.0.0.1:$PORT" --with-storage
	if [ "$T_RC" = 1 ] && printf '%s' "$T_ERR" | grep -q "refused: the source sends its disk images: give --storage-dir DIR"; then
		t_pass "a refusing target: $T_ERR"
	else
		t_fail "a refusing target" "exit $T_RC: $T_ERR"
	fi
	c=$(last_count "$R")
	wait_count "$R" $((c + 2)) && t_pass "the refused source counts on" ||
		t_fail "the refused source counts on" "stuck at $c"
	# A refused CONFIG fails the handshake: the target says so and waits on.
	if dropped "$R2" 0 | grep -q "give --storage-dir DIR" && [ "$(state "$R2")" = incoming ]; then
		t_pass "the refusing target says why in one line and waits on"
	else
		t_fail "the refusing target" "state '$(state "$R2")': $(tail -n 2 "$CVISOR_RUN_DIR/$R2.log")"
	fi
	timeout 10 "$CVISOR" kill "$R2" >/dev/null 2>&1
	timeout 10 "$CVISOR" kill "$R" >/dev/null 2>&1
fi

# silent_listener PORT SECS: in the background ($! is its pid), a listener
# on 127.0.0.1:PORT that takes connections and says nothing for SECS
# seconds; returns once it listens.
silent_listener() {
	python3 -c '
import socket, sys, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen(4)
print("ready", flush=True); time.sleep(int(sys.argv[2]))' "$1" "$2" >"$T_TMP/listen-$1" 2>&1 &
	for _ in $(seq 100); do grep -q ready "$T_TMP/listen-$1" && break; sleep 0.05; done
}

# ---- a patched stream names a host file: the target opens only its own ----
# The source's disk is pub.img; a peer in the middle rewrites the CONFIG
# in its HELLO (CRC recomputed) to name sec.img, a root-only file the
# target was not given. The target, given no --disk, refuses the stream
# with the path it names, and sec.img is untouched (the guest writes its
# disk: opened, it would change).
V=${P}v V2=${P}v2
next_port
VPORT=$PORT
next_port
head -c 1M /dev/urandom >"$T_TMP/pub.img"
head -c 1M /dev/urandom >"$T_TMP/sec.img"
chmod 600 "$T_TMP/sec.img"
sec=$(sha256sum <"$T_TMP/sec.img")
if start "$V" blkcount --memory 64M --disk "$T_TMP/pub.img" && wait_count "$V" 2 &&
	incoming "$V2" "127.0.0.1:$VPORT" && proxy "$PORT" "$VPORT" --replace pub.img sec.img; then
	t_run 60 "$CVISOR" migrate "$V" "127.0.0.1:$PORT"
	wait "$ppid"
	line=$(dropped "$V2" 0)
	if [ "$T_RC" = 1 ] && [ "$(sha256sum <"$T_TMP/sec.img")" = "$sec" ] &&
		grep -q "the source's disk 0 ($T_TMP/sec.img): give the target --disk" <<<"$line" &&
		[ "$(state "$V2")" = incoming ]; then
		t_pass "a stream naming a host file is refused, the file untouched: $line"
	else
		t_fail "a patched stream" "migrate exit $T_RC ($T_ERR); state '$(state "$V2")'; sec.img $( [ "$(sha256sum <"$T_TMP/sec.img")" = "$sec" ] && echo unchanged || echo CHANGED); log: $(tail -n 2 "$CVISOR_RUN_DIR/$V2.log")"
	fi
	advances "$V" "the source of the patched stream runs on"
	timeout 10 "$CVISOR" kill "$V2" >/dev/null 2>&1
	# Shared storage: the target names the same image with --disk.
	V3=${P}v3
	next_port
	if incoming "$V3" "127.0.0.1:$PORT" --disk "$T_TMP/pub.img"; then
		t_run 60 "$CVISOR" migrate "$V" "127.0.0.1:$PORT"
		if [ "$T_RC" = 0 ] && gone "$V" && c=$(last_count "$V3") &&
			wait_count "$V3" $((c + 3)) && ! grep -q FAIL "$CVISOR_RUN_DIR/$V3.log"; then
			t_pass "the target's --disk: the guest goes on with the image the target named"
		else
			t_fail "the target's --disk" "exit $T_RC: $T_ERR; $(tail -n 2 "$CVISOR_RUN_DIR/$V3.log")"
		fi
	fi
	timeout 10 "$CVISOR" kill "$V3" >/dev/null 2>&1
	timeout 10 "$CVISOR" kill "$V" >/dev/null 2>&1
fi

# ---- a recorded stream replayed to a fresh target is refused ----
Y=${P}y Y2=${P}y2 Y3=${P}y3
next_port
YPORT=$PORT
next_port
if start "$Y" counter --memory 32M && wait_count "$Y" 2 && incoming "$Y2" "127.0.0.1:$YPORT" &&
	proxy "$PORT" "$YPORT" --record "$T_TMP/rec.bin"; then
	t_run 60 "$CVISOR" migrate "$Y" "127.0.0.1:$PORT"
	wait "$ppid"
	next_port
	if [ "$T_RC" != 0 ]; then
		t_fail "recording a migration" "exit $T_RC: $T_ERR"
	elif incoming "$Y3" "127.0.0.1:$PORT"; then
		out=$(timeout 20 python3 tests/e2e/migproxy.py replay "$PORT" "$T_TMP/rec.bin")
		line=$(dropped "$Y3" 0)
		if grep -q "does not echo this connection's nonce" <<<"$line" &&
			[ "$(state "$Y3")" = incoming ]; then
			t_pass "a replayed stream is refused ($out): $line"
		else
			t_fail "a replayed stream" "state '$(state "$Y3")', $out: $(tail -n 2 "$CVISOR_RUN_DIR/$Y3.log")"
		fi
	fi
	timeout 10 "$CVISOR" kill "$Y3" >/dev/null 2>&1
	timeout 10 "$CVISOR" kill "$Y2" >/dev/null 2>&1
fi

# ---- corrupt streams: the target refuses each, builds nothing, waits on ----
# corrupt WHAT BYTES WANT: send the bytes (python escapes) to target X; its
# log says WANT about the dropped connection, and it still waits.
X=${P}x
next_port
XPORT=$PORT
corrupt() {
	local what=$1 data=$2 want=$3 n line
	n=$(grep -c "dropped the connection" "$CVISOR_RUN_DIR/$X.log")
	python3 -c "
import socket, struct, zlib, sys
s = socket.create_connection(('127.0.0.1', $XPORT))
s.sendall($data)
s.settimeout(5)
try:
    s.recv(4096)
except Exception:
    pass
" 2>/dev/null
	line=$(dropped "$X" "$n")
	if grep -q "$want" <<<"$line" && [ "$(state "$X")" = incoming ]; then
		t_pass "$what: $line"
	else
		t_fail "$what" "state '$(state "$X")'; target log: $(tail -n 2 "$CVISOR_RUN_DIR/$X.log" 2>/dev/null)"
	fi
}
if incoming "$X" "127.0.0.1:$XPORT"; then
	corrupt "garbage refused" "b'GET / HTTP/1.1\\r\\n\\r\\n'" "not a cvisor migration stream"
	corrupt "a bad checksum refused" \
		"(lambda h: h + struct.pack('<I', zlib.crc32(h) ^ 1))(struct.pack('<II', 1, 8) + b'CVIMIGR\\0')" \
		"checksum mismatch"
	corrupt "a foreign version refused" \
		"(lambda h: h + struct.pack('<I', zlib.crc32(h)))(struct.pack('<II', 1, 12) + b'CVIMIGR\\0' + struct.pack('<HH', 9, 0))" \
		"version 9.0 is not supported"
	corrupt "a truncated stream refused" "struct.pack('<II', 1, 100) + b'CVIMIGR'" \
		"closed the connection during the handshake"
	# After all that, a real source.
	X2=${P}x2
	if start "$X2" counter --memory 32M && wait_count "$X2" 2; then
		t_run 60 "$CVISOR" migrate "$X2" "127.0.0.1:$XPORT" --verify
		last=$(last_count "$X2")
		if [ "$T_RC" = 0 ]; then
			t_pass "after refused connections the same target takes a real source"
			migrated "$X2" "$X" "$last" "the counter goes on on the target that refused garbage"
		else
			t_fail "a real source after garbage" "exit $T_RC: $T_ERR"
		fi
	fi
	timeout 10 "$CVISOR" kill "$X" >/dev/null 2>&1
	timeout 10 "$CVISOR" kill "$X2" >/dev/null 2>&1
fi

# ---- TLS 1.3: a PSK, certificates; a wrong key, another CA, no TLS and a
# peer that sends garbage after the handshake are refused, the source runs
# on and the target waits on. Keys and a throwaway CA are made here. ----
# psk FILE: a fresh 32-byte key, mode 0600.
psk() { (umask 077 && printf 'cvisor:%s\n' "$(openssl rand -hex 32)" >"$1"); }
# mkcerts DIR: a CA, and server and client certificates (127.0.0.1) it signed.
mkcerts() {
	local d=$1 who
	mkdir -p "$d" && (cd "$d" &&
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
			-subj "/CN=cvisor test CA ${d##*/}" -keyout ca-key.pem -out ca-cert.pem &&
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext &&
		for who in server client; do
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$who" \
				-keyout "$who-key.pem" -out "$who.csr" &&
				openssl x509 -req -in "$who.csr" -CA ca-cert.pem -CAkey ca-key.pem \
					-CAcreateserial -days 2 -extfile san.ext -out "$who-cert.pem" || return 1
		done) >/dev/null 2>&1
}
# refused WHAT SRC TARGET WANT [migrate args...]: the migration fails with
# one line matching WANT, the source counts on, the target logged one
# dropped connection and still waits.
refused() {
	local what=$1 src=$2 dst=$3 want=$4 n
	shift 4
	n=$(grep -c "dropped the connection" "$CVISOR_RUN_DIR/$dst.log")
	t_run 60 "$CVISOR" migrate "$src" "127.0.0.1:$PORT" "$@"
	t_expect_err "$what: the migration fails with one line" 1 "$want"
	if dropped "$dst" "$n" >/dev/null && [ "$(state "$dst")" = incoming ]; then
		t_pass "$what: the target waits on ($(dropped "$dst" "$n"))"
	else
		t_fail "$what: the target waits on" "state '$(state "$dst")': $(tail -n 2 "$CVISOR_RUN_DIR/$dst.log")"
	fi
	advances "$src" "$what: the source runs on"
}
if ! command -v openssl >/dev/null; then
	t_skip "TLS migration" "no openssl command to make keys with"
else
	psk "$T_TMP/k1.psk" && psk "$T_TMP/k2.psk"
	mkcerts "$T_TMP/ca1" && mkcerts "$T_TMP/ca2"
	K=${P}k K2=${P}k2
	next_port
	if start "$K" counter --memory 32M && wait_count "$K" 2 &&
		incoming "$K2" "127.0.0.1:$PORT" --tls-psk "$T_TMP/k1.psk"; then
		refused "a wrong PSK" "$K" "$K2" "TLS handshake failed: .* with 127.0.0.1:$PORT" \
			--tls-psk "$T_TMP/k2.psk"
		refused "no TLS against a TLS target" "$K" "$K2" "waiting for the target's nonce" --verify
		t_run 60 "$CVISOR" migrate "$K" "127.0.0.1:$PORT" --tls-psk "$T_TMP/k1.psk" --verify
		last=$(last_count "$K")
		if [ "$T_RC" = 0 ]; then
			t_pass "migrate with TLS-PSK: $T_OUT"
			migrated "$K" "$K2" "$last" "the counter goes on after a TLS-PSK migration"
		else
			t_fail "migrate with TLS-PSK" "exit $T_RC: $T_ERR"
		fi
	fi
	K3=${P}k3
	next_port
	if incoming "$K3" "127.0.0.1:$PORT" --tls-creds "$T_TMP/ca1"; then
		refused "a certificate from another CA" "$K2" "$K3" "certificate verify failed" \
			--tls-creds "$T_TMP/ca2"
		# The target's own check: a source that trusts the target's CA
		# but shows a client certificate another CA signed. In TLS 1.3
		# the client's handshake ends first, so the source learns it
		# from the target's alert.
		mkdir -p "$T_TMP/mix" && cp "$T_TMP/ca1/ca-cert.pem" "$T_TMP/mix/" &&
			cp "$T_TMP/ca2/client-cert.pem" "$T_TMP/ca2/client-key.pem" "$T_TMP/mix/"
		refused "a client certificate from another CA" "$K2" "$K3" "alert unknown ca" \
			--tls-creds "$T_TMP/mix"
		line=$(grep "dropped the connection" "$CVISOR_RUN_DIR/$K3.log" | tail -n 1)
		if grep -q "certificate verify failed" <<<"$line"; then
			t_pass "the target says it refused the client's certificate"
		else
			t_fail "the target says it refused the client's certificate" "$line"
		fi
		# A client that completes the handshake, then sends garbage.
		n=$(grep -c "dropped the connection" "$CVISOR_RUN_DIR/$K3.log")
		python3 - "$T_TMP/ca1" "$PORT" <<'PY' 2>/dev/null
import socket, ssl, sys
d, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(d + "/ca-cert.pem")
ctx.load_cert_chain(d + "/client-cert.pem", d + "/client-key.pem")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")
s.sendall(b"GET / HTTP/1.1\r\n\r\n" * 4)
s.settimeout(5)
try:
    while s.recv(4096):
        pass
except Exception:
    pass
PY
		line=$(dropped "$K3" "$n")
		if grep -q "not a cvisor migration stream" <<<"$line" && [ "$(state "$K3")" = incoming ]; then
			t_pass "garbage after the handshake is refused, the target waits on: $line"
		else
			t_fail "garbage after the handshake (to the target)" "$(tail -n 2 "$CVISOR_RUN_DIR/$K3.log")"
		fi
		# A target that completes the handshake, then sends garbage.
		FPORT=$((PORT + 1000))
		python3 - "$T_TMP/ca1" "$FPORT" >"$T_TMP/fake.out" 2>&1 <<'PY' &
import socket, ssl, sys, time
d, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(d + "/server-cert.pem", d + "/server-key.pem")
ctx.load_verify_locations(d + "/ca-cert.pem")
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.num_tickets = 0
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(1)
print("ready", flush=True)
c = ctx.wrap_socket(ls.accept()[0], server_side=True)
c.sendall(b"\xff" * 64)
time.sleep(3)
PY
		fpid=$!
		for _ in $(seq 50); do grep -q ready "$T_TMP/fake.out" && break; sleep 0.1; done
		t_run 30 "$CVISOR" migrate "$K2" "127.0.0.1:$FPORT" --tls-creds "$T_TMP/ca1"
		wait "$fpid" 2>/dev/null
		t_expect_err "a target that sends garbage after the handshake is refused" 1 "migration to 127.0.0.1:$FPORT failed"
		advances "$K2" "the source runs on after a garbage-sending target"
		t_run 60 "$CVISOR" migrate "$K2" "127.0.0.1:$PORT" --tls-creds "$T_TMP/ca1" --verify
		last=$(last_count "$K2")
		if [ "$T_RC" = 0 ]; then
			t_pass "migrate with x509 certificates: $T_OUT"
			migrated "$K2" "$K3" "$last" "the counter goes on after an x509 migration"
		else
			t_fail "migrate with x509 certificates" "exit $T_RC: $T_ERR"
		fi
		timeout 10 "$CVISOR" kill "$K3" >/dev/null 2>&1
	fi
	timeout 10 "$CVISOR" kill "$K2" >/dev/null 2>&1
	timeout 10 "$CVISOR" kill "$K" >/dev/null 2>&1
	# The cvisor migrate client makes the TLS session and relays the
	# monitor's stream through it: killed (-9) mid-migration, the link
	# breaks as any other, the source runs on and serves its socket, and a
	# later migration succeeds. TLS lives in cvisor-tls.so: the target
	# that uses it maps libssl, the source monitor never does.
	KC=${P}kc KT=${P}kt KT2=${P}kt2
	next_port
	if start "$KC" dirtier --memory 128M --cmdline "mb=24 every=0" &&
		incoming "$KT" "127.0.0.1:$PORT" --tls-psk "$T_TMP/k1.psk"; then
		kt=$(pid_of "$KT")
		if grep -q libssl "/proc/$kt/maps" && ! grep -Eq 'libssl|libcrypto' "/proc/$(pid_of "$KC")/maps"; then
			t_pass "a TLS target maps libssl (cvisor-tls.so), the plain source monitor does not"
		else
			t_fail "libssl where TLS is used only" "target: $(grep -c ssl "/proc/$kt/maps"), source: $(grep -c ssl "/proc/$(pid_of "$KC")/maps")"
		fi
		# Round 0 sends 24 MiB: 3 s at 8 MiB/s; kill the client in it.
		"$CVISOR" migrate "$KC" "127.0.0.1:$PORT" --tls-psk "$T_TMP/k1.psk" --json \
			--max-bandwidth 8M --no-force >"$T_TMP/kc.out" 2>&1 &
		mpid=$!
		for _ in $(seq 100); do grep -q '"progress"' "$T_TMP/kc.out" && break; sleep 0.1; done
		sleep 0.5
		src_ssl=$(grep -Ec 'libssl|libcrypto' "/proc/$(pid_of "$KC")/maps")
		kill -9 "$mpid" 2>/dev/null
		wait "$mpid" 2>/dev/null
		if grep -q '"progress"' "$T_TMP/kc.out" && [ "$src_ssl" = 0 ]; then
			t_pass "the client killed during a TLS migration (the source relayed, no libssl mapped in it)"
		else
			t_fail "the client killed during a TLS migration" "libssl mappings $src_ssl: $(cat "$T_TMP/kc.out")"
		fi
		advances "$KC" "the client killed mid-TLS-migration: the source guest runs on"
		t_run 10 "$CVISOR" info "$KC"
		if [ "$T_RC" = 0 ] && grep -q '^state *running$' <<<"$T_OUT" &&
			"$CVISOR" ls | grep -q "^$KC .* running"; then
			t_pass "the client killed mid-TLS-migration: the source answers info and ls"
		else
			t_fail "the source answers after its client was killed" "exit $T_RC: $T_OUT $T_ERR"
		fi
		timeout 10 "$CVISOR" kill "$KT" >/dev/null 2>&1
		next_port
		if incoming "$KT2" "127.0.0.1:$PORT" --tls-psk "$T_TMP/k1.psk"; then
			t_run 60 "$CVISOR" migrate "$KC" "127.0.0.1:$PORT" --tls-psk "$T_TMP/k1.psk" --verify
			if [ "$T_RC" = 0 ] && gone "$KC"; then
				t_pass "a later TLS migration of that source succeeds: $T_OUT"
				advances "$KT2" "the migrated dirtier runs on at the target"
			else
				t_fail "a later TLS migration after the client was killed" "exit $T_RC: $T_ERR"
			fi
			timeout 10 "$CVISOR" kill "$KT2" >/dev/null 2>&1
		fi
	fi
	timeout 10 "$CVISOR" kill "$KC" >/dev/null 2>&1
	# No cvisor-tls.so beside the binary (nor in ../lib/cvisor): TLS is
	# refused at start with one line, status 2; so is a file that is no
	# such module.
	mkdir -p "$T_TMP/nomod" && cp "$CVISOR" "$T_TMP/nomod/cvisor"
	next_port
	t_run 10 "$T_TMP/nomod/cvisor" run -d --name "${P}nm" --incoming "127.0.0.1:$PORT" --tls-psk "$T_TMP/k1.psk"
	track "${P}nm"
	t_expect_err "a TLS target without cvisor-tls.so is refused at start" 2 \
		"TLS migration needs cvisor-tls.so: not found at $T_TMP/nomod/cvisor-tls.so"
	t_run 10 "$T_TMP/nomod/cvisor" migrate "${P}none" "127.0.0.1:$PORT" --tls-creds "$T_TMP/ca1"
	t_expect_err "migrate --tls-creds without cvisor-tls.so is refused at start" 2 \
		"TLS migration needs cvisor-tls.so: not found"
	printf 'not a module\n' >"$T_TMP/nomod/cvisor-tls.so"
	t_run 10 "$T_TMP/nomod/cvisor" run -d --name "${P}nm" --incoming "127.0.0.1:$PORT" --tls-psk "$T_TMP/k1.psk"
	track "${P}nm"
	t_expect_err "a broken cvisor-tls.so is refused at start" 2 \
		"TLS migration needs cvisor-tls.so: .*nomod/cvisor-tls.so"
	if command -v gcc >/dev/null &&
		printf 'const struct { unsigned int abi, size; } cvisor_tls_module = { 99, 8 };\n' |
		gcc -shared -fPIC -x c -o "$T_TMP/nomod/cvisor-tls.so" - 2>/dev/null; then
		t_run 10 "$T_TMP/nomod/cvisor" run -d --name "${P}nm" --incoming "127.0.0.1:$PORT" --tls-psk "$T_TMP/k1.psk"
		track "${P}nm"
		t_expect_err "a cvisor-tls.so of another ABI is refused at start" 2 \
			"TLS migration needs cvisor-tls.so: .* is not this cvisor's module \(another ABI version"
	else
		t_skip "a cvisor-tls.so of another ABI" "no gcc to build one"
	fi
	cp "$(dirname "$CVISOR")/cvisor-tls.so" "$T_TMP/nomod/"
	t_run 10 "$T_TMP/nomod/cvisor" run -d --name "${P}nm" --incoming "127.0.0.1:$PORT" --insecure
	track "${P}nm"
	if [ "$T_RC" = 0 ] && ! grep -q libssl "/proc/$(pid_of "${P}nm")/maps"; then
		t_pass "a plain target does not load the module"
	else
		t_fail "a plain target does not load the module" "exit $T_RC: $T_ERR"
	fi
	timeout 10 "$CVISOR" kill "${P}nm" >/dev/null 2>&1
	# A monitor does no TLS: a request naming key files is refused, and
	# so is one that says its stream is TLS without passing it.
	S=${P}ns
	if start "$S" counter --memory 32M; then
		t_run 10 "$CVISOR" ctl "$S" "{\"cmd\":\"migrate\",\"dest\":\"127.0.0.1:$PORT\",\"tls_psk\":\"$T_TMP/k1.psk\"}"
		if [ "$T_RC" = 1 ] && grep -q "the monitor does no TLS and reads no key files" <<<"$T_OUT$T_ERR"; then
			t_pass "a migrate request naming key files is refused"
		else
			t_fail "a migrate request naming key files" "exit $T_RC: $T_OUT $T_ERR"
		fi
		t_run 10 "$CVISOR" ctl "$S" "{\"cmd\":\"migrate\",\"dest\":\"127.0.0.1:$PORT\",\"tls\":true}"
		if [ "$T_RC" = 1 ] && grep -q '"tls" needs the connection passed' <<<"$T_OUT$T_ERR"; then
			t_pass "a migrate request saying TLS without a connection is refused"
		else
			t_fail "a migrate request saying TLS without a connection" "exit $T_RC: $T_OUT $T_ERR"
		fi
		t_run 10 "$CVISOR" ctl "$S" "{\"cmd\":\"migrate\",\"dest\":\"127.0.0.1:$PORT\",\"link\":true}"
		if [ "$T_RC" = 1 ] && grep -q '"link" needs the connection passed' <<<"$T_OUT$T_ERR"; then
			t_pass "a migrate request saying link without a connection is refused"
		else
			t_fail "a migrate request saying link without a connection" "exit $T_RC: $T_OUT $T_ERR"
		fi
		advances "$S" "the source of the refused requests runs on"
		timeout 10 "$CVISOR" kill "$S" >/dev/null 2>&1
	fi
	# Bad keys and plain streams off loopback: one line and status 2 at start.
	(umask 022 && printf 'cvisor:%s\n' "$(openssl rand -hex 32)" >"$T_TMP/open.psk")
	(umask 077 && printf 'cvisor:%s\n' "$(openssl rand -hex 16)" >"$T_TMP/short.psk")
	next_port
	t_run 10 "$CVISOR" run -d --name "${P}kb" --incoming "127.0.0.1:$PORT" --tls-psk "$T_TMP/open.psk"
	track "${P}kb"
	t_expect_err "a PSK file others may read is refused at start" 2 "group or others may access it \(mode 0644\)"
	t_run 10 "$CVISOR" run -d --name "${P}kb" --incoming "127.0.0.1:$PORT" --tls-psk "$T_TMP/short.psk"
	t_expect_err "a PSK of the wrong size is refused at start" 2 "the key must be 32 bytes \(64 hex digits\), not 32 digits"
	t_run 10 "$CVISOR" migrate "${P}none" "127.0.0.1:$PORT" --tls-psk "$T_TMP/open.psk"
	t_expect_err "migrate refuses a PSK file others may read" 2 "group or others may access it"
	t_run 10 "$CVISOR" migrate "${P}none" "127.0.0.1:$PORT" --tls-psk "$T_TMP/short.psk"
	t_expect_err "migrate refuses a PSK of the wrong size" 2 "the key must be 32 bytes"
	t_run 10 "$CVISOR" run -d --name "${P}kb" --incoming "0.0.0.0:$PORT"
	t_expect_err "a plain target off loopback is refused at start" 2 "0.0.0.0:$PORT is not a loopback address.*--insecure"
	t_run 10 "$CVISOR" migrate "${P}none" "10.200.0.2:$PORT"
	t_expect_err "a plain migration off loopback is refused at start" 2 "10.200.0.2:$PORT is not a loopback address"
fi

# ---- run --incoming checks its own flags at start ----
next_port
t_run 10 "$CVISOR" run -d --name "${P}sd" --incoming "127.0.0.1:$PORT" --storage-dir /nonexistent-cvisor-dir
track "${P}sd" # should one have started after all
t_expect_err "--storage-dir on a missing directory fails at start" 2 \
	"storage-dir /nonexistent-cvisor-dir: No such file"
t_run 10 "$CVISOR" run -d --name "${P}sd" --incoming "127.0.0.1:$PORT" --storage-dir "$T_TMP/pub.img"
t_expect_err "--storage-dir on a file fails at start" 2 "not a directory"
t_run 10 "$CVISOR" run -d --name "${P}sd" --incoming "127.0.0.1:$PORT" --disk "$T_TMP/missing.img"
t_expect_err "a missing --disk fails at start" 2 "disk .*missing.img: No such file"
t_run 10 "$CVISOR" run --incoming "127.0.0.1:$PORT" --incoming-timeout 1
t_expect_err "--incoming-timeout ends the wait with one line" 1 "no source migrated a guest to 127.0.0.1:$PORT within 1 s"

# ---- storage migration: the disk bytes match ----
S=${P}s S2=${P}s2
next_port
mkdir -p "$T_TMP/dst"
head -c 4M /dev/urandom >"$T_TMP/s.img"
if start "$S" blkcount --memory 64M --disk "$T_TMP/s.img" && wait_count "$S" 3 &&
	incoming "$S2" "127.0.0.1:$PORT" --storage-dir "$T_TMP/dst"; then
	# Paused: both images are final, compare all of them.
	"$CVISOR" pause "$S" >/dev/null
	t_run 60 "$CVISOR" migrate "$S" "127.0.0.1:$PORT" --with-storage --verify
	if [ "$T_RC" = 0 ] && gone "$S" && cmp -s "$T_TMP/s.img" "$T_TMP/dst/s.img"; then
		t_pass "storage migration: the image is byte for byte the source's"
	else
		t_fail "storage migration" "exit $T_RC: $T_ERR; $(cmp "$T_TMP/s.img" "$T_TMP/dst/s.img" 2>&1)"
	fi
	"$CVISOR" resume "$S2" >/dev/null
	c=$(last_count "$S2")
	wait_count "$S2" $((c + 3)) && ! grep -q FAIL "$CVISOR_RUN_DIR/$S2.log" &&
		t_pass "the guest uses its migrated disk" ||
		t_fail "the guest uses its migrated disk" "$(tail -n 2 "$CVISOR_RUN_DIR/$S2.log")"
	# Running: writes during pre-copy go along; past the 32 KiB the guest
	# writes, the images must agree.
	S3=${P}s3
	next_port
	mkdir -p "$T_TMP/dst3"
	if incoming "$S3" "127.0.0.1:$PORT" --storage-dir "$T_TMP/dst3"; then
		t_run 60 "$CVISOR" migrate "$S2" "127.0.0.1:$PORT" --with-storage
		if [ "$T_RC" = 0 ] && cmp -s -i 32768 "$T_TMP/dst/s.img" "$T_TMP/dst3/s.img" &&
			c=$(last_count "$S3") && wait_count "$S3" $((c + 3)) &&
			! grep -q FAIL "$CVISOR_RUN_DIR/$S3.log"; then
			t_pass "storage migration of a running guest"
		else
			t_fail "storage migration of a running guest" "exit $T_RC: $T_ERR"
		fi
	fi
	timeout 10 "$CVISOR" kill "$S3" >/dev/null 2>&1
fi

# ---- storage migration of a qcow2 disk with a backing chain ----
# base.raw (4 MiB of random bytes, shorter than the disk) <- mid.qcow2
# (a pattern) <- top.qcow2 (a zero cluster over base data, a pattern past
# the base's end): the target gets one standalone qcow2 with the chain's
# guest-visible content. blkcount verify=1 reads each sector it overwrites
# and checks it holds what it wrote 64 steps before: after the
# migration, the target's guest reads what it wrote on the source.
# qcow2_chain DIR: that chain in DIR.
qcow2_chain() {
	mkdir -p "$1" && head -c 4M /dev/urandom >"$1/base.raw" &&
		qemu-img create -q -f qcow2 -b base.raw -F raw "$1/mid.qcow2" 8M &&
		qemu-io -f qcow2 -c "write -P 0x5a 1M 512k" "$1/mid.qcow2" >/dev/null &&
		qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$1/top.qcow2" 8M &&
		qemu-io -f qcow2 -c "write -z 2M 64k" -c "write -P 0x33 5M 64k" "$1/top.qcow2" >/dev/null
}
# counts_on NAME WHAT [FROM]: the guest counts 70 steps further than FROM
# (default: its last count; past one round of blkcount's verify) without
# a FAIL.
counts_on() {
	local c=$3
	[ -n "$c" ] || c=$(last_count "$1")
	if wait_count "$1" $((${c:-0} + 70)) && ! grep -q FAIL "$CVISOR_RUN_DIR/$1.log"; then
		t_pass "$2 (count ${c:-?} -> $(last_count "$1"))"
	else
		t_fail "$2" "$(grep FAIL "$CVISOR_RUN_DIR/$1.log" | head -n 1; tail -n 1 "$CVISOR_RUN_DIR/$1.log")"
	fi
}
Q=${P}q Q2=${P}q2
next_port
if ! command -v qemu-io >/dev/null || ! qcow2_chain "$T_TMP/qa"; then
	t_fail "qcow2 storage migration" "qemu-img / qemu-io (qemu-utils) cannot make the chain"
elif start "$Q" blkcount --memory 64M --disk "$T_TMP/qa/top.qcow2,format=qcow2" --cmdline "verify=1" &&
	wait_count "$Q" 20 && mkdir -p "$T_TMP/qdst" && incoming "$Q2" "127.0.0.1:$PORT" --storage-dir "$T_TMP/qdst"; then
	# Paused: the source chain is final, so the images must be identical.
	"$CVISOR" pause "$Q" >/dev/null
	cq=$(last_count "$Q")
	t_run 60 "$CVISOR" migrate "$Q" "127.0.0.1:$PORT" --with-storage --verify
	if [ "$T_RC" = 0 ] && gone "$Q" && qemu-img check -q "$T_TMP/qdst/top.qcow2" &&
		cmpout=$(qemu-img compare "$T_TMP/qdst/top.qcow2" "$T_TMP/qa/top.qcow2" 2>&1) &&
		[ -z "$(qemu-img info "$T_TMP/qdst/top.qcow2" | grep -i backing)" ]; then
		t_pass "qcow2 storage migration: a standalone qcow2, qemu-img check clean, compare with the chain: $cmpout"
	else
		t_fail "qcow2 storage migration" "exit $T_RC: $T_ERR; $(qemu-img check "$T_TMP/qdst/top.qcow2" 2>&1 | tail -n 2); $cmpout"
	fi
	# (As a raw image the guest would read qcow2 metadata: counts_on
	# below fails then.)
	if ls -l "/proc/$(pid_of "$Q2")/fd" 2>/dev/null | grep -q "$T_TMP/qdst/top.qcow2"; then
		t_pass "the target's disk is the image it received"
	else
		t_fail "the target's disk" "$(ls -l "/proc/$(pid_of "$Q2")/fd" 2>&1 | grep -c img)"
	fi
	"$CVISOR" resume "$Q2" >/dev/null
	counts_on "$Q2" "the guest reads on the target what it wrote on the source" "$cq"
	timeout 10 "$CVISOR" kill "$Q2" >/dev/null 2>&1
fi
# Running: the guest writes during every round; past the 32 KiB it
# writes, the target's image equals the source's chain when the source
# stopped.
Q3=${P}q3 Q4=${P}q4
next_port
if qcow2_chain "$T_TMP/qb" && start "$Q3" blkcount --memory 64M --disk "$T_TMP/qb/top.qcow2,format=qcow2" --cmdline "verify=1 spin=2000" &&
	wait_count "$Q3" 20 && mkdir -p "$T_TMP/qdst4" && incoming "$Q4" "127.0.0.1:$PORT" --storage-dir "$T_TMP/qdst4"; then
	c0=$(last_count "$Q3")
	t_run 60 "$CVISOR" migrate "$Q3" "127.0.0.1:$PORT" --with-storage --max-bandwidth 2M
	c1=$(last_count "$Q3")
	if [ "$T_RC" = 0 ] && gone "$Q3" && qemu-img check -q "$T_TMP/qdst4/top.qcow2" &&
		qemu-img convert -O raw "$T_TMP/qb/top.qcow2" "$T_TMP/qb.raw" &&
		qemu-img convert -O raw "$T_TMP/qdst4/top.qcow2" "$T_TMP/qdst4.raw" &&
		cmp -s -i 32768 "$T_TMP/qb.raw" "$T_TMP/qdst4.raw"; then
		t_pass "qcow2 storage migration of a guest writing meanwhile (counts ${c0:-?} -> $c1 on the source): check clean, the chain's content"
	else
		t_fail "qcow2 storage migration of a writing guest" "exit $T_RC: $T_ERR; $(qemu-img check "$T_TMP/qdst4/top.qcow2" 2>&1 | tail -n 2); $(cmp -i 32768 "$T_TMP/qb.raw" "$T_TMP/qdst4.raw" 2>&1)"
	fi
	counts_on "$Q4" "after a running qcow2 migration the guest reads back what it wrote"
	timeout 10 "$CVISOR" kill "$Q4" >/dev/null 2>&1
fi

# ---- device I/O and the control socket go on while a migration runs ----
# A 24 MiB disk at 1 MiB/s keeps the migration busy for 24 s; blkcount
# counts only through its virtio-blk device, whose kicks the monitor's event
# loop serves. Read-only requests are answered meanwhile, and requests that
# would change the guest are refused with one line.
# slow_migrate NAME OUT: migrate NAME and its disk at 1 MiB/s to $PORT in
# the background (--json output in OUT.out, errors in OUT.err, the pid in
# mpid) and wait up to 30 s until it sends the disk.
slow_migrate() {
	"$CVISOR" migrate "$1" "127.0.0.1:$PORT" --with-storage --max-bandwidth 1M --json \
		>"$2.out" 2>"$2.err" &
	mpid=$!
	for _ in $(seq 300); do
		grep -q '"phase":"disks"' "$2.out" && break
		sleep 0.1
	done
}
L=${P}l L2=${P}l2
next_port
mkdir -p "$T_TMP/dstl"
head -c 24M /dev/urandom >"$T_TMP/l.img"
if start "$L" blkcount --memory 64M --disk "$T_TMP/l.img" && wait_count "$L" 3 &&
	incoming "$L2" "127.0.0.1:$PORT" --storage-dir "$T_TMP/dstl"; then
	slow_migrate "$L" "$T_TMP/l"
	c=$(last_count "$L")
	if wait_count "$L" $((c + 3)) && kill -0 "$mpid" 2>/dev/null; then
		t_pass "the guest's disk I/O goes on during the migration (count $c -> $(last_count "$L"))"
	else
		t_fail "disk I/O during the migration" "count stuck at $c while migrating: $(tail -n 2 "$T_TMP/l.out")"
	fi
	t_run 10 "$CVISOR" info "$L"
	if [ "$T_RC" = 0 ] && kill -0 "$mpid" 2>/dev/null; then
		t_pass "info is answered during the migration"
	else
		t_fail "info during the migration" "exit $T_RC: $T_ERR"
	fi
	# ... and so is ls, which asks the receiving target too: its control
	# socket answers while RAM and disk arrive.
	t_run 30 "$CVISOR" ls
	if [ "$T_RC" = 0 ] && grep -q "^$L2 .* incoming" <<<"$T_OUT" && grep -q "^$L .* running" <<<"$T_OUT"; then
		t_pass "ls answers for both ends during the migration"
	else
		t_fail "ls during the migration" "exit $T_RC: $T_OUT $T_ERR"
	fi
	# 24 MiB at 1 MiB/s: 24 s, far more than these checks take.
	t_run 10 "$CVISOR" pause "$L"
	t_expect_err "pause during the migration is refused" 1 "is migrating"
	# The client connects before it asks the monitor: a listener that
	# takes the connection and says nothing.
	SPORT=$((PORT + 2000))
	silent_listener "$SPORT" 20
	spy=$!
	t_run 10 "$CVISOR" migrate "$L" "127.0.0.1:$SPORT"
	kill "$spy" 2>/dev/null
	t_expect_err "a second migration is refused" 1 "is migrating|already migrating"
	kill -0 "$mpid" 2>/dev/null ||
		t_fail "the checks ran during the migration" "it ended first: $(tail -n 1 "$T_TMP/l.out")"
	wait "$mpid"
	rc=$?
	if [ "$rc" = 0 ] && grep -q '"migrated"' "$T_TMP/l.out" && gone "$L" &&
		c=$(last_count "$L2") && wait_count "$L2" $((c + 3)) &&
		! grep -q FAIL "$CVISOR_RUN_DIR/$L2.log"; then
		t_pass "the migration completes and the guest counts on at the target"
	else
		t_fail "the busy migration completes" "exit $rc: $(cat "$T_TMP/l.err")"
	fi
	# cvisor kill of the target while the disk arrives: the transfer ends,
	# the target removes the image it was writing, the source runs on.
	L4=${P}l4
	next_port
	mkdir -p "$T_TMP/dstl4"
	if incoming "$L4" "127.0.0.1:$PORT" --storage-dir "$T_TMP/dstl4"; then
		slow_migrate "$L2" "$T_TMP/l4"
		t_run 20 "$CVISOR" kill "$L4"
		wait "$mpid"
		rc=$?
		if [ "$T_RC" = 0 ] && [ "$rc" = 1 ] && gone "$L4" && [ -z "$(ls -A "$T_TMP/dstl4")" ] &&
			grep -q "killed by cvisor kill" "$CVISOR_RUN_DIR/$L4.log"; then
			t_pass "kill of a receiving target: it ends and leaves no image ($(cat "$T_TMP/l4.err"))"
		else
			t_fail "kill of a receiving target" "kill exit $T_RC, migrate exit $rc, left: $(ls -A "$T_TMP/dstl4"); $(tail -n 1 "$CVISOR_RUN_DIR/$L4.log")"
		fi
		advances "$L2" "the source runs on after its target was killed"
	fi
	# kill during a migration ends it at once (not when the disk is sent),
	# and the guest with it; the target gives up.
	L3=${P}l3
	next_port
	mkdir -p "$T_TMP/dstl3"
	if incoming "$L3" "127.0.0.1:$PORT" --storage-dir "$T_TMP/dstl3"; then
		slow_migrate "$L2" "$T_TMP/l3"
		t_run 20 "$CVISOR" kill "$L2"
		wait "$mpid"
		rc=$?
		if [ "$T_RC" = 0 ] && [ "$rc" = 1 ] && grep -q "the guest stopped during the migration" "$T_TMP/l3.err" &&
			gone "$L2" && gone "$L3"; then
			t_pass "kill during a migration ends it before the disk is sent, and the target with it"
		else
			t_fail "kill during a migration" "kill exit $T_RC, migrate exit $rc: $(cat "$T_TMP/l3.err")"
		fi
	fi
	timeout 10 "$CVISOR" kill "$L2" >/dev/null 2>&1
fi

t_summary migrate
