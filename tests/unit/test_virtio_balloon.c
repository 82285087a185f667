/* test_virtio_balloon.c - virtio-balloon driven like the Linux driver:
 * PFN arrays on inflateq/deflateq, the stats buffer protocol, free page
 * reports, and the host-side target and statistics API. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "cvisor/virtio_balloon.h"
#include "vdev_state.h"
#include "vq_driver.h"

#define RAM_SIZE (4u << 20)
#define PAGE 4096u
#define F_STATS (1ULL << VIRTIO_BALLOON_F_STATS_VQ)
#define F_REPORT (1ULL << VIRTIO_BALLOON_F_PAGE_REPORTING)
#define PFN_BUF 0x30000u
#define STATS_BUF 0x31000u

static int setup(void **state)
{
	struct vqd_dev *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	/* Like guest_mem_init: private anonymous, so MADV_DONTNEED zeroes. */
	t->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t->ram == MAP_FAILED)
		return -1;
	guest_mem_init_buf(&t->mem, t->ram, RAM_SIZE);
	if (virtio_balloon_create(&t->dev, &t->mem, NULL, 8 * PAGE + 100))
		return -1;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct vqd_dev *t = *state;

	virtio_balloon_destroy(&t->dev);
	munmap(t->ram, RAM_SIZE);
	free(t);
	return 0;
}

static uint32_t cfg32(struct vqd_dev *t, uint32_t off)
{
	uint8_t b[4];
	uint32_t v;

	pthread_mutex_lock(&t->dev.lock);
	virtio_dev_config_read(&t->dev, off, b, 4);
	pthread_mutex_unlock(&t->dev.lock);
	memcpy(&v, b, 4);
	return v;
}

/* The driver puts n PFNs at PFN_BUF and offers them on queue q (0 inflate,
 * 1 deflate): in the nb buffers b, or with b NULL in one buffer of 4n
 * bytes; then kicks. */
static void send_pfns(struct vqd_dev *t, unsigned int q, const uint32_t *pfn, unsigned int n,
		      const struct vqd_buf *b, unsigned int nb)
{
	struct vqd_buf one = { PFN_BUF, 4u * n, 0 };

	memcpy(t->ram + PFN_BUF, pfn, 4u * n);
	vqd_add(&t->vq[q], b ? b : &one, b ? nb : 1);
	virtio_dev_notify(&t->dev, q);
}

static struct virtio_balloon_stats get_stats(struct vqd_dev *t)
{
	struct virtio_balloon_stats s;

	assert_int_equal(virtio_balloon_get_stats(&t->dev, &s), 0);
	return s;
}

static void test_features_and_config(void **state)
{
	struct vqd_dev *t = *state;
	uint32_t actual = 5;
	uint8_t b[8];

	assert_int_equal(t->dev.ops->device_id, VIRTIO_ID_BALLOON);
	assert_true(t->dev.device_features & F_STATS);
	assert_true(t->dev.device_features & (1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
	assert_true(t->dev.device_features & F_REPORT);
	assert_false(t->dev.device_features & (1ULL << VIRTIO_BALLOON_F_FREE_PAGE_HINT));
	assert_false(t->dev.device_features & (1ULL << VIRTIO_BALLOON_F_PAGE_POISON));
	/* 8 pages + 100 bytes rounds down to 8 pages. */
	assert_int_equal(cfg32(t, 0), 8);
	assert_int_equal(cfg32(t, 4), 0);
	/* The driver writes actual; num_pages is read-only to it. */
	pthread_mutex_lock(&t->dev.lock);
	virtio_dev_config_write(&t->dev, 4, (uint8_t *)&actual, 4);
	virtio_dev_config_write(&t->dev, 0, (uint8_t *)&actual, 4);
	virtio_dev_config_write(&t->dev, 6, (uint8_t *)"\x01", 1); /* byte 2 of actual */
	virtio_dev_config_read(&t->dev, 0, b, 8);
	pthread_mutex_unlock(&t->dev.lock);
	assert_int_equal(cfg32(t, 0), 8);
	assert_int_equal(cfg32(t, 4), 0x10005);
	assert_int_equal(get_stats(t).actual_pages, 0x10005);
	assert_int_equal(get_stats(t).target_pages, 8);
}

static void test_inflate_valid_and_out_of_range(void **state)
{
	struct vqd_dev *t = *state;
	const uint32_t pfns[] = { 300, 301, 302, 500, 0xffffffffu, RAM_SIZE / PAGE, 303 - 1 };
	struct virtio_balloon_stats s;
	uint32_t id, len;

	memset(t->ram + 299 * PAGE, 0xaa, 202 * PAGE);
	assert_int_equal(vqd_dev_up(t, 0, 2), 0);
	send_pfns(t, 0, pfns, 7, NULL, 0);
	assert_int_equal(vqd_used(&t->vq[0], &id, &len), 1);
	assert_int_equal(len, 0);
	assert_int_equal(t->queue_irqs, 1);
	for (uint32_t p = 300; p <= 302; p++)
		assert_int_equal(t->ram[p * PAGE + 17], 0);
	assert_int_equal(t->ram[500 * PAGE + PAGE - 1], 0);
	assert_int_equal(t->ram[299 * PAGE + PAGE - 1], 0xaa);
	assert_int_equal(t->ram[303 * PAGE], 0xaa);
	assert_int_equal(t->ram[499 * PAGE], 0xaa);
	s = get_stats(t);
	assert_int_equal(s.inflated_pages, 5);
	assert_int_equal(s.invalid_pfns, 2);
	assert_int_equal(t->dev.status & VIRTIO_STATUS_NEEDS_RESET, 0);
}

static void test_pfns_split_across_descriptors(void **state)
{
	struct vqd_dev *t = *state;
	const uint32_t pfns[] = { 600, 601 };
	/* The second PFN straddles the two buffers: 6 bytes + 2 bytes. */
	struct vqd_buf b[2] = { { PFN_BUF, 6, 0 }, { PFN_BUF + 6, 2, 0 } };
	uint32_t id, len;

	memset(t->ram + 600 * PAGE, 0xaa, 3 * PAGE);
	assert_int_equal(vqd_dev_up(t, 0, 2), 0);
	send_pfns(t, 0, pfns, 2, b, 2);
	assert_int_equal(vqd_used(&t->vq[0], &id, &len), 1);
	assert_int_equal(t->ram[600 * PAGE], 0);
	assert_int_equal(t->ram[601 * PAGE], 0);
	assert_int_equal(t->ram[602 * PAGE], 0xaa);
	assert_int_equal(get_stats(t).inflated_pages, 2);
}

static void test_deflate(void **state)
{
	struct vqd_dev *t = *state;
	const uint32_t pfns[] = { 10, 11, 0xfffffff0u };
	uint32_t id, len;

	memset(t->ram + 10 * PAGE, 0xaa, 2 * PAGE);
	assert_int_equal(vqd_dev_up(t, 0, 2), 0);
	send_pfns(t, 1, pfns, 3, NULL, 0);
	assert_int_equal(vqd_used(&t->vq[1], &id, &len), 1);
	/* Deflate gives pages back to the guest: nothing is discarded. */
	assert_int_equal(t->ram[10 * PAGE], 0xaa);
	assert_int_equal(get_stats(t).deflated_pages, 3);
	assert_int_equal(get_stats(t).inflated_pages, 0);
}

static void test_set_target_config_interrupt(void **state)
{
	struct vqd_dev *t = *state;
	uint8_t gen;

	/* Before DRIVER_OK: config updated, no interrupt. */
	assert_int_equal(virtio_balloon_set_target(&t->dev, 16 * PAGE), 0);
	assert_int_equal(cfg32(t, 0), 16);
	assert_int_equal(t->config_irqs, 0);
	assert_int_equal(vqd_dev_up(t, 0, 2), 0);
	gen = t->dev.config_generation;
	assert_int_equal(virtio_balloon_set_target(&t->dev, 1u << 20), 0);
	assert_int_equal(cfg32(t, 0), 256);
	assert_int_equal(t->config_irqs, 1);
	assert_int_not_equal(t->dev.config_generation, gen);
	assert_true(t->dev.isr & VIRTIO_ISR_CONFIG);
	/* The same target again: nothing to tell. */
	assert_int_equal(virtio_balloon_set_target(&t->dev, (1u << 20) + 1), 0);
	assert_int_equal(t->config_irqs, 1);
	/* All of RAM is allowed, more is not. */
	assert_int_equal(virtio_balloon_set_target(&t->dev, RAM_SIZE), 0);
	assert_int_equal(cfg32(t, 0), RAM_SIZE / PAGE);
	assert_int_equal(virtio_balloon_set_target(&t->dev, RAM_SIZE + PAGE), -ERANGE);
	assert_int_equal(virtio_balloon_set_target(&t->dev, UINT64_MAX), -ERANGE);
	assert_int_equal(cfg32(t, 0), RAM_SIZE / PAGE);
	assert_int_equal(t->config_irqs, 2);
}

static void put_stat(struct vqd_dev *t, unsigned int i, uint16_t tag, uint64_t val)
{
	memcpy(t->ram + STATS_BUF + 10 * i, &tag, 2);
	memcpy(t->ram + STATS_BUF + 10 * i + 2, &val, 8);
}

static void test_stats_protocol(void **state)
{
	struct vqd_dev *t = *state;
	struct vqd_buf b = { STATS_BUF, 30, 0 };
	struct virtio_balloon_stats s;
	uint32_t id, len;
	uint16_t head;

	assert_int_equal(vqd_dev_up(t, F_STATS, 3), 0);
	assert_int_equal(virtio_balloon_request_stats(&t->dev), -EAGAIN);
	put_stat(t, 0, VIRTIO_BALLOON_S_MEMFREE, 1000 * PAGE);
	put_stat(t, 1, VIRTIO_BALLOON_S_MEMTOT, 2000 * PAGE);
	put_stat(t, 2, 999, 7); /* unknown tag: ignored */
	head = vqd_add(&t->vq[2], &b, 1);
	virtio_dev_notify(&t->dev, 2);
	/* 5.5.6.3: the device keeps the buffer until it wants new stats. */
	assert_int_equal(vqd_used(&t->vq[2], &id, &len), 0);
	s = get_stats(t);
	assert_int_equal(s.valid,
			 (1u << VIRTIO_BALLOON_S_MEMFREE) | (1u << VIRTIO_BALLOON_S_MEMTOT));
	assert_int_equal(s.values[VIRTIO_BALLOON_S_MEMFREE], 1000 * PAGE);
	assert_int_equal(s.values[VIRTIO_BALLOON_S_MEMTOT], 2000 * PAGE);
	assert_true(s.updated_ns > 0);
	assert_int_equal(virtio_balloon_request_stats(&t->dev), 0);
	assert_int_equal(vqd_used(&t->vq[2], &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(t->queue_irqs, 1);
	assert_int_equal(virtio_balloon_request_stats(&t->dev), -EAGAIN);

	/* The guest answers with far too many entries: only the first
	 * VIRTIO_BALLOON_MAX_STATS are read, the rest ignored. */
	for (unsigned int i = 0; i < 100; i++)
		put_stat(t, i, VIRTIO_BALLOON_S_SWAP_IN, i);
	put_stat(t, 3, VIRTIO_BALLOON_S_MEMFREE, 42);
	put_stat(t, VIRTIO_BALLOON_MAX_STATS, VIRTIO_BALLOON_S_MEMTOT, 77);
	b.len = 1000;
	vqd_add(&t->vq[2], &b, 1);
	virtio_dev_notify(&t->dev, 2);
	s = get_stats(t);
	assert_int_equal(s.valid,
			 (1u << VIRTIO_BALLOON_S_MEMFREE) | (1u << VIRTIO_BALLOON_S_SWAP_IN));
	assert_int_equal(s.values[VIRTIO_BALLOON_S_MEMFREE], 42);
	assert_int_equal(s.values[VIRTIO_BALLOON_S_SWAP_IN], VIRTIO_BALLOON_MAX_STATS - 1);
	assert_int_equal(s.values[VIRTIO_BALLOON_S_MEMTOT], 2000 * PAGE);

	/* A partial trailing entry is ignored, not read past. */
	put_stat(t, 0, VIRTIO_BALLOON_S_AVAIL, 5);
	assert_int_equal(virtio_balloon_request_stats(&t->dev), 0);
	b.len = 19;
	vqd_add(&t->vq[2], &b, 1);
	virtio_dev_notify(&t->dev, 2);
	assert_int_equal(get_stats(t).valid, 1u << VIRTIO_BALLOON_S_AVAIL);

	/* Reset drops the held buffer. */
	vqd_dev_status(&t->dev, 0);
	assert_int_equal(virtio_balloon_request_stats(&t->dev), -EAGAIN);
}

static void test_stats_timer(void **state)
{
	struct vqd_dev *t = *state;
	struct vqd_buf b = { STATS_BUF, 10, 0 };
	struct evloop loop;
	uint32_t id, len;
	uint64_t t0;

	virtio_balloon_destroy(&t->dev);
	assert_int_equal(evloop_init(&loop), 0);
	assert_int_equal(virtio_balloon_create(&t->dev, &t->mem, &loop, 0), 0);
	assert_int_equal(virtio_balloon_set_stats_interval(&t->dev, 1), 0);
	assert_int_equal(vqd_dev_up(t, F_STATS, 3), 0);
	put_stat(t, 0, VIRTIO_BALLOON_S_MEMFREE, 1);
	vqd_add(&t->vq[2], &b, 1);
	virtio_dev_notify(&t->dev, 2);
	t0 = cv_now_ns();
	/* A 1 s timer: not before 0.5 s; by 30 s (a loaded host is slower,
	 * never failed for it). */
	while (!vqd_used(&t->vq[2], &id, &len) && cv_now_ns() - t0 < 30000000000ULL)
		assert_int_equal(evloop_once(&loop, 100), 0);
	assert_true(cv_now_ns() - t0 < 30000000000ULL);
	assert_true(cv_now_ns() - t0 > 500000000ULL);
	/* Periodic requests can be stopped. */
	assert_int_equal(virtio_balloon_set_stats_interval(&t->dev, 0), 0);
	vqd_add(&t->vq[2], &b, 1);
	virtio_dev_notify(&t->dev, 2);
	assert_int_equal(evloop_once(&loop, 1200), 0);
	assert_int_equal(vqd_used(&t->vq[2], &id, &len), 0);
	virtio_balloon_destroy(&t->dev);
	evloop_destroy(&loop);
	/* teardown destroys again: make that a no-op. */
	assert_null(t->dev.priv);
	assert_int_equal(virtio_balloon_create(&t->dev, &t->mem, NULL, 0), 0);
}

static void test_no_interval_without_loop(void **state)
{
	struct vqd_dev *t = *state;

	assert_int_equal(virtio_balloon_set_stats_interval(&t->dev, 3), -EINVAL);
}

/* Free page reporting: the queue index depends on STATS_VQ (5.5.2). */
static void report(struct vqd_dev *t, uint64_t features, unsigned int q)
{
	struct vqd_buf b[3] = {
		{ 0x100800, 0x3000, 1 },   /* whole pages 0x101000..0x102fff */
		{ 0x200000, 0x800, 1 },	   /* less than a page: nothing */
		{ 0x300000, 2 * PAGE, 1 }, /* two aligned pages */
	};
	struct virtio_balloon_stats s;
	uint32_t id, len;

	memset(t->ram + 0x100000, 0xaa, 0x4000);
	memset(t->ram + 0x200000, 0xaa, PAGE);
	memset(t->ram + 0x300000, 0xaa, 3 * PAGE);
	assert_int_equal(vqd_dev_up(t, features, q + 1), 0);
	vqd_add(&t->vq[q], b, 3);
	virtio_dev_notify(&t->dev, q);
	assert_int_equal(vqd_used(&t->vq[q], &id, &len), 1);
	assert_int_equal(len, 0);
	assert_int_equal(t->ram[0x100fff], 0xaa);
	assert_int_equal(t->ram[0x101000], 0);
	assert_int_equal(t->ram[0x102fff], 0);
	assert_int_equal(t->ram[0x103000], 0xaa);
	assert_int_equal(t->ram[0x200000], 0xaa);
	assert_int_equal(t->ram[0x301fff], 0);
	assert_int_equal(t->ram[0x302000], 0xaa);
	s = get_stats(t);
	assert_int_equal(s.reported_pages, 4);
	assert_int_equal(s.inflated_pages, 0);
}

static void test_reporting_without_stats(void **state)
{
	report(*state, F_REPORT, 2);
}

static void test_reporting_with_stats(void **state)
{
	struct vqd_dev *t = *state;
	struct vqd_buf b = { STATS_BUF, 10, 0 };
	uint32_t id, len;

	report(t, F_REPORT | F_STATS, 3);
	/* Queue 2 is the stats queue here: a buffer there is held. */
	put_stat(t, 0, VIRTIO_BALLOON_S_MEMTOT, 9);
	vqd_add(&t->vq[2], &b, 1);
	virtio_dev_notify(&t->dev, 2);
	assert_int_equal(vqd_used(&t->vq[2], &id, &len), 0);
	assert_int_equal(get_stats(t).values[VIRTIO_BALLOON_S_MEMTOT], 9);
}

static void test_report_range_outside_ram_fails_request(void **state)
{
	struct vqd_dev *t = *state;
	struct vqd_buf b = { RAM_SIZE - PAGE, 2 * PAGE, 1 };
	uint32_t id, len;

	assert_int_equal(vqd_dev_up(t, F_REPORT, 3), 0);
	vqd_add(&t->vq[2], &b, 1);
	virtio_dev_notify(&t->dev, 2);
	assert_true(t->dev.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(vqd_used(&t->vq[2], &id, &len), 0);
	assert_int_equal(get_stats(t).reported_pages, 0);
	assert_int_equal(t->config_irqs, 1);
}

static void test_save_load(void **state)
{
	struct vqd_dev *t = *state;
	struct vqd_buf b = { STATS_BUF, 10, 0 };
	const uint32_t pfns[] = { 40, 0x7fffffff };
	struct virtio_dev *fresh = calloc(1, sizeof(*fresh));
	struct state_buf a = { 0 }, c = { 0 };
	struct state_rd r;
	uint32_t id, len, actual = 3;

	assert_int_equal(vqd_dev_up(t, F_STATS | F_REPORT, 4), 0);
	send_pfns(t, 0, pfns, 2, NULL, 0);
	put_stat(t, 0, VIRTIO_BALLOON_S_CACHES, 1234);
	vqd_add(&t->vq[2], &b, 1);
	virtio_dev_notify(&t->dev, 2);
	pthread_mutex_lock(&t->dev.lock);
	virtio_dev_config_write(&t->dev, 4, (uint8_t *)&actual, 4);
	pthread_mutex_unlock(&t->dev.lock);
	assert_int_equal(virtio_dev_save(&t->dev, &a), 0);

	assert_int_equal(virtio_balloon_create(fresh, &t->mem, NULL, 0), 0);
	vdev_expect_reload(fresh, &a, &c);
	/* The restored device still holds the guest's stats buffer. */
	fresh->transport = t->dev.transport;
	assert_int_equal(vqd_used(&t->vq[0], &id, &len), 1);
	assert_int_equal(virtio_balloon_request_stats(fresh), 0);
	assert_int_equal(vqd_used(&t->vq[2], &id, &len), 1);
	{
		struct virtio_balloon_stats s;

		assert_int_equal(virtio_balloon_get_stats(fresh, &s), 0);
		assert_int_equal(s.target_pages, 8);
		assert_int_equal(s.actual_pages, 3);
		assert_int_equal(s.inflated_pages, 1);
		assert_int_equal(s.invalid_pfns, 1);
		assert_int_equal(s.values[VIRTIO_BALLOON_S_CACHES], 1234);
	}
	/* Corrupt fields are refused: the version, then a target beyond RAM. */
	{
		size_t dev_off = a.len - (4 + 4 + 4 + 1 + 2 + 8 * 4 + 4 + 8 * VIRTIO_BALLOON_S_NR);
		uint32_t huge = RAM_SIZE / PAGE + 1;

		a.data[dev_off] ^= 0xff;
		state_rd_init(&r, a.data, a.len);
		assert_int_equal(virtio_dev_load(fresh, &r), -EINVAL);
		a.data[dev_off] ^= 0xff;
		memcpy(a.data + dev_off + 4, &huge, 4);
		state_rd_init(&r, a.data, a.len);
		assert_int_equal(virtio_dev_load(fresh, &r), -EINVAL);
	}
	state_rd_init(&r, a.data, a.len - 1);
	assert_int_equal(virtio_dev_load(fresh, &r), -EINVAL);
	state_buf_free(&a);
	state_buf_free(&c);
	virtio_balloon_destroy(fresh);
	free(fresh);
}

static void test_create_rejects_target_beyond_ram(void **state)
{
	struct vqd_dev *t = *state;
	struct virtio_dev d;

	assert_int_equal(virtio_balloon_create(&d, &t->mem, NULL, RAM_SIZE + PAGE), -ERANGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_features_and_config),
		T(test_inflate_valid_and_out_of_range),
		T(test_pfns_split_across_descriptors),
		T(test_deflate),
		T(test_set_target_config_interrupt),
		T(test_stats_protocol),
		T(test_stats_timer),
		T(test_no_interval_without_loop),
		T(test_reporting_without_stats),
		T(test_reporting_with_stats),
		T(test_report_range_outside_ram_fails_request),
		T(test_save_load),
		T(test_create_rejects_target_beyond_ram),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
