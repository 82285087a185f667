/* blkdrv.h - the guest driver side of bench/blk.c and bench/qcow2.c: the
 * real virtio-blk model (src/virtio/blk*.c) over synthetic guest memory,
 * without KVM, with up to BLKDRV_MAX_QD requests in flight on one queue
 * (virtio 1.2 2.7.13: header, data and status descriptors, the avail
 * ring, a kick through virtio_dev_notify). */
#ifndef CVISOR_BENCH_BLKDRV_H
#define CVISOR_BENCH_BLKDRV_H

#include <stdint.h>

#include "cvisor/virtio_blk.h"
#include "vq_driver.h"

#define BLKDRV_RAM_SIZE (8u << 20)
#define BLKDRV_MAX_QD 32
#define BLKDRV_DATA 0x10000u /* slot k's data buffer is at DATA + k * bs */

struct blkdrv {
	uint8_t *ram;
	struct guest_mem mem;
	struct evloop loop;
	struct virtio_dev dev;
	struct vqd q; /* the driver's side of the queue */
	uint64_t slot_off[BLKDRV_MAX_QD];
};

/* Seconds on CLOCK_MONOTONIC. */
double blkdrv_now(void);

/* Print "bench: what" and exit 1. */
void blkdrv_die(const char *what) __attribute__((noreturn));

/* The device on c (num_queues 1), features negotiated; the data area
 * filled with fill (what writes write). Exits on failure. */
void blkdrv_open(struct blkdrv *v, struct virtio_blk_config *c, uint64_t features, uint8_t fill);
void blkdrv_close(struct blkdrv *v);

/* n requests of type and bs bytes, the i-th at off(ctx, i), qd in flight
 * (at most BLKDRV_MAX_QD); done(ctx, data, off) is called on each completed
 * one if not NULL. Exits if a request fails. Seconds taken. */
double blkdrv_run(struct blkdrv *v, uint32_t type, size_t bs, unsigned int qd, uint64_t n,
		  uint64_t (*off)(void *ctx, uint64_t i),
		  void (*done)(void *ctx, const uint8_t *data, uint64_t off), void *ctx);

#endif
