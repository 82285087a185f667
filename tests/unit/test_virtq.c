/* test_virtq.c - the split virtqueue against the shared guest driver
 * (tests/lib), written from virtio 1.2 section 2.7: chains, indirect
 * tables, the used ring, notification suppression, wrap-around; and the
 * element accessors devices use to reach a request's buffers. A hostile
 * driver: test_virtq_hostile.c; save and load: test_virtq_state.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/dirty.h"
#include "virtq_fixture.h"

static void test_empty_and_not_ready(void **state)
{
	struct t *t = *state;

	assert_int_equal(virtq_pop(&t->q, &t->e), 0);
	vqd_desc(&t->vq, DESC, 0, DATA, 8, 0, 0);
	vqd_avail(&t->vq, 0);
	t->q.ready = false;
	assert_int_equal(virtq_pop(&t->q, &t->e), 0);
	virtq_push(&t->q, &t->e, 0);
	assert_int_equal(vqd_rd16(t->ram, USED + 2), 0);
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

	vqd_desc(&t->vq, DESC, 3, DATA, 8, 0, 0);
	vqd_avail(&t->vq, 3);
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
	const struct vqd_buf s[] = { { DATA, 16, 0 },
				     { DATA + 0x100, 32, 0 },
				     { DATA + 0x200, 64, VQD_F_WRITE },
				     { DATA + 0x400, 128, VQD_F_WRITE } };

	vqd_avail(&t->vq, vqd_chain(&t->vq, 2, s, 4));
	/* A chain whose links jump around the table: 9 -> 7 -> 12. */
	vqd_desc(&t->vq, DESC, 9, DATA + 0x1000, 1, VQD_F_NEXT, 7);
	vqd_desc(&t->vq, DESC, 7, DATA + 0x2000, 2, VQD_F_NEXT | VQD_F_WRITE, 12);
	vqd_desc(&t->vq, DESC, 12, DATA + 0x3000, 3, VQD_F_WRITE, 0);
	vqd_avail(&t->vq, 9);

	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.head, 2);
	assert_int_equal(t->e.out_num, 2);
	assert_int_equal(t->e.in_num, 2);
	assert_int_equal(t->e.out_len, 48);
	assert_int_equal(t->e.in_len, 192);
	for (unsigned int k = 0; k < 4; k++) {
		assert_ptr_equal(t->e.iov[k].iov_base, iov_at(t, s[k].gpa));
		assert_int_equal(t->e.iov[k].iov_len, s[k].len);
	}
	virtq_push(&t->q, &t->e, 100);
	assert_int_equal(vqd_rd16(t->ram, USED + 2), 1);
	assert_int_equal(vqd_rd32(t->ram, USED + 4), 2);
	assert_int_equal(vqd_rd32(t->ram, USED + 8), 100);

	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.head, 9);
	assert_int_equal(t->e.out_num, 1);
	assert_int_equal(t->e.in_num, 2);
	assert_ptr_equal(t->e.iov[2].iov_base, iov_at(t, DATA + 0x3000));
	assert_int_equal(t->e.in_len, 5);
	virtq_push(&t->q, &t->e, 1000); /* more than the buffers: clamped */
	assert_int_equal(vqd_rd16(t->ram, USED + 2), 2);
	assert_int_equal(vqd_rd32(t->ram, USED + 12), 9);
	assert_int_equal(vqd_rd32(t->ram, USED + 16), 5);
	assert_int_equal(virtq_pop(&t->q, &t->e), 0);
}

static void test_indirect(void **state)
{
	struct t *t = *state;

	t->q.indirect = true;
	/* Table entries linked out of order: 0 -> 2 -> 1. */
	vqd_desc(&t->vq, IND, 0, DATA, 8, VQD_F_NEXT, 2);
	vqd_desc(&t->vq, IND, 2, DATA + 0x100, 16, VQD_F_NEXT | VQD_F_WRITE, 1);
	vqd_desc(&t->vq, IND, 1, DATA + 0x200, 32, VQD_F_WRITE, 0);
	/* The table descriptor's WRITE flag is ignored (2.7.5.3.2). */
	vqd_desc(&t->vq, DESC, 4, IND, 48, VQD_F_INDIRECT | VQD_F_WRITE, 0);
	vqd_avail(&t->vq, 4);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.head, 4);
	assert_int_equal(t->e.out_num, 1);
	assert_int_equal(t->e.in_num, 2);
	assert_ptr_equal(t->e.iov[0].iov_base, iov_at(t, DATA));
	assert_ptr_equal(t->e.iov[1].iov_base, iov_at(t, DATA + 0x100));
	assert_ptr_equal(t->e.iov[2].iov_base, iov_at(t, DATA + 0x200));
	assert_int_equal(t->e.in_len, 48);

	/* A direct descriptor, then an indirect table to end the chain. */
	vqd_desc(&t->vq, DESC, 0, DATA + 0x300, 4, VQD_F_NEXT, 1);
	vqd_desc(&t->vq, DESC, 1, IND2, 16, VQD_F_INDIRECT, 0);
	vqd_desc(&t->vq, IND2, 0, DATA + 0x400, 8, VQD_F_WRITE, 0);
	vqd_avail(&t->vq, 0);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.out_num, 1);
	assert_int_equal(t->e.in_num, 1);
	assert_ptr_equal(t->e.iov[1].iov_base, iov_at(t, DATA + 0x400));

	/* A table at an odd address still reads correctly. */
	vqd_desc(&t->vq, IND2 + 0x101, 0, DATA + 0x500, 7, 0, 0);
	vqd_desc(&t->vq, DESC, 2, IND2 + 0x101, 16, VQD_F_INDIRECT, 0);
	vqd_avail(&t->vq, 2);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.out_num, 1);
	assert_ptr_equal(t->e.iov[0].iov_base, iov_at(t, DATA + 0x500));
	assert_int_equal(t->e.out_len, 7);

	/* The largest table allowed: VIRTQ_MAX_SIZE entries. */
	vqd_desc(&t->vq, BIGIND, 0, DATA, 1, 0, 0);
	vqd_desc(&t->vq, DESC, 3, BIGIND, 16 * VIRTQ_MAX_SIZE, VQD_F_INDIRECT, 0);
	vqd_avail(&t->vq, 3);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
}

static void test_used_ring_wrap(void **state)
{
	struct t *t = *state;

	t->q.size = t->vq.size = 4;
	for (unsigned int k = 0; k < 6; k++) {
		vqd_desc(&t->vq, DESC, k % 4, DATA, 64, VQD_F_WRITE, 0);
		vqd_avail(&t->vq, (uint16_t)(k % 4));
		assert_int_equal(virtq_pop(&t->q, &t->e), 1);
		virtq_push(&t->q, &t->e, 10 + k);
		assert_int_equal(vqd_rd16(t->ram, USED + 2), k + 1);
		assert_int_equal(vqd_rd32(t->ram, USED + 4 + 8 * (k % 4)), k % 4);
		assert_int_equal(vqd_rd32(t->ram, USED + 8 + 8 * (k % 4)), 10 + k);
	}
	assert_int_equal(t->q.used_idx, 6);
	/* Entries 4 and 5 overwrote slots 0 and 1; slots 2 and 3 are intact. */
	assert_int_equal(vqd_rd32(t->ram, USED + 8 + 8 * 2), 12);
	assert_int_equal(vqd_rd32(t->ram, USED + 8 + 8 * 3), 13);
}

static void test_event_idx(void **state)
{
	struct t *t = *state;

	t->q.event_idx = true;
	complete(t, 1);
	assert_true(virtq_should_notify(&t->q)); /* nothing signalled yet */
	assert_int_equal(t->q.signalled_used, 1);
	vqd_wr16(t->ram, USED_EVENT, 1); /* interrupt once used->idx passes 1 */
	complete(t, 1);
	assert_true(virtq_should_notify(&t->q));
	assert_false(virtq_should_notify(&t->q)); /* nothing new since */
	vqd_wr16(t->ram, USED_EVENT, 5);
	complete(t, 1); /* 3 */
	assert_false(virtq_should_notify(&t->q));
	complete(t, 1); /* 4 */
	assert_false(virtq_should_notify(&t->q));
	complete(t, 2); /* 6: crossed 5 within the batch [4, 6) */
	assert_true(virtq_should_notify(&t->q));
	/* The flag is ignored with EVENT_IDX (2.7.7.2). */
	vqd_wr16(t->ram, AVAIL, VRING_AVAIL_F_NO_INTERRUPT);
	vqd_wr16(t->ram, USED_EVENT, 6);
	complete(t, 1);
	assert_true(virtq_should_notify(&t->q));
}

static void test_event_idx_wrap(void **state)
{
	struct t *t = *state;

	t->q.event_idx = true;
	t->q.last_avail = t->q.used_idx = t->vq.avail_idx = 65534;
	t->q.signalled_used = 65534;
	t->q.signalled_used_valid = true;
	vqd_wr16(t->ram, AVAIL + 2, 65534);
	vqd_wr16(t->ram, USED_EVENT, 65535);
	complete(t, 2); /* used_idx 65534 -> 0 */
	assert_int_equal(t->q.used_idx, 0);
	assert_int_equal(vqd_rd16(t->ram, USED + 2), 0);
	assert_true(virtq_should_notify(&t->q));
	vqd_wr16(t->ram, USED_EVENT, 1); /* 0 -> 1 does not pass 1 */
	complete(t, 1);
	assert_false(virtq_should_notify(&t->q));
	complete(t, 1); /* 1 -> 2 does */
	assert_true(virtq_should_notify(&t->q));
	/* An old used_event far behind after wrapping: no interrupt. */
	t->q.used_idx = t->q.signalled_used = 65535;
	vqd_wr16(t->ram, USED_EVENT, 65530);
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
	vqd_wr16(t->ram, USED_EVENT, 40000);
	vqd_desc(&t->vq, DESC, 0, DATA, 8, VQD_F_WRITE, 0);
	vqd_avail(&t->vq, 0);
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

	vqd_wr16(t->ram, USED_EVENT, 1000); /* ignored without EVENT_IDX */
	complete(t, 1);
	assert_true(virtq_should_notify(&t->q));
	vqd_wr16(t->ram, AVAIL, VRING_AVAIL_F_NO_INTERRUPT);
	complete(t, 1);
	assert_false(virtq_should_notify(&t->q));
	vqd_wr16(t->ram, AVAIL, 0);
	complete(t, 1);
	assert_true(virtq_should_notify(&t->q));
}

static void test_enable_notify(void **state)
{
	struct t *t = *state;

	assert_false(virtq_enable_notify(&t->q, false));
	assert_int_equal(vqd_rd16(t->ram, USED), VRING_USED_F_NO_NOTIFY);
	vqd_desc(&t->vq, DESC, 0, DATA, 8, 0, 0);
	vqd_avail(&t->vq, 0);
	assert_true(virtq_enable_notify(&t->q, true)); /* arrived meanwhile */
	assert_int_equal(vqd_rd16(t->ram, USED), 0);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_false(virtq_enable_notify(&t->q, true));

	t->q.event_idx = true;
	vqd_wr16(t->ram, USED, 0);
	assert_false(virtq_enable_notify(&t->q, true));
	assert_int_equal(vqd_rd16(t->ram, AVAIL_EVENT), 1); /* = last_avail */
	assert_int_equal(vqd_rd16(t->ram, USED), 0);	    /* flags untouched */
	vqd_wr16(t->ram, AVAIL_EVENT, 0x5555);
	vqd_avail(&t->vq, 0);
	assert_true(virtq_enable_notify(&t->q, false));
	assert_int_equal(vqd_rd16(t->ram, AVAIL_EVENT), 0x5555); /* no "off" with EVENT_IDX */
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_false(virtq_enable_notify(&t->q, true));
	assert_int_equal(vqd_rd16(t->ram, AVAIL_EVENT), 2);
}

static void test_wrap_avail(void **state)
{
	struct t *t = *state;
	const uint16_t heads[] = { 7, 3, 11, 1 };

	t->q.last_avail = t->q.used_idx = t->vq.avail_idx = 65534;
	vqd_wr16(t->ram, AVAIL + 2, 65534);
	vqd_wr16(t->ram, USED + 2, 65534);
	for (unsigned int k = 0; k < 4; k++) {
		vqd_desc(&t->vq, DESC, heads[k], DATA + 0x100 * k, 4, VQD_F_WRITE, 0);
		vqd_avail(&t->vq, heads[k]);
	}
	assert_int_equal(vqd_rd16(t->ram, AVAIL + 2), 2);
	for (unsigned int k = 0; k < 4; k++) {
		assert_int_equal(virtq_pop(&t->q, &t->e), 1);
		assert_int_equal(t->e.head, heads[k]);
		assert_ptr_equal(t->e.iov[0].iov_base, iov_at(t, DATA + 0x100 * k));
		virtq_push(&t->q, &t->e, k);
	}
	assert_int_equal(virtq_pop(&t->q, &t->e), 0);
	assert_int_equal(t->q.last_avail, 2);
	assert_int_equal(vqd_rd16(t->ram, USED + 2), 2);
	/* Ring slots 14, 15, 0, 1 (65534 mod 16 = 14). */
	for (unsigned int k = 0; k < 4; k++) {
		assert_int_equal(vqd_rd32(t->ram, USED + 4 + 8 * ((14 + k) % 16)), heads[k]);
		assert_int_equal(vqd_rd32(t->ram, USED + 8 + 8 * ((14 + k) % 16)), k);
	}
}

/* Element accessors ------------------------------------------------------ */

/* Out buffers of 3, 5 and 8 bytes (readable bytes 0..15 hold 0x10..0x1f),
 * then in buffers of 4 and 6, each with a guard byte after it. */
#define OUT0 (DATA + 0x000)
#define OUT1 (DATA + 0x100)
#define OUT2 (DATA + 0x200)
#define IN0 (DATA + 0x300)
#define IN1 (DATA + 0x400)

static void pop_mixed(struct t *t)
{
	const struct vqd_buf b[] = {
		{ OUT0, 3, false }, { OUT1, 5, false }, { OUT2, 8, false },
		{ IN0, 4, true },   { IN1, 6, true },
	};
	const uint64_t out[] = { OUT0, OUT1, OUT2 }, len[] = { 3, 5, 8 };
	uint8_t v = 0x10;

	memset(t->ram + DATA, 0xee, 0x500);
	for (unsigned int k = 0; k < 3; k++)
		for (unsigned int i = 0; i < len[k]; i++)
			t->ram[out[k] + i] = v++;
	vqd_add(&t->vq, b, 5);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.out_len, 16);
	assert_int_equal(t->e.in_len, 10);
}

static void test_elem_read(void **state)
{
	struct t *t = *state;
	uint8_t b[32];

	pop_mixed(t);
	memset(b, 0, sizeof(b));
	assert_int_equal(virtq_elem_read(&t->e, 0, b, 16), 16);
	for (unsigned int i = 0; i < 16; i++)
		assert_int_equal(b[i], 0x10 + i);
	/* Offsets across buffer boundaries: 0|1 and 1|2. */
	assert_int_equal(virtq_elem_read(&t->e, 2, b, 4), 4);
	assert_memory_equal(b, "\x12\x13\x14\x15", 4);
	assert_int_equal(virtq_elem_read(&t->e, 7, b, 3), 3);
	assert_memory_equal(b, "\x17\x18\x19", 3);
	/* Past the readable part: what is there, never the writable bytes. */
	memset(b, 0, sizeof(b));
	assert_int_equal(virtq_elem_read(&t->e, 13, b, sizeof(b)), 3);
	assert_memory_equal(b, "\x1d\x1e\x1f\x00", 4);
	assert_int_equal(virtq_elem_read(&t->e, 16, b, 1), 0);
	assert_int_equal(virtq_elem_read(&t->e, UINT64_MAX, b, sizeof(b)), 0);
	assert_int_equal(virtq_elem_read(&t->e, UINT64_MAX - 2, b, SIZE_MAX), 0);
	assert_int_equal(virtq_elem_read(&t->e, 5, b, 0), 0);
}

static void test_elem_write(void **state)
{
	struct t *t = *state;
	const uint8_t src[12] = "abcdefghijkl";
	uint8_t before[0x500];

	pop_mixed(t);
	memcpy(before, t->ram + DATA, sizeof(before));
	assert_int_equal(virtq_elem_write(&t->e, 0, src, 10), 10);
	assert_memory_equal(t->ram + IN0, "abcd", 4);
	assert_memory_equal(t->ram + IN1, "efghij", 6);
	/* Across the boundary, then past the writable part: clipped. */
	assert_int_equal(virtq_elem_write(&t->e, 3, "XYZ", 3), 3);
	assert_memory_equal(t->ram + IN0, "abcX", 4);
	assert_memory_equal(t->ram + IN1, "YZghij", 6);
	assert_int_equal(virtq_elem_write(&t->e, 8, src, sizeof(src)), 2);
	assert_memory_equal(t->ram + IN1, "YZghab", 6);
	assert_int_equal(virtq_elem_write(&t->e, 10, src, 1), 0);
	assert_int_equal(virtq_elem_write(&t->e, UINT64_MAX, src, sizeof(src)), 0);
	assert_int_equal(virtq_elem_write(&t->e, UINT64_MAX - 2, src, SIZE_MAX), 0);
	/* The readable buffers and every guard byte are as they were. */
	assert_memory_equal(t->ram + DATA, before, IN0 - DATA);
	assert_int_equal(t->ram[IN0 + 4], 0xee);
	assert_int_equal(t->ram[IN1 + 6], 0xee);
	/* A request with no writable buffer takes nothing. */
	vqd_desc(&t->vq, DESC, 9, OUT0, 3, 0, 0);
	vqd_avail(&t->vq, 9);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(virtq_elem_write(&t->e, 0, src, 3), 0);
	assert_memory_equal(t->ram + DATA, before, IN0 - DATA);
}

/* v holds exactly these (gpa, len) pieces. */
static void slice_is(struct t *t, const struct virtq_iov *v, const uint64_t (*want)[2],
		     unsigned int n)
{
	assert_int_equal(v->n, n);
	for (unsigned int k = 0; k < n; k++) {
		assert_ptr_equal(v->iov[k].iov_base, iov_at(t, want[k][0]));
		assert_int_equal(v->iov[k].iov_len, want[k][1]);
	}
}

static void test_elem_slice(void **state)
{
	struct t *t = *state;
	const uint64_t out[][2] = { { OUT0 + 2, 1 }, { OUT1, 5 }, { OUT2, 4 } };
	const uint64_t in[][2] = { { IN0 + 1, 3 }, { IN1, 6 } };
	struct virtq_iov v;

	pop_mixed(t);
	assert_int_equal(virtq_elem_slice(&t->e, VIRTQ_OUT, 2, 10, &v), 10);
	slice_is(t, &v, out, 3);
	/* The writable part, clipped at its end. */
	assert_int_equal(virtq_elem_slice(&t->e, VIRTQ_IN, 1, 100, &v), 9);
	slice_is(t, &v, in, 2);
	/* Empty ranges: nothing, not an empty entry. */
	assert_int_equal(virtq_elem_slice(&t->e, VIRTQ_OUT, 16, 1, &v), 0);
	assert_int_equal(v.n, 0);
	assert_int_equal(virtq_elem_slice(&t->e, VIRTQ_IN, 4, 0, &v), 0);
	assert_int_equal(v.n, 0);
	assert_int_equal(virtq_elem_slice(&t->e, VIRTQ_IN, UINT64_MAX, UINT64_MAX, &v), 0);
	assert_int_equal(v.n, 0);
}

/* An element of VIRTQ_MAX_IOV two-byte buffers (an indirect table): slices
 * fill the whole capacity; a corrupt element is clamped to it. */
static void test_elem_slice_capacity(void **state)
{
	struct t *t = *state;
	struct virtq_iov v;
	uint8_t b[2 * VIRTQ_MAX_IOV];

	t->q.indirect = true;
	for (unsigned int k = 0; k < VIRTQ_MAX_IOV; k++)
		vqd_desc(&t->vq, BIGIND, k, DATA + 4 * k, 2, VQD_F_NEXT, (uint16_t)(k + 1));
	vqd_desc(&t->vq, BIGIND, VIRTQ_MAX_IOV - 1, DATA + 4 * (VIRTQ_MAX_IOV - 1), 2, 0, 0);
	vqd_desc(&t->vq, DESC, 0, BIGIND, 16 * VIRTQ_MAX_IOV, VQD_F_INDIRECT, 0);
	vqd_avail(&t->vq, 0);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(t->e.out_num, VIRTQ_MAX_IOV);
	assert_int_equal(virtq_elem_slice(&t->e, VIRTQ_OUT, 0, UINT64_MAX, &v), 2 * VIRTQ_MAX_IOV);
	assert_int_equal(v.n, VIRTQ_MAX_IOV);
	assert_ptr_equal(v.iov[VIRTQ_MAX_IOV - 1].iov_base,
			 iov_at(t, DATA + 4 * (VIRTQ_MAX_IOV - 1)));
	/* Half of the first and half of the last buffer. */
	assert_int_equal(virtq_elem_slice(&t->e, VIRTQ_OUT, 1, 2 * VIRTQ_MAX_IOV - 2, &v),
			 2 * VIRTQ_MAX_IOV - 2);
	assert_int_equal(v.n, VIRTQ_MAX_IOV);
	assert_int_equal(v.iov[0].iov_len + v.iov[VIRTQ_MAX_IOV - 1].iov_len, 2);
	assert_int_equal(virtq_elem_read(&t->e, 0, b, sizeof(b)), sizeof(b));
	assert_int_equal(virtq_elem_slice(&t->e, VIRTQ_IN, 0, UINT64_MAX, &v), 0);
	/* Counts past the capacity (not what virtq_pop fills): clamped. */
	t->e.out_num = VIRTQ_MAX_IOV + 7;
	t->e.in_num = 3;
	assert_int_equal(virtq_elem_slice(&t->e, VIRTQ_OUT, 0, UINT64_MAX, &v), 2 * VIRTQ_MAX_IOV);
	assert_int_equal(v.n, VIRTQ_MAX_IOV);
	assert_int_equal(virtq_elem_slice(&t->e, VIRTQ_IN, 0, UINT64_MAX, &v), 0);
	assert_int_equal(virtq_elem_write(&t->e, 0, b, sizeof(b)), 0);
}

/* Writes through the accessors mark the guest pages for live migration;
 * reads and slices mark nothing; virtq_elem_mark_dirty marks a range. */
static void test_elem_dirty(void **state)
{
	struct t *t = *state;
	const struct vqd_buf b[] = { { DATA, 64, false },
				     { 0x50000, 100, true },
				     { 0x60ff0, 32, true } }; /* straddles 0x61000 */
	uint64_t bits[RAM_SIZE / 4096 / 64], n;
	struct virtq_iov v;
	struct dirty d;
	uint8_t x[64] = { 0 };

	vqd_add(&t->vq, b, 3);
	assert_int_equal(virtq_pop(&t->q, &t->e), 1);
	assert_int_equal(dirty_init(&d, -1, &t->gm, NULL), 0);
	assert_int_equal(dirty_start(&d), 0);
	assert_int_equal(virtq_elem_write(&t->e, 80, x, 50), 50);
	assert_int_equal(dirty_sync(&d, memset(bits, 0, sizeof(bits)), &n), 0);
	assert_int_equal(n, 3);
	assert_true(dirty_test(bits, 0x50) && dirty_test(bits, 0x60) && dirty_test(bits, 0x61));
	assert_int_equal(virtq_elem_read(&t->e, 0, x, 64), 64);
	assert_int_equal(virtq_elem_slice(&t->e, VIRTQ_IN, 0, UINT64_MAX, &v), 132);
	assert_int_equal(dirty_sync(&d, memset(bits, 0, sizeof(bits)), &n), 0);
	assert_int_equal(n, 0);
	/* What a slice's I/O filled: bytes 110..131, clipped to the part. */
	virtq_elem_mark_dirty(&t->e, 110, UINT64_MAX);
	assert_int_equal(dirty_sync(&d, memset(bits, 0, sizeof(bits)), &n), 0);
	assert_int_equal(n, 2);
	assert_true(dirty_test(bits, 0x60) && dirty_test(bits, 0x61));
	virtq_elem_mark_dirty(&t->e, 0, 100);
	assert_int_equal(dirty_sync(&d, memset(bits, 0, sizeof(bits)), &n), 0);
	assert_int_equal(n, 1);
	assert_true(dirty_test(bits, 0x50));
	dirty_stop(&d);
	dirty_free(&d);
	/* No migration: the same write marks nothing and still lands. */
	x[0] = 0x5a;
	assert_int_equal(virtq_elem_write(&t->e, 0, x, 1), 1);
	assert_int_equal(t->ram[0x50000], 0x5a);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_empty_and_not_ready), T(test_single),
		T(test_chain_out_in),	     T(test_indirect),
		T(test_used_ring_wrap),	     T(test_event_idx),
		T(test_event_idx_wrap),	     T(test_event_idx_lapped),
		T(test_no_interrupt),	     T(test_enable_notify),
		T(test_wrap_avail),	     T(test_elem_read),
		T(test_elem_write),	     T(test_elem_slice),
		T(test_elem_slice_capacity), T(test_elem_dirty),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
