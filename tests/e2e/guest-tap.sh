#!/usr/bin/env bash
# tests/e2e/guest-tap.sh - virtio-net over a tap device, as the guest sees
# it: in a network namespace this test makes (with a tap at 192.168.77.1),
# the kit's bzImage on virtio-mmio boots to its shell, configures
# 192.168.77.2, pings the host and runs iperf3 to an iperf3 server on the
# host side of the tap. The figures are printed; the check is that data
# flowed both ways and iperf3 says so. The namespace, the tap and the
# server go away at the end.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
. tests/guest.sh
G_SUITE=guest-tap
ns=cvt$$
tap=cvtap0
cleanup() {
	g_cleanup
	ip -n "$ns" link del "$tap" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	t_cleanup
}
trap cleanup EXIT
[ -x "$CVISOR" ] || t_abort guest-tap "$CVISOR not found (run make)"
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	t_skip_suite guest-tap "/dev/kvm is not accessible"
fi
[ "$(id -u)" = 0 ] || t_skip_suite guest-tap "needs root for a network namespace and a tap"
g_kit guest-tap
BZIMAGE=${BZIMAGE:-build/guest/microvm.bzImage}

ip netns add "$ns" && ip -n "$ns" link set lo up &&
	ip -n "$ns" tuntap add dev "$tap" mode tap vnet_hdr &&
	ip -n "$ns" addr add 192.168.77.1/24 dev "$tap" && ip -n "$ns" link set "$tap" up ||
	t_abort guest-tap "cannot make the namespace and its tap"
ip netns exec "$ns" iperf3 -s -B 192.168.77.1 -p 5201 >"$T_TMP/iperf3-server.log" 2>&1 &
T_PIDS+=("$!")
disown

if ! g_start t "$BOOT_TIMEOUT" ip netns exec "$ns" "$CVISOR" run --kernel "$BZIMAGE" --virtio mmio \
	--initrd "$INITRD" --memory 256M --disk "$TOOLS,readonly,serial=cvtools" --net "tap=$tap" \
	--cmdline "quiet cvisor.shell=1"; then
	t_fail "bzImage on virtio-mmio boots to a shell" "$(g_log t | tail -n 5 | tr '\n' ' ')"
	t_summary guest-tap
	exit 1
fi
t_pass "bzImage on virtio-mmio boots to a shell"
g_run t 60 'ip addr add 192.168.77.2/24 dev eth0 && ip link set eth0 up && ping -c 3 -W 10 192.168.77.1 | tail -n 2'
if [ "$G_RC" = 0 ] && grep -q " 0% packet loss" <<<"$G_OUT"; then
	t_pass "tap: the guest pings the host side ($(tail -n 1 <<<"$G_OUT"))"
else
	t_fail "tap: ping" "status $G_RC: $(echo $G_OUT)"
fi
g_run t 180 'iperf3 -c 192.168.77.1 -p 5201 -t 5 -f m 2>&1 | grep -E "sender|receiver|error"'
if [ "$G_RC" = 0 ] && grep -q "sender" <<<"$G_OUT" && grep -q "receiver" <<<"$G_OUT" &&
	! grep -q " 0.00 MBytes" <<<"$G_OUT"; then
	t_pass "tap: iperf3 guest to host completes"
	sed 's/^/# iperf3 in the guest: /' <<<"$G_OUT"
else
	t_fail "tap: iperf3 guest to host" "status $G_RC: $(echo $G_OUT)"
fi
g_poweroff t "the tap guest powers off with status 0"
t_summary guest-tap
