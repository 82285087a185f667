/* test_virtio_console.c - virtio-console driven like a guest driver would,
 * on a real pty: bytes on transmitq0 come out of the slave, bytes typed
 * into the slave fill receiveq0's buffers; output nobody reads never
 * blocks and keeps its latest bytes; hostile chains put the device in
 * NEEDS_RESET; save and load. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cvisor/evloop.h"
#include "cvisor/pty.h"
#include "cvisor/virtio_console.h"

#include "vdev_state.h"
#include "vq_driver.h"

#define RAM_SIZE (1u << 20)
#define BUF_BASE 0x20000u /* after the rings */
#define RXQ 0
#define TXQ 1

struct ct {
	struct vqd_dev v; /* first: the fixture's functions take it */
	struct evloop loop;
	int slave; /* the test's own open of the pty slave, O_NONBLOCK */
};

static int setup(void **state)
{
	struct ct *t = calloc(1, sizeof(*t));
	struct virtio_env env;
	struct cv_error e = { 0 };

	if (!t || !(t->v.ram = calloc(1, RAM_SIZE)) || evloop_init(&t->loop))
		return -1;
	guest_mem_init_buf(&t->v.mem, t->v.ram, RAM_SIZE);
	env = (struct virtio_env){ &t->v.mem, &t->loop, NULL, -1 };
	if (virtio_console_device_create(&t->v.dev, "pty", 0, &env, &e))
		return -1;
	t->slave = open(virtio_console_pty_path(&t->v.dev), O_RDWR | O_NOCTTY | O_NONBLOCK);
	if (t->slave < 0)
		return -1;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct ct *t = *state;

	close(t->slave);
	t->v.dev.ops->destroy(&t->v.dev);
	pthread_mutex_destroy(&t->v.dev.lock);
	evloop_destroy(&t->loop);
	free(t->v.ram);
	free(t);
	return 0;
}

/* Read what the slave has within ms milliseconds (running the device's
 * event loop meanwhile) into buf; returns the count. */
static size_t slave_read(struct ct *t, uint8_t *buf, size_t len, int ms)
{
	size_t got = 0;

	for (int i = 0; i < ms / 10 && got < len; i++) {
		struct pollfd p = { .fd = t->slave, .events = POLLIN };
		ssize_t n;

		assert_int_equal(evloop_once(&t->loop, 0), 0);
		if (poll(&p, 1, 10) <= 0)
			continue;
		n = read(t->slave, buf + got, len - got);
		if (n > 0)
			got += (size_t)n;
	}
	return got;
}

static void test_ops(void **state)
{
	struct ct *t = *state;

	assert_int_equal(t->v.dev.ops->device_id, VIRTIO_ID_CONSOLE);
	assert_int_equal(t->v.dev.ops->num_queues, 2);
	/* Neither F_SIZE (0) nor F_MULTIPORT (1) nor F_EMERG_WRITE (2). */
	assert_int_equal(t->v.dev.device_features & 7, 0);
	assert_non_null(virtio_console_pty_path(&t->v.dev));
	assert_int_equal(strncmp(virtio_console_pty_path(&t->v.dev), "/dev/pts/", 9), 0);
}

static void test_spec_checked(void **state)
{
	struct cv_error e = { 0 };

	(void)state;
	assert_int_equal(virtio_console_check("--console", "pty", &e), 0);
	assert_int_equal(virtio_console_check("--console", "tty", &e), -EINVAL);
	assert_string_equal(e.msg, "--console tty: must be pty");
}

static void test_transmit_reaches_the_slave(void **state)
{
	struct ct *t = *state;
	struct vqd_buf b[2] = { { BUF_BASE, 6, 0 }, { BUF_BASE + 0x1000, 6, 0 } };
	uint8_t got[64];
	uint32_t id, len;

	memcpy(t->v.ram + BUF_BASE, "hello ", 6);
	memcpy(t->v.ram + BUF_BASE + 0x1000, "world\n", 6);
	assert_int_equal(vqd_dev_up(&t->v, 0, 2), 0);
	vqd_add(&t->v.vq[TXQ], b, 2);
	virtio_dev_notify(&t->v.dev, TXQ);
	assert_int_equal(vqd_used(&t->v.vq[TXQ], &id, &len), 1);
	assert_int_equal(len, 0);
	/* Raw mode: "\n" stays "\n", no "\r" added. */
	assert_int_equal(slave_read(t, got, 12, 2000), 12);
	assert_memory_equal(got, "hello world\n", 12);
}

static void test_input_fills_receive_buffers(void **state)
{
	struct ct *t = *state;
	struct vqd_buf b = { BUF_BASE, 2, 1 }, b2 = { BUF_BASE + 0x100, 64, 1 };
	uint32_t id, len;

	assert_int_equal(vqd_dev_up(&t->v, 0, 2), 0);
	/* Typed before any buffer: waits in the pty. */
	assert_int_equal(write(t->slave, "abc\r", 4), 4);
	for (int i = 0; i < 20; i++)
		assert_int_equal(evloop_once(&t->loop, 10), 0);
	assert_int_equal(vqd_used(&t->v.vq[RXQ], &id, &len), 0);
	vqd_add(&t->v.vq[RXQ], &b, 1);
	virtio_dev_notify(&t->v.dev, RXQ);
	for (int i = 0; i < 200 && vqd_used_idx(&t->v.vq[RXQ]) < 1; i++)
		assert_int_equal(evloop_once(&t->loop, 10), 0);
	assert_int_equal(vqd_used(&t->v.vq[RXQ], &id, &len), 1);
	assert_int_equal(len, 2);
	assert_memory_equal(t->v.ram + BUF_BASE, "ab", 2);
	/* The rest when the next buffer comes; "\r" unchanged (raw). */
	vqd_add(&t->v.vq[RXQ], &b2, 1);
	virtio_dev_notify(&t->v.dev, RXQ);
	for (int i = 0; i < 200 && vqd_used_idx(&t->v.vq[RXQ]) < 2; i++)
		assert_int_equal(evloop_once(&t->loop, 10), 0);
	assert_int_equal(vqd_used(&t->v.vq[RXQ], &id, &len), 1);
	assert_int_equal(len, 2);
	assert_memory_equal(t->v.ram + BUF_BASE + 0x100, "c\r", 2);
}

/* 300 KiB of output while nobody reads: every request is returned at
 * once, and a reader that comes later gets the last bytes written. */
static void test_unread_output_never_blocks(void **state)
{
	struct ct *t = *state;
	uint8_t *got = malloc(1u << 20);
	size_t n = 0, chunk = 16u << 10;
	uint32_t id, len;
	unsigned int done = 0;

	assert_non_null(got);
	assert_int_equal(vqd_dev_up(&t->v, 0, 2), 0);
	for (unsigned int k = 0; k < 20; k++) {
		struct vqd_buf b = { BUF_BASE, (uint32_t)chunk, 0 };

		memset(t->v.ram + BUF_BASE, 'a' + k, chunk);
		vqd_add(&t->v.vq[TXQ], &b, 1);
		virtio_dev_notify(&t->v.dev, TXQ);
		while (vqd_used(&t->v.vq[TXQ], &id, &len))
			done++;
	}
	assert_int_equal(done, 20);
	n = slave_read(t, got, 1u << 20, 3000);
	assert_true(n >= PTY_OUT_BUF);
	assert_true(n < 20 * chunk); /* some was dropped */
	assert_int_equal(got[n - 1], 'a' + 19);
	assert_int_equal(got[n - chunk], 'a' + 19);
	free(got);
}

static void test_hostile_chains_need_reset(void **state)
{
	struct ct *t = *state;
	struct vqd_buf past = { RAM_SIZE - 16, 32, 0 }; /* runs past the end of RAM */
	struct vqd_buf big[2] = { { BUF_BASE, 40u << 10, 0 },
				  { BUF_BASE + (40u << 10), 40u << 10, 0 } };
	struct vqd_buf ok = { BUF_BASE, 4, 0 };
	uint32_t id, len;

	assert_int_equal(vqd_dev_up(&t->v, 0, 2), 0);
	vqd_add(&t->v.vq[TXQ], &past, 1);
	virtio_dev_notify(&t->v.dev, TXQ);
	assert_true(t->v.dev.status & VIRTIO_STATUS_NEEDS_RESET);
	/* Reset, and a chain over VIRTIO_CONSOLE_TX_MAX. */
	vqd_dev_status(&t->v.dev, 0);
	assert_int_equal(vqd_dev_up(&t->v, 0, 2), 0);
	vqd_add(&t->v.vq[TXQ], big, 2);
	virtio_dev_notify(&t->v.dev, TXQ);
	assert_true(t->v.dev.status & VIRTIO_STATUS_NEEDS_RESET);
	/* A bad receive buffer, once there is input. */
	vqd_dev_status(&t->v.dev, 0);
	assert_int_equal(vqd_dev_up(&t->v, 0, 2), 0);
	past.write = true;
	vqd_add(&t->v.vq[RXQ], &past, 1);
	virtio_dev_notify(&t->v.dev, RXQ);
	assert_true(t->v.dev.status & VIRTIO_STATUS_NEEDS_RESET);
	/* After a reset it works again. */
	vqd_dev_status(&t->v.dev, 0);
	assert_int_equal(vqd_dev_up(&t->v, 0, 2), 0);
	memcpy(t->v.ram + BUF_BASE, "ok!\n", 4);
	vqd_add(&t->v.vq[TXQ], &ok, 1);
	virtio_dev_notify(&t->v.dev, TXQ);
	assert_int_equal(vqd_used(&t->v.vq[TXQ], &id, &len), 1);
}

static void test_save_load(void **state)
{
	struct ct *t = *state;
	struct vqd_buf w = { BUF_BASE, 4, 0 };
	struct virtio_dev *fresh = calloc(1, sizeof(*fresh));
	struct virtio_env env = { &t->v.mem, &t->loop, NULL, -1 };
	struct state_buf a = { 0 }, b = { 0 };
	struct cv_error e = { 0 };
	struct state_rd r;
	uint32_t id, len;

	assert_int_equal(vqd_dev_up(&t->v, 0, 2), 0);
	vqd_add(&t->v.vq[TXQ], &w, 1);
	virtio_dev_notify(&t->v.dev, TXQ);
	assert_int_equal(virtio_dev_save(&t->v.dev, &a), 0);
	assert_int_equal(virtio_console_device_create(fresh, "pty", 0, &env, &e), 0);
	/* A new pty for the restored device. */
	assert_string_not_equal(virtio_console_pty_path(fresh), virtio_console_pty_path(&t->v.dev));
	vdev_expect_reload(fresh, &a, &b);
	fresh->transport = t->v.dev.transport;
	assert_int_equal(vqd_used(&t->v.vq[TXQ], &id, &len), 1);
	vqd_add(&t->v.vq[TXQ], &w, 1);
	virtio_dev_notify(fresh, TXQ);
	assert_int_equal(vqd_used(&t->v.vq[TXQ], &id, &len), 1);
	/* A truncated or wrong-version state is refused. */
	state_rd_init(&r, a.data, a.len - 1);
	assert_int_equal(virtio_dev_load(fresh, &r), -EINVAL);
	a.data[a.len - 4] ^= 1;
	state_rd_init(&r, a.data, a.len);
	assert_int_equal(virtio_dev_load(fresh, &r), -EINVAL);
	state_buf_free(&a);
	state_buf_free(&b);
	fresh->ops->destroy(fresh);
	pthread_mutex_destroy(&fresh->lock);
	free(fresh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ops, setup, teardown),
		cmocka_unit_test(test_spec_checked),
		cmocka_unit_test_setup_teardown(test_transmit_reaches_the_slave, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_fills_receive_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unread_output_never_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_chains_need_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
