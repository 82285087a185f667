#!/usr/bin/env bash
# tests/e2e/libvirt.sh - cvisor driven by libvirt's Cloud Hypervisor driver,
# through `virsh -c ch:///system`, in libvirt 9.0 (Debian 12) and 11.3
# (Debian 13), each built from Debian's source package with only the ch
# driver (scripts/libvirt-build.sh, cached per machine).
#
# For each version, virtchd runs from its build tree with cvisor as
# `cloud-hypervisor` in its PATH (a symlink in a temporary directory), in a
# private mount namespace where a temporary directory is mounted over the
# build's --prefix var/: its sockets, pidfiles, domain state and logs are
# this run's alone. virsh runs in that namespace too (nsenter), so the URI
# is plain ch:///system. The 11.3 daemon also runs in a network namespace
# this test makes, where libvirt creates the domain's tap.
#
# The guest is the kit's microVM kernel and initramfs (make guest) with a
# shell on the virtio console (console=hvc0: libvirt 9.0 accepts no other),
# driven through `virsh console` under script(1), which gives virsh the
# terminal it insists on (tests/guest.sh types into it). Checked per version:
#   define, start, list, dominfo;
#   console: the guest's output through the pty, a line typed and answered;
#   suspend/resume: a counter loop in the guest stops and goes on;
#   reboot: the guest boots again (a mark in its tmpfs is gone);
#   shutdown: the guest stops (its counter stops); in 11.3 the domain goes
#     to shut off and the VMM ends;
#   destroy: no VMM process left;
#   11.3 only: a NIC libvirt passes as tap fds (vm.add-net), pinged from the
#     guest, and save (vm.snapshot) into a directory.
#
# libvirt's own bugs, worked around here and only here (see README):
#   - 9.0 never notices a VMM that ended or a guest that shut down: after
#     `virsh shutdown` the domain stays "in shutdown" until `virsh destroy`.
#   - 9.0 undefines a persistent domain when it is destroyed: the test does
#     not expect it in `list --all` afterwards.
#   - 9.0 waits without a timeout on a VMM that does not answer: every virsh
#     call here is bounded by timeout(1).
#   - 11.3 cannot save a domain with a NIC unless the VMM claims v40
#     (restore with new tap fds): the NIC and the save use two domains.
#   - 11.3's restore fails inside libvirt (its pidfile is not set on that
#     path): not tested.
#   - Neither keeps domains across a daemon restart: each version's daemon
#     lives for the whole of its run.
#   - Both leave a stopped domain's cgroups behind: removed at exit.
#
# Skipped (exit 77) when not root, without /dev/kvm, or while build/cvisor
# does not answer `--version` as cloud-hypervisor (the REST API mode).
# LIBVIRT_VERSIONS="9.0" limits the run.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
. tests/guest.sh
G_SUITE=libvirt
VERSIONS=${LIBVIRT_VERSIONS:-9.0 11.3}
# Seconds a virsh call may take (a VMM that does not answer hangs 9.0).
VIRSH_TIMEOUT=${VIRSH_TIMEOUT:-60}
ns=cvlv$$
LV_DPIDS=()
LV_MNTNS=()

# lv_procs MNTNS: the pids of the VMM processes (cvisor) in a daemon's
# mount namespace, which only this run's daemon and its children use.
lv_procs() {
	local p exe
	exe=$(realpath "$CVISOR")
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$1" ] || continue
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$exe" ] && echo "${p#/proc/}"
	done
}

# End every daemon and VMM this run started, keep their logs for CI.
lv_cleanup() {
	local i p d
	g_cleanup
	for i in "${!LV_DPIDS[@]}"; do
		for p in $(lv_procs "${LV_MNTNS[$i]}"); do kill -KILL "$p" 2>/dev/null; done
		t_stop "${LV_DPIDS[$i]}"
	done
	for d in "$T_TMP"/lv-*; do
		[ -d "$d" ] || continue
		cp "$d/virtchd.log" "$LOGDIR/libvirt-${d##*/lv-}-virtchd.log" 2>/dev/null
		for p in "$d"/var/log/libvirt/ch/*.log; do
			[ -f "$p" ] && cp "$p" "$LOGDIR/libvirt-${d##*/lv-}-vmm-${p##*/}"
		done
	done
	ip netns del "$ns" 2>/dev/null
	# libvirt leaves its cgroups of the domains behind (v1 hierarchies).
	for d in /sys/fs/cgroup/*/machine/ch-*-lv*-$$.libvirt-ch; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	t_cleanup
}
trap lv_cleanup EXIT

[ "$(id -u)" = 0 ] || t_skip_suite libvirt "needs root (ch:///system, mount and network namespaces)"
[ -x "$CVISOR" ] || t_abort libvirt "$CVISOR not found (run make)"
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	t_skip_suite libvirt "/dev/kvm is not accessible"
fi
# libvirt runs `cloud-hypervisor --version` and wants "cloud-hypervisor vX.Y.Z".
mkdir -p "$T_TMP/bin"
ln -s "$(realpath "$CVISOR")" "$T_TMP/bin/cloud-hypervisor"
chv=$(timeout 10 "$T_TMP/bin/cloud-hypervisor" --version 2>/dev/null </dev/null | head -n 1)
if ! grep -Eq '^cloud-hypervisor v[0-9]+\.[0-9]+' <<<"$chv"; then
	t_skip_suite libvirt "$CVISOR invoked as cloud-hypervisor answers '${chv:-nothing}' to --version, not 'cloud-hypervisor vX.Y.Z': no REST API mode in this build"
fi
for f in "$KERNEL" "$INITRD"; do
	[ -f "$f" ] || t_abort libvirt "$f missing (run make guest)"
done
KERNEL=$(realpath "$KERNEL")
INITRD=$(realpath "$INITRD")
t_info "cvisor as $chv; libvirt ${VERSIONS// /, }"

# --- the daemon -----------------------------------------------------------------

# lv_daemon VER BUILD [NETNS]: start VER's virtchd from BUILD (in NETNS if
# given) and wait for it to answer. Sets LV_DIR, LV_DPID, LV_NS, LV_BUILD.
lv_daemon() {
	local ver=$1 enter=() end
	LV_BUILD=$2
	LV_DIR=$T_TMP/lv-$ver
	# 11.3 writes the VMM's output to log/libvirt/ch, which only an install makes.
	mkdir -p "$LV_DIR"/var/{run,log/libvirt/ch,lib/libvirt,cache/libvirt} || return 1
	[ -n "${3:-}" ] && enter=(nsenter "--net=/run/netns/$3")
	# unshare -m makes the namespace; mount and env exec into virtchd, so
	# $! is the daemon. A clean environment: PATH names cloud-hypervisor.
	"${enter[@]}" unshare -m --propagation private sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' \
		sh "$LV_DIR/var" "$(dirname "$LV_BUILD")/prefix/var" \
		env -i HOME="$LV_DIR" PATH="$T_TMP/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		LD_LIBRARY_PATH="$LV_BUILD/src" LIBVIRT_DIR_OVERRIDE=1 \
		LIBVIRT_LOG_FILTERS="1:ch 1:util.command" LIBVIRT_LOG_OUTPUTS="1:file:$LV_DIR/virtchd.log" \
		"$LV_BUILD/src/virtchd" </dev/null >"$LV_DIR/virtchd.out" 2>&1 &
	LV_DPID=$!
	disown
	LV_DPIDS+=("$LV_DPID")
	end=$((SECONDS + 60))
	until [ -S "$LV_DIR/var/run/libvirt/virtchd-sock" ] && vsh 20 version; do
		if [ "$SECONDS" -ge "$end" ] || ! kill -0 "$LV_DPID" 2>/dev/null; then
			T_ERR="virtchd did not come up: $(tail -n 5 "$LV_DIR/virtchd.out") $T_ERR"
			return 1
		fi
		sleep 0.5
	done
	LV_NS=$(readlink "/proc/$LV_DPID/ns/mnt")
	LV_MNTNS+=("$LV_NS")
}

# vsh TIMEOUT ARGS...: virsh -c ch:///system ARGS in the daemon's mount
# namespace (t_run: T_OUT, T_ERR, T_RC).
vsh() {
	local to=$1
	shift
	t_run "$to" nsenter -t "$LV_DPID" -m -- env LD_LIBRARY_PATH="$LV_BUILD/src" \
		LIBVIRT_DIR_OVERRIDE=1 "$LV_BUILD/tools/virsh" -q -c ch:///system "$@"
}

# vcheck NAME ARGS...: a virsh call that must succeed.
vcheck() {
	local name=$1
	shift
	vsh "$VIRSH_TIMEOUT" "$@"
	if [ "$T_RC" = 0 ]; then
		t_pass "$name"
	else
		t_fail "$name" "virsh $1: exit $T_RC: $(tr '\n' ' ' <<<"$T_ERR $T_OUT")"
		return 1
	fi
}

# domstate DOM: virsh domstate, or "?" when virsh fails.
domstate() {
	vsh "$VIRSH_TIMEOUT" domstate "$1"
	[ "$T_RC" = 0 ] && echo "$T_OUT" || echo "?"
}

# wait_state DOM STATE SECONDS: until domstate says STATE.
wait_state() {
	local end=$((SECONDS + $3))
	until [ "$(domstate "$1")" = "$2" ]; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 1
	done
}

# wait_no_vmm SECONDS: until no VMM process is left in the daemon's namespace.
wait_no_vmm() {
	local end=$((SECONDS + $1))
	while [ -n "$(lv_procs "$LV_NS")" ]; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.5
	done
}

# domain_xml NAME MARKER [EXTRA_DEVICES]: a domain of the kit's kernel with
# a shell on the virtio console (hvc0).
domain_xml() {
	cat <<EOF
<domain type='kvm'>
  <name>$1</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type>hvm</type>
    <kernel>$KERNEL</kernel>
    <initrd>$INITRD</initrd>
    <cmdline>console=hvc0 cvisor.shell=1 cvisor.marker=$2</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <console type='pty'>
      <target type='virtio'/>
    </console>${3:-}
  </devices>
</domain>
EOF
}

# --- the guest, through virsh console -------------------------------------------

# console ID DOM: attach `virsh console DOM` (under script(1): virsh wants a
# terminal) and type until the guest's shell answers.
console() {
	local cmd
	cmd=$(printf '%q ' timeout -k 5 3600 nsenter -t "$LV_DPID" -m -- env \
		LD_LIBRARY_PATH="$LV_BUILD/src" LIBVIRT_DIR_OVERRIDE=1 "$LV_BUILD/tools/virsh" \
		-c ch:///system console --force "$2")
	G_ATTACH=1 SHELL=/bin/bash g_start "$1" "$BOOT_TIMEOUT" script -qfec "$cmd" /dev/null
}

# console_end ID: detach (virsh console ends on ^]).
console_end() {
	[ -n "${G_FD[$1]:-}" ] || return 0
	(printf '\035' >&"${G_FD[$1]}") 2>/dev/null
	g_wait_exit "$1" 10 || true
}

counts() { g_log "$1" | grep -ao 'COUNT [0-9]*' | awk '{ print $2 }'; }
last_count() { counts "$1" | tail -n 1; }

# wait_counts ID N SECONDS: until ID's console shows N more counts than now.
wait_counts() {
	local want end=$((SECONDS + $3))
	want=$(($(counts "$1" | wc -l) + $2))
	while [ "$(counts "$1" | wc -l)" -lt "$want" ]; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.5
	done
}

# start_counter ID WHAT: a loop in the guest prints "COUNT n" each second;
# passes once it ticks. Sets TICK, the seconds three counts took here.
start_counter() {
	local t0=$SECONDS
	g_run "$1" 30 '(i=0; while :; do i=$((i+1)); echo COUNT $i; sleep 1; done) &'
	if wait_counts "$1" 3 120; then
		TICK=$((SECONDS - t0 + 1))
		t_pass "$2: a counter runs in the guest"
	else
		TICK=
		t_fail "$2: a counter runs in the guest" "no counts: $(g_log "$1" | tail -n 3 | tr '\n' ' ')"
	fi
}

# counter_stopped ID WHAT: no more than the one count in flight arrives in
# a window three times as long as three counts took while running (at
# least 5 s). A slow host can only make this pass, never fail.
counter_stopped() {
	local before after
	before=$(counts "$1" | wc -l)
	sleep $((TICK * 3 > 5 ? (TICK * 3 > 30 ? 30 : TICK * 3) : 5))
	after=$(counts "$1" | wc -l)
	if [ "$after" -le $((before + 1)) ]; then
		t_pass "$2: the counter stops ($((after - before)) count(s) in flight)"
	else
		t_fail "$2: the counter stops" "$((after - before)) counts while it should be stopped"
	fi
}

# --- the cases ----------------------------------------------------------------------

# lifecycle VER DOM: define .. reboot, on a domain without a NIC; 1 if it
# did not start. The console session is left attached as "$DOM", with a
# counter running (TICK set) when the console works (CON=1).
lifecycle() {
	local v=$1 dom=$2 c=$2 out
	domain_xml "$dom" "lv-$v" >"$LV_DIR/$dom.xml"
	vcheck "$v: define" define "$LV_DIR/$dom.xml"
	vsh "$VIRSH_TIMEOUT" list --all --name
	if [ "$T_RC" = 0 ] && grep -qx "$dom" <<<"$T_OUT" && [ "$(domstate "$dom")" = "shut off" ]; then
		t_pass "$v: list --all shows the defined domain shut off"
	else
		t_fail "$v: list --all shows the defined domain shut off" "exit $T_RC: $T_OUT $T_ERR"
	fi
	vcheck "$v: start" start "$dom" || return
	vsh "$VIRSH_TIMEOUT" list --name
	if [ "$T_RC" = 0 ] && grep -qx "$dom" <<<"$T_OUT"; then
		t_pass "$v: list shows it running"
	else
		t_fail "$v: list shows it running" "exit $T_RC: $T_OUT $T_ERR"
	fi
	vsh "$VIRSH_TIMEOUT" dominfo "$dom"
	if [ "$T_RC" = 0 ] && grep -Eq '^State: +running' <<<"$T_OUT" &&
		grep -Eq '^CPU\(s\): +1$' <<<"$T_OUT" && grep -Eq '^Max memory: +262144 KiB' <<<"$T_OUT"; then
		t_pass "$v: dominfo: running, 1 CPU, 256 MiB"
	else
		t_fail "$v: dominfo: running, 1 CPU, 256 MiB" "exit $T_RC: $(tr '\n' ' ' <<<"$T_OUT $T_ERR")"
	fi
	out=$(lv_procs "$LV_NS" | wc -l)
	if [ "$out" = 1 ]; then
		t_pass "$v: one cvisor process runs the domain"
	else
		t_fail "$v: one cvisor process runs the domain" "$out cvisor processes"
	fi

	# The console: the guest's boot output and its shell, through the pty.
	# Without it, the rest still runs, with less to observe.
	CON=1
	if ! console "$c" "$dom"; then
		t_fail "$v: console: the guest's shell answers" "no answer within $BOOT_TIMEOUT s: $(g_log "$c" | tail -n 5 | tr '\n' ' ')"
		CON=0
	fi
	if [ "$CON" = 1 ]; then
		g_run "$c" 30 'cat /proc/cmdline; echo $((6 * 7))'
		if [ "$G_RC" = 0 ] && grep -q "cvisor.marker=lv-$v" <<<"$G_OUT" && grep -qx 42 <<<"$G_OUT"; then
			t_pass "$v: console: a line typed, the guest's answer read"
		else
			t_fail "$v: console: a line typed, the guest's answer read" "status $G_RC: $(tr '\n' ' ' <<<"$G_OUT")"
		fi
		if g_log "$c" | grep -q "^CVISOR-MARKER lv-$v"; then
			t_info "$v: the guest's boot output came through the console too"
		fi
		start_counter "$c" "$v"
	else
		TICK=
	fi

	# suspend and resume: the counter stops and goes on.
	vcheck "$v: suspend" suspend "$dom"
	out=$(domstate "$dom")
	[ "$out" = paused ] && t_pass "$v: domstate paused" || t_fail "$v: domstate paused" "domstate: $out"
	[ -n "$TICK" ] && counter_stopped "$c" "$v: suspended"
	vcheck "$v: resume" resume "$dom"
	out=$(domstate "$dom")
	[ "$out" = running ] && t_pass "$v: domstate running" || t_fail "$v: domstate running" "domstate: $out"
	if [ -n "$TICK" ]; then
		if wait_counts "$c" 2 120; then
			t_pass "$v: resumed: the counter goes on"
		else
			t_fail "$v: resumed: the counter goes on" "no new counts: $(g_log "$c" | tail -n 3 | tr '\n' ' ')"
		fi
	fi

	# reboot: a mark in the guest's tmpfs is gone once it has booted again.
	[ "$CON" = 1 ] && g_run "$c" 30 'echo x >/dev/shm/lvmark'
	vcheck "$v: reboot" reboot "$dom"
	[ "$CON" = 1 ] || return 0
	if rebooted "$c" "$dom"; then
		t_pass "$v: reboot: the guest booted again"
		start_counter "$c" "$v: after reboot"
	else
		t_fail "$v: reboot: the guest booted again" "$(g_log "$c" | tail -n 5 | tr '\n' ' ')"
		TICK=
	fi
}

# rebooted ID DOM: the guest's shell answers and /dev/shm/lvmark is gone
# (reattaching the console if the pty went away with the old guest).
rebooted() {
	local end=$((SECONDS + BOOT_TIMEOUT))
	while [ "$SECONDS" -lt "$end" ]; do
		if ! kill -0 "${G_PID[$1]}" 2>/dev/null; then
			console "$1" "$2" || return 1
		fi
		if g_run "$1" 10 '[ -e /dev/shm/lvmark ] || echo MARK-GONE' && grep -qx MARK-GONE <<<"$G_OUT"; then
			return 0
		fi
		sleep 2
	done
	return 1
}

# gone VER WHAT: no cvisor process is left in the daemon's namespace.
gone() {
	if wait_no_vmm 30; then
		t_pass "$1: $2: no VMM process left"
	else
		t_fail "$1: $2: no VMM process left" "still running: $(lv_procs "$LV_NS" | tr '\n' ' ')"
	fi
}

run_9_0() {
	local v=9.0 dom=lv9-$$ out
	lifecycle "$v" "$dom" || return
	# shutdown: vm.shutdown; the guest stops. libvirt 9.0 never notices
	# (the domain stays "in shutdown"), hence the destroy that follows.
	vcheck "$v: shutdown" shutdown "$dom"
	[ -n "$TICK" ] && counter_stopped "$dom" "$v: shut down"
	console_end "$dom"
	vcheck "$v: destroy" destroy "$dom"
	gone "$v" destroy
	out=$(domstate "$dom")
	t_info "$v: after destroy: ${out/\?/undefined (libvirt 9.0 undefines a destroyed persistent domain)}"
}

run_11_3() {
	local v=11.3 dom=lv11-$$ net=lv11n-$$ tap=cvlvtap0 out p
	lifecycle "$v" "$dom" || return

	# save: vm.snapshot into a directory; the domain is shut off (saved).
	console_end "$dom"
	vcheck "$v: save" save "$dom" "$LV_DIR/save"
	out=$(domstate "$dom")
	[ "$out" = "shut off" ] && t_pass "$v: saved: shut off" || t_fail "$v: saved: shut off" "domstate: $out"
	out=$(find "$LV_DIR/save" -type f ! -name libvirt-save.xml 2>/dev/null | wc -l)
	if [ -s "$LV_DIR/save/libvirt-save.xml" ] && [ "$out" -gt 0 ]; then
		t_pass "$v: save: libvirt's header and $out file(s) of the VMM's snapshot"
	else
		t_fail "$v: save: libvirt's header and the VMM's snapshot" "$(ls -l "$LV_DIR/save" 2>&1 | tr '\n' ' ')"
	fi
	gone "$v" save
	# A failed save leaves the domain paused: end it, so that what follows
	# starts from a shut off domain and counts only its own VMM.
	if [ "$(domstate "$dom")" != "shut off" ]; then
		vsh "$VIRSH_TIMEOUT" destroy "$dom"
		t_info "$v: the save failed; destroyed $dom (exit $T_RC) to go on"
		wait_no_vmm 30 || t_info "$v: VMM processes still there: $(lv_procs "$LV_NS" | tr '\n' ' ')"
	fi

	# A NIC: libvirt makes the tap in this test's namespace and passes its fds.
	domain_xml "$net" "lv-$v" "
    <interface type='ethernet'>
      <mac address='52:54:00:4c:56:01'/>
      <target dev='$tap' managed='yes'/>
      <model type='virtio'/>
    </interface>" >"$LV_DIR/$net.xml"
	vcheck "$v: define a domain with a NIC" define "$LV_DIR/$net.xml"
	if ! vcheck "$v: start it (vm.add-net with tap fds)" start "$net"; then
		# libvirt 11.3 does not end the VMM of a start that failed; the VMM
		# is to end when its event FIFO's reader goes (see README).
		gone "$v" "a failed start"
		for p in $(lv_procs "$LV_NS"); do kill -KILL "$p" 2>/dev/null; done
	fi
	if ip -n "$ns" addr add 10.77.0.1/24 dev "$tap" 2>"$T_TMP/err" &&
		ip -n "$ns" link set "$tap" up 2>>"$T_TMP/err"; then
		t_pass "$v: libvirt made $tap in the test's network namespace"
	else
		t_fail "$v: libvirt made $tap in the test's network namespace" "$(cat "$T_TMP/err")"
	fi
	if console "$net" "$net"; then
		g_run "$net" 60 'ip addr add 10.77.0.2/24 dev eth0 && ip link set eth0 up && cat /sys/class/net/eth0/address && ping -c 3 -W 10 10.77.0.1'
		if [ "$G_RC" = 0 ] && grep -q '52:54:00:4c:56:01' <<<"$G_OUT"; then
			t_pass "$v: the guest's eth0 (libvirt's MAC) pings the host over the tap"
		else
			t_fail "$v: the guest's eth0 (libvirt's MAC) pings the host over the tap" "status $G_RC: $(tr '\n' ' ' <<<"$G_OUT")"
		fi
		start_counter "$net" "$v: $net"
	else
		t_fail "$v: console of $net" "no answer: $(g_log "$net" | tail -n 5 | tr '\n' ' ')"
		TICK=
	fi

	# shutdown: the guest stops, the domain goes to shut off, the VMM ends.
	vcheck "$v: shutdown" shutdown "$net"
	[ -n "$TICK" ] && counter_stopped "$net" "$v: shut down"
	if wait_state "$net" "shut off" 120; then
		t_pass "$v: shutdown: the domain is shut off"
	else
		t_fail "$v: shutdown: the domain is shut off" "domstate: $(domstate "$net")"
	fi
	gone "$v" shutdown
	console_end "$net"

	# destroy, right after a start: no process left, the domain shut off.
	vcheck "$v: start again" start "$dom"
	vcheck "$v: destroy" destroy "$dom"
	gone "$v" destroy
	out=$(domstate "$dom")
	[ "$out" = "shut off" ] && t_pass "$v: destroyed: shut off" ||
		t_fail "$v: destroyed: shut off" "domstate: $out"
}

for ver in $VERSIONS; do
	case $ver in
	9.0 | 11.3) ;;
	*)
		t_fail "$ver: setup" "unknown libvirt version (9.0 or 11.3)"
		continue
		;;
	esac
	t0=$SECONDS
	if ! build=$(bash scripts/libvirt-build.sh "$ver" 2>"$T_TMP/build.err"); then
		t_fail "$ver: setup" "scripts/libvirt-build.sh $ver failed: $(tail -n 3 "$T_TMP/build.err")"
		continue
	fi
	t_info "$ver: $build ($((SECONDS - t0)) s)"
	netns=
	if [ "$ver" = 11.3 ]; then
		if ! ip netns add "$ns" || ! ip -n "$ns" link set lo up; then
			t_fail "$ver: setup" "cannot make the network namespace $ns"
			continue
		fi
		netns=$ns
	fi
	if ! lv_daemon "$ver" "$build" $netns; then
		t_fail "$ver: setup" "$T_ERR"
		continue
	fi
	vsh "$VIRSH_TIMEOUT" capabilities
	if [ "$T_RC" = 0 ] && grep -q "<domain type='kvm'" <<<"$T_OUT"; then
		t_pass "$ver: virtchd runs; ch:///system offers kvm domains (cloud-hypervisor found)"
	else
		t_fail "$ver: virtchd runs; ch:///system offers kvm domains" "exit $T_RC: $T_ERR"
		continue
	fi
	"run_${ver/./_}"
	t_info "$ver: $((SECONDS - t0)) s"
done
t_summary libvirt
