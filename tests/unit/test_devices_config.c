/* test_devices_config.c - what the user asked for, as the device table
 * holds it (src/devices.c): a spec that comes with a file descriptor (a
 * tap passed with the API's vm.add-net) is dup'ed by a copy and closed by
 * each holder's free, exactly once; such a config is refused by the
 * snapshot and migration check; creation order (the PCI slots). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cvisor/devices.h"

static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static void test_fd_copy_free(void **state)
{
	struct devices_config a = { 0 }, b = { 0 };
	const struct device_type *net = devices_type("net"), *disk = devices_type("disk");
	struct cv_error e = { 0 };
	char err[256];
	int p[2], dup_fd;

	(void)state;
	assert_int_equal(pipe(p), 0);
	close(p[1]);
	assert_int_equal(devices_add(&a, disk, "--disk", "/d", &e), 0);
	assert_int_equal(devices_check_portable(&a, err, sizeof(err)), 0);
	assert_int_equal(devices_add_fd(&a, net, "vm.add-net", "tapfd", p[0], &e), 0);
	assert_int_equal(a.dev[1].fd, p[0]);
	assert_int_equal(devices_check_portable(&a, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "virtio-net net0 runs on a file descriptor"));
	assert_int_equal(devices_config_copy(&b, &a), 0);
	assert_int_equal(b.dev[0].fd, -1);
	assert_true(b.dev[1].fd >= 0 && b.dev[1].fd != p[0] && is_open(b.dev[1].fd));
	assert_true(fcntl(b.dev[1].fd, F_GETFD) & FD_CLOEXEC);
	dup_fd = b.dev[1].fd;
	devices_config_free(&b);
	assert_false(is_open(dup_fd));
	assert_true(is_open(p[0]));
	devices_config_free(&b); /* idempotent */
	devices_config_free(&a);
	assert_false(is_open(p[0]));
}

static void test_fd_refused_closed(void **state)
{
	struct devices_config a = { 0 };
	const struct device_type *net = devices_type("net");
	struct cv_error e = { 0 };
	int p[2];

	(void)state;
	for (unsigned int i = 0; i < net->max; i++)
		assert_int_equal(devices_add(&a, net, "--net", "user", &e), 0);
	assert_int_equal(pipe(p), 0);
	close(p[1]);
	/* One NIC too many: the fd is closed with the refusal. */
	assert_int_equal(devices_add_fd(&a, net, "vm.add-net", "tapfd", p[0], &e), -EINVAL);
	assert_false(is_open(p[0]));
	devices_config_free(&a);
}

static void test_order(void **state)
{
	struct devices_config a = { 0 };
	struct cv_error e = { 0 };

	(void)state;
	/* Given in any order, built in table order: disks, then NICs, ... */
	assert_int_equal(devices_add(&a, devices_type("rng"), "--rng", "", &e), 0);
	assert_int_equal(devices_add(&a, devices_type("net"), "--net", "user", &e), 0);
	assert_int_equal(devices_add(&a, devices_type("disk"), "--disk", "/a", &e), 0);
	assert_int_equal(devices_add(&a, devices_type("disk"), "--disk", "/b", &e), 0);
	assert_int_equal(devices_add(&a, devices_type("net"), "--net", "user", &e), 0);
	assert_int_equal(devices_order(&a, devices_type("disk"), 1), 1);
	assert_int_equal(devices_order(&a, devices_type("net"), 0), 2);
	assert_int_equal(devices_order(&a, devices_type("net"), 1), 3);
	assert_int_equal(devices_order(&a, devices_type("rng"), 0), 4);
	assert_int_equal(devices_order(&a, devices_type("net"), 2), -1);
	devices_config_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fd_copy_free),
		cmocka_unit_test(test_fd_refused_closed),
		cmocka_unit_test(test_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
