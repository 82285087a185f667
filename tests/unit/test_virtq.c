/* test_virtq.c - the split virtqueue against a driver written here from
 * virtio 1.2 section 2.7, and against a hostile driver. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "cvisor/virtq.h"

/* Layout of the 1 MiB test guest. Ring offsets from the spec, written out
 * independently of virtq.c. */
#define RAM_SIZE (1u << 20)
#define DESC 0x1000
#define AVAIL 0x2000
#define USED 0x3000
#define IND 0x8000  /* indirect tables */
#define IND2 0xc000 /* a second one */
#define BIGIND 0x20000
#define DATA 0x40000
#define QSIZE 16

#define F_NEXT 1
#define F_WRITE 2
#define F_IND 4

struct t {
	uint8_t *ram;
	struct guest_mem gm;
	struct virtq q;
	uint16_t avail_idx; /* the driver's shadow */
	struct virtq_elem e;
};

static void wr16(struct t *t, uint64_t gpa, uint16_t v)
{
	memcpy(t->ram + gpa, &v, 2);
}

static uint16_t rd16(struct t *t, uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, t->ram + gpa, 2);
	return v;
}

static uint32_t rd32(struct t *t, uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, t->ram + gpa, 4);
	return v;
}

/* Write descriptor i of the table at `table` (virtio 1.2 2.7.5). */
static void desc(struct t *t, uint64_t table, unsigned int i, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next)
{
	uint8_t *p = t->ram + table + 16 * i;

	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

struct seg {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
};

/* Lay out segs as a chain in consecutive descriptors from `first` of the
 * table, linking them with NEXT. Returns the head index. */
static uint16_t chain(struct t *t, uint64_t table, uint16_t first, const struct seg *s,
		      unsigned int n)
{
	for (unsigned int k = 0; k < n; k++)
		desc(t, table, first + k, s[k].addr, s[k].len,
		     (uint16_t)(s[k].flags | (k + 1 < n ? F_NEXT : 0)), (uint16_t)(first + k + 1));
	return first;
}

/* 2.7.13.2-3: put the head in the ring, then bump avail->idx. */
static void avail_add(struct t *t, uint16_t head)
{
	wr16(t, AVAIL + 4 + 2 * (t->avail_idx % t->q.size), head);
	t->avail_idx++;
	wr16(t, AVAIL + 2, t->avail_idx);
}

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	if (!t || !(t->ram = calloc(1, RAM_SIZE)))
		return -1;
	guest_mem_init_buf(&t->gm, t->ram, RAM_SIZE);
	virtq_init(&t->q, &t->gm, 256);
	t->q.size = QSIZE;
	t->q.desc_gpa = DESC;
	t->q.avail_gpa = AVAIL;
	t->q.used_gpa = USED;
	if (virtq_validate(&t->q))
		return -1;
	t->q.ready = true;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;

	free(t->ram);
	free(t);
	return 0;
}

static void *iov_at(struct t *t, uint64_t gpa)
{
	return t->ram + gpa;
}

/* A one-descriptor request in the last descriptor, popped and pushed:
 * the queue still works. */
static void good_request(struct t *t)
{
	uint16_t last = (uint16_t)(t->q.size - 1);

	desc(t, DESC, last, DATA + 0x800, 8, 0, 0);
	avail_add(t, last);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.head, last);
	assert_int_equal(t->e.out_num, 1);
	assert_ptr_equal(t->e.iov[0].iov_base, iov_at(t, DATA + 0x800));
	virtq_push(&t->q, &t->e, 0);
	assert_int_equal(rd16(t, USED + 2), t->q.used_idx);
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

		assert_int_equal(rd16(t, USED + 2), (uint16_t)(used + 1));
		assert_int_equal(rd32(t, el), head);
		assert_int_equal(rd32(t, el + 4), 0); /* no writable bytes: len 0 */
	}
	good_request(t);
}

static void bad_chain(struct t *t, const struct seg *s, unsigned int n)
{
	avail_add(t, chain(t, DESC, 0, s, n));
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

/* A big guest reserved but never touched: only address checks. */
static uint8_t *reserve(uint64_t size)
{
	void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
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

static void test_empty_and_not_ready(void **state)
{
	struct t *t = *state;

	assert_int_equal(virtq_pop(&t->q, &t->e), 0);
	desc(t, DESC, 0, DATA, 8, 0, 0);
	avail_add(t, 0);
	t->q.ready = false;
	assert_int_equal(virtq_pop(&t->q, &t->e), 0);
	virtq_push(&t->q, &t->e, 0);
	assert_int_equal(rd16(t, USED + 2), 0);
	assert_false(virtq_should_notify(&t->q));
	t->q.ready = true;
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(virtq_pop(&t->q, &t->e), 0);
	/* Ready but registers a transport should have refused. */
	t->q.size = 3;
	assert_int_equal(virtq_pop(&t->q, &t->e), -EINVAL);
	assert_int_equal(t->e.head, VIRTQ_HEAD_NONE);
}

static void test_single(void **state)
{
	struct t *t = *state;

	desc(t, DESC, 3, DATA, 8, 0, 0);
	avail_add(t, 3);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.head, 3);
	assert_int_equal(t->e.out_num, 1);
	assert_int_equal(t->e.in_num, 0);
	assert_int_equal(t->e.out_len, 8);
	assert_int_equal(t->e.in_len, 0);
	assert_ptr_equal(t->e.iov[0].iov_base, iov_at(t, DATA));
	assert_int_equal(t->e.iov[0].iov_len, 8);
	assert_int_equal(t->q.last_avail, 1);
	assert_int_equal(virtq_pop(&t->q, &t->e), 0);
}

static void test_chain_out_in(void **state)
{
	struct t *t = *state;
	const struct seg s[] = { { DATA, 16, 0 },
				 { DATA + 0x100, 32, 0 },
				 { DATA + 0x200, 64, F_WRITE },
				 { DATA + 0x400, 128, F_WRITE } };

	avail_add(t, chain(t, DESC, 2, s, 4));
	/* A chain whose links jump around the table: 9 -> 7 -> 12. */
	desc(t, DESC, 9, DATA + 0x1000, 1, F_NEXT, 7);
	desc(t, DESC, 7, DATA + 0x2000, 2, F_NEXT | F_WRITE, 12);
	desc(t, DESC, 12, DATA + 0x3000, 3, F_WRITE, 0);
	avail_add(t, 9);

	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.head, 2);
	assert_int_equal(t->e.out_num, 2);
	assert_int_equal(t->e.in_num, 2);
	assert_int_equal(t->e.out_len, 48);
	assert_int_equal(t->e.in_len, 192);
	for (unsigned int k = 0; k < 4; k++) {
		assert_ptr_equal(t->e.iov[k].iov_base, iov_at(t, s[k].addr));
		assert_int_equal(t->e.iov[k].iov_len, s[k].len);
	}
	virtq_push(&t->q, &t->e, 100);
	assert_int_equal(rd16(t, USED + 2), 1);
	assert_int_equal(rd32(t, USED + 4), 2);
	assert_int_equal(rd32(t, USED + 8), 100);

	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.head, 9);
	assert_int_equal(t->e.out_num, 1);
	assert_int_equal(t->e.in_num, 2);
	assert_ptr_equal(t->e.iov[2].iov_base, iov_at(t, DATA + 0x3000));
	assert_int_equal(t->e.in_len, 5);
	virtq_push(&t->q, &t->e, 1000); /* more than the buffers: clamped */
	assert_int_equal(rd16(t, USED + 2), 2);
	assert_int_equal(rd32(t, USED + 12), 9);
	assert_int_equal(rd32(t, USED + 16), 5);
	assert_int_equal(virtq_pop(&t->q, &t->e), 0);
}

static void test_indirect(void **state)
{
	struct t *t = *state;

	t->q.indirect = true;
	/* Table entries linked out of order: 0 -> 2 -> 1. */
	desc(t, IND, 0, DATA, 8, F_NEXT, 2);
	desc(t, IND, 2, DATA + 0x100, 16, F_NEXT | F_WRITE, 1);
	desc(t, IND, 1, DATA + 0x200, 32, F_WRITE, 0);
	/* The table descriptor's WRITE flag is ignored (2.7.5.3.2). */
	desc(t, DESC, 4, IND, 48, F_IND | F_WRITE, 0);
	avail_add(t, 4);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.head, 4);
	assert_int_equal(t->e.out_num, 1);
	assert_int_equal(t->e.in_num, 2);
	assert_ptr_equal(t->e.iov[0].iov_base, iov_at(t, DATA));
	assert_ptr_equal(t->e.iov[1].iov_base, iov_at(t, DATA + 0x100));
	assert_ptr_equal(t->e.iov[2].iov_base, iov_at(t, DATA + 0x200));
	assert_int_equal(t->e.in_len, 48);

	/* A direct descriptor, then an indirect table to end the chain. */
	desc(t, DESC, 0, DATA + 0x300, 4, F_NEXT, 1);
	desc(t, DESC, 1, IND2, 16, F_IND, 0);
	desc(t, IND2, 0, DATA + 0x400, 8, F_WRITE, 0);
	avail_add(t, 0);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.out_num, 1);
	assert_int_equal(t->e.in_num, 1);
	assert_ptr_equal(t->e.iov[1].iov_base, iov_at(t, DATA + 0x400));

	/* A table at an odd address still reads correctly. */
	desc(t, IND2 + 0x101, 0, DATA + 0x500, 7, 0, 0);
	desc(t, DESC, 2, IND2 + 0x101, 16, F_IND, 0);
	avail_add(t, 2);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.out_num, 1);
	assert_ptr_equal(t->e.iov[0].iov_base, iov_at(t, DATA + 0x500));
	assert_int_equal(t->e.out_len, 7);

	/* The largest table allowed: VIRTQ_MAX_SIZE entries. */
	desc(t, BIGIND, 0, DATA, 1, 0, 0);
	desc(t, DESC, 3, BIGIND, 16 * VIRTQ_MAX_SIZE, F_IND, 0);
	avail_add(t, 3);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
}

static void test_used_ring_wrap(void **state)
{
	struct t *t = *state;

	t->q.size = 4;
	for (unsigned int k = 0; k < 6; k++) {
		desc(t, DESC, k % 4, DATA, 64, F_WRITE, 0);
		avail_add(t, (uint16_t)(k % 4));
		assert_int_equal(virtq_pop(&t->q, &t->e), 1);
		virtq_push(&t->q, &t->e, 10 + k);
		assert_int_equal(rd16(t, USED + 2), k + 1);
		assert_int_equal(rd32(t, USED + 4 + 8 * (k % 4)), k % 4);
		assert_int_equal(rd32(t, USED + 8 + 8 * (k % 4)), 10 + k);
	}
	assert_int_equal(t->q.used_idx, 6);
	/* Entries 4 and 5 overwrote slots 0 and 1; slots 2 and 3 are intact. */
	assert_int_equal(rd32(t, USED + 8 + 8 * 2), 12);
	assert_int_equal(rd32(t, USED + 8 + 8 * 3), 13);
}

/* Push n one-descriptor requests. */
static void complete(struct t *t, unsigned int n)
{
	for (unsigned int k = 0; k < n; k++) {
		desc(t, DESC, 0, DATA, 8, F_WRITE, 0);
		avail_add(t, 0);
		assert_int_equal(virtq_pop(&t->q, &t->e), 1);
		virtq_push(&t->q, &t->e, 8);
	}
}

#define USED_EVENT (AVAIL + 4 + 2 * QSIZE)
#define AVAIL_EVENT (USED + 4 + 8 * QSIZE)

static void test_event_idx(void **state)
{
	struct t *t = *state;

	t->q.event_idx = true;
	complete(t, 1);
	assert_true(virtq_should_notify(&t->q)); /* nothing signalled yet */
	assert_int_equal(t->q.signalled_used, 1);
	wr16(t, USED_EVENT, 1); /* interrupt once used->idx passes 1 */
	complete(t, 1);
	assert_true(virtq_should_notify(&t->q));
	assert_false(virtq_should_notify(&t->q)); /* nothing new since */
	wr16(t, USED_EVENT, 5);
	complete(t, 1); /* 3 */
	assert_false(virtq_should_notify(&t->q));
	complete(t, 1); /* 4 */
	assert_false(virtq_should_notify(&t->q));
	complete(t, 2); /* 6: crossed 5 within the batch [4, 6) */
	assert_true(virtq_should_notify(&t->q));
	/* The flag is ignored with EVENT_IDX (2.7.7.2). */
	wr16(t, AVAIL, VRING_AVAIL_F_NO_INTERRUPT);
	wr16(t, USED_EVENT, 6);
	complete(t, 1);
	assert_true(virtq_should_notify(&t->q));
}

static void test_event_idx_wrap(void **state)
{
	struct t *t = *state;

	t->q.event_idx = true;
	t->q.last_avail = t->q.used_idx = t->avail_idx = 65534;
	t->q.signalled_used = 65534;
	t->q.signalled_used_valid = true;
	wr16(t, AVAIL + 2, 65534);
	wr16(t, USED_EVENT, 65535);
	complete(t, 2); /* used_idx 65534 -> 0 */
	assert_int_equal(t->q.used_idx, 0);
	assert_int_equal(rd16(t, USED + 2), 0);
	assert_true(virtq_should_notify(&t->q));
	wr16(t, USED_EVENT, 1); /* 0 -> 1 does not pass 1 */
	complete(t, 1);
	assert_false(virtq_should_notify(&t->q));
	complete(t, 1); /* 1 -> 2 does */
	assert_true(virtq_should_notify(&t->q));
	/* An old used_event far behind after wrapping: no interrupt. */
	t->q.used_idx = t->q.signalled_used = 65535;
	wr16(t, USED_EVENT, 65530);
	complete(t, 3);
	assert_false(virtq_should_notify(&t->q));
}

/* 2^15 pushes without an interrupt: the window check can no longer tell,
 * so the next decision must be "notify". */
static void test_event_idx_lapped(void **state)
{
	struct t *t = *state;

	t->q.event_idx = true;
	t->q.signalled_used_valid = true;
	wr16(t, USED_EVENT, 40000);
	desc(t, DESC, 0, DATA, 8, F_WRITE, 0);
	avail_add(t, 0);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	for (unsigned int k = 0; k < 32767; k++)
		virtq_push(&t->q, &t->e, 0);
	assert_true(t->q.signalled_used_valid);
	virtq_push(&t->q, &t->e, 0);
	assert_false(t->q.signalled_used_valid);
	assert_true(virtq_should_notify(&t->q));
}

static void test_no_interrupt(void **state)
{
	struct t *t = *state;

	wr16(t, USED_EVENT, 1000); /* ignored without EVENT_IDX */
	complete(t, 1);
	assert_true(virtq_should_notify(&t->q));
	wr16(t, AVAIL, VRING_AVAIL_F_NO_INTERRUPT);
	complete(t, 1);
	assert_false(virtq_should_notify(&t->q));
	wr16(t, AVAIL, 0);
	complete(t, 1);
	assert_true(virtq_should_notify(&t->q));
}

static void test_enable_notify(void **state)
{
	struct t *t = *state;

	assert_false(virtq_enable_notify(&t->q, false));
	assert_int_equal(rd16(t, USED), VRING_USED_F_NO_NOTIFY);
	desc(t, DESC, 0, DATA, 8, 0, 0);
	avail_add(t, 0);
	assert_true(virtq_enable_notify(&t->q, true)); /* arrived meanwhile */
	assert_int_equal(rd16(t, USED), 0);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_false(virtq_enable_notify(&t->q, true));

	t->q.event_idx = true;
	wr16(t, USED, 0);
	assert_false(virtq_enable_notify(&t->q, true));
	assert_int_equal(rd16(t, AVAIL_EVENT), 1); /* = last_avail */
	assert_int_equal(rd16(t, USED), 0);	   /* flags untouched */
	wr16(t, AVAIL_EVENT, 0x5555);
	avail_add(t, 0);
	assert_true(virtq_enable_notify(&t->q, false));
	assert_int_equal(rd16(t, AVAIL_EVENT), 0x5555); /* no "off" with EVENT_IDX */
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_false(virtq_enable_notify(&t->q, true));
	assert_int_equal(rd16(t, AVAIL_EVENT), 2);
}

static void test_bad_loop(void **state)
{
	struct t *t = *state;

	/* next points to itself; empty descriptors so that only the TTL (not
	 * the iov capacity) can end the walk. */
	for (uint32_t len = 0; len <= 8; len += 8) {
		desc(t, DESC, 0, DATA, len, F_NEXT, 0);
		avail_add(t, 0);
		expect_bad(t, 0);
	}
	/* In an indirect table too. */
	t->q.indirect = true;
	for (uint32_t len = 0; len <= 8; len += 8) {
		desc(t, IND, 0, DATA, len, F_NEXT, 1);
		desc(t, IND, 1, DATA, len, F_NEXT, 0);
		desc(t, DESC, 0, IND, 32, F_IND, 0);
		avail_add(t, 0);
		expect_bad(t, 0);
	}
}

static void test_bad_long_chain(void **state)
{
	struct t *t = *state;

	t->q.size = 4;
	/* A chain of exactly size descriptors is fine... */
	for (unsigned int k = 0; k < 4; k++)
		desc(t, DESC, k, DATA + k, 1, k < 3 ? F_NEXT : 0, (uint16_t)(k + 1));
	avail_add(t, 0);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.out_num, 4);
	/* ...one more (0 -> 1 -> 2 -> 3 -> 0) is not, even if empty. */
	for (unsigned int k = 0; k < 4; k++)
		desc(t, DESC, k, DATA + k, 0, F_NEXT, (uint16_t)((k + 1) % 4));
	avail_add(t, 0);
	expect_bad(t, 0);
}

static void test_bad_index(void **state)
{
	struct t *t = *state;

	desc(t, DESC, 0, DATA, 8, 0, 0);
	avail_add(t, QSIZE); /* head >= size */
	expect_bad(t, VIRTQ_HEAD_NONE);
	avail_add(t, 0xffff);
	expect_bad(t, VIRTQ_HEAD_NONE);
	desc(t, DESC, 0, DATA, 8, F_NEXT, QSIZE); /* next >= size */
	avail_add(t, 0);
	expect_bad(t, 0);
	t->q.indirect = true; /* next past an indirect table's end */
	desc(t, IND, 0, DATA, 8, F_NEXT, 2);
	desc(t, DESC, 0, IND, 32, F_IND, 0);
	avail_add(t, 0);
	expect_bad(t, 0);
}

static void test_bad_addr(void **state)
{
	struct t *t = *state;
	const struct seg cases[] = {
		{ RAM_SIZE - 8, 16, 0 },       /* runs off the end of RAM */
		{ RAM_SIZE, 1, F_WRITE },      /* starts past it */
		{ UINT64_MAX - 3, 16, 0 },     /* addr + len wraps 2^64 */
		{ UINT64_MAX, 0xffffffff, 0 }, /* wraps further */
		{ DATA, 0xffffffff, 0 },       /* huge len */
		{ 1ull << 40, 8, F_WRITE },    /* far above RAM */
		{ RAM_SIZE - 1, 2, F_WRITE },  /* straddles the end by one */
	};

	for (unsigned int k = 0; k < ARRAY_SIZE(cases); k++) {
		const struct seg s[] = { { DATA, 8, 0 }, cases[k] };

		bad_chain(t, s, 2);
	}
	/* The exact last byte of RAM is fine. */
	desc(t, DESC, 0, RAM_SIZE - 1, 1, F_WRITE, 0);
	avail_add(t, 0);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_ptr_equal(t->e.iov[0].iov_base, iov_at(t, RAM_SIZE - 1));
}

static void test_bad_indirect(void **state)
{
	struct t *t = *state;

	desc(t, IND, 0, DATA, 8, 0, 0);
	desc(t, DESC, 0, IND, 16, F_IND, 0);
	avail_add(t, 0); /* not negotiated */
	expect_bad(t, 0);
	t->q.indirect = true;
	avail_add(t, 0); /* the same chain, now negotiated */
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);

	desc(t, IND, 0, DATA, 8, F_NEXT, 1); /* indirect within indirect */
	desc(t, IND, 1, IND2, 16, F_IND, 0);
	desc(t, IND2, 0, DATA, 8, 0, 0);
	desc(t, DESC, 0, IND, 32, F_IND, 0);
	avail_add(t, 0);
	expect_bad(t, 0);

	desc(t, IND, 0, DATA, 8, 0, 0);
	desc(t, DESC, 0, IND, 16, F_IND | F_NEXT, 1); /* INDIRECT with NEXT */
	desc(t, DESC, 1, DATA, 8, 0, 0);
	avail_add(t, 0);
	expect_bad(t, 0);

	const uint32_t lens[] = { 0, 8, 24, 17, 16 * (VIRTQ_MAX_SIZE + 1), 0xfffffff0 };
	for (unsigned int k = 0; k < ARRAY_SIZE(lens); k++) {
		desc(t, DESC, 0, IND, lens[k], F_IND, 0);
		avail_add(t, 0);
		expect_bad(t, 0);
	}
	desc(t, DESC, 0, RAM_SIZE - 16, 32, F_IND, 0); /* table out of RAM */
	avail_add(t, 0);
	expect_bad(t, 0);
	desc(t, DESC, 0, UINT64_MAX - 15, 32, F_IND, 0); /* table wraps */
	avail_add(t, 0);
	expect_bad(t, 0);
}

static void test_zero_length(void **state)
{
	struct t *t = *state;
	/* Zero-length buffers anywhere, even at addresses that are not RAM:
	 * skipped, not malformed. */
	const struct seg s[] = { { UINT64_MAX, 0, 0 },
				 { DATA, 8, 0 },
				 { 0xdead00000000, 0, F_WRITE },
				 { DATA + 0x100, 16, F_WRITE },
				 { 0, 0, F_WRITE } };

	avail_add(t, chain(t, DESC, 0, s, 5));
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.out_num, 1);
	assert_int_equal(t->e.in_num, 1);
	assert_ptr_equal(t->e.iov[0].iov_base, iov_at(t, DATA));
	assert_ptr_equal(t->e.iov[1].iov_base, iov_at(t, DATA + 0x100));
	assert_int_equal(t->e.out_len, 8);
	assert_int_equal(t->e.in_len, 16);

	desc(t, DESC, 0, 0, 0, 0, 0); /* nothing at all */
	avail_add(t, 0);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.out_num + t->e.in_num, 0);
	virtq_push(&t->q, &t->e, 5);
	assert_int_equal(rd32(t, USED + 8), 0); /* len clamped to 0 writable bytes */
}

static void test_bad_order(void **state)
{
	struct t *t = *state;
	const struct seg s[] = { { DATA, 8, 0 }, { DATA, 8, F_WRITE }, { DATA, 8, 0 } };
	const struct seg z[] = { { DATA, 8, F_WRITE }, { DATA, 0, 0 } };

	bad_chain(t, s, 3);
	bad_chain(t, z, 2); /* the rule is per descriptor, even an empty one */
	/* Writable direct descriptor, then a readable one in a table. */
	t->q.indirect = true;
	desc(t, IND, 0, DATA, 8, 0, 0);
	desc(t, DESC, 0, DATA, 8, F_WRITE | F_NEXT, 1);
	desc(t, DESC, 1, IND, 16, F_IND, 0);
	avail_add(t, 0);
	expect_bad(t, 0);
}

static void test_avail_jump(void **state)
{
	struct t *t = *state;

	desc(t, DESC, 0, DATA, 8, 0, 0);
	t->q.last_avail = t->q.used_idx = t->avail_idx = 65530;
	wr16(t, AVAIL + 2, (uint16_t)(65530 + QSIZE + 1));
	for (unsigned int k = 0; k < 2; k++) { /* stays broken: not consumed */
		assert_int_equal(virtq_pop(&t->q, &t->e), -EINVAL);
		assert_int_equal(t->e.head, VIRTQ_HEAD_NONE);
		assert_int_equal(t->q.last_avail, 65530);
	}
	/* Exactly size ahead (across the 2^16 wrap) is a full ring. */
	for (unsigned int k = 0; k < QSIZE; k++)
		avail_add(t, 0);
	assert_int_equal(rd16(t, AVAIL + 2), (uint16_t)(65530 + QSIZE));
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
		desc(t, BIGIND, k, DATA + k, 1, F_NEXT, (uint16_t)(k + 1));
	desc(t, BIGIND, VIRTQ_MAX_IOV - 1, DATA, 1, 0, 0);
	desc(t, DESC, 0, BIGIND, 16 * VIRTQ_MAX_IOV, F_IND, 0);
	avail_add(t, 0);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.out_num, VIRTQ_MAX_IOV);
	assert_int_equal(t->e.out_len, VIRTQ_MAX_IOV);
	/* One more segment through a direct descriptor before the table. */
	desc(t, DESC, 1, DATA, 1, F_NEXT, 0);
	avail_add(t, 1);
	expect_bad(t, 1);
	/* A table of VIRTQ_MAX_IOV + 1 entries. */
	desc(t, BIGIND, VIRTQ_MAX_IOV - 1, DATA, 1, F_NEXT, VIRTQ_MAX_IOV);
	desc(t, BIGIND, VIRTQ_MAX_IOV, DATA, 1, 0, 0);
	desc(t, DESC, 0, BIGIND, 16 * (VIRTQ_MAX_IOV + 1), F_IND, 0);
	avail_add(t, 0);
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
	b.ram = p;
	guest_mem_init_buf(&b.gm, p, size); /* [0, 3G) and [4G, 9G) */
	b.q.mem = &b.gm;
	b.avail_idx = 0;
	const struct seg one[] = { { H, 0xffffffff, 0 }, { H, 0xffffffff, F_WRITE } };
	avail_add(&b, chain(&b, DESC, 0, one, 2));
	assert_int_equal(virtq_pop(&b.q, &b.e), 1);
	assert_int_equal(b.e.out_len, 0xffffffff);
	assert_int_equal(b.e.in_len, 0xffffffff);
	assert_ptr_equal(b.e.iov[1].iov_base, p + 3 * G); /* high RAM follows low */

	const struct seg two[] = { { H, 0x80000000, 0 }, { H + 0x80000000, 0x80000000, 0 } };
	const struct seg three[] = { { H, 1, F_WRITE },
				     { H, 0xffffffff, F_WRITE },
				     { H, 1, F_WRITE } };
	avail_add(&b, chain(&b, DESC, 0, two, 2));
	expect_bad(&b, 0);
	avail_add(&b, chain(&b, DESC, 0, three, 3));
	expect_bad(&b, 0);
	munmap(p, size);
}

static void test_wrap_avail(void **state)
{
	struct t *t = *state;
	const uint16_t heads[] = { 7, 3, 11, 1 };

	t->q.last_avail = t->q.used_idx = t->avail_idx = 65534;
	wr16(t, AVAIL + 2, 65534);
	wr16(t, USED + 2, 65534);
	for (unsigned int k = 0; k < 4; k++) {
		desc(t, DESC, heads[k], DATA + 0x100 * k, 4, F_WRITE, 0);
		avail_add(t, heads[k]);
	}
	assert_int_equal(rd16(t, AVAIL + 2), 2);
	for (unsigned int k = 0; k < 4; k++) {
		assert_int_equal(virtq_pop(&t->q, &t->e), 1);
		assert_int_equal(t->e.head, heads[k]);
		assert_ptr_equal(t->e.iov[0].iov_base, iov_at(t, DATA + 0x100 * k));
		virtq_push(&t->q, &t->e, k);
	}
	assert_int_equal(virtq_pop(&t->q, &t->e), 0);
	assert_int_equal(t->q.last_avail, 2);
	assert_int_equal(rd16(t, USED + 2), 2);
	/* Ring slots 14, 15, 0, 1 (65534 mod 16 = 14). */
	for (unsigned int k = 0; k < 4; k++) {
		assert_int_equal(rd32(t, USED + 4 + 8 * ((14 + k) % 16)), heads[k]);
		assert_int_equal(rd32(t, USED + 8 + 8 * ((14 + k) % 16)), k);
	}
}

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
	wr16(t, USED_EVENT, 4);
	desc(t, DESC, 5, DATA, 8, F_NEXT, 6);
	desc(t, DESC, 6, DATA + 0x100, 8, F_WRITE, 0);
	avail_add(t, 5);
	desc(t, IND, 0, DATA + 0x200, 8, F_WRITE, 0);
	desc(t, DESC, 7, IND, 16, F_IND, 0);
	avail_add(t, 7);

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
		T(test_validate),	  T(test_validate_5g),	  T(test_empty_and_not_ready),
		T(test_single),		  T(test_chain_out_in),	  T(test_indirect),
		T(test_used_ring_wrap),	  T(test_event_idx),	  T(test_event_idx_wrap),
		T(test_event_idx_lapped), T(test_no_interrupt),	  T(test_enable_notify),
		T(test_bad_loop),	  T(test_bad_long_chain), T(test_bad_index),
		T(test_bad_addr),	  T(test_bad_indirect),	  T(test_zero_length),
		T(test_bad_order),	  T(test_avail_jump),	  T(test_iov_overflow),
		T(test_len_overflow),	  T(test_wrap_avail),	  T(test_save_load),
		T(test_load_v1_bytes),	  T(test_load_rejects),	  T(test_reset),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
