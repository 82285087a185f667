/* test_virtq_hostile.c - the split virtqueue against a hostile driver:
 * queue registers that fail validation, chains that loop, run long, point
 * outside guest RAM, nest or misuse indirect tables, break the
 * readable-then-writable order, overflow the iov array or the 32-bit
 * totals, avail indices that jump. Each malformed request fails alone and
 * the queue goes on. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "virtq_fixture.h"

/* A big guest reserved but never touched: only address checks. */
static uint8_t *reserve(uint64_t size)
{
	void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* A one-descriptor request in the last descriptor, popped and pushed:
 * the queue still works. */
static void good_request(struct t *t)
{
	uint16_t last = (uint16_t)(t->q.size - 1);

	vqd_desc(&t->vq, DESC, last, DATA + 0x800, 8, 0, 0);
	vqd_avail(&t->vq, last);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.head, last);
	assert_int_equal(t->e.out_num, 1);
	assert_ptr_equal(t->e.iov[0].iov_base, iov_at(t, DATA + 0x800));
	virtq_push(&t->q, &t->e, 0);
	assert_int_equal(vqd_rd16(t->ram, USED + 2), t->q.used_idx);
}

/* The pending avail entry is malformed: pop fails with e.head == head,
 * consumes the entry, the request can be failed with len 0, and the queue
 * goes on. */
static void expect_bad(struct t *t, uint16_t head)
{
	uint16_t la = t->q.last_avail, used = t->q.used_idx;

	assert_int_equal(virtq_pop(&t->q, &t->e), -EINVAL);
	assert_int_equal(t->e.head, head);
	assert_int_equal(t->e.out_num + t->e.in_num, 0);
	assert_int_equal(t->q.last_avail, (uint16_t)(la + 1));
	virtq_push(&t->q, &t->e, 100);
	if (head == VIRTQ_HEAD_NONE) {
		assert_int_equal(t->q.used_idx, used); /* nothing to return */
	} else {
		uint64_t el = USED + 4 + 8 * (used % t->q.size);

		assert_int_equal(vqd_rd16(t->ram, USED + 2), (uint16_t)(used + 1));
		assert_int_equal(vqd_rd32(t->ram, el), head);
		assert_int_equal(vqd_rd32(t->ram, el + 4), 0); /* no writable bytes: len 0 */
	}
	good_request(t);
}

static void bad_chain(struct t *t, const struct vqd_buf *s, unsigned int n)
{
	vqd_avail(&t->vq, vqd_chain(&t->vq, 0, s, n));
	expect_bad(t, 0);
}

static void test_validate(void **state)
{
	struct t *t = *state;
	struct virtq q = t->q;

	assert_int_equal(virtq_validate(&q), 0);
	for (unsigned int n = 0; n <= 512; n++) {
		q.size = (uint16_t)n;
		int ok = n && n <= 256 && !(n & (n - 1));
		assert_int_equal(virtq_validate(&q), ok ? 0 : -EINVAL);
	}
	q.size = 65535;
	assert_int_equal(virtq_validate(&q), -EINVAL);
	q.size = 2048; /* a device may not offer more than VIRTQ_MAX_SIZE */
	q.max_size = 2048;
	assert_int_equal(virtq_validate(&q), -EINVAL);
	q = t->q;
	/* Alignment: desc 16, avail 2, used 4. */
	q.desc_gpa = DESC + 8;
	assert_int_equal(virtq_validate(&q), -EINVAL);
	q.desc_gpa = DESC + 16;
	assert_int_equal(virtq_validate(&q), 0);
	q.avail_gpa = AVAIL + 1;
	assert_int_equal(virtq_validate(&q), -EINVAL);
	q.avail_gpa = AVAIL + 2;
	assert_int_equal(virtq_validate(&q), 0);
	q.used_gpa = USED + 2;
	assert_int_equal(virtq_validate(&q), -EINVAL);
	q.used_gpa = USED + 4;
	assert_int_equal(virtq_validate(&q), 0);
	/* Each ring exactly at the end of RAM, then one alignment unit over. */
	q = t->q;
	q.desc_gpa = RAM_SIZE - 16 * QSIZE;
	assert_int_equal(virtq_validate(&q), 0);
	q.desc_gpa += 16;
	assert_int_equal(virtq_validate(&q), -EINVAL);
	q = t->q;
	q.avail_gpa = RAM_SIZE - (6 + 2 * QSIZE);
	assert_int_equal(virtq_validate(&q), 0);
	q.avail_gpa += 2;
	assert_int_equal(virtq_validate(&q), -EINVAL);
	q = t->q;
	q.used_gpa = RAM_SIZE - (6 + 8 * QSIZE) - 2; /* 4-aligned */
	assert_int_equal(virtq_validate(&q), 0);
	q.used_gpa += 4;
	assert_int_equal(virtq_validate(&q), -EINVAL);
	q = t->q;
	q.desc_gpa = UINT64_MAX & ~15ull; /* gpa + len wraps */
	assert_int_equal(virtq_validate(&q), -EINVAL);
	q = t->q;
	q.used_gpa = UINT64_MAX & ~3ull;
	assert_int_equal(virtq_validate(&q), -EINVAL);
	q = t->q;
	q.mem = NULL;
	assert_int_equal(virtq_validate(&q), -EINVAL);
}

static void test_validate_5g(void **state)
{
	const uint64_t G = 1ull << 30, size = 5 * G;
	struct guest_mem gm;
	struct virtq q;
	uint8_t *p = reserve(size);

	(void)state;
	if (!p)
		skip();
	guest_mem_init_buf(&gm, p, size); /* [0, 3G) and [4G, 6G) */
	virtq_init(&q, &gm, 256);
	q.desc_gpa = DESC;
	q.avail_gpa = AVAIL;
	q.used_gpa = USED;
	assert_int_equal(virtq_validate(&q), 0);
	q.desc_gpa = 3 * G - 4096; /* ends exactly at the hole */
	assert_int_equal(virtq_validate(&q), 0);
	q.desc_gpa = 3 * G - 2048; /* straddles it */
	assert_int_equal(virtq_validate(&q), -EINVAL);
	q.desc_gpa = 3 * G; /* inside it */
	assert_int_equal(virtq_validate(&q), -EINVAL);
	q.desc_gpa = 4 * G - 16; /* straddles into high RAM */
	assert_int_equal(virtq_validate(&q), -EINVAL);
	q.desc_gpa = 4 * G;
	assert_int_equal(virtq_validate(&q), 0);
	q.avail_gpa = 3 * G - 2;
	assert_int_equal(virtq_validate(&q), -EINVAL);
	q.avail_gpa = 6 * G - (6 + 2 * 256);
	assert_int_equal(virtq_validate(&q), 0);
	q.used_gpa = 6 * G - (6 + 8 * 256) - 2;
	assert_int_equal(virtq_validate(&q), 0);
	q.used_gpa += 4;
	assert_int_equal(virtq_validate(&q), -EINVAL);
	q.used_gpa = 6 * G;
	assert_int_equal(virtq_validate(&q), -EINVAL);
	munmap(p, size);
}

static void test_bad_loop(void **state)
{
	struct t *t = *state;

	/* next points to itself; empty descriptors so that only the TTL (not
	 * the iov capacity) can end the walk. */
	for (uint32_t len = 0; len <= 8; len += 8) {
		vqd_desc(&t->vq, DESC, 0, DATA, len, VQD_F_NEXT, 0);
		vqd_avail(&t->vq, 0);
		expect_bad(t, 0);
	}
	/* In an indirect table too. */
	t->q.indirect = true;
	for (uint32_t len = 0; len <= 8; len += 8) {
		vqd_desc(&t->vq, IND, 0, DATA, len, VQD_F_NEXT, 1);
		vqd_desc(&t->vq, IND, 1, DATA, len, VQD_F_NEXT, 0);
		vqd_desc(&t->vq, DESC, 0, IND, 32, VQD_F_INDIRECT, 0);
		vqd_avail(&t->vq, 0);
		expect_bad(t, 0);
	}
}

static void test_bad_long_chain(void **state)
{
	struct t *t = *state;

	t->q.size = t->vq.size = 4;
	/* A chain of exactly size descriptors is fine... */
	for (unsigned int k = 0; k < 4; k++)
		vqd_desc(&t->vq, DESC, k, DATA + k, 1, k < 3 ? VQD_F_NEXT : 0, (uint16_t)(k + 1));
	vqd_avail(&t->vq, 0);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.out_num, 4);
	/* ...one more (0 -> 1 -> 2 -> 3 -> 0) is not, even if empty. */
	for (unsigned int k = 0; k < 4; k++)
		vqd_desc(&t->vq, DESC, k, DATA + k, 0, VQD_F_NEXT, (uint16_t)((k + 1) % 4));
	vqd_avail(&t->vq, 0);
	expect_bad(t, 0);
}

static void test_bad_index(void **state)
{
	struct t *t = *state;

	vqd_desc(&t->vq, DESC, 0, DATA, 8, 0, 0);
	vqd_avail(&t->vq, QSIZE); /* head >= size */
	expect_bad(t, VIRTQ_HEAD_NONE);
	vqd_avail(&t->vq, 0xffff);
	expect_bad(t, VIRTQ_HEAD_NONE);
	vqd_desc(&t->vq, DESC, 0, DATA, 8, VQD_F_NEXT, QSIZE); /* next >= size */
	vqd_avail(&t->vq, 0);
	expect_bad(t, 0);
	t->q.indirect = true; /* next past an indirect table's end */
	vqd_desc(&t->vq, IND, 0, DATA, 8, VQD_F_NEXT, 2);
	vqd_desc(&t->vq, DESC, 0, IND, 32, VQD_F_INDIRECT, 0);
	vqd_avail(&t->vq, 0);
	expect_bad(t, 0);
}

static void test_bad_addr(void **state)
{
	struct t *t = *state;
	const struct vqd_buf cases[] = {
		{ RAM_SIZE - 8, 16, 0 },	  /* runs off the end of RAM */
		{ RAM_SIZE, 1, VQD_F_WRITE },	  /* starts past it */
		{ UINT64_MAX - 3, 16, 0 },	  /* addr + len wraps 2^64 */
		{ UINT64_MAX, 0xffffffff, 0 },	  /* wraps further */
		{ DATA, 0xffffffff, 0 },	  /* huge len */
		{ 1ull << 40, 8, VQD_F_WRITE },	  /* far above RAM */
		{ RAM_SIZE - 1, 2, VQD_F_WRITE }, /* straddles the end by one */
	};

	for (unsigned int k = 0; k < ARRAY_SIZE(cases); k++) {
		const struct vqd_buf s[] = { { DATA, 8, 0 }, cases[k] };

		bad_chain(t, s, 2);
	}
	/* The exact last byte of RAM is fine. */
	vqd_desc(&t->vq, DESC, 0, RAM_SIZE - 1, 1, VQD_F_WRITE, 0);
	vqd_avail(&t->vq, 0);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_ptr_equal(t->e.iov[0].iov_base, iov_at(t, RAM_SIZE - 1));
}

static void test_bad_indirect(void **state)
{
	struct t *t = *state;

	vqd_desc(&t->vq, IND, 0, DATA, 8, 0, 0);
	vqd_desc(&t->vq, DESC, 0, IND, 16, VQD_F_INDIRECT, 0);
	vqd_avail(&t->vq, 0); /* not negotiated */
	expect_bad(t, 0);
	t->q.indirect = true;
	vqd_avail(&t->vq, 0); /* the same chain, now negotiated */
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);

	vqd_desc(&t->vq, IND, 0, DATA, 8, VQD_F_NEXT, 1); /* indirect within indirect */
	vqd_desc(&t->vq, IND, 1, IND2, 16, VQD_F_INDIRECT, 0);
	vqd_desc(&t->vq, IND2, 0, DATA, 8, 0, 0);
	vqd_desc(&t->vq, DESC, 0, IND, 32, VQD_F_INDIRECT, 0);
	vqd_avail(&t->vq, 0);
	expect_bad(t, 0);

	vqd_desc(&t->vq, IND, 0, DATA, 8, 0, 0);
	vqd_desc(&t->vq, DESC, 0, IND, 16, VQD_F_INDIRECT | VQD_F_NEXT, 1); /* INDIRECT with NEXT */
	vqd_desc(&t->vq, DESC, 1, DATA, 8, 0, 0);
	vqd_avail(&t->vq, 0);
	expect_bad(t, 0);

	const uint32_t lens[] = { 0, 8, 24, 17, 16 * (VIRTQ_MAX_SIZE + 1), 0xfffffff0 };
	for (unsigned int k = 0; k < ARRAY_SIZE(lens); k++) {
		vqd_desc(&t->vq, DESC, 0, IND, lens[k], VQD_F_INDIRECT, 0);
		vqd_avail(&t->vq, 0);
		expect_bad(t, 0);
	}
	vqd_desc(&t->vq, DESC, 0, RAM_SIZE - 16, 32, VQD_F_INDIRECT, 0); /* table out of RAM */
	vqd_avail(&t->vq, 0);
	expect_bad(t, 0);
	vqd_desc(&t->vq, DESC, 0, UINT64_MAX - 15, 32, VQD_F_INDIRECT, 0); /* table wraps */
	vqd_avail(&t->vq, 0);
	expect_bad(t, 0);
}

static void test_zero_length(void **state)
{
	struct t *t = *state;
	/* Zero-length buffers anywhere, even at addresses that are not RAM:
	 * skipped, not malformed. */
	const struct vqd_buf s[] = { { UINT64_MAX, 0, 0 },
				     { DATA, 8, 0 },
				     { 0xdead00000000, 0, VQD_F_WRITE },
				     { DATA + 0x100, 16, VQD_F_WRITE },
				     { 0, 0, VQD_F_WRITE } };

	vqd_avail(&t->vq, vqd_chain(&t->vq, 0, s, 5));
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.out_num, 1);
	assert_int_equal(t->e.in_num, 1);
	assert_ptr_equal(t->e.iov[0].iov_base, iov_at(t, DATA));
	assert_ptr_equal(t->e.iov[1].iov_base, iov_at(t, DATA + 0x100));
	assert_int_equal(t->e.out_len, 8);
	assert_int_equal(t->e.in_len, 16);

	vqd_desc(&t->vq, DESC, 0, 0, 0, 0, 0); /* nothing at all */
	vqd_avail(&t->vq, 0);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.out_num + t->e.in_num, 0);
	virtq_push(&t->q, &t->e, 5);
	assert_int_equal(vqd_rd32(t->ram, USED + 8), 0); /* len clamped to 0 writable bytes */
}

static void test_bad_order(void **state)
{
	struct t *t = *state;
	const struct vqd_buf s[] = { { DATA, 8, 0 }, { DATA, 8, VQD_F_WRITE }, { DATA, 8, 0 } };
	const struct vqd_buf z[] = { { DATA, 8, VQD_F_WRITE }, { DATA, 0, 0 } };

	bad_chain(t, s, 3);
	bad_chain(t, z, 2); /* the rule is per descriptor, even an empty one */
	/* Writable direct descriptor, then a readable one in a table. */
	t->q.indirect = true;
	vqd_desc(&t->vq, IND, 0, DATA, 8, 0, 0);
	vqd_desc(&t->vq, DESC, 0, DATA, 8, VQD_F_WRITE | VQD_F_NEXT, 1);
	vqd_desc(&t->vq, DESC, 1, IND, 16, VQD_F_INDIRECT, 0);
	vqd_avail(&t->vq, 0);
	expect_bad(t, 0);
}

static void test_avail_jump(void **state)
{
	struct t *t = *state;

	vqd_desc(&t->vq, DESC, 0, DATA, 8, 0, 0);
	t->q.last_avail = t->q.used_idx = t->vq.avail_idx = 65530;
	vqd_wr16(t->ram, AVAIL + 2, (uint16_t)(65530 + QSIZE + 1));
	for (unsigned int k = 0; k < 2; k++) { /* stays broken: not consumed */
		assert_int_equal(virtq_pop(&t->q, &t->e), -EINVAL);
		assert_int_equal(t->e.head, VIRTQ_HEAD_NONE);
		assert_int_equal(t->q.last_avail, 65530);
	}
	/* Exactly size ahead (across the 2^16 wrap) is a full ring. */
	for (unsigned int k = 0; k < QSIZE; k++)
		vqd_avail(&t->vq, 0);
	assert_int_equal(vqd_rd16(t->ram, AVAIL + 2), (uint16_t)(65530 + QSIZE));
	for (unsigned int k = 0; k < QSIZE; k++)
		assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(virtq_pop(&t->q, &t->e), 0);
	assert_int_equal(t->q.last_avail, (uint16_t)(65530 + QSIZE));
}

static void test_iov_overflow(void **state)
{
	struct t *t = *state;

	t->q.indirect = true;
	for (unsigned int k = 0; k <= VIRTQ_MAX_IOV; k++)
		vqd_desc(&t->vq, BIGIND, k, DATA + k, 1, VQD_F_NEXT, (uint16_t)(k + 1));
	vqd_desc(&t->vq, BIGIND, VIRTQ_MAX_IOV - 1, DATA, 1, 0, 0);
	vqd_desc(&t->vq, DESC, 0, BIGIND, 16 * VIRTQ_MAX_IOV, VQD_F_INDIRECT, 0);
	vqd_avail(&t->vq, 0);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.out_num, VIRTQ_MAX_IOV);
	assert_int_equal(t->e.out_len, VIRTQ_MAX_IOV);
	/* One more segment through a direct descriptor before the table. */
	vqd_desc(&t->vq, DESC, 1, DATA, 1, VQD_F_NEXT, 0);
	vqd_avail(&t->vq, 1);
	expect_bad(t, 1);
	/* A table of VIRTQ_MAX_IOV + 1 entries. */
	vqd_desc(&t->vq, BIGIND, VIRTQ_MAX_IOV - 1, DATA, 1, VQD_F_NEXT, VIRTQ_MAX_IOV);
	vqd_desc(&t->vq, BIGIND, VIRTQ_MAX_IOV, DATA, 1, 0, 0);
	vqd_desc(&t->vq, DESC, 0, BIGIND, 16 * (VIRTQ_MAX_IOV + 1), VQD_F_INDIRECT, 0);
	vqd_avail(&t->vq, 0);
	expect_bad(t, 0);
}

/* 32-bit totals need buffers of gigabytes: an 8 GiB guest of which only
 * the first MiB (the rings) is accessible; the buffers are never touched. */
static void test_len_overflow(void **state)
{
	const uint64_t G = 1ull << 30, size = 8 * G, H = 4 * G;
	struct t *t = *state, b;
	uint8_t *p = reserve(size);

	if (!p)
		skip();
	assert_int_equal(mprotect(p, RAM_SIZE, PROT_READ | PROT_WRITE), 0);
	b = *t;
	b.ram = b.vq.ram = p;
	guest_mem_init_buf(&b.gm, p, size); /* [0, 3G) and [4G, 9G) */
	b.q.mem = &b.gm;
	b.vq.avail_idx = 0;
	const struct vqd_buf one[] = { { H, 0xffffffff, 0 }, { H, 0xffffffff, VQD_F_WRITE } };
	vqd_avail(&b.vq, vqd_chain(&b.vq, 0, one, 2));
	assert_int_equal(virtq_pop(&b.q, &b.e), 1);
	assert_int_equal(b.e.out_len, 0xffffffff);
	assert_int_equal(b.e.in_len, 0xffffffff);
	assert_ptr_equal(b.e.iov[1].iov_base, p + 3 * G); /* high RAM follows low */

	const struct vqd_buf two[] = { { H, 0x80000000, 0 }, { H + 0x80000000, 0x80000000, 0 } };
	const struct vqd_buf three[] = { { H, 1, VQD_F_WRITE },
					 { H, 0xffffffff, VQD_F_WRITE },
					 { H, 1, VQD_F_WRITE } };
	vqd_avail(&b.vq, vqd_chain(&b.vq, 0, two, 2));
	expect_bad(&b, 0);
	vqd_avail(&b.vq, vqd_chain(&b.vq, 0, three, 3));
	expect_bad(&b, 0);
	munmap(p, size);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_validate),	T(test_validate_5g),  T(test_bad_loop),
		T(test_bad_long_chain), T(test_bad_index),    T(test_bad_addr),
		T(test_bad_indirect),	T(test_zero_length),  T(test_bad_order),
		T(test_avail_jump),	T(test_iov_overflow), T(test_len_overflow),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
