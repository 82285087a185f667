#!/usr/bin/env bash
# tests/e2e/guest-shell.sh - the README's first command on a terminal: `make
# run` in a tmux pane (a pseudo-terminal, so cvisor puts it in raw mode)
# reaches the guest's busybox prompt, a typed command's output comes back,
# and `poweroff` ends it with status 0. Also records the time from `make
# run` to the prompt.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
command -v tmux >/dev/null || t_abort guest-shell "tmux missing (bash scripts/install-deps.sh)"
[ -x "$CVISOR" ] || t_abort guest-shell "$CVISOR not found (run make)"
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	t_skip_suite guest-shell "/dev/kvm is not accessible"
fi
BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}
LOGDIR=${LOGDIR:-build/test-logs}
mkdir -p "$LOGDIR"
sock=cvisor-test-$$
tm() { tmux -L "$sock" "$@"; }
cleanup() {
	tm capture-pane -p -S - -t run >"$LOGDIR/guest-shell.log" 2>/dev/null
	tm kill-server 2>/dev/null
	t_cleanup
}
trap cleanup EXIT

# wait_pane REGEX SECONDS: until a line of the pane matches REGEX (tmux
# drops trailing blanks: the prompt reads "/ #").
wait_pane() {
	local end=$((SECONDS + $2))
	until tm capture-pane -p -S - -t run 2>/dev/null | grep -qE -- "$1"; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.2
	done
}

start=$(date +%s.%N)
tm new-session -d -s run -x 160 -y 48 \
	"make -s run; echo \"MAKE-RUN-EXIT \$?\" >$T_TMP/status; sleep 3600" ||
	t_abort guest-shell "tmux new-session failed"
if wait_pane "^CVISOR-SHELL" "$BOOT_TIMEOUT" && wait_pane "^/ #" 60; then
	took=$(echo "$(date +%s.%N) - $start" | bc)
	t_pass "make run reaches the busybox prompt on a terminal in $(printf '%.1f' "$took") s"
	t_info "boot to the shell prompt: $(printf '%.1f' "$took") s wall"
else
	t_fail "make run reaches the prompt" "$(tm capture-pane -p -t run | grep . | tail -n 4 | tr '\n' ' ')"
	t_summary guest-shell
	exit 1
fi
tm send-keys -t run 'echo typed-$((6 * 7)) on $(uname -n)' Enter
if wait_pane "^typed-42 on cvisor" 60; then
	t_pass "a command typed at the prompt runs in the guest and prints back"
else
	t_fail "typed command" "$(tm capture-pane -p -t run | grep . | tail -n 4 | tr '\n' ' ')"
fi
tm send-keys -t run 'poweroff' Enter
end=$((SECONDS + 120))
until [ -s "$T_TMP/status" ] || [ "$SECONDS" -ge "$end" ]; do sleep 0.2; done
st=$(sed -n 's/^MAKE-RUN-EXIT //p' "$T_TMP/status" 2>/dev/null)
if [ "$st" = 0 ]; then
	t_pass "poweroff at the prompt ends make run with status 0"
else
	t_fail "poweroff ends make run" "status '${st:-none}': $(tm capture-pane -p -t run | grep . | tail -n 3 | tr '\n' ' ')"
fi
t_summary guest-shell
