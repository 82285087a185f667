#!/usr/bin/env bash
# tests/e2e/snapshot.sh - cvisor save / cvisor restore with tiny guests
# (tests/kvm/guests): the counter continues where it was, on the serial
# port and in guest memory (address 0x5000, read with the peek request);
# --keep-running; two guests restored from one file share its pages; an
# SMP guest whose AP counts too; a guest whose disk is in use across the save (blkcount, both
# transports); the checked-in snapshots of every earlier format version
# (tests/data/snapshot-vN); every kind of bad snapshot refused with one
# line and status 2; a save that cannot be written leaves the guest
# running and no files. Prints TAP (tests/lib.sh).
#
# Guests run in a private $CVISOR_RUN_DIR under a per-run name prefix; the
# EXIT trap kills what is left. Counting guests print about ten lines a
# second here (less on a busy host): waits are bounded by 10-20 s.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
. tests/named.sh

P=sn$$- # guest name prefix
S=$T_TMP/snap
mkdir -p "$S"
# The counter's magic at 0x5008: "CVCountr" as a little-endian u64.
MAGIC=8247338268279133763

# restore NAME FILE: restore detached under NAME.
restore() {
	t_run 20 "$CVISOR" restore "$2" --name "$1" -d
	started restore "$1"
}

# continues NAME LAST WHAT: the restored guest NAME counts on from LAST:
# its first count is above LAST and close to it (no reset to 1), it keeps
# counting, and guest memory at 0x5000 agrees.
continues() {
	local name=$1 last=$2 what=$3 first mem mem2
	if ! wait_count "$name" $((last + 3)); then
		t_fail "$what" "no count past $((last + 3)) after restore: $(tail -c 200 "$CVISOR_RUN_DIR/$name.log")"
		return 1
	fi
	first=$(first_count "$name")
	if [ -z "$first" ] || [ "$first" -le "$last" ] || [ "$first" -gt $((last + 5)) ]; then
		t_fail "$what" "first count after restore $first, last before $last"
		return 1
	fi
	t_pass "$what: serial count $last -> $first"
	mem=$(peek "$name" 20480)
	mem2=$(peek_above "$name" 20480 "${mem:-0}")
	if [ -n "$mem" ] && [ "$mem" -ge "$first" ] && [ "$mem2" -gt "$mem" ] &&
		[ "$(peek "$name" 20488)" = "$MAGIC" ]; then
		t_pass "$what: memory count $mem then $mem2"
	else
		t_fail "$what: memory" "count at 0x5000 '$mem' then '$mem2' (first printed $first)"
	fi
}

need_kvm snapshot
need_guests snapshot counter blkcount smp

# ---- save ends the guest; restore continues it ----
A=${P}a
if start "$A" counter --memory 64M && wait_count "$A" 5; then
	t_run 30 "$CVISOR" save "$A" "$S/a"
	if [ "$T_RC" = 0 ] && [ -z "$T_ERR" ] && gone "$A"; then
		t_pass "save ends the guest"
	else
		t_fail "save ends the guest" "exit $T_RC: $T_ERR"
	fi
	size=$(stat -c %s "$S/a.mem" 2>/dev/null)
	kib=$(du -k "$S/a.mem" 2>/dev/null | cut -f1)
	if [ "$size" = $((64 << 20)) ] && [ -n "$kib" ] && [ "$kib" -lt 2048 ] &&
		[ -s "$S/a" ] && [ -z "$(ls "$S" | grep -v '^a$\|^a.mem$')" ]; then
		t_pass "FILE.mem is sparse: ${kib} KiB on disk for 64 MiB"
	else
		t_fail "FILE.mem is sparse" "size '$size', $kib KiB on disk; files: $(ls "$S")"
	fi
	last=$(last_count "$A")
	R=${P}r
	restore "$R" "$S/a" && continues "$R" "$last" "restore continues the counter"

	# Two guests from one file at once: the second maps the same pages.
	R2=${P}r2
	if restore "$R2" "$S/a" && continues "$R2" "$last" "second restore of the same file"; then
		pid=$(pid_of "$R2")
		sm=$(awk -v f="$S/a.mem" '$0 ~ /^[0-9a-f]+-[0-9a-f]+ / { on = ($NF == f) }
			on && /^(Shared_Clean|Shared_Dirty|Private_Dirty|Rss):/ { v[$1] += $2 }
			END { printf "%d %d %d", v["Rss:"], v["Shared_Clean:"] + v["Shared_Dirty:"], v["Private_Dirty:"] }' \
			"/proc/$pid/smaps" 2>/dev/null)
		read -r rss shared priv <<<"$sm"
		if [ -n "$rss" ] && [ "$rss" -gt 0 ] && [ "$shared" -gt 0 ] && [ "$priv" -lt 4096 ] &&
			[ "$(wait_count "$R" $(($(last_count "$R") + 2)) && echo y)" = y ]; then
			t_pass "two restores share the file's pages (second: RAM mapping $rss KiB resident, $shared KiB shared, $priv KiB private)"
		else
			t_fail "two restores share pages" "smaps of FILE.mem in pid $pid: '$sm'"
		fi
	fi
	# A restored guest saved over the very file it runs from (a.mem is
	# mapped by R and R2): the new pair is written beside and renamed in.
	t_run 30 "$CVISOR" save "$R" "$S/a"
	last=$(last_count "$R")
	R3=${P}r3
	if [ "$T_RC" = 0 ] && restore "$R3" "$S/a"; then
		continues "$R3" "$last" "save of a restored guest over its own snapshot"
		c=$(last_count "$R2")
		wait_count "$R2" $((c + 2)) ||
			t_fail "the other guest on the old file" "stuck at $c after the file was replaced"
	else
		t_fail "save of a restored guest over its own snapshot" "exit $T_RC: $T_ERR"
	fi
	timeout 10 "$CVISOR" kill "$R2" >/dev/null 2>&1
	timeout 10 "$CVISOR" kill "$R3" >/dev/null 2>&1
fi

# ---- --keep-running ----
K=${P}k
if start "$K" counter --memory 64M && wait_count "$K" 3; then
	before=$(peek "$K" 20480)
	t_run 30 "$CVISOR" save "$K" "$S/k" --keep-running
	after=$(peek "$K" 20480)
	if [ "$T_RC" = 0 ] && [ -e "$CVISOR_RUN_DIR/$K.sock" ] && [ -n "$after" ] &&
		wait_count "$K" $((after + 3)); then
		t_pass "save --keep-running: the guest counts on ($before, $after, $(last_count "$K"))"
	else
		t_fail "save --keep-running" "exit $T_RC: $T_ERR; count $before, $after"
	fi
	timeout 10 "$CVISOR" kill "$K" >/dev/null 2>&1
	K2=${P}k2
	# The count as saved: offset 0x5000 of RAM in FILE.mem (no timing).
	saved=$(od -An -t u8 -j 20480 -N 8 "$S/k.mem" 2>/dev/null | tr -d ' ')
	if [ -n "$saved" ] && [ "$saved" -ge "$before" ]; then
		restore "$K2" "$S/k" && continues "$K2" "$((saved - 1))" "restore of a --keep-running save"
	else
		t_fail "restore of a --keep-running save" "saved count '$saved', before the save $before"
	fi
	timeout 10 "$CVISOR" kill "$K2" >/dev/null 2>&1
fi

# ---- save into a world-writable sticky directory: another user's
# symlinks named like the temporaries (FILE.tmp, FILE.mem.tmp, as cvisor
# once used) or like the files themselves must not make root write
# through them ----
if [ "$(id -u)" = 0 ] && setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
	chmod 711 "$T_TMP"
	W=$T_TMP/world
	mkdir "$W" && chmod 1777 "$W"
	printf 'precious\n' >"$T_TMP/victim" && chmod 600 "$T_TMP/victim"
	for f in y.tmp y.mem.tmp y y.mem; do
		setpriv --reuid=65534 --regid=65534 --clear-groups ln -s "$T_TMP/victim" "$W/$f"
	done
	planted=$(find "$W" -type l -user 65534 | wc -l)
	Y=${P}y
	if [ "$planted" = 4 ] && start "$Y" counter --memory 32M && wait_count "$Y" 2; then
		t_run 30 "$CVISOR" save "$Y" "$W/y"
		last=$(last_count "$Y")
		if [ "$T_RC" = 0 ] && [ "$(cat "$T_TMP/victim")" = precious ] &&
			[ ! -L "$W/y" ] && [ ! -L "$W/y.mem" ] && [ -z "$(find "$W" -name '.cvisor-*')" ]; then
			t_pass "save beside another user's planted symlinks writes none of them"
		else
			t_fail "save beside planted symlinks" "exit $T_RC ($T_ERR); victim: $(head -c 40 "$T_TMP/victim" | od -c | head -2); $(ls -la "$W")"
		fi
		Y2=${P}y2
		restore "$Y2" "$W/y" && continues "$Y2" "$last" "the snapshot saved beside planted symlinks"
		timeout 10 "$CVISOR" kill "$Y2" >/dev/null 2>&1
	else
		t_fail "save beside planted symlinks" "planted $planted symlinks as nobody, or the guest did not start"
	fi
else
	t_skip "save beside planted symlinks" "needs root and setpriv"
fi

# ---- a save that cannot be written ----
U=${P}u
if start "$U" counter --memory 32M && wait_count "$U" 2; then
	t_run 30 "$CVISOR" save "$U" "$T_TMP/no/such/dir/x"
	t_expect_err "save to a missing directory" 1 "save: $T_TMP/no/such/dir/x: No such file or directory"
	mkdir "$S/isdir"
	t_run 30 "$CVISOR" save "$U" "$S/isdir"
	t_expect_err "save over a directory" 2 "save: $S/isdir: is a directory"
	c=$(last_count "$U")
	if wait_count "$U" $((c + 2)) && [ -z "$(ls "$S" | grep isdir. )" ] &&
		[ ! -e "$T_TMP/no" ]; then
		t_pass "a failed save leaves the guest running and no files"
	else
		t_fail "a failed save leaves the guest running" "count $c -> $(last_count "$U"); files: $(ls "$S")"
	fi
	timeout 10 "$CVISOR" kill "$U" >/dev/null 2>&1
fi

# ---- SMP: the smp guest's APs count too (smp.count=1) ----
M=${P}m
if start "$M" smp --memory 32M --cpus 2 --cmdline smp.count=1 && wait_count "$M" 3; then
	t_run 30 "$CVISOR" save "$M" "$S/m"
	last=$(last_count "$M")
	# The AP's count as saved: offset 0x5100 of RAM in FILE.mem.
	ap=$(od -An -t u8 -j 20736 -N 8 "$S/m.mem" 2>/dev/null | tr -d ' ')
	M2=${P}m2
	if [ "$T_RC" = 0 ] && [ -n "$ap" ] && [ "$ap" -gt 0 ] && restore "$M2" "$S/m"; then
		continues "$M2" "$last" "SMP guest (2 vCPUs)"
		ap1=$(peek "$M2" 20736)
		ap2=$(peek_above "$M2" 20736 "${ap1:-0}")
		if [ -n "$ap1" ] && [ "$ap1" -ge "$ap" ] && [ "$ap2" -gt "$ap1" ]; then
			t_pass "SMP guest: the AP counts on ($ap saved, then $ap1, $ap2)"
		else
			t_fail "SMP guest: the AP counts on" "saved $ap, then '$ap1', '$ap2'"
		fi
		if "$CVISOR" info "$M2" | grep -q '^vcpus *2$'; then
			t_pass "SMP guest restored with 2 vCPUs"
		else
			t_fail "SMP guest restored with 2 vCPUs" "$("$CVISOR" info "$M2" 2>&1 | grep vcpus)"
		fi
	else
		t_fail "SMP save" "exit $T_RC: $T_ERR; AP count in FILE.mem '$ap'"
	fi
	timeout 10 "$CVISOR" kill "$M2" >/dev/null 2>&1
fi

# ---- sections that pass the CRCs but not the loader (tests/lib/snapedit.py) ----
if [ -s "$S/m" ]; then
	edit() { # edit NAME OP ARGS...: $S/NAME is snapshot m so edited
		cp --sparse=always "$S/m.mem" "$S/$1.mem" &&
			python3 tests/lib/snapedit.py "$S/m" "$S/$1" "${@:2}"
	}
	edit vrep vcpu-index 1 0 >/dev/null
	t_run 20 "$CVISOR" restore "$S/vrep"
	t_expect_err "a repeated vCPU index" 2 "VCPU section 1: bad or repeated vCPU index"
	edit vbad vcpu-index 0 9 >/dev/null
	t_run 20 "$CVISOR" restore "$S/vbad"
	t_expect_err "a vCPU index past the machine's" 2 "VCPU section 0: bad or repeated vCPU index"
	dev=$(edit drep same-device 0 1)
	t_run 20 "$CVISOR" restore "$S/drep"
	t_expect_err "a repeated DEVICE section" 2 "two DEVICE sections for $dev"
	edit dnone rename-device 0 no-such-dev >/dev/null
	t_run 20 "$CVISOR" restore "$S/dnone"
	t_expect_err "a device the machine lacks" 2 'device "no-such-dev" is not in this machine'
fi

# ---- a disk in use across the save, on both transports, and qcow2 ----
# (the qcow2 disk over a raw backing file: the snapshot names the top image)
for tr in pci mmio qcow2; do
	D=${P}d$tr
	img=$T_TMP/disk-$tr.img
	if [ $tr = qcow2 ]; then
		command -v qemu-img >/dev/null || continue
		truncate -s 1M "$T_TMP/base.raw"
		qemu-img create -q -f qcow2 -b "$T_TMP/base.raw" -F raw "$img" || continue
	else
		truncate -s 1M "$img"
	fi
	fmt=""
	[ $tr = qcow2 ] && fmt=,format=qcow2
	start "$D" blkcount --memory 32M --disk "$img$fmt" --virtio "${tr/qcow2/pci}" || continue
	if ! wait_count "$D" 3; then
		t_fail "blkcount $tr" "not counting: $(tail -c 200 "$CVISOR_RUN_DIR/$D.log")"
		continue
	fi
	t_run 30 "$CVISOR" save "$D" "$S/d$tr"
	last=$(last_count "$D")
	D2=${P}e$tr
	if [ "$T_RC" = 0 ] && restore "$D2" "$S/d$tr"; then
		continues "$D2" "$last" "virtio-blk over $tr in use across save and restore"
		if grep -q FAIL "$CVISOR_RUN_DIR/$D2.log"; then
			t_fail "virtio-blk over $tr after restore" "$(grep FAIL "$CVISOR_RUN_DIR/$D2.log")"
		fi
	else
		t_fail "save blkcount over $tr" "exit $T_RC: $T_ERR"
	fi
	timeout 10 "$CVISOR" kill "$D2" >/dev/null 2>&1
	if [ $tr = qcow2 ]; then
		out=$(qemu-img check "$img" 2>&1)
		rc=$?
		[ $rc = 0 ] || [ $rc = 3 ] && t_pass "the qcow2 disk passes qemu-img check" ||
			t_fail "qemu-img check of the qcow2 disk" "exit $rc: $out"
	fi
done
if [ -s "$S/dpci" ]; then
	mv "$T_TMP/disk-pci.img" "$T_TMP/moved.img"
	t_run 20 "$CVISOR" restore "$S/dpci"
	t_expect_err "restore without its disk image" 2 "disk-pci.img"
fi

# ---- restore on this host's terms: placement flags over the saved ones ----
if [ -s "$S/a" ]; then
	R4=${P}r4
	t_run 20 "$CVISOR" restore "$S/a" --name "$R4" -d --cpu-cap 20 --cpu-affinity=0
	track "$R4"
	info=$("$CVISOR" info "$R4" --json 2>/dev/null)
	if [ "$T_RC" = 0 ] && grep -q '"cpu_cap":20,' <<<"$info" &&
		grep -q '"vcpu":\[{"id":0,"affinity":"0"' <<<"$info"; then
		t_pass "restore --cpu-cap 20 --cpu-affinity=0 places the guest"
	else
		t_fail "restore with placement flags" "exit $T_RC ($T_ERR): $info"
	fi
	timeout 10 "$CVISOR" kill "$R4" >/dev/null 2>&1
	t_run 20 "$CVISOR" restore "$S/a" --cpu-affinity 1000
	t_expect_err "restore on a CPU this host lacks" 2 "CPU 1000 is not available"
	t_run 20 "$CVISOR" restore "$S/a" --memory-limit
	t_expect_err "restore --memory-limit without a value" 2 "memory-limit needs a value"
fi

# ---- MACHINE version 1, written here from a fresh save: unlike the
# checked-in snapshot-v1, which only a CPU like its writer's takes, this
# one loads on any host. Without the emulated-host handling, whose syscall
# shim area version 1 cannot express. ----
O=${P}o
if start "$O" counter --memory 16M --emulated-host off && wait_count "$O" 3; then
	t_run 30 "$CVISOR" save "$O" "$S/o"
	last=$(last_count "$O")
	V1=${P}v1
	if [ "$T_RC" != 0 ]; then
		t_fail "MACHINE section version 1" "save: exit $T_RC: $T_ERR"
	elif ! cp --sparse=always "$S/o.mem" "$S/v1.mem" ||
		! out=$(python3 tests/lib/snapedit.py "$S/o" "$S/v1" machine-v1 2>&1); then
		t_fail "MACHINE section version 1" "snapedit: $out"
	elif restore "$V1" "$S/v1"; then
		continues "$V1" "$last" "MACHINE section version 1 restores"
	fi
	timeout 10 "$CVISOR" kill "$V1" >/dev/null 2>&1
else
	t_fail "MACHINE section version 1" "the counter guest did not start or count"
fi

# ---- every earlier format version still loads (tests/data/snapshot-vN) ----
for DATA in tests/data/snapshot-v*; do
	ver=${DATA##*/snapshot-}
	# A multiboot guest (MACHINE version 3): run to its end in the
	# foreground, it must give the saved run's remaining lines and status.
	if [ -s "$DATA/mbtest" ]; then
		timeout -k 5 60 "$CVISOR" restore "$DATA/mbtest" </dev/null >"$T_TMP/$ver.out" \
			2>"$T_TMP/$ver.err"
		rc=$?
		if [ "$rc" = 2 ] && grep -q "CPU" "$T_TMP/$ver.err"; then
			t_skip "snapshot-$ver" "this host's CPU differs from the one that wrote it: $(cat "$T_TMP/$ver.err")"
		elif [ "$rc" = "$(cat "$DATA/status")" ] &&
			diff <(tr -d '\r' <"$T_TMP/$ver.out" | grep -a '^mbtest: ') "$DATA/rest" >/dev/null; then
			t_pass "snapshot format $ver ($DATA, a multiboot guest) restores and ends with status $rc"
		else
			t_fail "snapshot format $ver restores" "status $rc: $(cat "$T_TMP/$ver.err") $(head -c 300 "$T_TMP/$ver.out")"
		fi
		continue
	fi
	if [ ! -s "$DATA/counter" ] || [ ! -s "$DATA/counter.mem" ]; then
		t_fail "snapshot format $ver" "$DATA/counter or counter.mem missing"
		continue
	fi
	V=$P$ver
	t_run 20 "$CVISOR" restore "$DATA/counter" --name "$V" -d
	if [ "$T_RC" = 2 ] && grep -q "CPU" <<<"$T_ERR"; then
		t_skip "snapshot-$ver" "this host's CPU differs from the one that wrote it: $T_ERR"
	elif [ "$T_RC" = 0 ]; then
		track "$V"
		continues "$V" "$(cat "$DATA/last-count")" "snapshot format $ver ($DATA) restores"
		timeout 10 "$CVISOR" kill "$V" >/dev/null 2>&1
	else
		t_fail "snapshot format $ver restores" "exit $T_RC: $T_ERR"
	fi
done

# ---- bad snapshots: one line, status 2 ----
if [ -s "$S/a" ]; then
	bad() { # bad NAME: copy snapshot a to $S/NAME and its memory file
		cp "$S/a" "$S/$1" && cp --sparse=always "$S/a.mem" "$S/$1.mem"
	}
	bad flip && printf '\xff' | dd of="$S/flip" bs=1 seek=$(($(stat -c %s "$S/a") / 2)) conv=notrunc 2>/dev/null
	t_run 10 "$CVISOR" restore "$S/flip"
	t_expect_err "corrupt snapshot (a byte flipped)" 2 "snapshot $S/flip: snapshot is corrupt"
	bad trunc && truncate -s $(($(stat -c %s "$S/a") / 2)) "$S/trunc"
	t_run 10 "$CVISOR" restore "$S/trunc"
	t_expect_err "truncated snapshot" 2 "snapshot $S/trunc: snapshot is truncated"
	cp "$GUESTS/counter.elf" "$S/foreign" && cp --sparse=always "$S/a.mem" "$S/foreign.mem"
	t_run 10 "$CVISOR" restore "$S/foreign"
	t_expect_err "foreign file" 2 "snapshot $S/foreign: not a cvisor snapshot"
	cp "$S/a" "$S/nomem"
	t_run 10 "$CVISOR" restore "$S/nomem"
	t_expect_err "missing .mem" 2 "snapshot $S/nomem: its memory file $S/nomem.mem: No such file"
	bad short && truncate -s 32M "$S/short.mem"
	t_run 10 "$CVISOR" restore "$S/short"
	t_expect_err "wrong-size .mem" 2 "snapshot $S/short: its memory file $S/short.mem is not a regular file of 67108864 bytes"
	cp "$S/a" "$S/zero" && truncate -s 64M "$S/zero.mem"
	t_run 10 "$CVISOR" restore "$S/zero"
	t_expect_err "right-sized .mem of zeros" 2 "snapshot $S/zero: its memory file $S/zero.mem does not hold the data that was saved"
	if [ -s "$S/k.mem" ]; then
		cp "$S/a" "$S/other" && cp --sparse=always "$S/k.mem" "$S/other.mem"
		t_run 10 "$CVISOR" restore "$S/other"
		t_expect_err ".mem of another save" 2 "snapshot $S/other: its memory file $S/other.mem does not hold the data that was saved"
	fi
	# The digest does not depend on holes: a copy without them restores.
	cp "$S/a" "$S/dense" && cp --sparse=never "$S/a.mem" "$S/dense.mem"
	DN=${P}dense
	if restore "$DN" "$S/dense" && wait_count "$DN" 1; then
		t_pass "a .mem copied without holes restores"
	else
		t_fail "a .mem copied without holes restores" "$(tail -c 200 "$CVISOR_RUN_DIR/$DN.log")"
	fi
	timeout 10 "$CVISOR" kill "$DN" >/dev/null 2>&1
	t_run 10 "$CVISOR" restore "$S/none"
	t_expect_err "no such snapshot" 2 "snapshot $S/none: No such file or directory"
fi
# ---- FILE.mem truncated under a restored guest: one line, exit status 5
# (README), socket and lock removed; not a SIGBUS (status 135) that leaves
# them. To 0 bytes the guest itself touches lost pages (KVM_RUN fails, or
# the guest crashes); to half, the monitor does, for a peek past the end
# (SIGBUS). ----
if [ -s "$S/a" ]; then
	for how in guest monitor; do
		X=${P}x$how
		cp "$S/a" "$S/x$how" && cp --sparse=always "$S/a.mem" "$S/x$how.mem"
		timeout -k 5 30 "$CVISOR" restore "$S/x$how" --name "$X" \
			>"$T_TMP/x$how.out" 2>"$T_TMP/x$how.err" </dev/null &
		xpid=$!
		T_PIDS+=("$xpid")
		for i in $(seq 100); do
			[ -S "$CVISOR_RUN_DIR/$X.sock" ] && grep -q count "$T_TMP/x$how.out" && break
			sleep 0.1
		done
		if [ $how = guest ]; then
			truncate -s 0 "$S/x$how.mem"
		else
			truncate -s 32M "$S/x$how.mem"
			peek "$X" $((48 << 20)) >/dev/null
		fi
		wait "$xpid"
		T_RC=$?
		T_ERR=$(cat "$T_TMP/x$how.err")
		t_expect_err "FILE.mem truncated under the guest (touched by the $how)" 5 \
			"^cvisor: guest memory file $S/x$how.mem was truncated under the guest\$"
		if gone "$X"; then
			t_pass "the $how's fault on a truncated FILE.mem leaves no socket or lock"
		else
			t_fail "truncated FILE.mem: socket and lock removed" "$(ls "$CVISOR_RUN_DIR" | grep "$X")"
		fi
	done
	# Detached: the line goes to the guest's log.
	X=${P}xd
	cp "$S/a" "$S/xd" && cp --sparse=always "$S/a.mem" "$S/xd.mem"
	if restore "$X" "$S/xd" && wait_count "$X" 1; then
		truncate -s 0 "$S/xd.mem"
		if gone "$X" && grep -q "^cvisor: guest memory file $S/xd.mem was truncated under the guest$" \
			"$CVISOR_RUN_DIR/$X.log"; then
			t_pass "a detached guest's truncated FILE.mem: the line in its log, no socket or lock"
		else
			t_fail "detached, truncated FILE.mem" "$(tail -c 200 "$CVISOR_RUN_DIR/$X.log"); $(ls "$CVISOR_RUN_DIR" | grep "$X")"
		fi
	fi
fi

# ---- --pit off: no in-kernel PIT (no kvm-pit/PID kernel thread), kept
# across a save and restore ----
pit_threads() { ps -e -o comm= | grep -c "^kvm-pit/$1\$"; }
N=${P}pon
O=${P}poff
if start "$N" counter --memory 64M && start "$O" counter --memory 64M --pit off &&
	wait_count "$O" 3; then
	pn=$(pid_of "$N")
	po=$(pid_of "$O")
	if [ "$(pit_threads "$pn")" = 1 ] && [ "$(pit_threads "$po")" = 0 ]; then
		t_pass "--pit off: no kvm-pit thread (the default guest has one)"
	else
		t_fail "--pit off" "kvm-pit threads: default $(pit_threads "$pn"), --pit off $(pit_threads "$po")"
	fi
	t_run 30 "$CVISOR" save "$O" "$S/p"
	last=$(last_count "$O")
	R=${P}pr
	if [ "$T_RC" = 0 ] && restore "$R" "$S/p" && continues "$R" "$last" "--pit off restored"; then
		pr=$(pid_of "$R")
		if [ "$(pit_threads "$pr")" = 0 ]; then
			t_pass "a --pit off snapshot restores without a PIT"
		else
			t_fail "--pit off restored" "pid $pr has a kvm-pit thread"
		fi
	fi
	timeout 10 "$CVISOR" kill "$N" >/dev/null 2>&1
	timeout 10 "$CVISOR" kill "$R" >/dev/null 2>&1
fi

# ---- --irqchip split: cvisor's IOAPIC (listed by `cvisor info`), kept
# across a save and restore with its state ----
has_ioapic() { "$CVISOR" info "$1" 2>/dev/null | grep -q '^device .*mmio 0xfec00000 .*ioapic$'; }
N=${P}split
if start "$N" counter --memory 64M --irqchip split && wait_count "$N" 3; then
	if has_ioapic "$N"; then
		t_pass "--irqchip split: cvisor's IOAPIC at 0xfec00000"
	else
		t_fail "--irqchip split" "cvisor info lists no ioapic device"
	fi
	t_run 30 "$CVISOR" save "$N" "$S/split"
	last=$(last_count "$N")
	R=${P}splitr
	if [ "$T_RC" = 0 ] && restore "$R" "$S/split" && continues "$R" "$last" "--irqchip split restored"; then
		if has_ioapic "$R" && [ "$(pit_threads "$(pid_of "$R")")" = 0 ]; then
			t_pass "a split snapshot restores split: cvisor's IOAPIC, no PIT"
		else
			t_fail "split restored" "no ioapic device or a kvm-pit thread: $("$CVISOR" info "$R" 2>&1 | grep -c ioapic)"
		fi
	fi
	timeout 10 "$CVISOR" kill "$R" >/dev/null 2>&1
fi
# The IOAPIC's state travels: a guest that programmed pin 7 reads the same
# entry back after the restore (a reset IOAPIC reads 0x10000 0x0).
wait_log() {
	for _ in $(seq 100); do
		grep -aq "$2" "$CVISOR_RUN_DIR/$1.log" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
N=${P}splitio
want="ioapic: pin 7 0x18057 0x3000000"
if start "$N" ioapic --memory 32M --irqchip split --cmdline hold=1 && wait_log "$N" "$want"; then
	t_run 30 "$CVISOR" save "$N" "$S/splitio"
	R=${P}splitior
	if [ "$T_RC" = 0 ] && restore "$R" "$S/splitio" && wait_log "$R" "ioapic: pin 7"; then
		other=$(grep -a "ioapic: pin 7" "$CVISOR_RUN_DIR/$R.log" | tr -d '\r' | grep -vx "$want" | head -n 1)
		if [ -z "$other" ] && wait_log "$R" "$want"; then
			t_pass "a split guest's IOAPIC entries survive save and restore ($want)"
		else
			t_fail "split IOAPIC state" "after restore: '${other:-no line}', want '$want'"
		fi
	else
		t_fail "split IOAPIC state" "save or restore failed: $T_ERR"
	fi
	timeout 10 "$CVISOR" kill "$R" >/dev/null 2>&1
else
	t_fail "split IOAPIC state" "the guest did not print '$want': $(tail -c 200 "$CVISOR_RUN_DIR/$N.log" 2>/dev/null)"
fi

t_run 10 "$CVISOR" restore "$S/a" -d
t_expect_err "restore -d without --name" 2 "-d needs --name"
t_run 10 "$CVISOR" save "${P}none" "$S/x"
t_expect_err "save of an unknown guest" 2 "no guest named ${P}none"

t_summary snapshot
