/* dev_host.h - what the unit tests of the platform devices (8250, i8042,
 * ACPI PM) share: a host that owns one device model and records what the
 * model's callbacks did, a fresh one per test, and the checks of the
 * device's save and load. Header-only. Before including, define
 *   struct host          the device model and the callbacks' records
 *   HOST_OPS             the model's struct device_ops
 *   HOST_DEV(h)          a pointer to h's device model
 *   HOST_CALLS(h)        how many callbacks h has seen in all
 *   HOST_IRQ             if the device has an interrupt line: host_irq()
 *                        is then its callback, recording in h->level and
 *                        h->irq_calls
 * and after it host_init(), which initializes a zeroed host's device with
 * the host as the callbacks' context. Include it after <cmocka.h>. */
#ifndef CVISOR_TEST_DEV_HOST_H
#define CVISOR_TEST_DEV_HOST_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/state.h"

static void host_init(struct host *h);

#ifdef HOST_IRQ
/* The device's interrupt line, as its model drives it: the callback comes
 * only when the level changes. */
static void host_irq(void *ctx, int level)
{
	struct host *h = ctx;

	assert_int_not_equal(level, h->level);
	h->level = level;
	h->irq_calls++;
}
#endif

/* A host at power-on, or NULL when out of memory. */
static inline struct host *host_new(void)
{
	struct host *h = calloc(1, sizeof(*h));

	if (h)
		host_init(h);
	return h;
}

static inline int host_setup(void **state)
{
	*state = host_new();
	return *state ? 0 : -1;
}

static inline int host_teardown(void **state)
{
	free(*state);
	return 0;
}

/* A test with a fresh host in *state. */
#define HOST_TEST(f) cmocka_unit_test_setup_teardown(f, host_setup, host_teardown)

static inline void host_save(struct host *h, struct state_buf *b)
{
	memset(b, 0, sizeof(*b));
	assert_int_equal(HOST_OPS.save(HOST_DEV(h), b), 0);
}

/* A second host with h's state: h saved into *b, loaded whole, and saving
 * the same bytes. The caller frees it and *b. */
static inline struct host *host_copy(struct host *h, struct state_buf *b)
{
	struct host *g = host_new();
	struct state_buf b2;
	struct state_rd r;

	assert_non_null(g);
	host_save(h, b);
	state_rd_init(&r, b->data, b->len);
	assert_int_equal(HOST_OPS.load(HOST_DEV(g), &r), 0);
	assert_int_equal(r.pos, b->len);
	host_save(g, &b2);
	assert_int_equal(b->len, b2.len);
	assert_memory_equal(b->data, b2.data, b->len);
	state_buf_free(&b2);
	return g;
}

/* load refuses data with -EINVAL and leaves the device as it was, without
 * a callback. */
static inline void host_expect_load_fails(struct host *h, const uint8_t *data, size_t len)
{
	struct state_buf before, after;
	struct state_rd r;
	size_t calls = HOST_CALLS(h);

	host_save(h, &before);
	state_rd_init(&r, data, len);
	assert_int_equal(HOST_OPS.load(HOST_DEV(h), &r), -EINVAL);
	host_save(h, &after);
	assert_int_equal(before.len, after.len);
	assert_memory_equal(before.data, after.data, before.len);
	assert_int_equal(HOST_CALLS(h), calls);
	state_buf_free(&before);
	state_buf_free(&after);
}

/* Every truncation of a good save is refused, the empty one included. */
static inline void host_expect_truncations_fail(struct host *h, const struct state_buf *good)
{
	for (size_t len = 0; len < good->len; len++)
		host_expect_load_fails(h, good->data, len);
}

/* A copy of a good save in bad, changed by stmt, is refused. */
#define HOST_EXPECT_MUTANT_FAILS(h, good, bad, stmt)         \
	do {                                                 \
		memcpy(bad, (good)->data, (good)->len);      \
		stmt;                                        \
		host_expect_load_fails(h, bad, (good)->len); \
	} while (0)

#endif
