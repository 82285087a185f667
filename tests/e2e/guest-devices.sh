#!/usr/bin/env bash
# tests/e2e/guest-devices.sh - what a Linux guest's own user space observes
# of its machine and its paravirtual devices (virtio-pci), in two boots of
# the kit's microVM kernel with a shell on the console (tests/guest.sh).
#
# Boot A, a named guest (2 vCPUs, 256 MiB; disks: the tools image, an ext4
# data disk, a read-only ext4 disk, a raw disk for fio, a qcow2 disk over a
# qcow2 backing file; --net user with a
# port forward, --rng, --balloon, --vsock):
#   - the CPU count and memory the guest was given;
#   - SMP: a process pinned to each vCPU reports running there;
#   - virtio-blk: a file written and synced on the data disk, its checksum
#     as the guest computes it; the read-only disk refuses writes; fio
#     writes and reads back 16 MiB with checksums (--verify), figures shown;
#   - virtio-net over --net user: a DHCP lease (busybox udhcpc), an HTTP
#     fetch from a server on the host, and the host fetching from busybox
#     httpd in the guest through a hostfwd port;
#   - vsock: a host program echoes through a guest socat listener;
#   - rng: /dev/hwrng is virtio's and gives bytes;
#   - balloon: `cvisor balloon` takes memory, the guest's free memory
#     drops and so does the host's RSS of the monitor;
#   - `cvisor stop` powers the guest off through the ACPI power button
#     (busybox acpid in the guest), status 0, no kill.
# Between the boots the host reads the file back from the image (debugfs).
# Boot B, jailed (--jail, with --net user): the same data disk, the file's
# checksum read back in the guest; a DHCP lease and a fetch from the host's
# web server through the jailed monitor's user network.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
. tests/named.sh
. tests/guest.sh
g_named_suite guest-devices "gd$$-"

A=${P}a
token=$((RANDOM * 32768 + RANDOM))
data=$T_TMP/data.img
ro=$T_TMP/ro.img
fioimg=$T_TMP/fio.img
truncate -s 64M "$data" && mkfs.ext4 -q -F "$data" || t_abort guest-devices "mkfs.ext4 failed"
truncate -s 16M "$ro" && mkfs.ext4 -q -F "$ro" && cp "$ro" "$T_TMP/ro-before.img"
truncate -s 64M "$fioimg"
# A qcow2 disk over a qcow2 backing file with 8 MiB of qemu-io's pattern.
qc=$T_TMP/q.qcow2
qemu-img create -q -f qcow2 "$T_TMP/qbase.qcow2" 64M &&
	qemu-io -c 'write -P 0x5a 0 8m' "$T_TMP/qbase.qcow2" >/dev/null &&
	qemu-img create -q -f qcow2 -b qbase.qcow2 -F qcow2 "$qc" ||
	t_abort guest-devices "qemu-img failed (package qemu-utils)"
qemu-img convert -O raw "$qc" "$T_TMP/q.raw" || t_abort guest-devices "qemu-img convert failed"
qwant=$(head -c 8M "$T_TMP/q.raw" | sha256sum | cut -d' ' -f1)
rm -f "$T_TMP/q.raw"
mkdir -p "$T_TMP/www" && echo "from-host-$token" >"$T_TMP/www/hello.txt"
# A 64-bit program that makes a 32-bit system call (int $0x80), for the guest
# to fetch and run.
printf '%s\n' 'void _start(void) {' \
	'	__asm__ volatile("mov $20, %%eax; int $0x80" ::: "eax");' \
	'	__asm__ volatile("mov $60, %%eax; xor %%edi, %%edi; syscall" ::: "eax", "edi");' \
	'}' >"$T_TMP/int80.c"
gcc -static -nostdlib -O1 -o "$T_TMP/www/int80" "$T_TMP/int80.c" ||
	t_abort guest-devices "cannot build the int80 program"
hp=$(g_port) && fp=$(g_port) || t_abort guest-devices "no free TCP port"
# The host's web server, for the guest's fetch (10.0.2.2 is the host's
# loopback from the user network).
busybox httpd -f -p "127.0.0.1:$hp" -h "$T_TMP/www" &
T_PIDS+=("$!")
disown

start_s=$SECONDS
if ! g_start a "$BOOT_TIMEOUT" "$CVISOR" run --name "$A" --kernel "$KERNEL" --initrd "$INITRD" \
	--memory 256M --cpus 2 --disk "$TOOLS,readonly,serial=cvtools" --disk "$data" \
	--disk "$ro,readonly" --disk "$fioimg" --disk "$qc,format=qcow2" \
	--net "user,hostfwd=tcp:127.0.0.1:$fp-:8080" \
	--rng --balloon 0 --vsock "3,uds=$T_TMP/vsock.sock" --cmdline "quiet cvisor.shell=1"; then
	t_fail "boot A to a shell" "no shell within ${BOOT_TIMEOUT}s: $(g_log a | tail -n 5 | tr '\n' ' ')"
	t_summary guest-devices
	exit 1
fi
t_pass "boot A reaches the shell in $((SECONDS - start_s)) s"
pid=$(pid_of "$A")

# ---- CPUs, memory, SMP ----
if g_log a | grep -qx "CVISOR-CPUS 2"; then
	t_pass "the guest sees 2 CPUs"
else
	t_fail "the guest sees 2 CPUs" "$(g_log a | grep CVISOR-CPUS)"
fi
mt=$(g_log a | sed -n 's/^CVISOR-MEMTOTAL \([0-9]*\) kB$/\1/p')
# MemTotal is RAM less the kernel's own image and reservations.
if [ -n "$mt" ] && [ "$mt" -gt $((200 * 1024)) ] && [ "$mt" -le $((256 * 1024)) ]; then
	t_pass "the guest sees its 256 MiB (MemTotal $mt kB)"
else
	t_fail "the guest sees its 256 MiB" "MemTotal '${mt}' kB"
fi
g_run a 60 'for c in 0 1; do taskset -c $c cat /proc/self/stat | cut -d" " -f39; done'
if [ "$G_RC" = 0 ] && [ "$(echo $G_OUT)" = "0 1" ]; then
	t_pass "SMP: a user process runs on each of the 2 vCPUs"
else
	t_fail "SMP: user processes on both vCPUs" "status $G_RC, CPUs reported: $(echo $G_OUT)"
fi

# ---- virtio-blk ----
want=$(seq "$token" $((token + 150000)) | sha256sum | cut -d' ' -f1)
# In a shell of its own: an applet the interactive shell runs keeps its
# line-buffered stdout, one write per line (each one costly here).
g_run a 120 "mount /dev/vdb /mnt && sh -c 'seq $token $((token + 150000)) | cat >/mnt/f' && sync && sha256sum /mnt/f"
got=$(sed -n 's|^\([0-9a-f]\{64\}\)  /mnt/f$|\1|p' <<<"$G_OUT")
if [ "$G_RC" = 0 ] && [ "$got" = "$want" ]; then
	t_pass "virtio-blk: the guest writes and syncs a file (sha256 ${got:0:12}...)"
else
	t_fail "virtio-blk: write and sync" "status $G_RC, checksum '$got', want '$want'"
fi
g_run a 60 'cat /sys/block/vdc/ro; dd if=/dev/zero of=/dev/vdc bs=4k count=1 conv=fsync'
if [ "$G_RC" != 0 ] && [ "$(head -n 1 <<<"$G_OUT")" = 1 ] &&
	grep -qi "not permitted\|read-only" <<<"$G_OUT"; then
	t_pass "virtio-blk: the read-only disk refuses the guest's write ($(tail -n 1 <<<"$G_OUT"))"
else
	t_fail "virtio-blk: read-only disk" "status $G_RC: $(echo $G_OUT)"
fi
g_run a 300 'fio --name=verify --filename=/dev/vdd --rw=write --bs=64k --size=16M --direct=1 --ioengine=psync --verify=crc32c --do_verify=1 2>&1 | grep -E "err=|WRITE:|READ:"'
if [ "$G_RC" = 0 ] && grep -q "err= 0" <<<"$G_OUT" && grep -q "WRITE:" <<<"$G_OUT"; then
	t_pass "virtio-blk: fio in the guest writes 16 MiB and verifies every block"
	grep -E "WRITE:|READ:" <<<"$G_OUT" | sed 's/^ */# fio in the guest: /'
else
	t_fail "virtio-blk: fio verify" "status $G_RC: $(echo $G_OUT | head -c 300)"
fi

# 4 KiB requests one at a time cost tens of milliseconds each on a host
# without VT-x: 2 MiB of them.
g_run a 240 'dd if=/dev/vde bs=1M count=8 2>/dev/null | sha256sum; fio --name=q --filename=/dev/vde --rw=randwrite --bs=4k --offset=4M --size=2M --direct=1 --ioengine=psync --verify=crc32c --do_verify=1 2>&1 | grep -E "err=|WRITE:"'
if [ "$G_RC" = 0 ] && grep -q "^$qwant " <<<"$G_OUT" && grep -q "err= 0" <<<"$G_OUT"; then
	t_pass "virtio-blk qcow2: the guest reads its backing file's data and fio verifies 2 MiB of random 4 KiB writes"
else
	t_fail "virtio-blk qcow2" "status $G_RC, want sha256 ${qwant:0:12}: $(echo $G_OUT | head -c 300)"
fi

# ---- virtio-net over --net user ----
# user_net ID WHAT: guest ID takes a DHCP lease and fetches the host's page.
user_net() {
	g_run "$1" 120 'timeout 60 udhcpc -i eth0 -n -q -t 5 2>&1 | grep "^udhcpc: eth0"'
	if [ "$G_RC" = 0 ] && grep -q "udhcpc: eth0 10.0.2.15/24 router 10.0.2.2" <<<"$G_OUT"; then
		t_pass "$2: DHCP lease 10.0.2.15 from the user network"
	else
		t_fail "$2: DHCP lease" "status $G_RC: $(echo $G_OUT)"
	fi
	g_run "$1" 120 "wget -q -O - http://10.0.2.2:$hp/hello.txt"
	if [ "$G_RC" = 0 ] && [ "$G_OUT" = "from-host-$token" ]; then
		t_pass "$2: the guest fetches a page from the host's web server"
	else
		t_fail "$2: HTTP fetch from the host" "status $G_RC: $(echo $G_OUT)"
	fi
}
user_net a virtio-net
# int $0x80 from a 64-bit process: an emulating host raises #UD with no
# exit, so the process gets SIGILL (status 132) and nothing hangs; with
# hardware virtualization the guest kernel (no IA32_EMULATION) answers
# SIGSEGV (139).
g_run a 120 "wget -q -O /tmp/int80 http://10.0.2.2:$hp/int80 && chmod +x /tmp/int80 && /tmp/int80; echo status=\$?"
st=$(sed -n 's/^status=//p' <<<"$G_OUT")
if { [ -e /sys/module/kvm_pvm ] && [ "$st" = 132 ]; } ||
	{ [ ! -e /sys/module/kvm_pvm ] && { [ "$st" = 132 ] || [ "$st" = 139 ]; }; }; then
	t_pass "a guest program's int \$0x80 ends in a signal, not a hang (status $st)"
else
	t_fail "int \$0x80 in a guest program" "status '$st': $(echo $G_OUT)"
fi
g_run a 60 "mkdir -p /www && echo from-guest-$token >/www/index.html && httpd -p 8080 -h /www"
got=$(timeout 60 busybox wget -q -O - "http://127.0.0.1:$fp/index.html" 2>&1)
if [ "$got" = "from-guest-$token" ]; then
	t_pass "virtio-net: hostfwd reaches busybox httpd in the guest"
else
	t_fail "virtio-net: hostfwd to the guest's httpd" "got '$got'"
fi

# ---- vsock: an echo through a guest listener ----
g_run a 30 'socat VSOCK-LISTEN:5000,reuseaddr,fork PIPE &'
reply=
for _ in $(seq 60); do
	coproc VS { timeout 30 socat - "UNIX-CONNECT:$T_TMP/vsock.sock" 2>/dev/null; }
	printf 'CONNECT 5000\n' >&"${VS[1]}"
	ok=
	read -r -t 20 ok <&"${VS[0]}"
	if [[ $ok == OK* ]]; then
		printf 'echo-%s\n' "$token" >&"${VS[1]}"
		read -r -t 20 reply <&"${VS[0]}"
	fi
	eval "exec ${VS[1]}>&-"
	wait "$VS_PID" 2>/dev/null
	[ -n "$reply" ] && break
	sleep 1 # the listener is not up yet: socat loads its libraries
done
if [ "$reply" = "echo-$token" ]; then
	t_pass "vsock: host to guest socat listener and back ($ok)"
else
	t_fail "vsock: echo" "connect answer '$ok', reply '$reply'"
fi

# ---- rng ----
g_run a 60 'cat /sys/class/misc/hw_random/rng_current; for i in 1 2; do dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d " \n"; echo; done'
mapfile -t r <<<"$G_OUT"
if [ "$G_RC" = 0 ] && [[ ${r[0]} == virtio_rng* ]] && [ ${#r[1]} = 64 ] && [ ${#r[2]} = 64 ] &&
	[ "${r[1]}" != "${r[2]}" ] && [ "${r[1]}" != "$(printf '0%.0s' $(seq 64))" ]; then
	t_pass "rng: /dev/hwrng is ${r[0]} and gives bytes"
else
	t_fail "rng: /dev/hwrng" "status $G_RC: ${G_OUT}"
fi

# ---- balloon ----
# The device offers DEFLATE_ON_OOM, so Linux keeps MemTotal and the
# balloon's pages leave MemFree.
memfree() {
	g_run a 30 'sed -n "s/^MemFree: *\([0-9]*\) kB/\1/p" /proc/meminfo'
	MF=$G_OUT
}
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status" 2>/dev/null; }
# Memory the guest touched and gave back: resident in the host until the
# balloon takes it. Free page reporting (which would hand it back by itself
# a moment later) is switched off first: no free block is of order 11.
g_run a 120 'echo 11 >/sys/module/page_reporting/parameters/page_reporting_order && dd if=/dev/zero of=/dev/shm/fill bs=1M count=32 2>/dev/null && rm /dev/shm/fill'
[ "$G_RC" = 0 ] || t_fail "balloon: the guest sets up" "status $G_RC: $G_OUT"
memfree
before=$MF
rss0=$(rss)
t_run 30 "$CVISOR" balloon "$A" 96M
after=$before
end=$((SECONDS + 180))
while [ "$SECONDS" -lt "$end" ]; do
	memfree
	after=$MF
	[ -n "$after" ] && [ -n "$before" ] && [ "$after" -le $((before - 88 * 1024)) ] && break
	sleep 2
done
rss1=$(rss)
if [ "$T_RC" = 0 ] && [ -n "$after" ] && [ "$after" -le $((before - 88 * 1024)) ]; then
	t_pass "balloon: 96M taken, the guest's MemFree $before -> $after kB"
else
	t_fail "balloon: the guest's free memory drops" "balloon exit $T_RC ($T_ERR), MemFree $before -> $after kB"
fi
if [ -n "$rss0" ] && [ -n "$rss1" ] && [ "$rss1" -lt $((rss0 - 8 * 1024)) ]; then
	t_pass "balloon: the host's RSS of the guest drops, $rss0 -> $rss1 kB"
else
	t_fail "balloon: host RSS drops" "monitor pid '$pid': VmRSS '$rss0' -> '$rss1' kB"
fi
t_run 30 "$CVISOR" balloon "$A" 0

# ---- cvisor stop: the ACPI power button ----
t_run 200 "$CVISOR" stop "$A" --timeout 180
g_wait_exit a 60
if [ "$T_RC" = 0 ] && [ "$G_RC" = 0 ] && g_log a | grep -q "power button pressed"; then
	t_pass "cvisor stop: the guest powers off through the power button (status 0)"
else
	t_fail "cvisor stop via the power button" "stop exit $T_RC ($T_ERR), monitor $G_RC, guest: $(g_log a | tail -n 3 | tr '\n' ' ')"
fi
if cmp -s "$ro" "$T_TMP/ro-before.img"; then
	t_pass "virtio-blk: the read-only image is byte for byte unchanged"
else
	t_fail "virtio-blk: read-only image unchanged" "cmp found a difference"
fi
if out=$(qemu-img check "$qc" 2>&1); then
	t_pass "virtio-blk qcow2: the image the guest wrote passes qemu-img check"
else
	t_fail "virtio-blk qcow2: qemu-img check" "$(echo $out | head -c 300)"
fi
got=$(debugfs -R "cat /f" "$data" 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ "$got" = "$want" ]; then
	t_pass "virtio-blk: the host reads the guest's file back from the image"
else
	t_fail "virtio-blk: the file on the image" "host sha256 $got, want $want"
fi

# ---- boot B: the same disk after the power off ----
if g_start b "$BOOT_TIMEOUT" "$CVISOR" run --jail --kernel "$KERNEL" --initrd "$INITRD" \
	--disk "$data" --net user --cmdline "quiet cvisor.shell=1"; then
	g_run b 60 'mount /dev/vda /mnt && sha256sum /mnt/f'
	got=$(sed -n 's|^\([0-9a-f]\{64\}\)  /mnt/f$|\1|p' <<<"$G_OUT")
	if [ "$got" = "$want" ]; then
		t_pass "virtio-blk: after a power off the jailed guest reads the same checksum back"
	else
		t_fail "virtio-blk: checksum after the reboot (jailed)" "status $G_RC: $(echo $G_OUT)"
	fi
	user_net b "virtio-net (jailed)"
	# libslirp answers 10.0.2.3 from the host's /etc/resolv.conf, which
	# the jail binds in: a name the host resolves, the jailed guest does.
	if timeout 10 getent hosts deb.debian.org >/dev/null 2>&1; then
		g_run b 60 'nslookup deb.debian.org 10.0.2.3 >/dev/null 2>&1; echo rc=$?'
		if [ "$G_RC" = 0 ] && [ "$G_OUT" = "rc=0" ]; then
			t_pass "virtio-net (jailed): DNS through 10.0.2.3 resolves a name the host resolves"
		else
			t_fail "virtio-net (jailed): DNS through 10.0.2.3" "status $G_RC: $(echo $G_OUT)"
		fi
	else
		t_skip "virtio-net (jailed): DNS through 10.0.2.3" "the host resolves no deb.debian.org"
	fi
	g_poweroff b "poweroff in the guest ends cvisor with status 0"
else
	t_fail "boot B to a shell" "$(g_log b | tail -n 5 | tr '\n' ' ')"
fi
t_summary guest-devices
