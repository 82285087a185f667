/* virtio_test.h - what the virtio test guest's files share: virtio.c
 * (main, the rng and blk tests) and virtio_hostile.c (malformed input). */
#ifndef TINY_VIRTIO_TEST_H
#define TINY_VIRTIO_TEST_H

#include "virtio_drv.h"

#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_T_DISCARD 11
#define BLK_T_WRITE_ZEROES 13
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define BLK_S_UNSUPP 2
#define BLK_F_RO (1ull << 5)
#define BLK_F_BLK_SIZE (1ull << 6)
#define BLK_F_FLUSH (1ull << 9)
#define BLK_F_MQ (1ull << 12)
#define BLK_F_DISCARD (1ull << 13)
#define BLK_F_WRITE_ZEROES (1ull << 14)
#define BLK_CFG_CAPACITY 0
#define BLK_CFG_BLK_SIZE 20
#define BLK_CFG_NUM_QUEUES 34

#define OUTSIDE_RAM 0x7fff00000000ull

/* blk_check kinds: the image pattern, the pattern the test writes, zeros. */
#define PAT_IMAGE 0
#define PAT_WRITTEN 1
#define PAT_ZERO 2

/* Buffers the device reads and writes. */
struct virtio_io {
	uint8_t hdr[16];
	uint8_t status;
	uint8_t pad[15];
	uint8_t seg[16];
	uint8_t id[32];
	struct vring_desc table[4];
	uint8_t data[2048];
};
extern struct virtio_io io;

/* The first device of `type` (on virtio.transport's transport, if set). */
struct vdev *find_dev(uint32_t type);
/* Name of a vq_request / vq_wait result. */
const char *outcome(int r);
/* One request of n bytes into buf on queue 0 of an rng. */
int rng_read(struct vdev *d, uint8_t *buf, uint32_t n, uint32_t *len);
/* -1 if the 512 bytes at buf hold sector `sector` of kind, else the index
 * of the first wrong 32-bit word. */
int blk_check(const uint8_t *buf, uint64_t sector, int kind);
/* Fill io.hdr for a request; io.status = 0xee (not a status the device
 * may write). */
void blk_hdr(uint32_t type, uint64_t sector);
/* header, data..., status on queue q: VQ_* (or -1), the status in *st. */
int blk_req(struct vdev *d, unsigned int q, uint32_t type, uint64_t sector, const struct vbuf *data,
	    int ndata, uint8_t *st, uint32_t *len);
/* The hostile test (virtio_hostile.c). */
void test_hostile(void);

#endif
