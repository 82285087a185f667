#!/usr/bin/env bash
# tests/e2e/guest-console.sh - the guest's consoles on ptys, as `virsh
# console` (libvirt's ch driver) and screen use them: the slave path from
# cvisor's stderr line or `cvisor info`, opened and typed into by
# tests/e2e/pty_console.py (every wait bounded).
#
# Boot A, in the foreground: --console pty --serial pty with
# console=ttyS0 console=hvc0 (the shell on hvc0):
#   - one stderr line names both ptys;
#   - the virtio-console pty shows the kernel's and init's output, a typed
#     line runs in the guest's shell and its answer comes back;
#   - the 8250's pty shows the boot log (the kernel's banner) and a line
#     the guest writes to /dev/ttyS0;
#   - `poweroff` typed on hvc0 ends the monitor with status 0.
# Boot B, named and detached, the same devices on virtio-mmio, the shell on
# ttyS0: `cvisor info --json` has console_pty and serial_pty; a line typed
# into the 8250's pty runs; hvc0's pty shows the kernel's messages; the
# serial output still reaches the log that `cvisor console` reads. Then
# `cvisor save` and `restore`, and `cvisor migrate` to a jailed target:
# each time new ptys, a line typed on the serial one runs and what it
# writes to /dev/hvc0 comes out of the console one.
# Bad input: --console and --serial values other than the ones documented.
# With the tiny guests (make tiny): --serial off drops the output; --serial
# pty with the echo guest answers a line typed into the pty, nothing on
# stdout.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
. tests/named.sh
. tests/guest.sh
g_named_suite guest-console "gc$$-"
PTYC=tests/e2e/pty_console.py
KIT=(--kernel "$KERNEL" --initrd "$INITRD")
CMDLINE="console=ttyS0 console=hvc0 cvisor.shell=1"

# ptys_of FILE: wait (30 s) for the monitor's line "virtio-console on
# /dev/pts/N, serial on /dev/pts/M" in FILE; sets CON and SER.
ptys_of() {
	local i line
	for i in $(seq 300); do
		line=$(grep -m1 'virtio-console on /dev/pts/' "$1" 2>/dev/null)
		if [ -n "$line" ]; then
			CON=$(sed -n 's|.*virtio-console on \(/dev/pts/[0-9]*\).*|\1|p' <<<"$line")
			SER=$(sed -n 's|.*serial on \(/dev/pts/[0-9]*\).*|\1|p' <<<"$line")
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# pty_check NAME PTY STEP...: pty_console.py on PTY (log in T_TMP), a check.
pty_check() {
	local name=$1 pty=$2 err
	shift 2
	if err=$(timeout -k 5 "$BOOT_TIMEOUT" python3 "$PTYC" "$pty" "$T_TMP/pty.log" \
		"$BOOT_TIMEOUT" "$@" 2>&1); then
		t_pass "$name"
	else
		t_fail "$name" "$err; read: $(tail -c 300 "$T_TMP/pty.log" | tr -d '\r' | tr '\n' ' ')"
	fi
}

# ---- bad input ----
t_run 10 "$CVISOR" run "${KIT[@]}" --console tty
t_expect_err "--console tty is refused (only pty)" 2 "--console tty: must be pty"
t_run 10 "$CVISOR" run "${KIT[@]}" --serial file
t_expect_err "--serial file is refused" 2 "--serial file: must be tty, pty or off"

# ---- the tiny guest that prints one line on COM1 (make tiny) ----
if [ -f "$GUESTS/hello.elf" ]; then
	t_run 20 "$CVISOR" run --kernel "$GUESTS/hello.elf" --serial off
	if [ "$T_RC" = 0 ] && [ -z "$T_OUT" ]; then
		t_pass "--serial off: the guest runs, its output goes nowhere"
	else
		t_fail "--serial off" "exit $T_RC, stdout: $T_OUT"
	fi
	# The line waits in the pty (cvisor holds the slave) until read here.
	"$CVISOR" run --kernel "$GUESTS/echo.elf" --serial pty </dev/null >"$T_TMP/h.out" \
		2>"$T_TMP/h.err" &
	H_PID=$!
	T_PIDS+=("$H_PID")
	for _ in $(seq 100); do
		grep -qs 'serial on /dev/pts/' "$T_TMP/h.err" && break
		sleep 0.1
	done
	SER=$(sed -n 's|.*serial on \(/dev/pts/[0-9]*\).*|\1|p' "$T_TMP/h.err")
	if [ -n "$SER" ]; then
		pty_check "--serial pty: a tiny guest echoes a line typed into the pty" "$SER" \
			'expect:echo: ready' 'send:ping-pty' 'expect:echo: ping-pty'
	else
		t_fail "--serial pty: the pty is named" "$(cat "$T_TMP/h.err")"
	fi
	kill "$H_PID" 2>/dev/null
	wait "$H_PID" 2>/dev/null
	if [ ! -s "$T_TMP/h.out" ]; then
		t_pass "--serial pty: nothing on stdout"
	else
		t_fail "--serial pty: nothing on stdout" "$(head -c 200 "$T_TMP/h.out")"
	fi
else
	t_skip "--serial off and pty with a tiny guest" "$GUESTS/hello.elf missing (make tiny)"
fi

# ---- boot A: foreground ----
"$CVISOR" run "${KIT[@]}" --cmdline "$CMDLINE" --console pty --serial pty \
	</dev/null >"$T_TMP/a.out" 2>"$T_TMP/a.err" &
A_PID=$!
T_PIDS+=("$A_PID")
if ! ptys_of "$T_TMP/a.err"; then
	t_fail "stderr names the ptys" "$(cat "$T_TMP/a.err")"
	t_summary guest-console
	exit 1
fi
t_pass "stderr names the ptys ($CON, $SER)"
# The serial pty first: the kernel's banner waits there (the kernel's pty
# buffer keeps it) while hvc0 boots on.
pty_check "the 8250's pty shows the boot log" "$SER" 'expect:Linux version'
pty_check "hvc0's pty shows init's output" "$CON" 'expect:Run /init as init process' \
	'expect:CVISOR-SHELL'
pty_check "a line typed into hvc0's pty runs in the guest" "$CON" \
	'send:echo typed-$((6 * 7)) on $(uname -n)' 'expect:typed-42 on cvisor'
pty_check "a line on /dev/ttyS0 reaches the 8250's pty" "$CON" \
	'send:echo serial-$((6 * 7)) >/dev/ttyS0; echo sent-$((6 * 7))' 'expect:sent-42'
pty_check "... and is read there" "$SER" 'expect:serial-42'
python3 "$PTYC" "$CON" "$T_TMP/pty.log" 5 'send:poweroff' >/dev/null 2>&1
end=$((SECONDS + 120))
while kill -0 "$A_PID" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.2; done
if kill -0 "$A_PID" 2>/dev/null; then
	t_fail "poweroff typed on hvc0 ends the monitor" "still running after 120 s"
else
	wait "$A_PID"
	rc=$?
	if [ "$rc" = 0 ]; then t_pass "poweroff typed on hvc0 ends the monitor, status 0"; else
		t_fail "poweroff typed on hvc0 ends the monitor" "status $rc: $(tail -n 3 "$T_TMP/a.err")"
	fi
fi

# ---- boot B: named, detached, virtio-mmio; saved, restored, migrated ----
# The shell on ttyS0 this time (the last console= is /dev/console).
B=${P}b
R=${P}r
T=${P}t
run_d "named guest with --console pty --serial pty" "$B" "${KIT[@]}" --virtio mmio \
	--cmdline "console=hvc0 console=ttyS0 cvisor.shell=1" --console pty --serial pty
info=$("$CVISOR" info "$B" --json 2>&1)
CON=$(sed -n 's/.*"console_pty":"\([^"]*\)".*/\1/p' <<<"$info")
SER=$(sed -n 's/.*"serial_pty":"\([^"]*\)".*/\1/p' <<<"$info")
if [ -c "$CON" ] && [ -c "$SER" ] && [ "$CON" != "$SER" ]; then
	t_pass "cvisor info has console_pty and serial_pty ($CON, $SER)"
else
	t_fail "cvisor info has console_pty and serial_pty" "$info"
fi
pty_check "the shell answers a line typed into the 8250's pty" "$SER" 'expect:CVISOR-SHELL' \
	'send:echo named-$((6 * 7))' 'expect:named-42'
pty_check "virtio-mmio: hvc0's pty shows the kernel's messages" "$CON" \
	'expect:Run /init as init process'
if wait_log "$B" "Linux version" 10; then
	t_pass "with --serial pty the log (cvisor console) still gets the serial output"
else
	t_fail "with --serial pty the log still gets the serial output" \
		"$(head -c 300 "$CVISOR_RUN_DIR/$B.log")"
fi

# both_ptys WHAT NAME WORD: NAME's ptys from info; a line typed on the
# serial pty writes WORD-42 to /dev/hvc0, read on the console pty.
both_ptys() {
	local what=$1 name=$2 word=$3 info con ser
	info=$("$CVISOR" info "$name" --json 2>&1)
	con=$(sed -n 's/.*"console_pty":"\([^"]*\)".*/\1/p' <<<"$info")
	ser=$(sed -n 's/.*"serial_pty":"\([^"]*\)".*/\1/p' <<<"$info")
	if [ ! -c "$con" ] || [ ! -c "$ser" ]; then
		t_fail "$what: new ptys" "$info"
		return
	fi
	t_pass "$what: new ptys ($con, $ser)"
	pty_check "$what: the shell answers on the serial pty" "$ser" \
		"send:echo $word-\$((6 * 7)) >/dev/hvc0; echo sent-$word" "expect:sent-$word"
	pty_check "$what: what it wrote to /dev/hvc0 is on the console pty" "$con" \
		"expect:$word-42"
}

t_run 120 "$CVISOR" save "$B" "$T_TMP/b.snap"
if [ "$T_RC" = 0 ] && gone "$B"; then t_pass "cvisor save"; else
	t_fail "cvisor save" "exit $T_RC: $T_ERR"
fi
t_run 60 "$CVISOR" restore "$T_TMP/b.snap" --name "$R" -d
started "restore" "$R" && both_ptys "restore" "$R" restored

# The target jailed: its ptys are made before the jail, in the host's /dev/pts.
port=$(g_port)
t_run 30 "$CVISOR" run -d --jail --name "$T" --incoming "127.0.0.1:$port"
if started "incoming (jailed)" "$T"; then
	t_run 300 "$CVISOR" migrate "$R" "127.0.0.1:$port"
	if [ "$T_RC" = 0 ]; then
		t_pass "cvisor migrate"
		both_ptys "migration to a jailed target" "$T" migrated
	else
		t_fail "cvisor migrate" "exit $T_RC: $T_ERR"
	fi
fi
pid=$(pid_of "$T")
t_run 10 "$CVISOR" kill "$T"
if gone "$T" "$pid"; then
	t_pass "kill: the monitor is gone (and its ptys with it)"
else
	t_fail "kill: the monitor is gone" "pid $pid still runs"
fi
t_summary guest-console
