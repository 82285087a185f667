/* blk_copy.c - a disk's guest-visible content for storage migration
 * (src/migrate/disk.c), whatever the image format: reads of guest bytes
 * and where data may lie, under dev->lock (the qcow2 layer is serialized
 * by it, and the migration runs on its own thread); and, on the target,
 * taking up an image the migration wrote behind the device's back. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blk_priv.h"

/* virtio_blk_next_data's bound on the clusters looked up per lock hold. */
#define NEXT_DATA_CLUSTERS 4096U

int virtio_blk_read_guest(struct virtio_dev *d, void *buf, uint64_t len, uint64_t off)
{
	struct blk *b = d->priv;
	struct iovec v = { buf, len };
	int r;

	if (off > b->capacity * VIRTIO_BLK_SECTOR_SIZE ||
	    len > b->capacity * VIRTIO_BLK_SECTOR_SIZE - off)
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	/* Past the end of a raw file the capacity reads as zeros. */
	r = b->qcow2 ? qcow2_readv(b->qcow2, &v, 1, off, len)
		     : cv_pread_full(b->fd_buf, buf, len, off);
	pthread_mutex_unlock(&d->lock);
	return r;
}

int virtio_blk_next_data(struct virtio_dev *d, uint64_t off, uint64_t *start, uint64_t *end)
{
	struct blk *b = d->priv;
	uint64_t size = b->capacity * VIRTIO_BLK_SECTOR_SIZE;
	int r;

	if (off >= size)
		return -ENXIO;
	if (b->qcow2) {
		/* A few thousand clusters per hold of the lock, which guest
		 * requests on the main thread wait for. */
		uint64_t step = (uint64_t)NEXT_DATA_CLUSTERS << qcow2_cluster_bits(b->qcow2);

		for (r = -ENXIO; r == -ENXIO && off < size; off += step) {
			pthread_mutex_lock(&d->lock);
			r = qcow2_next_data(b->qcow2, off, off + step, start, end);
			pthread_mutex_unlock(&d->lock);
		}
		if (!r && *end > size)
			*end = size;
		return r;
	}
	return cv_data_extent(b->fd_buf, off, size, start, end);
}

unsigned int virtio_blk_cluster_bits(struct virtio_dev *d)
{
	struct blk *b = d->priv;

	return b->qcow2 ? qcow2_cluster_bits(b->qcow2) : 0;
}

int virtio_blk_reload(struct virtio_dev *d, struct cv_error *e)
{
	struct blk *b = d->priv;
	struct qcow2 *q;
	int r;

	if (!b->qcow2)
		return 0;
	pthread_mutex_lock(&d->lock);
	r = qcow2_open(&q, b->fd, b->cfg.path, b->cfg.readonly ? QCOW2_READONLY : 0, e);
	if (!r) {
		qcow2_close(b->qcow2);
		b->qcow2 = q;
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}
