/* test_net_config.c - the --net flag parser (src/net/config.c): every
 * form it accepts, and one clear "--net: ..." line for each it refuses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/virtio_net.h"
#include "with_err.h"

static void test_parse_bad(void **state)
{
	/* Specs separated by '|' (the first is empty). */
	static const char bad[] =
		"|bogus|tap=|tap=waytoolongname16|tap=a/b|tap=t%d|user,|user,foo=1|"
		"user,hostfwd=tcp::0-:22|user,hostfwd=tcp::70000-:22|"
		"user,hostfwd=tcp::22|user,hostfwd=sctp::1-:2|"
		"user,hostfwd=tcp:1.2.3:1-:2|user,hostfwd=tcp::1-192.168.0.1:2|"
		"user,hostfwd=tcp::1-10.0.2.255:2|user,hostfwd=tcp::1-:|"
		"user,hostfwd=tcp::5-:1,hostfwd=tcp::5-:2|tap=t0,hostfwd=tcp::1-:2|"
		"user,mac=01:00:00:00:00:01|user,mac=00:00:00:00:00:00|"
		"user,mac=zz:00:00:00:00:01|user,mac=52:54:00:12:34|"
		"user,mac=52:54:00:12:34:56:|"
		"user,mac=02:00:00:00:00:01,mac=02:00:00:00:00:02";
	char list[sizeof(bad)], *p = list, *spec;
	unsigned int nbad = 0;
	struct virtio_net_config c;
	char err[256], many[1024];

	(void)state;
	memcpy(list, bad, sizeof(bad));
	while ((spec = strsep(&p, "|"))) {
		err[0] = '\0';
		if (WITH_ERR(err, virtio_net_parse(spec, 0, &c, &e_)) != -EINVAL)
			fail_msg("accepted '%s'", spec);
		assert_int_equal(strncmp(err, "--net", 5), 0);
		nbad++;
	}
	assert_int_equal(nbad, 24);
	/* 17 rules: one too many. */
	strcpy(many, "user");
	for (int i = 0; i < 17; i++)
		sprintf(many + strlen(many), ",hostfwd=tcp::%d-:22", 1000 + i);
	assert_int_equal(WITH_ERR(err, virtio_net_parse(many, 0, &c, &e_)), -EINVAL);
	assert_non_null(strstr(err, "at most"));
}

static void test_parse_good(void **state)
{
	struct virtio_net_config c;
	char err[256];
	uint8_t mac[6];

	(void)state;
	assert_int_equal(WITH_ERR(err, virtio_net_parse("user", 1, &c, &e_)), 0);
	assert_int_equal(c.backend, VIRTIO_NET_USER);
	assert_memory_equal(c.mac, "\x52\x54\x00\x12\x34\x57", 6);
	assert_int_equal(c.nr_hostfwd, 0);
	assert_int_equal(
		WITH_ERR(err,
			 virtio_net_parse("user,hostfwd=tcp::2222-:22,hostfwd=udp:127.0.0.1:"
					  "5353-10.0.2.20:53,hostfwd=tcp:8080-:80,mac=02:aB:cd:"
					  "ef:00:01",
					  0, &c, &e_)),
		0);
	assert_int_equal(c.nr_hostfwd, 3);
	assert_false(c.hostfwd[0].udp);
	assert_int_equal(c.hostfwd[0].host_addr, 0);
	assert_int_equal(c.hostfwd[0].host_port, 2222);
	assert_int_equal(c.hostfwd[0].guest_addr, NET_USER_GUEST);
	assert_int_equal(c.hostfwd[0].guest_port, 22);
	assert_true(c.hostfwd[1].udp);
	assert_int_equal(c.hostfwd[1].host_addr, 0x7f000001);
	assert_int_equal(c.hostfwd[1].guest_addr, 0x0a000214);
	assert_int_equal(c.hostfwd[2].host_port, 8080);
	assert_memory_equal(c.mac, "\x02\xab\xcd\xef\x00\x01", 6);
	assert_int_equal(
		WITH_ERR(err, virtio_net_parse("tap=tap0,mac=02:00:00:00:00:05", 0, &c, &e_)), 0);
	assert_int_equal(c.backend, VIRTIO_NET_TAP);
	assert_string_equal(c.tap, "tap0");
	assert_memory_equal(c.mac, "\x02\x00\x00\x00\x00\x05", 6);
	/* The brief's form with a host address, and the longest tap name. */
	assert_int_equal(
		WITH_ERR(err, virtio_net_parse("user,hostfwd=tcp:127.0.0.1:2222-:22", 0, &c, &e_)),
		0);
	assert_int_equal(c.hostfwd[0].host_addr, 0x7f000001);
	assert_int_equal(c.hostfwd[0].host_port, 2222);
	assert_int_equal(WITH_ERR(err, virtio_net_parse("tap=abcdefghijklmno", 0, &c, &e_)), 0);
	/* Default MACs: locally administered unicast, distinct per index. */
	virtio_net_default_mac(0, mac);
	assert_memory_equal(mac, "\x52\x54\x00\x12\x34\x56", 6);
	virtio_net_default_mac(0x200, mac);
	assert_memory_equal(mac, "\x52\x54\x00\x12\x36\x56", 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_parse_good),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
