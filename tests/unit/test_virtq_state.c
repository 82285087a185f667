/* test_virtq_state.c - a virtqueue's saved state: a round trip that
 * behaves the same afterwards, the v1 format byte by byte, every
 * truncated or out-of-range field refused, and reset. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "virtq_fixture.h"

/* What one pop/push/notify round did, in guest terms. */
struct trace {
	int ret[3];
	uint16_t head[3];
	unsigned int out[3], in[3];
	uint64_t off[3][4];
	bool notify[3];
	uint8_t used[6 + 8 * QSIZE];
};

static void run_trace(struct t *t, struct virtq *q, struct trace *tr)
{
	memset(tr, 0, sizeof(*tr));
	for (unsigned int k = 0; k < 3; k++) {
		tr->ret[k] = virtq_pop(q, &t->e);
		tr->head[k] = t->e.head;
		tr->out[k] = t->e.out_num;
		tr->in[k] = t->e.in_num;
		for (unsigned int j = 0; j < t->e.out_num + t->e.in_num && j < 4; j++)
			tr->off[k][j] = (uint64_t)((uint8_t *)t->e.iov[j].iov_base - t->ram);
		if (tr->ret[k] == 1)
			virtq_push(q, &t->e, 7 * k);
		tr->notify[k] = virtq_should_notify(q);
	}
	memcpy(tr->used, t->ram + USED, sizeof(tr->used));
}

static void test_save_load(void **state)
{
	struct t *t = *state;
	struct state_buf b = { 0 }, b2 = { 0 };
	struct state_rd r;
	struct virtq q2;
	struct trace t1, t2;
	uint8_t *snap = malloc(RAM_SIZE);

	assert_non_null(snap);
	t->q.event_idx = t->q.indirect = true;
	t->q.msix_vector = 3;
	complete(t, 3);
	assert_true(virtq_should_notify(&t->q));
	vqd_wr16(t->ram, USED_EVENT, 4);
	vqd_desc(&t->vq, DESC, 5, DATA, 8, VQD_F_NEXT, 6);
	vqd_desc(&t->vq, DESC, 6, DATA + 0x100, 8, VQD_F_WRITE, 0);
	vqd_avail(&t->vq, 5);
	vqd_desc(&t->vq, IND, 0, DATA + 0x200, 8, VQD_F_WRITE, 0);
	vqd_desc(&t->vq, DESC, 7, IND, 16, VQD_F_INDIRECT, 0);
	vqd_avail(&t->vq, 7);

	virtq_save(&t->q, &b);
	assert_int_equal(b.err, 0);
	memcpy(snap, t->ram, RAM_SIZE);
	run_trace(t, &t->q, &t1);
	assert_int_equal(t1.ret[0], 1);
	assert_int_equal(t1.ret[1], 1);
	assert_int_equal(t1.ret[2], 0);
	assert_false(t1.notify[0]); /* used_event 4: 3 -> 4 does not pass it */
	assert_true(t1.notify[1]);  /* 4 -> 5 does */
	assert_false(t1.notify[2]);

	memcpy(t->ram, snap, RAM_SIZE);
	memset(&q2, 0xa5, sizeof(q2));
	virtq_init(&q2, &t->gm, 256);
	state_rd_init(&r, b.data, b.len);
	assert_int_equal(virtq_load(&q2, &r), 0);
	assert_int_equal(r.pos, b.len);
	assert_true(q2.ready && q2.event_idx && q2.indirect && q2.signalled_used_valid);
	assert_int_equal(q2.size, QSIZE);
	assert_int_equal(q2.msix_vector, 3);
	assert_int_equal(q2.last_avail, 3);
	assert_int_equal(q2.used_idx, 3);
	assert_int_equal(q2.signalled_used, 3);
	assert_int_equal(q2.desc_gpa, DESC);
	assert_int_equal(q2.avail_gpa, AVAIL);
	assert_int_equal(q2.used_gpa, USED);
	virtq_save(&q2, &b2);
	assert_int_equal(b2.len, b.len);
	assert_memory_equal(b2.data, b.data, b.len);
	run_trace(t, &q2, &t2);
	assert_memory_equal(&t1, &t2, sizeof(t1));
	state_buf_free(&b);
	state_buf_free(&b2);
	free(snap);
}

/* The v1 format byte by byte, as documented in virtq.c: old files load,
 * and save writes exactly these bytes. */
static void test_load_v1_bytes(void **state)
{
	struct t *t = *state;
	const uint8_t v1[] = {
		1,    0,    0, 0,	      /* version */
		0x40, 0,		      /* size 64 */
		1,			      /* ready */
		0,    0x10, 0, 0, 0, 0, 0, 0, /* desc 0x1000 */
		0,    0x20, 0, 0, 0, 0, 0, 0, /* avail 0x2000 */
		0,    0x30, 0, 0, 0, 0, 0, 0, /* used 0x3000 */
		0x34, 0x12,		      /* last_avail */
		0x78, 0x56,		      /* used_idx */
		0x77, 0x56,		      /* signalled_used */
		1,    0,    1,		      /* signalled_used_valid, event_idx, indirect */
		2,    0,		      /* msix_vector */
	};
	struct virtq q;
	struct state_rd r;
	struct state_buf b = { 0 };

	virtq_init(&q, &t->gm, 256);
	state_rd_init(&r, v1, sizeof(v1));
	assert_int_equal(virtq_load(&q, &r), 0);
	assert_int_equal(r.pos, sizeof(v1));
	assert_int_equal(q.size, 64);
	assert_true(q.ready);
	assert_int_equal(q.desc_gpa, 0x1000);
	assert_int_equal(q.avail_gpa, 0x2000);
	assert_int_equal(q.used_gpa, 0x3000);
	assert_int_equal(q.last_avail, 0x1234);
	assert_int_equal(q.used_idx, 0x5678);
	assert_int_equal(q.signalled_used, 0x5677);
	assert_true(q.signalled_used_valid);
	assert_false(q.event_idx);
	assert_true(q.indirect);
	assert_int_equal(q.msix_vector, 2);
	assert_ptr_equal(q.mem, &t->gm);
	assert_int_equal(q.max_size, 256);
	virtq_save(&q, &b);
	assert_int_equal(b.len, sizeof(v1));
	assert_memory_equal(b.data, v1, sizeof(v1));
	state_buf_free(&b);
}

/* Load `buf` into a fresh queue: expect `want`; on failure the queue must
 * be untouched. */
static void load_expect(struct t *t, const uint8_t *buf, size_t len, int want,
			const struct guest_mem *mem)
{
	struct virtq q, before;
	struct state_rd r;

	memset(&q, 0, sizeof(q));
	virtq_init(&q, mem, 256);
	q.last_avail = 77;
	memcpy(&before, &q, sizeof(q));
	state_rd_init(&r, buf, len);
	assert_int_equal(virtq_load(&q, &r), want);
	if (want)
		assert_memory_equal(&q, &before, sizeof(q));
	(void)t;
}

static void test_load_rejects(void **state)
{
	struct t *t = *state;
	struct state_buf b = { 0 };
	uint8_t m[64];

	t->q.msix_vector = 1;
	virtq_save(&t->q, &b);
	assert_int_equal(b.len, 42);
	load_expect(t, b.data, b.len, 0, &t->gm);
	for (size_t n = 0; n < b.len; n++)
		load_expect(t, b.data, n, -EINVAL, &t->gm);
	load_expect(t, b.data, b.len, -EINVAL, NULL); /* ready needs memory */

	/* Mutate one field (offsets from the v1 layout). */
#define MUTATE(off, val, want)                          \
	do {                                            \
		memcpy(m, b.data, b.len);               \
		m[off] = (val);                         \
		load_expect(t, m, b.len, want, &t->gm); \
	} while (0)
	MUTATE(0, 2, -EINVAL);	   /* version */
	MUTATE(4, 3, -EINVAL);	   /* size 3 */
	MUTATE(4, 0, -EINVAL);	   /* size 0 */
	MUTATE(5, 2, -EINVAL);	   /* size 528 */
	MUTATE(4, 0x80, 0);	   /* size 128: fine */
	MUTATE(6, 2, -EINVAL);	   /* ready not a bool */
	MUTATE(7, 0x08, -EINVAL);  /* desc misaligned */
	MUTATE(15, 0x01, -EINVAL); /* avail misaligned */
	MUTATE(23, 0x02, -EINVAL); /* used misaligned */
	MUTATE(25, 0x10, -EINVAL); /* used at 1 MiB + 0x3000: outside RAM */
	MUTATE(30, 0x80, -EINVAL); /* used near 2^64 */
	MUTATE(37, 2, -EINVAL);	   /* signalled_used_valid */
	MUTATE(38, 2, -EINVAL);	   /* event_idx */
	MUTATE(39, 0xff, -EINVAL); /* indirect */
	MUTATE(31, 0xff, 0);	   /* any index is reachable */
	MUTATE(41, 0xff, 0);	   /* any vector */
	memcpy(m, b.data, b.len);
	m[4] = 0;
	m[5] = 2; /* size 512: a power of two, but > max_size 256 */
	load_expect(t, m, b.len, -EINVAL, &t->gm);
	/* Not ready: the registers are checked when the queue is enabled. */
	memcpy(m, b.data, b.len);
	m[6] = 0;
	m[4] = 3;
	m[30] = 0x80;
	load_expect(t, m, b.len, 0, &t->gm);
#undef MUTATE
	state_buf_free(&b);
}

static void test_reset(void **state)
{
	struct t *t = *state;

	t->q.event_idx = t->q.indirect = true;
	t->q.msix_vector = 2;
	complete(t, 2);
	assert_true(virtq_should_notify(&t->q));
	virtq_reset(&t->q);
	assert_false(t->q.ready || t->q.event_idx || t->q.indirect || t->q.signalled_used_valid);
	assert_int_equal(t->q.size, 256);
	assert_int_equal(t->q.max_size, 256);
	assert_ptr_equal(t->q.mem, &t->gm);
	assert_int_equal(t->q.desc_gpa | t->q.avail_gpa | t->q.used_gpa, 0);
	assert_int_equal(t->q.last_avail | t->q.used_idx | t->q.signalled_used, 0);
	assert_int_equal(t->q.msix_vector, VIRTQ_MSI_NO_VECTOR);
	assert_int_equal(virtq_pop(&t->q, &t->e), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_save_load),
		T(test_load_v1_bytes),
		T(test_load_rejects),
		T(test_reset),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
