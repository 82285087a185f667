/* blkdrv.c - see blkdrv.h. */
#include "blkdrv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QSIZE 256
#define DESC 0x1000u
#define AVAIL 0x2000u
#define USED 0x3000u
#define HDRS 0x4000u /* slot k: header at HDRS + 32k, status at + 16 */

double blkdrv_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void blkdrv_die(const char *what)
{
	fprintf(stderr, "bench: %s\n", what);
	exit(1);
}

void blkdrv_open(struct blkdrv *v, struct virtio_blk_config *c, uint64_t features, uint8_t fill)
{
	struct cv_error e = { 0 };

	memset(v, 0, sizeof(*v));
	v->ram = aligned_alloc(4096, BLKDRV_RAM_SIZE);
	if (!v->ram)
		blkdrv_die("out of memory");
	memset(v->ram, 0, BLKDRV_DATA);
	memset(v->ram + BLKDRV_DATA, fill, BLKDRV_RAM_SIZE - BLKDRV_DATA);
	guest_mem_init_buf(&v->mem, v->ram, BLKDRV_RAM_SIZE);
	vqd_init(&v->q, v->ram, QSIZE, DESC, AVAIL, USED);
	c->num_queues = 1;
	if (evloop_init(&v->loop) ||
	    virtio_blk_create(&v->dev, c, &v->mem, &v->loop, NULL, NULL, &e))
		blkdrv_die(e.msg);
	if (vqd_dev_start(&v->dev, features, &v->q, 1) || evloop_once(&v->loop, 0))
		blkdrv_die("the device did not activate");
}

void blkdrv_close(struct blkdrv *v)
{
	virtio_blk_destroy(&v->dev);
	evloop_destroy(&v->loop);
	free(v->ram);
}

/* Slot k always uses descriptors 3k..3k+2: header, data, status. */
static void issue(struct blkdrv *v, unsigned int k, uint32_t type, size_t bs, uint64_t off)
{
	const struct vqd_buf b[3] = { { HDRS + 32 * k, 16, false },
				      { BLKDRV_DATA + k * bs, (uint32_t)bs,
					type == VIRTIO_BLK_T_IN },
				      { HDRS + 32 * k + 16, 1, true } };
	uint8_t *h = v->ram + HDRS + 32 * k;

	cv_put_le(h, type, 4);
	cv_put_le(h + 4, 0, 4);
	cv_put_le(h + 8, off / 512, 8);
	h[16] = 0xff;
	v->slot_off[k] = off;
	vqd_avail(&v->q, vqd_chain(&v->q, (uint16_t)(3 * k), b, 3));
}

double blkdrv_run(struct blkdrv *v, uint32_t type, size_t bs, unsigned int qd, uint64_t n,
		  uint64_t (*off)(void *ctx, uint64_t i),
		  void (*done)(void *ctx, const uint8_t *data, uint64_t off), void *ctx)
{
	uint64_t next = 0, ndone = 0;
	double t = blkdrv_now();

	if (qd > BLKDRV_MAX_QD || BLKDRV_DATA + qd * bs > BLKDRV_RAM_SIZE)
		blkdrv_die("queue depth or block size too large");
	for (unsigned int k = 0; k < qd && next < n; k++, next++)
		issue(v, k, type, bs, off(ctx, next));
	virtio_dev_notify(&v->dev, 0);
	while (ndone < n) {
		bool kick = false;
		uint32_t id;

		if (vqd_used_idx(&v->q) == v->q.used_seen) {
			if (evloop_once(&v->loop, 1000))
				blkdrv_die("evloop");
			continue;
		}
		while (vqd_used(&v->q, &id, NULL)) {
			unsigned int k = id / 3;
			char why[64];

			if (v->ram[HDRS + 32 * k + 16] != VIRTIO_BLK_S_OK) {
				snprintf(why, sizeof(why), "device status %u",
					 v->ram[HDRS + 32 * k + 16]);
				blkdrv_die(why);
			}
			if (done)
				done(ctx, v->ram + BLKDRV_DATA + k * bs, v->slot_off[k]);
			ndone++;
			if (next < n) {
				issue(v, k, type, bs, off(ctx, next++));
				kick = true;
			}
		}
		if (kick)
			virtio_dev_notify(&v->dev, 0);
	}
	return blkdrv_now() - t;
}
