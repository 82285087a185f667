# tests/guest.sh - drive a Linux guest's shell from a test suite. Source it
# after tests/lib.sh. The guest is the kit's microVM kernel and initramfs
# with cvisor.shell=1: guest/init prints CVISOR-SHELL and runs a shell on
# the serial console. Everything a check asserts is what that shell, in the
# guest, printed.
#
#   g_start ID TIMEOUT CMD...   run CMD (`cvisor run ...` or `cvisor console
#                               NAME`) with its stdin on a FIFO and its output
#                               in $T_TMP/ID.out; returns 0 once the guest's
#                               shell answers a first command
#   g_spawn ID CMD...           g_start's first half: CMD runs, no wait
#   g_ready ID TIMEOUT          its second half: until the shell answers
#   g_attach ID TIMEOUT NAME    g_start for `cvisor console NAME` of a guest
#                               whose shell runs already
#   g_run ID TIMEOUT LINE       type LINE into the shell and wait until it has
#                               run: G_OUT is its output (CRs removed), G_RC
#                               its exit status; 1 (G_RC=timeout) if it did
#                               not finish within TIMEOUT seconds
#   g_type ID LINE              type LINE and do not wait (poweroff, ...)
#   g_wait_exit ID TIMEOUT      wait for CMD to end: G_RC is its exit status
#                               (timeout: it is killed, G_RC=timeout)
#   g_log ID                    the output so far, CRs removed
#
# Waiting polls the output file with a bounded timeout: a slow host makes a
# check take longer, never pass or fail differently. Every process started
# here is ended (SIGTERM, then SIGKILL) when the suite exits.
KERNEL=${KERNEL:-build/guest/microvm.vmlinux}
INITRD=${INITRD:-build/guest/initramfs.cpio}
TOOLS=${TOOLS:-build/guest/tools.img}
# Seconds to the shell: about 30 on an emulating host, under 5 elsewhere.
BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}
LOGDIR=${LOGDIR:-build/test-logs}
mkdir -p "$LOGDIR"
declare -A G_PID G_FD
G_SEQ=0

g_log() {
	tr -d '\r' <"$T_TMP/$1.out" 2>/dev/null
}

# In a subshell: a write to a FIFO whose reader has gone is SIGPIPE, which
# would end the suite itself, skipping its cleanup.
g_type() {
	(printf '%s\n' "$2" >&"${G_FD[$1]}") 2>/dev/null
}

g_run() {
	local id=$1 tmo=$2 cmd=$3 n end
	G_SEQ=$((G_SEQ + 1))
	n=$G_SEQ
	# "a &; b" is not sh: a line that ends in the background gets a no-op.
	case "$cmd" in *'&') cmd="$cmd true" ;; esac
	# The markers as typed (@@B1""@@) differ from what echo prints (@@B1@@),
	# so the terminal's echo of the line never matches.
	g_type "$id" "echo @@B$n\"\"@@; $cmd; echo @@E$n\"\" \$?@@"
	end=$((SECONDS + tmo))
	# Not anchored: under load the guest kernel may print on the same line.
	until g_log "$id" | grep -aqE "@@E$n [0-9]+@@"; do
		if [ "$SECONDS" -ge "$end" ] || ! kill -0 "${G_PID[$id]}" 2>/dev/null; then
			G_RC=timeout
			G_OUT=$(g_log "$id" | tail -n 5)
			return 1
		fi
		sleep 0.2
	done
	G_OUT=$(g_log "$id" | sed -n "/@@B$n@@/,/@@E$n [0-9]*@@/p" | sed '1d;$d')
	G_RC=$(g_log "$id" | sed -n "s/.*@@E$n \([0-9]*\)@@.*/\1/p" | tail -n 1)
	return 0
}

g_start() {
	local id=$1 tmo=$2
	shift 2
	g_spawn "$id" "$@" || return 1
	g_ready "$id" "$tmo"
}

# g_spawn ID CMD...: start CMD with its stdin on a FIFO and its output in
# $T_TMP/ID.out, and return at once (g_ready waits for its shell).
g_spawn() {
	local id=$1 fifo=$T_TMP/$1.in fd
	shift
	rm -f "$fifo"
	mkfifo "$fifo" || return 1
	# The reader's open of the FIFO waits for this writer's, below.
	"$@" <"$fifo" >"$T_TMP/$id.out" 2>"$T_TMP/$id.err" &
	G_PID[$id]=$!
	exec {fd}>"$fifo"
	G_FD[$id]=$fd
}

# g_ready ID TIMEOUT: the second half of g_start, for a g_spawn'ed CMD.
g_ready() {
	local id=$1 tmo=$2 end
	end=$((SECONDS + tmo))
	# A booting guest: what is typed before its shell opens the console is
	# lost, so wait for init's word first (G_ATTACH=1: a shell that runs).
	if [ "${G_ATTACH:-0}" != 1 ]; then
		until g_log "$id" | grep -q "^CVISOR-SHELL$"; do
			if [ "$SECONDS" -ge "$end" ] || ! kill -0 "${G_PID[$id]}" 2>/dev/null; then
				G_RC=timeout
				return 1
			fi
			sleep 0.2
		done
	fi
	# Then type until the shell answers.
	while [ "$SECONDS" -lt "$end" ]; do
		g_run "$id" 10 "true" && return 0
		kill -0 "${G_PID[$id]}" 2>/dev/null || return 1
	done
	return 1
}

# g_attach ID TIMEOUT NAME: g_start on `cvisor console NAME`, a guest whose
# shell already runs.
g_attach() {
	G_ATTACH=1 g_start "$1" "$2" "$CVISOR" console "$3"
}

g_wait_exit() {
	local id=$1 tmo=$2 end=$((SECONDS + $2))
	while kill -0 "${G_PID[$id]}" 2>/dev/null; do
		if [ "$SECONDS" -ge "$end" ]; then
			kill -KILL "${G_PID[$id]}" 2>/dev/null
			wait "${G_PID[$id]}" 2>/dev/null
			G_RC=timeout
			return 1
		fi
		sleep 0.2
	done
	wait "${G_PID[$id]}"
	G_RC=$?
	return 0
}

# Keep a guest's output for the CI log, and end what is still running.
g_cleanup() {
	local id
	for id in "${!G_PID[@]}"; do
		[ -f "$T_TMP/$id.out" ] && cp "$T_TMP/$id.out" "$LOGDIR/${G_SUITE:-guest}-$id.log"
		[ -f "$T_TMP/$id.err" ] && cp "$T_TMP/$id.err" "$LOGDIR/${G_SUITE:-guest}-$id.err"
		t_stop "${G_PID[$id]}"
	done
}

# g_check NAME: pass if the last g_run exited 0, else fail with its output.
g_check() {
	if [ "$G_RC" = 0 ]; then
		t_pass "$1"
	else
		t_fail "$1" "status $G_RC: $(tail -n 3 <<<"$G_OUT" | tr '\n' ' ')"
	fi
}

# g_poweroff ID WHAT: `poweroff` at the guest's prompt ends the monitor
# with status 0 within two minutes (a check named WHAT).
g_poweroff() {
	g_type "$1" poweroff
	g_wait_exit "$1" 120
	if [ "$G_RC" = 0 ]; then
		t_pass "$2"
	else
		t_fail "$2" "status $G_RC: $(g_log "$1" | tail -n 2 | tr '\n' ' ')"
	fi
}

# g_named_suite SUITE PREFIX: the start of a suite of named guests: P is
# the guest name prefix, and everything is cleaned up at exit.
g_named_suite() {
	G_SUITE=$1
	P=$2
	trap 'g_cleanup; named_cleanup' EXIT
	need_kvm "$1"
	g_kit "$1"
}

# g_kit SUITE: end the suite unless the guest kit is built.
g_kit() {
	local f
	for f in "$KERNEL" "$INITRD" "$TOOLS"; do
		[ -f "$f" ] || t_abort "$1" "$f missing (run make guest)"
	done
}

# A free TCP port on this host (or in the current network namespace).
g_port() {
	local p
	for p in $(shuf -i 20000-60000 -n 50); do
		ss -Htln "sport = :$p" | grep -q . || {
			echo "$p"
			return 0
		}
	done
	return 1
}
