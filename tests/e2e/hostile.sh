#!/usr/bin/env bash
# tests/e2e/hostile.sh - the hostile-input campaign, repeatable and bounded,
# against cvisor built with ASan and UBSan (build/san/cvisor, `make san`):
#   snapshots  N mutants of a saved snapshot (tests/lib/snapedit.py mutate,
#              CRCs made valid again): each is refused with one line, or
#              restores into a guest that runs; never a crash, a hang or a
#              sanitizer report
#   files      special files where the CLI wants a file: a FIFO, a
#              directory, /dev/zero, an empty file
#   control    the control socket abused (tests/e2e/ctl_client.py): binary
#              lines, a 1 MiB line, a cut request, pipelined requests, the
#              slots held by silent clients, 200 clients at once; after
#              each the guest still answers and its log has no sanitizer
#              report
#   migration  a live migration between two ASan monitors, recorded
#              (tests/e2e/migproxy.py); then the recording replayed, random
#              bytes, half the recording, and a valid start then garbage,
#              to one waiting target: each dropped, the target still waits,
#              no sanitizer report
# HOSTILE_MUTANTS (default 300) sets N; the seeds are 1..N, so a failure
# names the seed that reproduces it. Prints TAP (tests/lib.sh).
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
CVISOR=${CVISOR_SAN:-build/san/cvisor}
. tests/named.sh

P=ho$$- # guest name prefix
N=${HOSTILE_MUTANTS:-300}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
need_kvm hostile
need_guests hostile counter

# one_line WHAT RC ERR: the status and stderr of a refusal: 1 or 2, and one
# line "cvisor: ..." (a sanitizer report is many lines, a crash >= 128).
one_line() {
	[ "$2" = 1 ] || [ "$2" = 2 ] || return 1
	[ "$(printf '%s\n' "$3" | wc -l)" = 1 ] && [[ "$3" == "cvisor: "* ]]
}

# ---- snapshots ----
S=$T_TMP/snap
mkdir -p "$S"
B=${P}base
if start "$B" counter --memory 16M && wait_count "$B" 3; then
	t_run 30 "$CVISOR" save "$B" "$S/base"
	[ "$T_RC" = 0 ] || t_fail "save the snapshot to mutate" "exit $T_RC: $T_ERR"
fi
if [ -s "$S/base" ]; then
	refused=0 ran=0 bad=0
	for seed in $(seq "$N"); do
		cp --sparse=always "$S/base.mem" "$S/m.mem"
		what=$(python3 tests/lib/snapedit.py "$S/base" "$S/m" mutate "$seed") || {
			t_fail "mutant $seed" "snapedit failed"
			bad=$((bad + 1))
			continue
		}
		name=${P}m$seed
		# Generous caps (an ASan monitor on a loaded host): a hang is still caught.
		t_run 60 "$CVISOR" restore "$S/m" --name "$name" -d
		if [ "$T_RC" = 0 ]; then
			track "$name"
			if timeout 30 "$CVISOR" info "$name" >/dev/null 2>&1; then
				ran=$((ran + 1))
			else
				t_fail "mutant $seed ($what)" "restored, but the guest does not answer"
				bad=$((bad + 1))
			fi
			timeout 5 "$CVISOR" kill "$name" >/dev/null 2>&1
			if grep -q "Sanitizer\|runtime error" "$CVISOR_RUN_DIR/$name.log" 2>/dev/null; then
				t_fail "mutant $seed ($what)" "$(grep -m1 "Sanitizer\|runtime error" "$CVISOR_RUN_DIR/$name.log")"
				bad=$((bad + 1))
			fi
		elif one_line "$what" "$T_RC" "$T_ERR"; then
			refused=$((refused + 1))
		else
			t_fail "mutant $seed ($what)" "exit $T_RC: $(printf '%s' "$T_ERR" | head -n 3)"
			bad=$((bad + 1))
		fi
	done
	[ "$bad" = 0 ] && t_pass "$N snapshot mutants: $refused refused with one line, $ran restored and ran"
else
	t_fail "snapshot mutants" "no snapshot to mutate"
fi
timeout 5 "$CVISOR" kill "$B" >/dev/null 2>&1

# ---- special files where the CLI wants a file ----
mkfifo "$T_TMP/fifo"
: >"$T_TMP/empty"
mkdir -p "$T_TMP/dir"
for f in "$T_TMP/fifo" "$T_TMP/dir" /dev/zero "$T_TMP/empty"; do
	for use in --kernel --initrd --config restore; do
		case $use in
		restore) t_run 10 "$CVISOR" restore "$f" ;;
		--kernel) t_run 10 "$CVISOR" run --kernel "$f" ;;
		*) t_run 10 "$CVISOR" run --kernel "$GUESTS/counter.elf" "$use" "$f" ;;
		esac
		if one_line "" "$T_RC" "$T_ERR"; then
			t_pass "$use ${f##*/}: $T_ERR"
		else
			t_fail "$use ${f##*/}" "exit $T_RC: $(printf '%s' "$T_ERR" | head -n 3)"
		fi
	done
done

# ---- the control socket ----
C=${P}ctl
if start "$C" counter --memory 16M && wait_count "$C" 2; then
	sock=$CVISOR_RUN_DIR/$C.sock
	cc=(python3 tests/e2e/ctl_client.py)
	out=$(timeout 120 "${cc[@]}" junk "$sock" --timeout 15)
	if grep -q "^binary reply" <<<"$out" && grep -q "^long \(reply\|closed\)" <<<"$out" &&
		timeout 10 "$CVISOR" info "$C" >/dev/null 2>&1; then
		t_pass "binary lines, a 1 MiB line, a cut request: $(tr '\n' ' ' <<<"$out")"
	else
		t_fail "junk on the control socket" "$out; info: $(timeout 10 "$CVISOR" info "$C" 2>&1 | head -n 1)"
	fi
	out=$(timeout 30 "${cc[@]}" send "$sock" '{"cmd":"info"}\n{"cmd":"stats"}\n{"cmd":"info"}\n' --half-close --lines 3)
	if [ "$(grep -c '"ok":true' <<<"$out")" = 3 ]; then
		t_pass "three pipelined requests, half-closed: three replies"
	else
		t_fail "pipelined requests" "$out"
	fi
	timeout 60 "${cc[@]}" hold "$sock" 20 --timeout 40 >"$T_TMP/hold" &
	holder=$!
	for _ in $(seq 100); do grep -q connected "$T_TMP/hold" && break; sleep 0.1; done
	t_run 20 "$CVISOR" info "$C"
	t_expect_out "info with 20 silent clients holding the slots" "$C"
	kill "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null
	out=$(timeout 120 "${cc[@]}" storm "$sock" 200)
	if [ "$out" = "replies 200 of 200" ]; then
		t_pass "200 clients at once: $out"
	else
		t_fail "200 clients at once" "$out"
	fi
	t_run 10 "$CVISOR" kill "$C"
	if [ "$T_RC" = 0 ] && ! grep -q "Sanitizer\|runtime error" "$CVISOR_RUN_DIR/$C.log"; then
		t_pass "the monitor served it all and ended cleanly, no sanitizer report"
	else
		t_fail "the monitor after the abuse" "kill exit $T_RC; $(grep -m1 "Sanitizer\|runtime error" "$CVISOR_RUN_DIR/$C.log")"
	fi
fi

# ---- the migration receiver ----
MP=$((30000 + $$ % 20000))
state() { "$CVISOR" info "$1" --json 2>/dev/null | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p'; }
MS=${P}ms MT=${P}mt MW=${P}mw
if start "$MS" counter --memory 32M && wait_count "$MS" 2 &&
	run_d incoming "$MT" --incoming "127.0.0.1:$MP"; then
	python3 tests/e2e/migproxy.py proxy $((MP + 1)) "$MP" --record "$T_TMP/rec.bin" >"$T_TMP/proxy.out" 2>&1 &
	ppid=$!
	for _ in $(seq 100); do grep -q ready "$T_TMP/proxy.out" && break; sleep 0.05; done
	t_run 120 "$CVISOR" migrate "$MS" "127.0.0.1:$((MP + 1))"
	wait "$ppid"
	if [ "$T_RC" = 0 ] && wait_count "$MT" "$(($(last_count "$MS") + 2))"; then
		t_pass "a live migration between two ASan monitors, recorded ($(stat -c %s "$T_TMP/rec.bin") bytes)"
	else
		t_fail "a migration between ASan monitors" "exit $T_RC: $T_ERR"
	fi
	timeout 10 "$CVISOR" kill "$MT" >/dev/null 2>&1
fi
if [ -s "$T_TMP/rec.bin" ] && run_d incoming "$MW" --incoming "127.0.0.1:$((MP + 2))"; then
	n=$(stat -c %s "$T_TMP/rec.bin")
	head -c 65536 /dev/urandom >"$T_TMP/random.bin"
	head -c $((n / 2)) "$T_TMP/rec.bin" >"$T_TMP/half.bin"
	{ head -c 300 "$T_TMP/rec.bin"; head -c 65536 /dev/urandom; } >"$T_TMP/prefix.bin"
	for f in rec random half prefix; do
		timeout 30 python3 tests/e2e/migproxy.py replay $((MP + 2)) "$T_TMP/$f.bin" >/dev/null 2>&1
		if [ "$(state "$MW")" = incoming ]; then
			t_pass "stream '$f' dropped; the target still waits"
		else
			t_fail "stream '$f'" "target state '$(state "$MW")': $(tail -n 2 "$CVISOR_RUN_DIR/$MW.log")"
		fi
	done
	# The waiter parses requests (it used to look for "kill" anywhere).
	out=$(for req in '{"cmd":"info","kill":1}' '{"cmd":"bogus kill"}'; do
		timeout 20 python3 tests/e2e/ctl_client.py send "$CVISOR_RUN_DIR/$MW.sock" "$req\n" --lines 1
	done)
	if [ "$(state "$MW")" = incoming ] && [ "$(grep -c '"ok":false' <<<"$out")" = 2 ]; then
		t_pass "requests that only mention kill do not end a waiting target"
	else
		t_fail "a waiting target and the word kill" "state '$(state "$MW")'; replies: $out"
	fi
	timeout 10 "$CVISOR" kill "$MW" >/dev/null 2>&1
fi
bad=$(grep -l "Sanitizer\|runtime error" "$CVISOR_RUN_DIR"/*.log 2>/dev/null)
if [ -z "$bad" ]; then
	t_pass "no sanitizer report in any monitor's log"
else
	t_fail "sanitizer reports" "$bad: $(grep -h -m1 "Sanitizer\|runtime error" $bad)"
fi

t_summary hostile
