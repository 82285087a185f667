#!/usr/bin/env bash
# Bad input to `cvisor run`: one clear line on stderr and exit status 2.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

TINY=${TINY:-build/tests/kvm/hello.elf}
printf 'not a kernel at all\n' >"$T_TMP/notakernel"
head -c 4096 /dev/zero >"$T_TMP/zeros"
# A bzImage header cut short after its magic.
printf '%0498d\x55\xaa\xeb\x66HdrS' 0 >"$T_TMP/truncated"
truncate -s 200M "$T_TMP/bigrd"

t_run 10 "$CVISOR" run
t_expect_err "missing --kernel" 2 'kernel FILE is required'
t_run 10 "$CVISOR" run --kernel "$T_TMP/nonexistent"
t_expect_err "kernel file missing" 2 'nonexistent: no such file'
t_run 10 "$CVISOR" run --kernel "$T_TMP/notakernel"
t_expect_err "kernel not a bzImage" 2 'not a Linux bzImage'
t_run 10 "$CVISOR" run --kernel "$T_TMP/zeros"
t_expect_err "kernel all zeros" 2 'not a Linux bzImage'
t_run 10 "$CVISOR" run --kernel "$T_TMP/truncated"
t_expect_err "kernel truncated header" 2 'not a Linux bzImage|truncated|too old'
t_run 10 "$CVISOR" run --kernel "$TINY" --initrd "$T_TMP/nonexistent"
t_expect_err "initrd missing" 2 'initrd .*no such file'
t_run 10 "$CVISOR" run --kernel "$TINY" --initrd "$T_TMP/bigrd" --memory 64M
t_expect_err "initrd larger than memory" 2 'initrd .*does not fit'
t_run 10 "$CVISOR" run --kernel "$TINY" --memory 12Q
t_expect_err "memory does not parse" 2 'memory 12Q: not a size'
t_run 10 "$CVISOR" run --kernel "$TINY" --memory 100T
t_expect_err "memory exceeds host" 2 "exceeds the host"
t_run 10 "$CVISOR" run --kernel "$TINY" --memory 1M
t_expect_err "memory too small" 2 'at least'
t_run 10 "$CVISOR" run --kernel "$TINY" --cpus 0
t_expect_err "zero vCPUs" 2 'cpus 0: must be'
t_run 10 "$CVISOR" run --kernel "$TINY" --cpus 65
t_expect_err "too many vCPUs" 2 'cpus 65: must be'
t_run 10 "$CVISOR" run --kernel "$TINY" --frobnicate
t_expect_err "unknown flag" 2 'unknown flag --frobnicate'
t_run 10 "$CVISOR" run --kernel "$TINY" --seccomp maybe
t_expect_err "bad --seccomp" 2 'seccomp maybe: must be on, log or off'
t_run 10 "$CVISOR" run --kernel "$TINY" --pit maybe
t_expect_err "bad --pit" 2 'pit maybe: must be auto, on or off'
t_run 10 "$CVISOR" run --kernel "$TINY" --irqchip maybe
t_expect_err "bad --irqchip" 2 'irqchip maybe: must be kernel or split'
t_run 10 "$CVISOR" run --kernel "$TINY" --irqchip split --pit on
t_expect_err "--irqchip split --pit on" 2 '--irqchip split has no in-kernel PIT: drop --pit on'
t_run 10 "$CVISOR" restore "$T_TMP/nonexistent" --seccomp maybe
t_expect_err "bad restore --seccomp" 2 'seccomp maybe: must be on, log or off'
t_run 10 "$CVISOR" run --incoming 127.0.0.1:1 --seccomp
t_expect_err "run --incoming --seccomp without a value" 2 'seccomp needs a value'
printf '{"kernel": "%s", "seccomp": "sometimes"}\n' "$TINY" >"$T_TMP/seccomp.json"
t_run 10 "$CVISOR" run --config "$T_TMP/seccomp.json"
t_expect_err "bad seccomp key" 2 'seccomp: must be on, log or off|seccomp sometimes: must be'
t_run 10 "$CVISOR" frobnicate
t_expect_err "unknown command" 2 'unknown command'

# The jail's flags (the checks before any namespace is made).
t_run 10 "$CVISOR" run --kernel "$TINY" --jail --uid abc
t_expect_err "malformed --uid" 2 'uid abc: must be a number from 1 to'
t_run 10 "$CVISOR" run --kernel "$TINY" --jail --uid 0
t_expect_err "--uid 0" 2 'uid 0: must be a number .*not 0'
t_run 10 "$CVISOR" run --kernel "$TINY" --jail --gid 12x
t_expect_err "malformed --gid" 2 'gid 12x: must be a number'
t_run 10 "$CVISOR" restore "$T_TMP/nonexistent" --jail --uid -1
t_expect_err "malformed restore --uid" 2 'uid -1: must be a number'
t_run 10 "$CVISOR" run --kernel "$TINY" --uid 1000
t_expect_err "--uid without --jail" 2 'uid needs --jail'
t_run 10 "$CVISOR" run --kernel "$TINY" --jail=yes
t_expect_err "--jail with a value" 2 'jail takes no value'
t_run 10 "$CVISOR" run --kernel "$TINY" --jail --jail-dir "$T_TMP/nonexistent"
t_expect_err "missing --jail-dir" 2 "jail-dir $T_TMP/nonexistent: no such directory|jail needs root"
t_run 10 "$CVISOR" run --incoming 127.0.0.1:1 --jail --jail-dir "$T_TMP/nonexistent"
t_expect_err "missing run --incoming --jail-dir" 2 "no such directory|jail needs root"
t_run 10 "$CVISOR" run --kernel "$TINY" --jail --netns "$T_TMP/nonexistent"
t_expect_err "missing --netns" 2 "netns .*nonexistent: No such file|jail needs root"
t_run 10 "$CVISOR" run --kernel "$TINY" --jail --vsock 3,uds="$T_TMP/v.sock"
t_expect_err "--vsock with --jail" 2 '^cvisor: --vsock with --jail: .* the jail cannot reach'
t_run 10 "$CVISOR" run --incoming 127.0.0.1:1 --jail --vsock 3
t_expect_err "run --incoming --vsock with --jail" 2 '^cvisor: --vsock with --jail'

# Rate limits (--disk/--net options, cvisor set): 0, negative, malformed.
truncate -s 1M "$T_TMP/rate.img"
for bad in bw=0 bw=-10M bw=fast bw= iops=0 iops=-5 iops=1.5 bw-burst=1M bw=1M,bw-burst=0; do
	t_run 10 "$CVISOR" run --kernel "$TINY" --disk "$T_TMP/rate.img,$bad"
	t_expect_err "--disk ...,$bad" 2 "^cvisor: --disk: (bw|iops|bw-burst)"
done
for bad in rx-bw=0 tx-bw=-1M rx-pps=0 tx-pps=many rx-pps-burst=5; do
	t_run 10 "$CVISOR" run --kernel "$TINY" --net "user,$bad"
	t_expect_err "--net user,$bad" 2 "^cvisor: --net: (rx|tx)-"
done
printf '{"kernel": "%s", "disk": "%s,iops=0"}\n' "$TINY" "$T_TMP/rate.img" >"$T_TMP/rate.json"
t_run 10 "$CVISOR" run --config "$T_TMP/rate.json"
t_expect_err "config file disk iops=0" 2 "^cvisor: --disk: iops=0: must be"
for bad in bw=0 iops=-1 tx-bw=1M serial=x; do
	t_run 10 "$CVISOR" set noguest disk0 "$bad"
	t_expect_err "set disk0 $bad" 2 "^cvisor: set: disk0: "
done
t_run 10 "$CVISOR" set noguest net0 rx-bw=0
t_expect_err "set net0 rx-bw=0" 2 "^cvisor: set: net0: rx-bw=0: must be"
t_run 10 "$CVISOR" set noguest rng0 bw=1M
t_expect_err "set rng0" 2 "rng0: not a device with rate limits"

# Special files as the files a user names: one line and status 2 each, at
# once (a FIFO used to block the open forever: t_run's timeout fails it).
mkfifo "$T_TMP/fifo"
mkdir "$T_TMP/dir"
: >"$T_TMP/empty"
printf 'null\n' >"$T_TMP/null.json"
special() { # special KIND FLAGS...: the file of KIND is the last flag's value
	case $1 in
	fifo) echo "$T_TMP/fifo" ;;
	dir) echo "$T_TMP/dir" ;;
	zero) echo /dev/zero ;;
	empty) echo "$T_TMP/empty" ;;
	esac
}
for kind in fifo dir zero empty; do
	f=$(special $kind)
	case $kind in
	fifo | zero) why='not a regular file' ;;
	dir) why='is a directory' ;;
	empty) why='file is empty' ;;
	esac
	t_run 10 "$CVISOR" run --kernel "$f"
	t_expect_err "--kernel $kind" 2 "^cvisor: --kernel $f: $why\$"
	t_run 10 "$CVISOR" run --kernel "$TINY" --initrd "$f"
	t_expect_err "--initrd $kind" 2 "^cvisor: --initrd $f: $why\$"
	t_run 10 "$CVISOR" run --config "$f"
	t_expect_err "--config $kind" 2 "^cvisor: --config $f: $why\$"
	t_run 10 "$CVISOR" restore "$f"
	t_expect_err "restore FILE $kind" 2 "^cvisor: snapshot $f: $why\$"
	[ $kind = empty ] && continue
	[ $kind = dir ] && why='is a directory, not a disk image' || why='not a regular file or block device'
	t_run 10 "$CVISOR" run --kernel "$TINY" --disk "$f,readonly"
	t_expect_err "--disk $kind,readonly" 2 "^cvisor: $f: $why\$"
done
# qcow2 disks refused at start: one line naming the image, status 2.
if command -v qemu-img >/dev/null; then
	q=$T_TMP/bad.qcow2
	qemu-img create -q -f qcow2 "$q" 4M
	printf '\x00\x00\x00\x07' | dd of="$q" bs=1 seek=96 conv=notrunc status=none
	t_run 10 "$CVISOR" run --kernel "$TINY" --disk "$q"
	t_expect_err "--disk qcow2 refcount_order 7" 2 "^cvisor: $q: not a usable qcow2 image: refcount_order above 6\$"
	qemu-img create -q -f qcow2 -u -b "$q" -F qcow2 "$T_TMP/loop.qcow2" 4M
	qemu-img create -q -f qcow2 -u -b "$T_TMP/loop.qcow2" -F qcow2 "$q" 4M
	t_run 10 "$CVISOR" run --kernel "$TINY" --disk "$q"
	t_expect_err "--disk qcow2 probed, naming a backing file" 2 "^cvisor: $q: names a backing file, which is followed only with --disk PATH,format=qcow2 "
	t_run 10 "$CVISOR" run --kernel "$TINY" --disk "$q,format=qcow2"
	t_expect_err "--disk qcow2 backing loop" 2 "^cvisor: .*: the backing chain loops back to this image\$"
	t_run 10 "$CVISOR" run --kernel "$TINY" --disk "$T_TMP/zeros,format=qcow2"
	t_expect_err "--disk raw,format=qcow2" 2 "^cvisor: $T_TMP/zeros: not a usable qcow2 image: no QFI"
	t_run 10 "$CVISOR" run --kernel "$TINY" --disk "$q,format=vmdk"
	t_expect_err "--disk format=vmdk" 2 "^cvisor: --disk .*: format 'vmdk' is not raw or qcow2\$"
fi
# --firmware: the image's size and the options it excludes.
head -c 100000 /dev/zero >"$T_TMP/fw-odd"
truncate -s 17M "$T_TMP/fw-big"
truncate -s 128K "$T_TMP/fw-ok"
t_run 10 "$CVISOR" run --firmware "$T_TMP/nonexistent"
t_expect_err "--firmware missing" 2 "^cvisor: --firmware $T_TMP/nonexistent: no such file"
t_run 10 "$CVISOR" run --firmware "$T_TMP/fw-odd"
t_expect_err "--firmware not a multiple of 64 KiB" 2 "^cvisor: --firmware $T_TMP/fw-odd: 100000 bytes is not a multiple of 64 KiB"
t_run 10 "$CVISOR" run --firmware "$T_TMP/fw-big"
t_expect_err "--firmware over 16 MiB" 2 "^cvisor: --firmware $T_TMP/fw-big: .* larger than 16 MiB"
t_run 10 "$CVISOR" run --firmware "$T_TMP/zeros"
t_expect_err "--firmware of 4 KiB" 2 "not a multiple of 64 KiB"
t_run 10 "$CVISOR" run --firmware "$T_TMP/fw-ok" --kernel "$TINY"
t_expect_err "--firmware with --kernel" 2 "^cvisor: run: --kernel and --firmware exclude each other"
t_run 10 "$CVISOR" run --firmware "$T_TMP/fw-ok" --cmdline quiet
t_expect_err "--firmware with --cmdline" 2 "^cvisor: run: --firmware boots from --disk"
t_run 10 "$CVISOR" run --firmware "$T_TMP/fw-ok" --virtio mmio
t_expect_err "--firmware with --virtio mmio" 2 "needs --virtio pci"
t_run 10 "$CVISOR" run --firmware ""
t_expect_err "--firmware empty name" 2 "firmware: empty file name"
t_run 10 "$CVISOR" run --config "$T_TMP/null.json"
t_expect_err "config file holding null" 2 "^cvisor: $T_TMP/null.json: the top level must be a JSON object"

# No /dev/kvm: a private mount namespace with an empty /dev.
if unshare -m true 2>/dev/null; then
	t_run 10 unshare -m --propagation private sh -c \
		'mount -t tmpfs none /dev && exec "$0" run --kernel "$1"' "$CVISOR" "$TINY"
	t_expect_err "no /dev/kvm" 2 '/dev/kvm: no such device'
else
	t_skip "no /dev/kvm" "cannot unshare a mount namespace"
fi
# Permission denied: an unprivileged user against the root-only device.
if [ "$(id -u)" = 0 ] && [ "$(stat -c %a /dev/kvm)" = 600 ]; then
	cp "$CVISOR" "$T_TMP/cvisor" && chmod 755 "$T_TMP" "$T_TMP/cvisor"
	t_run 10 setpriv --reuid=65534 --regid=65534 --clear-groups "$T_TMP/cvisor" run --kernel /nonexistent
	t_expect_err "permission denied on /dev/kvm" 2 '/dev/kvm: permission denied'
else
	t_skip "permission denied on /dev/kvm" "needs root and a 0600 /dev/kvm"
fi
t_summary cli
