/* fuzz_virtio.h - what the virtio device fuzzers share on top of the
 * shared guest driver (tests/lib/vq_driver.h): guest RAM cut from the
 * input, and device initialization (3.1.1) with the queues wherever the
 * input puts them. Header-only; the driver itself (tests/lib/vq_driver.c)
 * is linked into every fuzzer (see the Makefile). */
#ifndef CVISOR_FUZZ_VIRTIO_H
#define CVISOR_FUZZ_VIRTIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/evloop.h"
#include "cvisor/state.h"
#include "cvisor/virtio.h"
#include "vq_driver.h"

/* Queue i in a 0x200-byte block of its own: desc, avail at +0x100, used at
 * +0x140 (room for 16 entries; larger sizes overlap the next block). Only
 * the registers: the rings are whatever the input put there. */
static inline struct vqd fuzz_vq_block(unsigned int i, uint16_t size)
{
	struct vqd q;

	vqd_init(&q, NULL, size, 0x200u * i, 0x200u * i + 0x100, 0x200u * i + 0x140);
	return q;
}

/* Queue i packed with the others at the bottom of RAM: desc at 0x100 * i,
 * avail at 0x400 + 0x40 * i, used at 0x600 + 0x100 * i (seeds stay small;
 * large sizes overlap, as a hostile driver may). */
static inline struct vqd fuzz_vq_packed(unsigned int i, uint16_t size)
{
	struct vqd q;

	vqd_init(&q, NULL, size, 0x100u * i, 0x400u + 0x40u * i, 0x600u + 0x100u * i);
	return q;
}

/* The transport's interrupt: goes nowhere. */
static inline void fuzz_virtio_signal(struct virtio_dev *d, uint16_t vector, uint8_t isr)
{
	(void)d;
	(void)vector;
	(void)isr;
}

/* 3.1.1 through the shared driver, queue i of nq as vqs[i], whether or not
 * the device accepts the features (a refusal is a path to cover too). */
static inline void fuzz_virtio_start(struct virtio_dev *d, uint64_t features, const struct vqd *vqs,
				     unsigned int nq)
{
	d->transport.signal = fuzz_virtio_signal;
	(void)vqd_dev_start(d, features, vqs, nq);
}

/* Guest RAM of len bytes: the n bytes of img, cut or zero-filled. */
static inline void fuzz_ram_fill(uint8_t *ram, size_t len, const uint8_t *img, size_t n)
{
	memset(ram, 0, len);
	memcpy(ram, img, n < len ? n : len);
}

/* The inputs of the header-program-image fuzzers (balloon, vsock):
 *   FUZZ_HDR header bytes:
 *     [0]      driver features: bit 2 INDIRECT_DESC, bit 3 EVENT_IDX (the
 *              other bits are the device's own)
 *     [1..nq]  log2 of queue i's size (& 15: may be invalid)
 *     [5]      the program's length, modulo the fuzzer's maximum + 1
 *   the program, shorter if the input ends first, then the guest RAM. */
#define FUZZ_HDR 8

/* Guest RAM from the input (size >= FUZZ_HDR); returns the program's length. */
static inline size_t fuzz_split(const uint8_t *data, size_t size, size_t max_prog, uint8_t *ram,
				size_t ram_len)
{
	size_t n = data[5] % (max_prog + 1);

	if (n > size - FUZZ_HDR)
		n = size - FUZZ_HDR;
	fuzz_ram_fill(ram, ram_len, data + FUZZ_HDR + n, size - FUZZ_HDR - n);
	return n;
}

/* Start the device as header h asks, with the device's own features and
 * the nq queues packed. */
static inline void fuzz_virtio_start_hdr(struct virtio_dev *d, const uint8_t *h, uint64_t features,
					 unsigned int nq)
{
	struct vqd vqs[VIRTIO_MAX_QUEUES];

	features |= 1ULL << VIRTIO_F_VERSION_1;
	features |= (h[0] & 4) ? 1ULL << VIRTIO_RING_F_INDIRECT_DESC : 0;
	features |= (h[0] & 8) ? 1ULL << VIRTIO_RING_F_EVENT_IDX : 0;
	for (unsigned int i = 0; i < nq; i++)
		vqs[i] = fuzz_vq_packed(i, (uint16_t)(1u << (h[1 + i] & 15)));
	fuzz_virtio_start(d, features, vqs, nq);
}

/* One round of the device's event loop that must not fail. */
static inline void fuzz_loop_once(struct evloop *l)
{
	if (evloop_once(l, 0))
		abort();
}

/* Save d and load it back: its own state loads, unless a fault stopped the
 * device. */
static inline void fuzz_save_load_self(struct virtio_dev *d)
{
	struct state_buf b = { 0 };
	struct state_rd r;

	if (virtio_dev_save(d, &b))
		abort();
	state_rd_init(&r, b.data, b.len);
	if (virtio_dev_load(d, &r) && d->active)
		abort();
	state_buf_free(&b);
}

#endif
