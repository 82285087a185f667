/* test_net_tap.c - the tap backend (src/net/tap.c) against a real tap: a
 * packet socket bound to the interface sees what the backend writes, and
 * what it sends arrives on the backend's fd with a vnet header. Needs
 * CAP_NET_ADMIN and /dev/net/tun; skipped otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cvisor/net_backend.h"

#define ETHERTYPE_TEST 0x88b5 /* IEEE local experimental */

static unsigned int ready_calls;

static void on_ready(void *opaque)
{
	(void)opaque;
	ready_calls++;
}

/* A frame to nobody in particular, of our own ethertype. */
static void make_frame(uint8_t *f, size_t len, uint8_t seed)
{
	memcpy(f, "\x02\x00\x00\x00\x00\x01\x52\x54\x00\x12\x34\x56\x88\xb5", 14);
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(seed + i);
}

static int up(const char *name, int *ifindex)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = -1;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (s >= 0 && !ioctl(s, SIOCGIFFLAGS, &ifr)) {
		ifr.ifr_flags |= IFF_UP;
		if (!ioctl(s, SIOCSIFFLAGS, &ifr) && !ioctl(s, SIOCGIFINDEX, &ifr)) {
			*ifindex = ifr.ifr_ifindex;
			r = 0;
		}
	}
	if (s >= 0)
		close(s);
	return r;
}

static void test_tap_both_ways(void **state)
{
	struct evloop loop;
	struct net_backend *be, *be2;
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETHERTYPE_TEST) };
	uint8_t hdr[12] = { 0 }, frame[80], got[256];
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { frame, sizeof(frame) } };
	char name[IFNAMSIZ], err[256];
	int r, ps, ifindex = 0;
	ssize_t n = 0;

	(void)state;
	snprintf(name, sizeof(name), "cvut%d", (int)getpid() % 100000);
	assert_int_equal(evloop_init(&loop), 0);
	r = net_tap_open(name, &loop, &be, err, sizeof(err));
	if (r) {
		print_message("skipping the tap test: %s\n", err);
		evloop_destroy(&loop);
		skip();
	}
	/* This kernel takes vnet headers and offloads. */
	assert_int_equal(be->hdr_len, 12);
	assert_true(be->offloads);
	assert_int_equal(be->ops->set_offload(be, 0x01 | 0x02), 0);
	/* A second attach to the same tap is refused with a clear line. */
	assert_int_equal(net_tap_open(name, &loop, &be2, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "in use"));
	assert_int_equal(up(name, &ifindex), 0);
	ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETHERTYPE_TEST));
	assert_true(ps >= 0);
	sll.sll_ifindex = ifindex;
	assert_int_equal(bind(ps, (struct sockaddr *)&sll, sizeof(sll)), 0);

	/* Guest -> host: the header is consumed by the tap, the frame is
	 * what the host's stack receives. */
	make_frame(frame, sizeof(frame), 1);
	assert_int_equal(be->ops->send(be, iov, 2), 0);
	n = recv(ps, got, sizeof(got), 0);
	assert_int_equal(n, sizeof(frame));
	assert_memory_equal(got, frame, sizeof(frame));

	/* Host -> guest: what the host sends out of the tap is read with a
	 * vnet header in front, once reads are on. */
	be->rx_ready = on_ready;
	be->ops->set_rx(be, true);
	make_frame(frame, sizeof(frame), 2);
	assert_int_equal(sendto(ps, frame, sizeof(frame), 0, (struct sockaddr *)&sll, sizeof(sll)),
			 sizeof(frame));
	for (int i = 0; i < 50 && !ready_calls; i++)
		assert_int_equal(evloop_once(&loop, 100), 0);
	assert_true(ready_calls > 0);
	/* The kernel may send its own frames (IPv6 neighbour discovery)
	 * first: skip those. */
	for (int i = 0; i < 16; i++) {
		n = be->ops->recv(be, got, sizeof(got));
		if (n <= 0 ||
		    (n == 12 + (ssize_t)sizeof(frame) && got[24] == 0x88 && got[25] == 0xb5))
			break;
	}
	assert_int_equal(n, 12 + sizeof(frame));
	assert_int_equal(got[1], 0); /* no GSO */
	assert_memory_equal(got + 12, frame, sizeof(frame));
	/* Reads off: no more wakeups for what is left. */
	be->ops->set_rx(be, false);
	ready_calls = 0;
	assert_int_equal(sendto(ps, frame, sizeof(frame), 0, (struct sockaddr *)&sll, sizeof(sll)),
			 sizeof(frame));
	assert_int_equal(evloop_once(&loop, 50), 0);
	assert_int_equal(ready_calls, 0);
	be->ops->flush(be);
	assert_int_equal(be->ops->recv(be, got, sizeof(got)), 0);
	close(ps);
	be->ops->destroy(be);
	evloop_destroy(&loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tap_both_ways),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
