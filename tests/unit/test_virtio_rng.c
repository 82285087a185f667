/* test_virtio_rng.c - virtio-rng driven like a guest driver would: queues in
 * guest memory, descriptor chains, kicks, the used ring read back. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/virtio_rng.h"

#include "vdev_state.h"
#include "vq_driver.h"

#define RAM_SIZE (1u << 20)
#define BUF_BASE 0x20000u /* after the rings */

static int setup(void **state)
{
	struct vqd_dev *t = calloc(1, sizeof(*t));

	if (!t || !(t->ram = calloc(1, RAM_SIZE)))
		return -1;
	guest_mem_init_buf(&t->mem, t->ram, RAM_SIZE);
	if (virtio_rng_create(&t->dev, &t->mem))
		return -1;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct vqd_dev *t = *state;

	pthread_mutex_destroy(&t->dev.lock);
	free(t->ram);
	free(t);
	return 0;
}

static int all_equal(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

static void test_ops(void **state)
{
	struct vqd_dev *t = *state;

	assert_int_equal(t->dev.ops->device_id, VIRTIO_ID_RNG);
	assert_int_equal(t->dev.ops->num_queues, 1);
	assert_int_equal(t->dev.ops->config_len, 0);
	assert_string_equal(t->dev.label, "virtio-rng");
}

static void test_fills_writable_buffers(void **state)
{
	struct vqd_dev *t = *state;
	struct vqd_buf b[2] = { { BUF_BASE, 100, 1 }, { BUF_BASE + 0x1000, 200, 1 } };
	uint32_t id, len;
	uint16_t head;

	memset(t->ram + BUF_BASE, 0xaa, 0x2000);
	assert_int_equal(vqd_dev_up(t, 0, 1), 0);
	head = vqd_add(&t->vq[0], b, 2);
	virtio_dev_notify(&t->dev, 0);
	assert_int_equal(vqd_used(&t->vq[0], &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 300);
	/* 64 random bytes all equal to the fill is a 2^-512 event. */
	assert_false(all_equal(t->ram + BUF_BASE, 64, 0xaa));
	assert_false(all_equal(t->ram + BUF_BASE + 0x1000 + 136, 64, 0xaa));
	/* Not a byte past either buffer. */
	assert_true(all_equal(t->ram + BUF_BASE + 100, 0x1000 - 100, 0xaa));
	assert_true(all_equal(t->ram + BUF_BASE + 0x1000 + 200, 0x1000 - 200, 0xaa));
	assert_int_equal(t->queue_irqs, 1);
	assert_int_equal(vqd_used(&t->vq[0], &id, &len), 0);
}

static void test_request_is_bounded(void **state)
{
	struct vqd_dev *t = *state;
	struct vqd_buf b[2] = { { BUF_BASE, 48u << 10, 1 },
				{ BUF_BASE + (48u << 10), 48u << 10, 1 } };
	uint32_t id, len;

	memset(t->ram + BUF_BASE, 0xaa, 96u << 10);
	assert_int_equal(vqd_dev_up(t, 0, 1), 0);
	vqd_add(&t->vq[0], b, 2);
	virtio_dev_notify(&t->dev, 0);
	assert_int_equal(vqd_used(&t->vq[0], &id, &len), 1);
	assert_int_equal(len, VIRTIO_RNG_MAX_REQ);
	assert_false(all_equal(t->ram + BUF_BASE + VIRTIO_RNG_MAX_REQ - 64, 64, 0xaa));
	assert_true(all_equal(t->ram + BUF_BASE + VIRTIO_RNG_MAX_REQ,
			      (96u << 10) - VIRTIO_RNG_MAX_REQ, 0xaa));
}

static void test_many_requests_and_readable_ignored(void **state)
{
	struct vqd_dev *t = *state;
	struct vqd_buf rd = { BUF_BASE, 64, 0 };
	uint32_t id, len, n = 0;

	memset(t->ram + BUF_BASE, 0x55, 64);
	assert_int_equal(vqd_dev_up(t, 0, 1), 0);
	vqd_add(&t->vq[0], &rd, 1);
	for (unsigned int i = 1; i < VQD_SIZE - 1; i++) {
		struct vqd_buf w = { BUF_BASE + i * 64u, 64, 1 };

		vqd_add(&t->vq[0], &w, 1);
	}
	virtio_dev_notify(&t->dev, 0);
	assert_int_equal(vqd_used(&t->vq[0], &id, &len), 1);
	assert_int_equal(len, 0); /* a readable buffer is not written */
	assert_true(all_equal(t->ram + BUF_BASE, 64, 0x55));
	while (vqd_used(&t->vq[0], &id, &len)) {
		assert_int_equal(len, 64);
		n++;
	}
	assert_int_equal(n, VQD_SIZE - 2);
	/* The ring wraps: a second round through the same queue. */
	for (unsigned int i = 0; i < VQD_SIZE; i++) {
		struct vqd_buf w = { BUF_BASE + i * 64u, 64, 1 };

		vqd_add(&t->vq[0], &w, 1);
		virtio_dev_notify(&t->dev, 0);
		assert_int_equal(vqd_used(&t->vq[0], &id, &len), 1);
		assert_int_equal(len, 64);
	}
}

static void test_malformed_chain_needs_reset(void **state)
{
	struct vqd_dev *t = *state;
	struct vqd_buf bad = { RAM_SIZE - 16, 32, 1 }; /* runs past the end of RAM */
	struct vqd_buf ok = { BUF_BASE, 16, 1 };
	uint32_t id, len;

	assert_int_equal(vqd_dev_up(t, 0, 1), 0);
	vqd_add(&t->vq[0], &bad, 1);
	virtio_dev_notify(&t->dev, 0);
	assert_true(t->dev.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(t->config_irqs, 1);
	/* Until reset, kicks are ignored. */
	vqd_add(&t->vq[0], &ok, 1);
	virtio_dev_notify(&t->dev, 0);
	assert_int_equal(vqd_used(&t->vq[0], &id, &len), 0);
	/* After a reset and a fresh start the device works again. */
	vqd_dev_status(&t->dev, 0);
	assert_int_equal(vqd_dev_up(t, 0, 1), 0);
	vqd_add(&t->vq[0], &ok, 1);
	virtio_dev_notify(&t->dev, 0);
	assert_int_equal(vqd_used(&t->vq[0], &id, &len), 1);
	assert_int_equal(len, 16);
}

static void test_save_load(void **state)
{
	struct vqd_dev *t = *state;
	struct vqd_buf w = { BUF_BASE, 8, 1 };
	struct virtio_dev *fresh = calloc(1, sizeof(*fresh));
	struct state_buf a = { 0 }, b = { 0 };
	struct state_rd r;
	uint32_t id, len;

	assert_int_equal(vqd_dev_up(t, 0, 1), 0);
	vqd_add(&t->vq[0], &w, 1);
	virtio_dev_notify(&t->dev, 0);
	assert_int_equal(virtio_dev_save(&t->dev, &a), 0);
	assert_int_equal(virtio_rng_create(fresh, &t->mem), 0);
	vdev_expect_reload(fresh, &a, &b);
	/* The loaded device carries on where the first left off. */
	fresh->transport = t->dev.transport;
	assert_int_equal(vqd_used(&t->vq[0], &id, &len), 1);
	vqd_add(&t->vq[0], &w, 1);
	virtio_dev_notify(fresh, 0);
	assert_int_equal(vqd_used(&t->vq[0], &id, &len), 1);
	assert_int_equal(len, 8);
	/* A truncated or wrong-version state is refused. */
	state_rd_init(&r, a.data, a.len - 1);
	assert_int_equal(virtio_dev_load(fresh, &r), -EINVAL);
	a.data[a.len - 4] ^= 1;
	state_rd_init(&r, a.data, a.len);
	assert_int_equal(virtio_dev_load(fresh, &r), -EINVAL);
	state_buf_free(&a);
	state_buf_free(&b);
	pthread_mutex_destroy(&fresh->lock);
	free(fresh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fills_writable_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_requests_and_readable_ignored, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_malformed_chain_needs_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
