/* fuzz_virtq.c - libFuzzer target for the split virtqueue.
 *
 * Input: a 16-byte header, then the guest memory image (64 KiB, zero
 * padded) in which the queue lives at fixed offsets:
 *   desc 0x000, avail 0x800, used 0xa00 (room for size 128), data after.
 * Header:
 *   [0]  bits 0-2: size = 1 << n; bit 3: size = u16 at [8] instead;
 *        bit 4: ring addresses from u16s at [10], [12], [14] instead
 *   [1]  bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 stop at the first
 *        malformed chain (else fail it and go on), bit 3 the device writes
 *        its in-buffers (they may overlap the rings), bit 4 save -> load
 *        into a fresh queue halfway, bit 5 disable notifications while busy
 *   [2]  u16 last_avail = used_idx = signalled_used at start
 *   [4]  u16 seed for the lengths pushed back
 *   [6]  u16 unused
 * The device then pops and pushes until the ring is empty or broken
 * (bounded), checking after every call what the core promises: iovs inside
 * guest RAM, at most VIRTQ_MAX_IOV of them, totals that add up, the used
 * ring as written. The 42 bytes at 0xf00 of the image are also fed to
 * virtq_load, which must accept only canonical, valid states. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/virtq.h"
#include "vq_driver.h"

#define RAM 0x10000
#define HDR 16
#define DESC 0x000
#define AVAIL 0x800
#define USED 0xa00
#define STATE 0xf00

static uint8_t *ram;
static struct virtq_elem elem;

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void check_elem(const struct virtq *q, const struct virtq_elem *e, int r)
{
	uint64_t sum[2] = { 0, 0 };

	if (r == 0 || r == -EINVAL) {
		if (e->out_num || e->in_num || e->out_len || e->in_len)
			abort();
		if (r == -EINVAL && e->head >= q->size && e->head != VIRTQ_HEAD_NONE)
			abort();
		return;
	}
	if (r != 1 || e->head >= q->size || e->out_num + e->in_num > VIRTQ_MAX_IOV)
		abort();
	for (unsigned int i = 0; i < e->out_num + e->in_num; i++) {
		const uint8_t *b = e->iov[i].iov_base;
		size_t len = e->iov[i].iov_len;

		if (!len || b < ram || b > ram + RAM || len > (size_t)(ram + RAM - b))
			abort();
		sum[i >= e->out_num] += len;
	}
	if (sum[0] != e->out_len || sum[1] != e->in_len || e->out_len > UINT32_MAX ||
	    e->in_len > UINT32_MAX)
		abort();
}

/* What the device does with a request: copy every out buffer, write every
 * in buffer (ASan checks each whole range through memcpy and memset). */
static uint32_t serve(const struct virtq_elem *e, bool write, uint16_t seed)
{
	static uint8_t tmp[RAM];
	unsigned int x = 0;

	for (unsigned int i = 0; i < e->out_num; i++) {
		memcpy(tmp, e->iov[i].iov_base, e->iov[i].iov_len);
		x += tmp[0] + tmp[e->iov[i].iov_len - 1];
	}
	for (unsigned int i = e->out_num; write && i < e->out_num + e->in_num; i++)
		memset(e->iov[i].iov_base, (int)(x & 0xff), e->iov[i].iov_len);
	return (uint32_t)(seed * 37u + x) % (uint32_t)(e->in_len + 2);
}

static void roundtrip(struct virtq *q, const struct guest_mem *gm)
{
	struct state_buf b = { 0 }, b2 = { 0 };
	struct state_rd r;
	struct virtq t;

	virtq_save(q, &b);
	if (b.err)
		abort();
	virtq_init(&t, gm, q->max_size);
	state_rd_init(&r, b.data, b.len);
	if (virtq_load(&t, &r) || r.pos != b.len)
		abort();
	virtq_save(&t, &b2);
	if (b2.len != b.len || memcmp(b.data, b2.data, b.len))
		abort();
	*q = t;
	state_buf_free(&b);
	state_buf_free(&b2);
}

static void load_raw(const struct guest_mem *gm, const uint8_t *data, size_t len)
{
	struct state_buf b = { 0 };
	struct state_rd r;
	struct virtq t, before;

	memset(&t, 0, sizeof(t));
	virtq_init(&t, gm, 128);
	memcpy(&before, &t, sizeof(t));
	state_rd_init(&r, data, len);
	if (virtq_load(&t, &r)) {
		if (memcmp(&t, &before, sizeof(t)))
			abort();
		return;
	}
	if (t.ready && virtq_validate(&t))
		abort();
	virtq_save(&t, &b);
	if (b.len != r.pos || memcmp(b.data, data, b.len))
		abort();
	state_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t h[HDR] = { 0 };
	struct guest_mem gm;
	struct virtq q;
	uint16_t start, seed;
	unsigned int iters;
	uint8_t f;

	if (!ram && !(ram = aligned_alloc(4096, RAM)))
		abort();
	memcpy(h, data, size < HDR ? size : HDR);
	memset(ram, 0, RAM);
	if (size > HDR)
		memcpy(ram, data + HDR, size - HDR < RAM ? size - HDR : RAM);
	guest_mem_init_buf(&gm, ram, RAM);
	load_raw(&gm, ram + STATE, 42);

	f = h[1];
	start = get16(h + 2);
	seed = get16(h + 4);
	virtq_init(&q, &gm, 128);
	q.size = (h[0] & 8) ? get16(h + 8) : (uint16_t)(1u << (h[0] & 7));
	q.desc_gpa = (h[0] & 16) ? get16(h + 10) : DESC;
	q.avail_gpa = (h[0] & 16) ? get16(h + 12) : AVAIL;
	q.used_gpa = (h[0] & 16) ? get16(h + 14) : USED;
	q.event_idx = f & 1;
	q.indirect = f & 2;
	q.last_avail = q.used_idx = q.signalled_used = start;
	q.signalled_used_valid = start & 1;
	/* A transport would refuse to enable a queue that fails validation;
	 * force it anyway: the core must still refuse to touch it. */
	q.ready = true;
	if (virtq_validate(&q)) {
		if (virtq_pop(&q, &elem) != -EINVAL || elem.head != VIRTQ_HEAD_NONE)
			abort();
		virtq_push(&q, &elem, 0);
		(void)virtq_should_notify(&q);
		(void)virtq_enable_notify(&q, true);
		if (q.used_idx != start || q.last_avail != start)
			abort();
		return 0;
	}

	iters = 2u * q.size + 8;
	for (unsigned int n = 0; n < iters; n++) {
		uint16_t la = q.last_avail;
		int r;

		if (f & 32)
			(void)virtq_enable_notify(&q, false);
		r = virtq_pop(&q, &elem);
		check_elem(&q, &elem, r);
		if (r == 0) {
			if (q.last_avail != la || vqd_rd16(ram, q.avail_gpa + 2) != la)
				abort();
			if (virtq_enable_notify(&q, true) && vqd_rd16(ram, q.avail_gpa + 2) == la)
				abort();
			break;
		}
		if (r < 0 && (elem.head == VIRTQ_HEAD_NONE || (f & 4)))
			break;
		uint32_t len = r == 1 ? serve(&elem, f & 8, (uint16_t)(seed + n)) : 0;
		uint16_t slot = q.used_idx & (q.size - 1);

		virtq_push(&q, &elem, len);
		if (vqd_rd16(ram, q.used_gpa + 2) != q.used_idx ||
		    vqd_rd32(ram, q.used_gpa + 4 + 8u * slot) != elem.head ||
		    vqd_rd32(ram, q.used_gpa + 8 + 8u * slot) > elem.in_len)
			abort();
		(void)virtq_should_notify(&q);
		if ((f & 16) && n == q.size / 2)
			roundtrip(&q, &gm);
	}
	return 0;
}
