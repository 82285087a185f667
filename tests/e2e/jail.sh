#!/usr/bin/env bash
# tests/e2e/jail.sh - `--jail` (README "Jail"): a jailed monitor's threads,
# namespaces, root and rlimits, the toolstack against it (info, pause,
# console, save, restore, migrate), the keeper's cleanup, --uid/--gid/
# --jail-dir/--netns, and a user in group kvm without root. Tiny guests
# (tests/kvm/guests); prints TAP (tests/lib.sh). Most cases need root and
# say SKIP without it.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
. tests/named.sh

P=jl$$- # guest name prefix

need_kvm jail
need_guests jail counter hello echo

# What a case may leave when the suite ends early: the network namespace,
# the user made below (its guest, run directory and /dev/kvm's group).
NS=${P}ns KU= KUID=
jail_cleanup() {
	[ -z "$KU" ] || undo_user
	ip netns del "$NS" 2>/dev/null
	named_cleanup
}
trap jail_cleanup EXIT

# ---- --jail: the monitor in its own namespaces, unprivileged ----
# jail_status PID: "Seccomp NoNewPrivs CapEff CapPrm CapInh CapBnd CapAmb
# groups=Groups Uid-fields" of every thread, one distinct line per kind of
# thread.
jail_status() {
	local t
	for t in /proc/"$1"/task/*/status; do
		awk '/^Seccomp:/{s=$2} /^NoNewPrivs:/{n=$2} /^Cap(Eff|Prm|Inh|Bnd|Amb):/{c[$1]=$2}
			/^Groups:/{g=$2} /^Uid:/{u=$2" "$3" "$4" "$5}
			END{print s, n, c["CapEff:"], c["CapPrm:"], c["CapInh:"], c["CapBnd:"],
				c["CapAmb:"], "groups=" g, u}' "$t" 2>/dev/null
	done | sort -u
}
# wait_jailed PID [UID]: up to 10 s until every thread is filtered (a vCPU
# thread enters its filter just after it starts), with no capability in
# any set, no supplementary group, and uid UID (64000).
wait_jailed() {
	local i u=${2:-64000} z=0000000000000000
	for i in $(seq 100); do
		[ "$(jail_status "$1")" = "2 1 $z $z $z $z $z groups= $u $u $u $u" ] && return 0
		sleep 0.1
	done
	return 1
}
# dir_fds PID: the fds of PID that are directories (a way out of the jail).
dir_fds() {
	local f
	for f in /proc/"$1"/fd/*; do
		[ -d "$f" ] && printf '%s -> %s\n' "${f##*/}" "$(readlink "$f")"
	done
}
# jail_gone NAME: within 10 s its socket, lock and jail directory are gone.
jail_gone() {
	local i
	gone "$1" || return 1
	for i in $(seq 100); do
		[ ! -e "$CVISOR_RUN_DIR/jail/$1" ] && return 0
		sleep 0.1
	done
	return 1
}

J=${P}jail
echo "host only" >"$T_TMP/host-marker"
if [ "$(id -u)" != 0 ]; then
	t_skip "jailed guests" "--jail needs root"
elif start "$J" counter --cpus 2 --jail; then
	jpid=$(pid_of "$J")
	if [ -n "$jpid" ] && wait_jailed "$jpid"; then
		t_pass "jail: every thread has Seccomp 2, NoNewPrivs 1, no capability in any set, no groups, uid 64000 ($(ls /proc/"$jpid"/task | wc -l) threads)"
	else
		t_fail "jail: every thread filtered and unprivileged" "pid '$jpid': $(jail_status "$jpid")"
	fi
	dirs=$(dir_fds "$jpid")
	if [ -z "$dirs" ] && [ -e /proc/"$jpid"/fd/0 ]; then
		t_pass "jail: no directory among its fds"
	else
		t_fail "jail: a directory fd" "$dirs"
	fi
	# ls shows the host's pid, which is PID 1 of the guest's own namespace.
	nspid=$(sed -n 's/^NSpid:[[:space:]]*//p' /proc/"$jpid"/status 2>/dev/null | tr -s '\t ' ' ')
	if [ "$nspid" = "$jpid 1" ]; then
		t_pass "jail: ls shows the host pid of PID 1 of a new PID namespace"
	else
		t_fail "jail: PID namespace" "ls pid $jpid, NSpid '$nspid'"
	fi
	root=$(ls -A /proc/"$jpid"/root 2>&1 | tr '\n' ' ')
	rootfs=$(awk '$5 == "/" { for (i = 6; i < NF; i++) if ($i == "-") { print $(i + 1), $(i + 2); exit } }' \
		/proc/"$jpid"/mountinfo 2>/dev/null)
	if [ "$root" = "proc " ] && [ "$rootfs" = "tmpfs cvisor-jail" ] &&
		[ ! -e "/proc/$jpid/root$T_TMP/host-marker" ] && [ ! -e "/proc/$jpid/root/etc/passwd" ] &&
		[ ! -e "/proc/$jpid/root$(pwd)/$CVISOR" ]; then
		t_pass "jail: its root is the empty jail, no host file visible"
	else
		t_fail "jail: its root" "root holds '$root', root fs '$rootfs'"
	fi
	if [ "$(readlink /proc/"$jpid"/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] &&
		[ "$(readlink /proc/"$jpid"/ns/ipc)" != "$(readlink /proc/self/ns/ipc)" ] &&
		[ "$(readlink /proc/"$jpid"/ns/uts)" != "$(readlink /proc/self/ns/uts)" ] &&
		[ "$(readlink /proc/"$jpid"/ns/net)" = "$(readlink /proc/self/ns/net)" ]; then
		t_pass "jail: own mount, IPC and UTS namespaces, the host's network"
	else
		t_fail "jail: namespaces" "$(ls -l /proc/"$jpid"/ns/ 2>&1 | tr '\n' ' ')"
	fi
	lim=$(awk '/^Max (open files|processes|file size)/{print $(NF-2)}' /proc/"$jpid"/limits | tr '\n' ' ')
	case $lim in
	[0-9]*" 4096 1024 ") t_pass "jail: rlimits (file size, processes, open files: $lim)" ;;
	*) t_fail "jail: rlimits" "$lim" ;;
	esac
	# Non-dumpable: a host process of the same uid may not ptrace it (nor
	# take its fds); no core.
	core=$(awk '/^Max core file size/{print $5}' /proc/"$jpid"/limits)
	if ! command -v setpriv >/dev/null; then
		t_skip "jail: not dumpable" "needs setpriv"
	elif ! setpriv --reuid=64000 --regid=64000 --clear-groups cat /proc/"$jpid"/environ >/dev/null 2>&1 &&
		[ "$core" = 0 ]; then
		t_pass "jail: uid 64000 on the host cannot read its memory (non-dumpable), no core"
	else
		t_fail "jail: not dumpable" "uid 64000 read /proc/$jpid/environ, or core limit '$core'"
	fi
	# The toolstack: info, pause/resume, console, top.
	t_run 10 "$CVISOR" info "$J" --json
	t_expect_out "jail: info says jailed" '"jailed":true'
	t_run 10 "$CVISOR" pause "$J"
	st1=$T_RC
	t_run 10 "$CVISOR" info "$J"
	t_expect_out "jail: pause ($st1)" '^state *paused$'
	t_run 10 "$CVISOR" resume "$J"
	t_expect_out "jail: resume" ''
	t_run 10 "$CVISOR" top --once
	t_expect_out "jail: top" "^$J +running "
	wait_count "$J" 3
	if console_until "$J" "$T_TMP/jcon" '^count [0-9]'; then
		t_pass "jail: console"
	else
		t_fail "jail: console" "$(head -c 200 "$T_TMP/jcon")"
	fi
	# A path the monitor would open itself is refused: it sees no host path.
	t_run 10 "$CVISOR" ctl "$J" "{\"cmd\":\"save\",\"path\":\"$T_TMP/nope\",\"keep_running\":true}"
	t_expect_err "jail: a save by path is refused" 1 "is jailed and sees no host path"
	# Passed files belong to the request line they came with: those of an
	# info line are not a later save's; too many refuse their line.
	# fds_case WHAT N DATA REGEX...: DATA with N files on its first byte;
	# every REGEX is in the two replies.
	fds_case() {
		local what=$1 n=$2 data=$3 re out
		shift 3
		out=$(python3 tests/e2e/ctl_client.py send "$CVISOR_RUN_DIR/$J.sock" "$data" --fds "$n" --lines 2)
		for re in "$@"; do
			grep -q -- "$re" <<<"$out" || { t_fail "jail: $what" "$out"; return; }
		done
		t_pass "jail: $what"
	}
	save='{"cmd":"save","path":"/x","keep_running":true}\n'
	fds_case "files passed with one request are not another's" 2 '{"cmd":"info"}\n'"$save" \
		'"ok":true' 'is jailed and sees no host path'
	fds_case "a request with too many files is refused, the next served" 4 "$save"'{"cmd":"info"}\n' \
		'at most 2 files may come with a request' '"ok":true'
	# cvisor save passes the files; restore and migrate jailed again.
	t_run 60 "$CVISOR" save "$J" "$T_TMP/jsnap" --keep-running
	if [ "$T_RC" = 0 ] && [ -s "$T_TMP/jsnap" ] && [ -f "$T_TMP/jsnap.mem" ] &&
		[ -z "$(ls -A "$T_TMP" | grep '^\.')" ]; then
		t_pass "jail: save --keep-running to a host path"
	else
		t_fail "jail: save" "exit $T_RC: $T_ERR; $(ls -A "$T_TMP" | tr '\n' ' ')"
	fi
	# A destination that cannot take the rename: a directory is refused
	# before the request goes (the guest, saved without --keep-running,
	# runs on); a rename that fails afterwards (here a mount point, EBUSY)
	# keeps the files the monitor wrote and names them.
	mkdir "$T_TMP/adir"
	t_run 60 "$CVISOR" save "$J" "$T_TMP/adir"
	t_run 10 "$CVISOR" info "$J"
	if [ "$(grep -c '^state *running$' "$T_TMP/out")" = 1 ] && [ -z "$(ls -A "$T_TMP/adir")" ] &&
		[ -z "$(ls -A "$T_TMP" | grep '^\.')" ]; then
		t_pass "jail: save to a directory is refused before the guest is touched"
	else
		t_fail "jail: save to a directory" "$(cat "$T_TMP/out") $(ls -A "$T_TMP" | tr '\n' ' ')"
	fi
	touch "$T_TMP/busy"
	if mount --bind /dev/null "$T_TMP/busy" 2>/dev/null; then
		t_run 60 "$CVISOR" save "$J" "$T_TMP/busy" --keep-running
		umount "$T_TMP/busy"
		kept=$(sed -n 's/.*; kept: //p' <<<"$T_ERR" | grep -o "$T_TMP/\.cvisor-[0-9a-f]*\.tmp")
		if [ "$T_RC" = 1 ] && [ "$(wc -w <<<"$kept")" = 2 ] && [ -s "$(head -n 1 <<<"$kept")" ] &&
			[ -f "$(tail -n 1 <<<"$kept")" ]; then
			t_pass "jail: a failed rename keeps and names what the monitor wrote"
		else
			t_fail "jail: a failed rename after the save" "exit $T_RC: $T_ERR"
		fi
		rm -f $kept
	else
		t_skip "jail: a failed rename after the save" "mount --bind failed"
	fi
	J2=${P}jail2 J3=${P}jail3
	t_run 10 "$CVISOR" restore "$T_TMP/jsnap" --name "$J2" -d --jail
	if started "jail: restore --jail" "$J2" && c0=$(last_count "$J2") &&
		wait_count "$J2" $((${c0:-0} + 3)) && wait_jailed "$(pid_of "$J2")"; then
		t_pass "jail: the restored guest runs on, jailed"
	else
		t_fail "jail: restored guest" "$(tail -n 3 "$CVISOR_RUN_DIR/$J2.log" 2>&1)"
	fi
	# With TLS: the jailed source's monitor reads no key (it could not:
	# the jail hides host paths); cvisor migrate makes the session and
	# relays the monitor's stream. The jailed target read its key at start.
	port=$((30000 + $$ % 20000))
	(umask 077 && printf 'cvisor:%s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >"$T_TMP/j.psk")
	t_run 10 "$CVISOR" run -d --name "$J3" --jail --incoming "127.0.0.1:$port" --tls-psk "$T_TMP/j.psk"
	if started "jail: run --incoming --jail --tls-psk" "$J3"; then
		t_run 60 "$CVISOR" migrate "$J2" "127.0.0.1:$port" --tls-psk "$T_TMP/j.psk" --verify
		j3pid=$(pid_of "$J3")
		if [ "$T_RC" = 0 ] && c0=$(last_count "$J3") && wait_count "$J3" $((${c0:-0} + 3)) &&
			wait_jailed "$j3pid" && gone "$J2"; then
			t_pass "jail: live migration with TLS between jailed monitors: $T_OUT"
		else
			t_fail "jail: live migration" "exit $T_RC: $T_ERR $(jail_status "$j3pid")"
		fi
		"$CVISOR" kill "$J3" >/dev/null 2>&1
	fi
	if jail_gone "$J2" && jail_gone "$J3"; then
		t_pass "jail: the migration's source and target leave nothing behind"
	else
		t_fail "jail: after the migration" "$(ls "$CVISOR_RUN_DIR" "$CVISOR_RUN_DIR/jail" | tr '\n' ' ')"
	fi
	# A qcow2 disk with a backing file into a jailed target: the stream
	# arrives before the jail, the image is the target's own, and the
	# jailed guest reads back what it wrote on the source (blkcount
	# verify=1 checks every sector it overwrites).
	J4=${P}jail4 J5=${P}jail5
	port=$((port + 1))
	mkdir -p "$T_TMP/jq" "$T_TMP/jqdst"
	if head -c 1M /dev/urandom >"$T_TMP/jq/base.raw" &&
		qemu-img create -q -f qcow2 -b base.raw -F raw "$T_TMP/jq/top.qcow2" 4M &&
		start "$J4" blkcount --memory 64M --disk "$T_TMP/jq/top.qcow2,format=qcow2" --cmdline verify=1 &&
		t_run 10 "$CVISOR" run -d --name "$J5" --jail --incoming "127.0.0.1:$port" --storage-dir "$T_TMP/jqdst" &&
		started "jail: run --incoming --jail --storage-dir" "$J5" &&
		wait_count "$J4" 70; then
		# 70: past the 64 steps after which verify=1 reads back what the
		# source wrote, so the target checks the copied blocks too.
		t_run 60 "$CVISOR" migrate "$J4" "127.0.0.1:$port" --with-storage
		j5pid=$(pid_of "$J5")
		if [ "$T_RC" = 0 ] && wait_count "$J5" 80 && wait_jailed "$j5pid" &&
			! grep -q FAIL "$CVISOR_RUN_DIR/$J5.log" && qemu-img check -q "$T_TMP/jqdst/top.qcow2"; then
			t_pass "jail: a qcow2 disk migrated into a jailed target, read back there (count $(last_count "$J5"))"
		else
			t_fail "jail: qcow2 storage migration" "exit $T_RC: $T_ERR $(grep FAIL "$CVISOR_RUN_DIR/$J5.log") $(jail_status "$j5pid")"
		fi
		"$CVISOR" kill "$J5" >/dev/null 2>&1
		jail_gone "$J5" || t_fail "jail: the qcow2 target leaves nothing behind" "$(ls "$CVISOR_RUN_DIR/jail")"
	fi
	# stop: the keeper outside removes what the jailed monitor cannot.
	t_run 20 "$CVISOR" stop "$J" --timeout 1
	# The keeper removes the cgroup once the monitor has left it.
	for i in $(seq 50); do
		cg=$(ls -d /sys/fs/cgroup/cvisor/"$J" /sys/fs/cgroup/*/cvisor/"$J" /sys/fs/cgroup/*/*/cvisor/"$J" 2>/dev/null)
		[ -z "$cg" ] && break
		sleep 0.1
	done
	if jail_gone "$J" "$jpid" && [ -z "$cg" ]; then
		t_pass "jail: after stop no socket, lock, jail directory or cgroup is left"
	else
		t_fail "jail: cleanup after stop" "$(ls "$CVISOR_RUN_DIR" "$CVISOR_RUN_DIR/jail") $cg"
	fi
fi

# kill -9 of the jailed monitor: its keeper still cleans up. A given
# --jail-dir stays (it is the user's), and what it holds is not visible.
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$T_TMP/jd" && echo secret >"$T_TMP/jd/secret"
	if start "$J" counter --jail --jail-dir "$T_TMP/jd" --uid 64123 --gid 64124; then
		jpid=$(pid_of "$J")
		wait_jailed "$jpid" 64123
		ids=$(awk '/^Uid:/{u=$2} /^Gid:/{g=$2} END{print u, g}' /proc/"$jpid"/status)
		if [ "$ids" = "64123 64124" ] && [ ! -e "/proc/$jpid/root/secret" ]; then
			t_pass "jail: --uid, --gid and a --jail-dir whose contents are hidden"
		else
			t_fail "jail: --uid/--gid/--jail-dir" "ids '$ids', root: $(ls -A /proc/"$jpid"/root)"
		fi
		kill -9 "$jpid"
		if gone "$J" "$jpid" && [ -f "$T_TMP/jd/secret" ]; then
			t_pass "jail: kill -9 of the monitor: the keeper removes its socket and lock"
		else
			t_fail "jail: kill -9" "$(ls "$CVISOR_RUN_DIR")"
		fi
	fi
	# kill -9 of the keeper (the jailed monitor's parent): the monitor ends
	# with it (its parent-death signal survives the uid change). Nobody is
	# left to remove its socket, lock, jail directory and cgroup; the next
	# guest of that name takes them over, and its keeper removes them.
	if start "$J" counter --jail; then
		jpid=$(pid_of "$J")
		wait_jailed "$jpid"
		kpid=$(awk '/^PPid:/{print $2}' /proc/"$jpid"/status 2>/dev/null)
		[ -n "$kpid" ] && [ "$kpid" != 1 ] && kill -9 "$kpid"
		for i in $(seq 100); do
			kill -0 "$jpid" 2>/dev/null || break
			sleep 0.1
		done
		if [ -n "$kpid" ] && ! kill -0 "$jpid" 2>/dev/null; then
			t_pass "jail: kill -9 of the keeper ends the jailed monitor"
			left=$(ls -d "$CVISOR_RUN_DIR/$J".* "$CVISOR_RUN_DIR/jail/$J" \
				/sys/fs/cgroup/cvisor/"$J" /sys/fs/cgroup/*/cvisor/"$J" 2>/dev/null | tr '\n' ' ')
			t_info "left behind by a killed keeper: ${left:-nothing}"
			if start "$J" counter --jail && wait_count "$J" 1; then
				t_run 20 "$CVISOR" stop "$J" --timeout 1
				if jail_gone "$J"; then
					t_pass "jail: the name is free again after a killed keeper, and cleaned up after"
				else
					t_fail "jail: the name after a killed keeper" "$(ls "$CVISOR_RUN_DIR" "$CVISOR_RUN_DIR/jail")"
				fi
			fi
		else
			t_fail "jail: kill -9 of the keeper" "keeper '$kpid', monitor $jpid: $(grep -E '^(State|PPid)' /proc/"$jpid"/status 2>&1 | tr '\n' ' ')"
			kill -9 "$jpid" 2>/dev/null
		fi
	fi
	# A foreground jailed guest on a terminal (a pty): the monitor is in a
	# session of its own, with no controlling terminal (no TIOCSTI into
	# the shell's), yet the console still reads and writes the terminal.
	out=$(timeout 200 python3 - "$CVISOR" "$GUESTS/echo.elf" <<'PY' 2>&1
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "run", "--jail", "--kernel", sys.argv[2]])
out = b""
def read_until(text, secs):
    global out
    end = time.time() + secs
    while text not in out and time.time() < end:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return
            if not data:
                return
            out += data
read_until(b"echo: ready", 60)
try:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        mon = int(f.read().split()[0])
    with open(f"/proc/{mon}/stat") as f:
        st = f.read().rsplit(")", 1)[1].split()
    print(f"monitor tty_nr {st[4]} session {'own' if int(st[3]) == mon else 'shared'}")
except (OSError, IndexError, ValueError) as e:
    print(f"monitor: {e}")
os.write(fd, b"hi jail\r")
read_until(b"echo: hi jail", 60)
os.write(fd, b"\x01x")
read_until(b"quit from the console", 60)
_, ws = os.waitpid(pid, 0)
print(out.decode(errors="replace"))
print(f"rc={os.waitstatus_to_exitcode(ws)}")
PY
	)
	if grep -q '^monitor tty_nr 0 session own$' <<<"$out" && grep -q '^echo: hi jail' <<<"$out" &&
		grep -q '^rc=0$' <<<"$out"; then
		t_pass "jail: a foreground guest's console works on a terminal the monitor does not control"
	else
		t_fail "jail: foreground console, no controlling terminal" "$out"
	fi
	# A keeper started with SIGCHLD ignored (inherited through exec) still
	# learns its monitor's end and status.
	out=$(timeout 20 python3 -c 'import os, signal, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
os.execv(sys.argv[1], sys.argv[1:])' "$CVISOR" run --jail --kernel "$GUESTS/hello.elf" 2>&1 </dev/null)
	rc=$?
	if [ "$rc" = 0 ] && grep -q 'hello from cvisor' <<<"$out"; then
		t_pass "jail: a keeper that inherited SIGCHLD ignored ends with its monitor"
	else
		t_fail "jail: SIGCHLD ignored" "exit $rc: $out"
	fi
	# --net user: libslirp answers the guest's DNS from /etc/resolv.conf,
	# which the jail shows it (read-only); without --net user it is absent.
	if [ -f /etc/resolv.conf ] && start "$J" counter --jail --net user; then
		jpid=$(pid_of "$J")
		wait_jailed "$jpid"
		if cmp -s /etc/resolv.conf "/proc/$jpid/root/etc/resolv.conf" &&
			grep -q " /etc/resolv.conf .*ro," /proc/"$jpid"/mountinfo; then
			t_pass "jail: --net user sees the host's /etc/resolv.conf, read-only"
		else
			t_fail "jail: resolv.conf for libslirp" "$(ls -la /proc/"$jpid"/root/etc 2>&1 | tr '\n' ' ')"
		fi
		"$CVISOR" kill "$J" >/dev/null 2>&1
		gone "$J"
	fi
	ip netns add "$NS" 2>/dev/null
	if [ -e "/run/netns/$NS" ] && start "$J" counter --jail --netns "/run/netns/$NS" --net user; then
		jpid=$(pid_of "$J")
		if [ "$(stat -L -c %i /proc/"$jpid"/ns/net)" = "$(stat -L -c %i /run/netns/"$NS")" ]; then
			t_pass "jail: --netns puts the monitor in that network namespace"
		else
			t_fail "jail: --netns" "$(readlink /proc/"$jpid"/ns/net)"
		fi
		"$CVISOR" kill "$J" >/dev/null 2>&1
	else
		t_skip "jail: --netns" "no network namespace (ip netns add)"
	fi
	ip netns del "$NS" 2>/dev/null
fi

# A user in group kvm runs guests without root: its own run directory, no
# cgroup (it may not make one), --net user. The test makes the user (and
# the kvm group, /dev/kvm's group access) and undoes it.
if [ "$(id -u)" != 0 ] || ! command -v useradd >/dev/null; then
	t_skip "a user in group kvm" "needs root and useradd"
else
	KU=cvu$$ KD=$(mktemp -d /tmp/cvisor-user.XXXXXX) kvm_was=$(stat -c '%g %a' /dev/kvm) made_kvm=
	# undo_user: its guest (left running if su timed out) and any other
	# process of it, by pid; the user, its run directory, /dev/kvm's group.
	undo_user() {
		local p
		if [ -n "$KUID" ]; then
			CVISOR_RUN_DIR=/tmp/cvisor-$KUID timeout 5 "$CVISOR" kill u >/dev/null 2>&1
			for p in $(ps -o pid= -u "$KUID" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
			rm -rf "/tmp/cvisor-$KUID"
		fi
		userdel "$KU" 2>/dev/null
		set -- $kvm_was
		chgrp "$1" /dev/kvm && chmod "$2" /dev/kvm
		[ -z "$made_kvm" ] || groupdel kvm
		rm -rf "$KD"
		KU= KUID=
	}
	getent group kvm >/dev/null || { groupadd -r kvm && made_kvm=1; }
	useradd -M -N -s /bin/sh -G kvm "$KU" && KUID=$(id -u "$KU")
	chgrp kvm /dev/kvm && chmod g+rw /dev/kvm
	chmod 755 "$KD" && cp "$CVISOR" "$GUESTS/hello.elf" "$GUESTS/counter.elf" "$KD/" && chmod 755 "$KD"/*
	out=$(cd "$KD" && timeout 60 su -s /bin/sh "$KU" -c "unset CVISOR_RUN_DIR XDG_RUNTIME_DIR
		./cvisor run --kernel hello.elf; echo rc=\$?
		./cvisor run -d --name u --net user --kernel counter.elf; echo rc=\$?
		./cvisor ls
		./cvisor save u /tmp/cvisor-\$(id -u)/s --keep-running; echo rc=\$?
		./cvisor kill u; echo rc=\$?
		./cvisor run --jail --kernel hello.elf; echo rc=\$?" 2>&1)
	if grep -q 'hello from cvisor' <<<"$out" && [ "$(grep -c '^rc=0$' <<<"$out")" = 4 ] &&
		grep -q "^u  *[0-9]* running" <<<"$out" && [ -s "/tmp/cvisor-$KUID/s" ] &&
		grep -q '^rc=2$' <<<"$out" && grep -q -- '--jail needs root' <<<"$out"; then
		t_pass "a user in group kvm: run, -d with --net user, ls, save, kill; --jail refused"
	else
		t_fail "a user in group kvm" "$out"
	fi
	undo_user
fi

# ---- --jail with --on-reboot restart: a reset rereads the kernel from the
# file kept open before the jail hid its path; the guest boots three times.
t_run 120 "$CVISOR" run --jail --on-reboot restart --kernel "$GUESTS/smp.elf" --cpus 2 \
	--cmdline smp.reboot=3
if [ "$T_RC" = 0 ] && [ "$(grep -cx 'smp: ok' <<<"$T_OUT")" = 3 ] && grep -qx 'smp: boot 3 of 3' <<<"$T_OUT"; then
	t_pass "--jail --on-reboot restart: the guest resets twice and boots again each time"
else
	t_fail "--jail --on-reboot restart: the guest boots again after its resets" \
		"exit $T_RC: $(tail -n 3 <<<"$T_OUT" | tr '\n' ' ') $(tail -n 2 <<<"$T_ERR" | tr '\n' ' ')"
fi

t_summary jail
