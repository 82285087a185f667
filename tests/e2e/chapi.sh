#!/usr/bin/env bash
# tests/e2e/chapi.sh - Cloud Hypervisor's REST API (src/api/): cvisor run
# as build/cloud-hypervisor --api-socket, driven with curl over the unix
# socket through vmm.ping, vm.create, vm.boot, vm.info's states,
# pause/resume (the tiny counter guest's count stops and goes on),
# shutdown, delete and vmm.shutdown; bad input (bad JSON, wrong types,
# unknown fields and endpoints, wrong methods, vm.boot before vm.create, a
# second vm.create); the --event-monitor stream; the VMM's end on a guest
# poweroff, on SIGTERM and when the event FIFO's reader goes away;
# vm.add-net with a tap's descriptor (SCM_RIGHTS, as libvirt sends it) made
# in a network namespace this test makes, and the kit's Linux guest pinging
# over it, with the hostile cases, the descriptors counted, and
# vm.counters per device. Every wait is bounded and polls for what it
# waits for. Prints TAP.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
. tests/named.sh
. tests/guest.sh
G_SUITE=chapi
NS=cvan$$ # the network namespace of the vm.add-net checks
trap 'g_cleanup; ip netns del "$NS" 2>/dev/null; named_cleanup' EXIT

P=ch$$- # guest name prefix
CH=${BUILD:-build}/cloud-hypervisor
need_kvm chapi
need_guests chapi counter powerbtn
[ -x "$CH" ] || t_abort chapi "$CH missing (run make)"
command -v curl >/dev/null || t_skip_suite chapi "curl is not installed"

# api SOCK METHOD ENDPOINT [BODY]: one request; the body in API_BODY, the
# status in API_CODE.
api() {
	local out
	if [ -n "${4:-}" ]; then
		out=$(curl -s --max-time 20 --unix-socket "$1" -X "$2" -H 'Content-Type: application/json' \
			-d "$4" -w '\n%{http_code}' "http://localhost/api/v1/$3")
	else
		out=$(curl -s --max-time 20 --unix-socket "$1" -X "$2" -w '\n%{http_code}' \
			"http://localhost/api/v1/$3")
	fi
	API_CODE=${out##*$'\n'}
	API_BODY=${out%$'\n'*}
}

# expect NAME CODE REGEX: the last api answered CODE with a body matching
# REGEX ('' : no body).
expect() {
	if [ "$API_CODE" = "$2" ] && { [ -z "$3$API_BODY" ] ||
		{ [ -n "$3" ] && printf '%s\n' "$API_BODY" | grep -Eq -- "$3"; }; }; then
		t_pass "$1"
	else
		t_fail "$1" "got $API_CODE '$API_BODY', want $2 and /$3/"
	fi
}

# vmm NAME SOCK [flags...]: start a VMM named NAME in the background (its
# stdout, the guest's serial, in $T_TMP/NAME.out); wait up to 10 s for
# its socket to answer vmm.ping. Sets VMM_PID.
vmm() {
	local name=$1 sock=$2 i
	shift 2
	CVISOR_CH_NAME=$name "$CH" --api-socket "$sock" "$@" </dev/null \
		>"$T_TMP/$name.out" 2>"$T_TMP/$name.err" &
	VMM_PID=$!
	T_PIDS+=("$VMM_PID")
	for i in $(seq 100); do
		api "$sock" GET vmm.ping
		[ "$API_CODE" = 200 ] && return 0
		sleep 0.1
	done
	return 1
}

# ended PID SECONDS: the process is gone within SECONDS.
ended() {
	local i
	for i in $(seq $(($2 * 10))); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# stop_vmm SOCK PID WHAT: vmm.shutdown, and the VMM is gone within 10 s.
stop_vmm() {
	api "$1" PUT vmm.shutdown
	ended "$2" 10 || t_fail "$3 ends" "pid $2, vmm.shutdown answered $API_CODE"
}

# count_of NAME: the counter guest's count (at 0x5000), through its cvisor name.
count_of() { peek "$1" 20480; }

# wait_more NAME N: up to 20 s until the count is above N.
wait_more() { peek_above "$1" 20480 "$2" >/dev/null; }

create_body() {
	printf '{"cpus":{"boot_vcpus":1,"max_vcpus":1},"memory":{"size":268435456},'
	printf '"payload":{"kernel":"%s","cmdline":"%s"},"serial":{"mode":"Tty"},' "$PWD/$GUESTS/$1.elf" "${2:-}"
	printf '"console":{"mode":"Off"}}'
}

# ---- the binary ----
t_run 10 "$CH" --version
t_expect_out "cloud-hypervisor --version" '^cloud-hypervisor v[0-9]+\.[0-9]+\.[0-9]+$'
t_run 10 "$CH" --frobnicate
t_expect_err "unknown flag" 2 'unsupported argument --frobnicate'
t_run 10 "$CH"
if [ "$T_RC" = 2 ] && printf '%s' "$T_ERR" | grep -q 'needs --api-socket'; then
	t_pass "no --api-socket"
else
	t_fail "no --api-socket" "exit $T_RC: $T_ERR"
fi

# ---- one VMM through a guest's life ----
A=${P}a
S=$T_TMP/a.sock
EV=$T_TMP/a.events
if ! vmm "$A" "$S" --event-monitor "path=$EV"; then
	t_abort chapi "the VMM did not answer vmm.ping: $(cat "$T_TMP/$A.err")"
fi
APID=$VMM_PID
expect "vmm.ping" 200 "\"version\":\"v[0-9]+\\.[0-9]+\\.[0-9]+\".*\"pid\":$APID"
# HEAD of a GET endpoint: GET's status and headers, no body (RFC 9110 9.3.2).
head=$(curl -s -I --max-time 20 --unix-socket "$S" http://localhost/api/v1/vmm.ping | tr -d '\r')
if grep -q '^HTTP/1.1 200' <<<"$head" && grep -Eq '^Content-Length: [1-9]' <<<"$head"; then
	t_pass "HEAD vmm.ping: 200 with GET's Content-Length and no body"
else
	t_fail "HEAD vmm.ping: 200 with GET's Content-Length and no body" "$(tr '\n' ' ' <<<"$head")"
fi
# A second VMM on a live VMM's socket path is refused; the first serves on.
t_run 10 env CVISOR_CH_NAME="${P}dup" "$CH" --api-socket "$S"
if [ "$T_RC" != 0 ] && printf '%s' "$T_ERR" | grep -q "another VMM serves it"; then
	api "$S" GET vmm.ping
	expect "a live API socket is not taken over (exit $T_RC)" 200 "\"pid\":$APID"
else
	t_fail "a live API socket is not taken over" "exit $T_RC: $T_ERR"
fi
api "$S" GET vm.nosuch
expect "unknown endpoint: 404" 404 'vm.nosuch'
api "$S" GET nothere
expect "outside /api/v1: 404" 404 'unknown endpoint'
api "$S" PUT vmm.ping
expect "wrong method: 405" 405 'vmm.ping'
api "$S" GET vm.boot
expect "GET vm.boot: 405" 405 'vm.boot'
api "$S" PUT vm.boot
expect "vm.boot before vm.create" 500 'no VM is created'
api "$S" GET vm.info
expect "vm.info before vm.create" 500 'no VM is created'
api "$S" PUT vm.pause
expect "vm.pause before vm.create" 500 'not running'
api "$S" PUT vm.create '{"cpus":'
expect "bad JSON" 400 'not one JSON object'
api "$S" PUT vm.create '{"cpus":{"boot_vcpus":"two"},"payload":{"kernel":"/k"}}'
expect "wrong type names the field" 400 'cpus.boot_vcpus: must be an integer'
api "$S" PUT vm.create '{"payload":{"kernel":"/k"},"fs":[{"tag":"x","socket":"/s"}]}'
expect "unsupported field named" 400 'fs: not supported by cvisor'
api "$S" PUT vm.create '{"payload":{"kernel":"/k"},"cpus":{"boot_vcpus":0}}'
expect "0 vCPUs" 400 'boot_vcpus: must be at least 1'
api "$S" PUT vm.create '{"payload":{"kernel":"/k"},"cpus":{"boot_vcpus":1,"max_vcpus":2}}'
expect "CPU hotplug refused" 400 'CPU hotplug unsupported'
api "$S" PUT vm.create '{"memory":{"size":268435456}}'
expect "no kernel" 400 'payload.kernel: missing'
api "$S" PUT vm.create "$(create_body counter spin=2000)"
expect "vm.create" 204 ''
api "$S" PUT vm.create "$(create_body counter)"
expect "second vm.create" 500 'already created'
api "$S" GET vm.info
expect "vm.info: Created" 200 '"state":"Created"'
api "$S" PUT vm.boot
expect "vm.boot" 204 ''
# vm.boot has answered: every boot vCPU thread exists, named vcpuN.
if grep -qx vcpu0 /proc/"$APID"/task/*/comm 2>/dev/null; then
	t_pass "vcpu0 named when vm.boot answers"
else
	t_fail "vcpu0 named when vm.boot answers" "$(cat /proc/"$APID"/task/*/comm 2>&1 | tr '\n' ' ')"
fi
api "$S" GET vm.info
expect "vm.info: Running" 200 '"state":"Running"'
api "$S" PUT vm.boot
expect "vm.boot twice" 500 'already booted'
# Served under the main thread's seccomp filter from now on.
api "$S" GET vmm.ping
expect "vmm.ping while the guest runs" 200 "\"pid\":$APID"
api "$S" PUT vm.create "$(create_body counter)"
expect "vm.create while the guest runs" 500 'already created'
t_run 10 "$CVISOR" ls
t_expect_out "cvisor ls sees the guest" "^$A +$APID +running "
if wait_more "$A" 2; then
	t_pass "the guest counts"
else
	t_fail "the guest counts" "count '$(count_of "$A")'; $(tail -3 "$T_TMP/$A.out")"
fi
api "$S" PUT vm.pause
expect "vm.pause" 204 ''
api "$S" GET vm.info
expect "vm.info: Paused" 200 '"state":"Paused"'
c1=$(count_of "$A")
sleep 0.5
c2=$(count_of "$A")
if [ -n "$c1" ] && [ "$c1" = "$c2" ]; then
	t_pass "paused: the count stops"
else
	t_fail "paused: the count stops" "count $c1 then $c2"
fi
api "$S" PUT vm.pause
expect "vm.pause twice" 500 'already paused'
api "$S" PUT vm.snapshot "{\"destination_url\":\"file://$T_TMP/nodir\"}"
expect "vm.snapshot to a missing directory" 400 'an existing directory'
mkdir -p "$T_TMP/snap"
api "$S" PUT vm.snapshot "{\"destination_url\":\"file://$T_TMP/snap\"}"
expect "vm.snapshot" 204 ''
c_snap=$(count_of "$A")
if [ -s "$T_TMP/snap/cvisor.snapshot" ] && [ -e "$T_TMP/snap/cvisor.snapshot.mem" ]; then
	t_pass "vm.snapshot wrote cvisor.snapshot and its .mem"
else
	t_fail "vm.snapshot wrote cvisor.snapshot and its .mem" "$(ls -la "$T_TMP/snap")"
fi
api "$S" PUT vm.resume
expect "vm.resume" 204 ''
if wait_more "$A" "${c2:-0}"; then
	t_pass "resumed: the count goes on"
else
	t_fail "resumed: the count goes on" "count $c2 then $(count_of "$A")"
fi
# vm.reboot: a reset in place, under the seccomp filter; the same process
# boots the guest again (its banner twice), and the count goes on.
api "$S" PUT vm.reboot
expect "vm.reboot (a reset in place, seccomp on)" 204 ''
for i in $(seq 300); do
	[ "$(grep -c 'counter: spin' "$T_TMP/$A.out")" -ge 2 ] && break
	sleep 0.1
done
if [ "$(grep -c 'counter: spin' "$T_TMP/$A.out")" = 2 ] && kill -0 "$APID" 2>/dev/null &&
	grep -q 'the guest reset' "$T_TMP/$A.err"; then
	t_pass "rebooted in place: the guest booted again in the same VMM process"
else
	t_fail "rebooted in place: the guest booted again in the same VMM process" \
		"$(grep -c 'counter: spin' "$T_TMP/$A.out") boots; $(tail -n 2 "$T_TMP/$A.err")"
fi
api "$S" PUT vm.snapshot "{\"destination_url\":\"file://$T_TMP/snap\"}"
expect "vm.snapshot of a running VM" 500 'must be paused'
api "$S" GET vm.counters
expect "vm.counters: no disk or NIC, no entry" 200 '^\{\}$'
api "$S" PUT vm.resize '{"desired_ram":134217728}'
expect "vm.resize without a balloon" 500 'needs a balloon'
api "$S" PUT vm.resize '{"desired_vcpus":4}'
expect "vm.resize of vCPUs" 400 'CPU hotplug unsupported'
api "$S" PUT vm.shutdown
expect "vm.shutdown" 204 ''
api "$S" GET vm.info
expect "vm.info: Shutdown" 200 '"state":"Shutdown"'
if gone "$A"; then
	t_pass "the guest's control socket is gone after vm.shutdown"
else
	t_fail "the guest's control socket is gone after vm.shutdown" "$(ls "$CVISOR_RUN_DIR")"
fi
api "$S" PUT vm.delete
expect "vm.delete" 204 ''
api "$S" GET vm.info
expect "vm.info after vm.delete" 500 'no VM is created'
api "$S" PUT vmm.shutdown
expect "vmm.shutdown" 204 ''
if ended "$APID" 10 && [ ! -e "$S" ]; then
	t_pass "the VMM ends, its socket removed"
else
	t_fail "the VMM ends, its socket removed" "pid $APID still there or $S left"
fi
want="booted pausing paused snapshotting snapshotted resuming resumed rebooting rebooted shutdown deleted"
got=$(sed -n 's/.*"source":"vm","event":"\([a-z]*\)".*/\1/p' "$EV" 2>/dev/null | tr '\n' ' ')
if [ "${got% }" = "$want" ] && grep -q '"source":"vmm","event":"shutdown"' "$EV" &&
	grep -Eq '^\{"timestamp":\{"secs":[0-9]+,"nanos":[0-9]+\},"source":"vmm","event":"starting","properties":null\}$' "$EV"; then
	t_pass "the event stream"
else
	t_fail "the event stream" "vm events '$got', want '$want'; $(tr '\n' ' ' <"$EV")"
fi

# ---- vm.restore in a new VMM: paused at the snapshot's count, then on ----
E=${P}e
S=$T_TMP/e.sock
if vmm "$E" "$S"; then
	EPID=$VMM_PID
	api "$S" PUT vm.restore "{\"source_url\":\"file://$T_TMP/nosnap\"}"
	expect "vm.restore from a missing directory" 400 'an existing directory'
	api "$S" PUT vm.restore "{\"source_url\":\"file://$T_TMP/snap\"}"
	expect "vm.restore" 204 ''
	api "$S" GET vm.info
	expect "vm.info after vm.restore: Paused" 200 '"state":"Paused"'
	c=$(count_of "$E")
	if [ -n "$c" ] && [ "$c" = "$c_snap" ]; then
		t_pass "restored at the snapshot's count"
	else
		t_fail "restored at the snapshot's count" "count $c, saved $c_snap"
	fi
	api "$S" PUT vm.reboot
	expect "vm.reboot of a restored guest (no boot state) under the seccomp filter" 500 'no boot state'
	api "$S" PUT vm.resume
	if wait_more "$E" "${c:-0}"; then
		t_pass "the restored guest counts on after vm.resume"
	else
		t_fail "the restored guest counts on after vm.resume" "count $c then $(count_of "$E")"
	fi
	api "$S" PUT vmm.shutdown
	ended "$EPID" 10 || t_fail "VMM e ends" "pid $EPID"
else
	t_fail "VMM e starts" "$(cat "$T_TMP/$E.err")"
fi

# ---- live migration between two VMMs: vm.receive-migration, vm.send-migration ----
F=${P}f G=${P}g
SF=$T_TMP/f.sock SG=$T_TMP/g.sock
PORT=$((40000 + $$ % 20000))
if vmm "$F" "$SF" && FPID=$VMM_PID && vmm "$G" "$SG"; then
	GPID=$VMM_PID
	api "$SF" PUT vm.create "$(create_body counter)"
	api "$SF" PUT vm.boot
	wait_more "$F" 1
	api "$SG" PUT vm.receive-migration '{"receiver_url":"unix:/x"}'
	expect "vm.receive-migration: not tcp" 400 'tcp:HOST:PORT'
	# The target's answer comes once the guest runs there: in the background.
	curl -s --max-time 60 --unix-socket "$SG" -X PUT -w '%{http_code}' \
		-d "{\"receiver_url\":\"tcp:127.0.0.1:$PORT\"}" \
		http://localhost/api/v1/vm.receive-migration >"$T_TMP/recv" 2>&1 &
	RECV=$!
	for i in $(seq 100); do # until the target listens
		ss -ltn 2>/dev/null | grep -q ":$PORT " && break
		sleep 0.1
	done
	c1=$(count_of "$F")
	api "$SF" PUT vm.send-migration "{\"destination_url\":\"tcp:127.0.0.1:$PORT\"}"
	expect "vm.send-migration" 204 ''
	wait "$RECV"
	if [ "$(cat "$T_TMP/recv")" = 204 ]; then
		t_pass "vm.receive-migration answered once the guest runs"
	else
		t_fail "vm.receive-migration answered once the guest runs" "$(cat "$T_TMP/recv")"
	fi
	api "$SG" GET vm.info
	expect "the target's vm.info: Running" 200 '"state":"Running"'
	if wait_more "$G" "${c1:-0}"; then
		t_pass "the guest counts on at the target from the source's count"
	else
		t_fail "the guest counts on at the target from the source's count" "source $c1, target $(count_of "$G")"
	fi
	if ended "$FPID" 10; then
		t_pass "the source VMM ends after the migration"
	else
		t_fail "the source VMM ends after the migration" "pid $FPID"
	fi
	api "$SG" PUT vmm.shutdown
	ended "$GPID" 10 || t_fail "VMM g ends" "pid $GPID"
else
	t_fail "VMMs f and g start" "$(cat "$T_TMP/$F.err" "$T_TMP/$G.err")"
fi

# ---- vm.reboot with --seccomp false: the events ----
R=${P}r
S=$T_TMP/r.sock
EV=$T_TMP/r.events
if vmm "$R" "$S" --seccomp false --event-monitor "path=$EV"; then
	RPID=$VMM_PID
	api "$S" PUT vm.create "$(create_body counter)"
	api "$S" PUT vm.boot
	api "$S" PUT vm.reboot
	expect "vm.reboot" 204 ''
	for i in $(seq 100); do
		grep -q '"event":"rebooted"' "$EV" && break
		sleep 0.1
	done
	api "$S" GET vm.info
	got=$(sed -n 's/.*"source":"vm","event":"\([a-z]*\)".*/\1/p' "$EV" | tr '\n' ' ')
	if [ "$API_CODE" = 200 ] && printf '%s' "$API_BODY" | grep -q '"state":"Running"' &&
		[ "$got" = "booted rebooting rebooted " ] &&
		[ "$(grep -c 'counter: spin' "$T_TMP/$R.out")" = 2 ]; then
		t_pass "rebooted: Running again, events booted rebooting rebooted, booted twice"
	else
		t_fail "rebooted: Running again, events booted rebooting rebooted, booted twice" \
			"$API_CODE $API_BODY; events '$got'; $(grep -c 'counter: spin' "$T_TMP/$R.out") boots"
	fi
	api "$S" PUT vmm.shutdown
	ended "$RPID" 10 || t_fail "VMM r ends" "pid $RPID"
else
	t_fail "VMM r starts" "$(cat "$T_TMP/$R.err")"
fi

# ---- serial and console Pty: the slave paths libvirt opens, in vm.info ----
Y=${P}y
S=$T_TMP/y.sock
if vmm "$Y" "$S"; then
	YPID=$VMM_PID
	api "$S" PUT vm.create "$(create_body counter | sed 's/"serial":{"mode":"Tty"}/"serial":{"mode":"Pty"}/; s/"console":{"mode":"Off"}/"console":{"mode":"Pty"}/')"
	expect "vm.create with serial and console Pty" 204 ''
	api "$S" PUT vm.boot
	api "$S" GET vm.info
	# json-c writes / as \/.
	body=$(printf '%s' "$API_BODY" | sed 's#\\/#/#g')
	sp=$(printf '%s' "$body" | sed -n 's/.*"serial":{"mode":"Pty","file":"\([^"]*\)".*/\1/p')
	cp=$(printf '%s' "$body" | sed -n 's/.*"console":{"mode":"Pty","file":"\([^"]*\)".*/\1/p')
	if [ -c "$sp" ] && [ -c "$cp" ] && [ "$sp" != "$cp" ]; then
		t_pass "vm.info: serial on $sp, console on $cp"
		# The guest's serial output comes out of the serial pty.
		timeout 30 cat "$sp" >"$T_TMP/y.pty" 2>/dev/null &
		catpid=$!
		for _ in $(seq 200); do
			grep -q '^count [0-9]' "$T_TMP/y.pty" && break
			sleep 0.1
		done
		kill "$catpid" 2>/dev/null
		wait "$catpid" 2>/dev/null
		if grep -q '^count [0-9]' "$T_TMP/y.pty"; then
			t_pass "the counter's serial output read from $sp"
		else
			t_fail "serial output on the pty" "$(head -c 200 "$T_TMP/y.pty")"
		fi
	else
		t_fail "vm.info gives the pty paths" "'$sp' '$cp': $API_BODY"
	fi
	api "$S" PUT vmm.shutdown
	ended "$YPID" 10 || t_fail "VMM y ends" "pid $YPID"
else
	t_fail "VMM y starts" "$(cat "$T_TMP/$Y.err")"
fi

# ---- the guest powers off: the VMM ends, with the shutdown events ----
B=${P}b
S=$T_TMP/b.sock
EV=$T_TMP/b.events
if vmm "$B" "$S" --event-monitor "path=$EV"; then
	BPID=$VMM_PID
	api "$S" PUT vm.create "$(create_body powerbtn)"
	api "$S" PUT vm.boot
	expect "powerbtn guest boots" 204 ''
	wait_log_out() { # up to 10 s for the VMM's stdout to have TEXT
		local i
		for i in $(seq 100); do
			grep -qF -- "$2" "$T_TMP/$1.out" && return 0
			sleep 0.1
		done
		return 1
	}
	wait_log_out "$B" "powerbtn: waiting"
	api "$S" PUT vm.power-button
	expect "vm.power-button" 204 ''
	if ended "$BPID" 10 && grep -q '"source":"vm","event":"shutdown"' "$EV" &&
		grep -q '"source":"vmm","event":"shutdown"' "$EV"; then
		t_pass "guest poweroff ends the VMM with vm and vmm shutdown events"
	else
		t_fail "guest poweroff ends the VMM with vm and vmm shutdown events" \
			"$(tr '\n' ' ' <"$EV"); $(cat "$T_TMP/$B.err")"
	fi
	wait "$BPID" 2>/dev/null
	rc=$?
	[ "$rc" = 0 ] && t_pass "exit status 0 after poweroff" || t_fail "exit status 0 after poweroff" "exit $rc"
else
	t_fail "VMM b starts" "$(cat "$T_TMP/$B.err")"
fi

# end_case ID WHAT STOP [VMM ARGS...]: a VMM that boots the counter, then
# STOP (a command; $vpid is the VMM, $rpid a FIFO reader if any); the VMM
# and the guest must end and the name be gone.
end_case() {
	local id=$1 what=$2 stop=$3 vpid
	shift 3
	if vmm "$id" "$T_TMP/$id.sock" "$@"; then
		vpid=$VMM_PID
		api "$T_TMP/$id.sock" PUT vm.create "$(create_body counter)"
		api "$T_TMP/$id.sock" PUT vm.boot
		expect "$what: the guest boots" 204 ''
		eval "$stop"
		if ended "$vpid" 15 && gone "$id"; then
			t_pass "$what: the VMM and the guest end"
		else
			t_fail "$what: the VMM and the guest end" "pid $vpid: $(cat "$T_TMP/$id.err")"
		fi
	else
		t_fail "VMM $id starts" "$(cat "$T_TMP/$id.err")"
	fi
}

# ---- SIGTERM ends the VMM and its guest ----
end_case "${P}c" "SIGTERM" 'kill -TERM "$vpid"'

# fifo_case ID WHAT STOP READER...: end_case with an --event-monitor FIFO
# that READER reads (in the background, $rpid); STOP makes the reader go
# (libvirt 11.3's destroy).
fifo_case() {
	local id=$1 what=$2 stop=$3 fifo=$T_TMP/$1.fifo rpid
	shift 3
	mkfifo "$fifo"
	"$@" "$fifo" &
	rpid=$!
	T_PIDS+=("$rpid")
	end_case "$id" "the FIFO's reader gone ($what)" "$stop" --event-monitor "path=$fifo"
	kill "$rpid" 2>/dev/null
}

# ---- the event FIFO's reader goes away: the VMM ends (libvirt 11.3's destroy) ----
# A reader that holds the FIFO open until killed.
holder() { exec sleep 600 <"$1"; }
fifo_case "${P}d" "killed" 'kill "$rpid"' holder
# One that closes it under a blocked read (libvirt 11.3's event thread):
# the close does not release the FIFO while its other thread is blocked
# reading it; the VMM's newline every second ends that read.
fifo_case "${P}e2" "closed under a blocked read" 'touch "$T_TMP/e2.stop"' \
	python3 tests/e2e/fifo_reader.py "$T_TMP/e2.stop"

# ---- vm.add-net: a tap's descriptor, as libvirt 11.3 passes it ----
# addnet ARGS...: vm.add-net through api_fds.py (one sendmsg with the
# descriptors, one recv of at most 1023 bytes within 500 ms, as libvirt) in
# the namespace; API_CODE and API_BODY as api's.
addnet() {
	local out
	out=$(ip netns exec "$NS" python3 tests/e2e/api_fds.py "$S" vm.add-net "$@" 2>&1)
	API_CODE=$(head -n 1 <<<"$out")
	API_BODY=$(tail -n +2 <<<"$out")
}
nfds() { ls "/proc/$NPID/fd" 2>/dev/null | wc -l; }
# (a tun opened under ip netns exec shows as /net/tun)
ntun() { ls -l "/proc/$NPID/fd" 2>/dev/null | grep -c '/net/tun$' || true; }
# counters: vm.counters' _disk0 and net_0, one line: rb wb ro wo rxb rxf txb txf.
counters() {
	api "$S" GET vm.counters
	python3 -c 'import json,sys
d = json.loads(sys.argv[1]); b = d["_disk0"]; n = d["net_0"]
print(b["read_bytes"], b["write_bytes"], b["read_ops"], b["write_ops"],
      n["rx_bytes"], n["rx_frames"], n["tx_bytes"], n["tx_frames"])' "$API_BODY" 2>/dev/null
}
TAP=cvan0
MAC=52:54:00:c0:ff:ee
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
	t_skip "vm.add-net with a tap's descriptor" "needs root, for a network namespace and a tap"
elif [ ! -f "$KERNEL" ] || [ ! -f "$INITRD" ]; then
	t_skip "vm.add-net with a tap's descriptor" "$KERNEL or $INITRD missing (run make guest)"
elif ! ip netns add "$NS" || ! ip -n "$NS" link set lo up ||
	! ip -n "$NS" tuntap add dev "$TAP" mode tap vnet_hdr ||
	! ip -n "$NS" addr add 10.78.0.1/24 dev "$TAP" || ! ip -n "$NS" link set "$TAP" up; then
	t_fail "a network namespace with a tap" "ip netns / ip tuntap failed"
else
	N=${P}an
	S=$T_TMP/an.sock
	truncate -s 8M "$T_TMP/scratch.img"
	shell_body() {
		printf '{"cpus":{"boot_vcpus":1,"max_vcpus":1},"memory":{"size":268435456},'
		printf '"payload":{"kernel":"%s","initramfs":"%s","cmdline":"quiet cvisor.shell=1"},' \
			"$(realpath "$KERNEL")" "$(realpath "$INITRD")"
		printf '"disks":[{"path":"%s"}],"serial":{"mode":"Tty"},"console":{"mode":"Off"}}' \
			"${1:-$T_TMP/scratch.img}"
	}
	# The VMM's stdin and stdout are the guest's serial (mode Tty): the
	# shell's, for g_run.
	g_spawn an env CVISOR_CH_NAME="$N" "$CH" --api-socket "$S"
	NPID=${G_PID[an]}
	for i in $(seq 100); do
		api "$S" GET vmm.ping
		[ "$API_CODE" = 200 ] && break
		sleep 0.1
	done
	addnet '{"mac":"'$MAC'"}' --tap "$TAP"
	expect "vm.add-net before vm.create" 500 'no VM is created'
	# A boot that fails keeps the NIC in the config; vm.delete closes it.
	api "$S" PUT vm.create "$(shell_body /nonexistent.img)"
	n0=$(nfds)
	addnet '{"mac":"'$MAC'"}' --tap "$TAP"
	expect "vm.add-net" 200 '^\{"id":"_net0","bdf":"0000:00:02\.0"\}$'
	api "$S" PUT vm.boot
	expect "vm.boot that fails (no disk image)" 500 'nonexistent'
	n1=$(nfds)
	api "$S" PUT vm.delete
	if [ "$n1" = $((n0 + 1)) ] && [ "$(nfds)" = "$n0" ] && [ "$(ntun)" = 0 ]; then
		t_pass "a failed boot keeps the tap's descriptor ($n0 -> $n1 fds); vm.delete closes it ($(nfds))"
	else
		t_fail "a failed boot keeps the tap's descriptor, vm.delete closes it" \
			"fds $n0, after the boot $n1, after vm.delete $(nfds) ($(ntun) tun)"
	fi
	api "$S" PUT vm.create "$(shell_body)"
	expect "vm.create with a scratch disk" 204 ''
	n0=$(nfds)
	addnet '{"mac":"'$MAC'"}'
	expect "vm.add-net without a descriptor or tap: 400" 400 'no tap: pass its descriptor'
	addnet '{"mac":"'$MAC'","num_queues":2}' --tap "$TAP" --copies 3
	expect "vm.add-net with 3 descriptors: 400" 400 '3 descriptors came with the request.*exactly one'
	addnet '{"mac":"'$MAC'"}' --pipe
	expect "vm.add-net with a pipe: 400" 400 'not a tap device'
	addnet '{"mac":' --tap "$TAP"
	expect "vm.add-net with bad JSON: 400" 400 'not one JSON object'
	addnet '{"mac":"'$MAC'","ip":"10.78.0.2","mask":"255.255.255.0"}' --tap "$TAP"
	expect "vm.add-net with ip: 400" 400 'ip: not supported by cvisor'
	if [ "$(nfds)" = "$n0" ]; then
		t_pass "the refused vm.add-nets left no descriptor behind ($n0)"
	else
		t_fail "the refused vm.add-nets left no descriptor behind" "$n0 fds, then $(nfds)"
	fi
	# libvirt's body: id net_N, mac, num_queues 2 (one queue pair).
	addnet '{"id":"net_0","mac":"'$MAC'","num_queues":2}' --tap "$TAP"
	expect "vm.add-net: PciDeviceInfo with the client's id" 200 \
		'^\{"id":"net_0","bdf":"0000:00:02\.0"\}$'
	[ "$(ntun)" = 1 ] && t_pass "the VMM holds the tap's descriptor" ||
		t_fail "the VMM holds the tap's descriptor" "$(ntun) tun fds"
	api "$S" GET vm.info
	expect "vm.info's config: the NIC and the disk by id" 200 \
		'"disks":\[\{"path":"[^"]*","id":"_disk0"\}\].*"net":\[\{"id":"net_0","mac":"'$MAC'","num_queues":2\}\]'
	api "$S" PUT vm.boot
	expect "vm.boot with the NIC" 204 ''
	addnet '{"mac":"52:54:00:c0:ff:ef"}' --pipe
	expect "vm.add-net on a running VM: no hotplug" 500 'no device hotplug'
	if ! g_ready an "$BOOT_TIMEOUT"; then
		t_fail "the guest's shell (serial on the VMM's stdio)" "$(g_log an | tail -n 5 | tr '\n' ' ')"
	else
		t_pass "the guest's shell (serial on the VMM's stdio)"
		g_run an 30 'cat /sys/class/net/eth0/address; basename $(dirname $(readlink -f /sys/class/net/eth0/device))'
		if [ "$G_RC" = 0 ] && [ "$(tr -d ' \n' <<<"$G_OUT")" = "${MAC}0000:00:02.0" ]; then
			t_pass "the guest's eth0 has the MAC given, at the BDF vm.add-net answered"
		else
			t_fail "the guest's eth0 has the MAC given, at the BDF vm.add-net answered" "status $G_RC: $(echo $G_OUT)"
		fi
		g_run an 60 'ip addr add 10.78.0.2/24 dev eth0 && ip link set eth0 up && ping -c 3 -W 10 10.78.0.1 | tail -n 2'
		if [ "$G_RC" = 0 ] && grep -q " 0% packet loss" <<<"$G_OUT"; then
			t_pass "the guest pings the tap's host side ($(tail -n 1 <<<"$G_OUT"))"
		else
			t_fail "the guest pings the tap's host side" "status $G_RC: $(echo $G_OUT)"
		fi
		c1=$(counters)
		# 256 KiB written through to the disk, read back past the page
		# cache, and two pings.
		g_run an 120 'dd if=/dev/zero of=/dev/vda bs=4k count=64 conv=fsync 2>/dev/null && echo 3 >/proc/sys/vm/drop_caches && dd if=/dev/vda of=/dev/null bs=4k count=64 2>/dev/null && ping -c 2 -W 10 10.78.0.1 >/dev/null'
		c2=$(counters)
		if [ "$G_RC" = 0 ] && python3 -c 'import sys
a = [int(x) for x in sys.argv[1].split()]; b = [int(x) for x in sys.argv[2].split()]
sys.exit(not (len(a) == len(b) == 8 and all(x > 0 for x in a[4:]) and all(y > x for x, y in zip(a, b))
              and b[1] - a[1] >= 262144 and b[0] - a[0] >= 262144))' "$c1" "$c2"; then
			t_pass "vm.counters per device grow with the guest's I/O (_disk0 and net_0: '$c1' -> '$c2')"
		else
			t_fail "vm.counters per device grow with the guest's I/O" "status $G_RC; '$c1' -> '$c2': $API_BODY"
		fi
	fi
	api "$S" PUT vm.pause
	api "$S" PUT vm.snapshot "{\"destination_url\":\"file://$T_TMP\"}"
	expect "vm.snapshot with a passed tap: refused" 500 'cannot carry'
	api "$S" PUT vm.resume
	api "$S" PUT vm.shutdown
	expect "vm.shutdown" 204 ''
	api "$S" PUT vm.delete
	if [ "$(nfds)" = "$n0" ] && [ "$(ntun)" = 0 ]; then
		t_pass "after vm.delete: no tap descriptor, the VMM's fds as before ($n0)"
	else
		t_fail "after vm.delete: no tap descriptor, the VMM's fds as before" \
			"$n0 fds, then $(nfds) ($(ntun) tun): $(ls -l /proc/$NPID/fd | tr '\n' ' ')"
	fi
	api "$S" PUT vmm.shutdown
	ended "$NPID" 10 || t_fail "VMM an ends" "pid $NPID"
fi

# ---- Cloud Hypervisor's direct VM flags: the VM created and booted at once ----
# A tiny guest that prints its command line and powers off: the VMM ends
# with status 0 (no API socket needed). The command line's comma stays
# (--cmdline is one string, not key=value pairs).
t_run 30 env CVISOR_CH_NAME="${P}flags" "$CH" --kernel "$GUESTS/cmdline.elf" \
	--cmdline "hello, flags" --cpus boot=1 --memory size=64M --serial tty --console off
t_expect_out "direct flags: the guest boots, prints and powers off (exit 0)" \
	'^cmdline: \[.*hello, flags'
# With --api-socket too: the socket serves the VM the flags made, Running
# with their vCPUs and memory; --disk takes two values after one flag.
H=${P}h
S=$T_TMP/h.sock
truncate -s 1M "$T_TMP/h1.img" "$T_TMP/h2.img"
if vmm "$H" "$S" --kernel "$GUESTS/counter.elf" --cpus boot=2,max=2 --memory size=256M \
	--disk "path=$T_TMP/h1.img" "path=$T_TMP/h2.img,readonly=on" --serial tty --console off; then
	HPID=$VMM_PID
	api "$S" GET vm.info
	if [ "$API_CODE" = 200 ] && printf '%s' "$API_BODY" | grep -q '"state":"Running"' &&
		printf '%s' "$API_BODY" | grep -q '"cpus":{"boot_vcpus":2,"max_vcpus":2}' &&
		printf '%s' "$API_BODY" | grep -q '"memory":{"size":268435456}' &&
		printf '%s' "$API_BODY" | grep -q '"readonly":true,"id":"_disk1"}\]'; then
		t_pass "direct flags + --api-socket: vm.info Running with the flags' cpus, memory, disks"
	else
		t_fail "direct flags + --api-socket: vm.info Running with the flags' cpus, memory, disks" \
			"$API_CODE $API_BODY"
	fi
	if wait_more "$H" 1; then
		t_pass "the flags' guest counts, reached by its cvisor name"
	else
		t_fail "the flags' guest counts, reached by its cvisor name" "$(tail -3 "$T_TMP/$H.out")"
	fi
	api "$S" PUT vm.create "$(create_body counter)"
	expect "vm.create after the flags' VM" 500 'already created'
	stop_vmm "$S" "$HPID" "the flags' VMM"
else
	t_fail "VMM h starts from direct flags" "$(cat "$T_TMP/$H.err")"
fi
# Malformed values: one line naming the flag, exit 2, before anything runs.
K=$GUESTS/cmdline.elf
t_run 10 "$CH" --kernel "$K" --cpus boot=x
t_expect_err "--cpus boot=x" 2 '^cloud-hypervisor: --cpus boot=x: boot wants a number$'
t_run 10 "$CH" --kernel "$K" --memory size=12Q
t_expect_err "--memory size=12Q" 2 '^cloud-hypervisor: --memory size=12Q: size wants a size'
t_run 10 "$CH" --kernel "$K" --disk readonly=on
t_expect_err "--disk without path" 2 '^cloud-hypervisor: --disk: disks\[0\]\.path: missing$'
t_run 10 "$CH" --kernel "$K" --disk --serial tty
t_expect_err "--disk without a value" 2 '^cloud-hypervisor: --disk needs a value$'
t_run 10 "$CH" --kernel "$K" --frobnicate
t_expect_err "an unknown flag with --kernel" 2 'unsupported argument --frobnicate'
t_run 10 "$CH" --kernel "$K" --cpus boot=1,max=2
t_expect_err "--cpus max above boot: the translator's refusal under the flag" 2 \
	'^cloud-hypervisor: --cpus: cpus\.max_vcpus: .*CPU hotplug unsupported'
t_run 10 "$CH" --kernel "$K" --fs tag=x,socket=/s
t_expect_err "--fs refused by name" 2 '^cloud-hypervisor: --fs: not supported by cvisor'
t_run 10 "$CH" --cpus boot=2
t_expect_err "VM flags without --kernel" 2 'need --kernel'

# ---- a peer the access check refuses gets an HTTP 403 with a JSON body ----
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	U=${P}u
	# A directory another uid can pass through, whatever $T_TMP's parents are.
	PUB=$(mktemp -d /tmp/cvisor-chapi-pub.XXXXXX)
	chmod 0711 "$PUB"
	S=$PUB/u.sock
	if vmm "$U" "$S"; then
		UPID=$VMM_PID
		chmod 0666 "$S" # modes made wider by mistake: the peer check still holds
		out=$(setpriv --reuid=65534 --regid=65534 --clear-groups curl -sS -i --max-time 10 \
			--unix-socket "$S" http://localhost/api/v1/vmm.ping 2>&1)
		if printf '%s' "$out" | head -1 | grep -q '^HTTP/1.1 403 Forbidden' &&
			printf '%s' "$out" | grep -q '^{"error":"permission denied: uid 65534 '; then
			t_pass "a refused peer: HTTP 403 with a JSON reason"
		else
			t_fail "a refused peer: HTTP 403 with a JSON reason" "$out"
		fi
		stop_vmm "$S" "$UPID" "VMM u"
	else
		t_fail "VMM u starts" "$(cat "$T_TMP/$U.err")"
	fi
	rm -rf "$PUB"
else
	t_skip "a refused peer: HTTP 403" "needs root and setpriv (to be another uid)"
fi

# ---- a reboot whose rebuild cannot copy the guest's name ends the VMM ----
# (run_guest's config_set_string fails: the VMM must not wait with no VM).
# Only a restored guest is rebuilt to reboot (a booted one resets in
# place): the snapshot taken above, with --seccomp false.
if command -v "${CC:-cc}" >/dev/null &&
	"${CC:-cc}" -shared -fPIC -o "$T_TMP/fail_strdup.so" tests/e2e/fail_strdup.c -ldl 2>"$T_TMP/cc.err"; then
	N=${P}n
	S=$T_TMP/n.sock
	ARM=$T_TMP/n.arm
	if LD_PRELOAD=$T_TMP/fail_strdup.so FAIL_STRDUP_OF=$N FAIL_STRDUP_ARMED=$ARM \
		vmm "$N" "$S" --seccomp false; then
		NPID=$VMM_PID
		api "$S" PUT vm.restore "{\"source_url\":\"file://$T_TMP/snap\"}"
		api "$S" PUT vm.resume
		expect "restore and resume before the failing reboot" 204 ''
		touch "$ARM"
		api "$S" PUT vm.reboot
		if ended "$NPID" 10; then
			t_pass "a reboot that cannot copy the name ends the VMM"
		else
			t_fail "a reboot that cannot copy the name ends the VMM" \
				"pid $NPID still runs: $(tail -2 "$T_TMP/$N.err")"
			kill -9 "$NPID" 2>/dev/null
		fi
	else
		t_fail "VMM n starts" "$(cat "$T_TMP/$N.err")"
	fi
else
	t_skip "a reboot that cannot copy the name ends the VMM" "no C compiler: $(cat "$T_TMP/cc.err" 2>/dev/null)"
fi

t_summary chapi
