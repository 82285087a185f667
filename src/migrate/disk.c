/* disk.c - storage migration (--with-storage): each virtio-blk
 * image travels with the guest, so source and target need not share
 * storage.
 *
 * Source: the blk device records the 4 KiB blocks that completed writes,
 * discards and write-zeroes touched (virtio_blk_track_*), from before the
 * first byte is read. Round 0 sends each disk's data extents (holes are
 * skipped: the target's image starts empty); each later round, and the
 * final one while the guest is paused and the disks quiesced, sends the
 * blocks written meanwhile (blocks that read as zeros as a flag: the
 * target punches a hole). What travels is the guest-visible content, read
 * through the device (virtio_blk_read_guest): a raw image's bytes, or a
 * qcow2 image's guest bytes with its backing chain underneath, whose
 * extents come from the chain's tables (virtio_blk_next_data).
 *
 * Target: `--storage-dir DIR` puts disk N at DIR/NAME, NAME being the
 * source image's file name (refused if it exists: no silent overwrite),
 * and the guest's --disk specs are rewritten to those paths (options such
 * as readonly or serial kept, format= the source's). A raw disk is a
 * sparse file of the size; a qcow2 disk a new standalone qcow2 v3 of the
 * size and cluster size (the chain flattened, as QEMU's copy-storage-all
 * does), written through its own handle, which the device then reloads.
 * A failed migration removes the files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvisor/dirty.h"
#include "cvisor/qcow2.h"
#include "cvisor/ramwalk.h"
#include "cvisor/virtio_blk.h"
#include "cvisor/vm.h"
#include "migrate_priv.h"

#define BLOCK VIRTIO_BLK_TRACK_BLOCK

static bool is_blk(const struct vm_virtio *v)
{
	return v && v->dev.ops && v->dev.ops->device_id == VIRTIO_ID_BLOCK && v->dev.priv;
}

int mig_disks_find(struct vm *vm, struct mig_disks *ds, char *err, size_t errlen)
{
	memset(ds, 0, sizeof(*ds));
	for (unsigned int i = 0; i < vm->nvirtio; i++) {
		struct mig_src_disk *d = &ds->d[ds->n];
		const char *path, *base;

		if (!is_blk(vm->virtio[i]))
			continue;
		if (ds->n == MIG_MAX_DISKS)
			return cv_errf(err, errlen, -E2BIG, "more than %u disks", MIG_MAX_DISKS);
		d->dev = &vm->virtio[i]->dev;
		d->cluster_bits = virtio_blk_cluster_bits(d->dev);
		d->size = virtio_blk_capacity(d->dev) * VIRTIO_BLK_SECTOR_SIZE;
		d->nblocks = (d->size + BLOCK - 1) / BLOCK;
		path = virtio_blk_path(d->dev);
		base = strrchr(path, '/');
		snprintf(d->name, sizeof(d->name), "%s", base ? base + 1 : path);
		d->dirty = calloc((d->nblocks + 63) / 64 + 1, 8);
		if (!d->dirty)
			return cv_errf(err, errlen, -ENOMEM, "out of memory");
		ds->n++;
	}
	if (!ds->n)
		return cv_errf(err, errlen, -ENOENT, "--with-storage: the guest has no disk");
	return 0;
}

int mig_disks_track(struct mig_disks *ds, char *err, size_t errlen)
{
	for (unsigned int i = 0; i < ds->n; i++)
		if (virtio_blk_track_start(ds->d[i].dev))
			return cv_errf(err, errlen, -ENOMEM, "out of memory tracking disk writes");
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	size_t i = 0;

	for (; i + MIG_PAGE_SIZE <= n; i += MIG_PAGE_SIZE)
		if (!ramwalk_page_is_zero(p + i))
			return false;
	for (; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Read [off, off+len) of disk i into the batch and queue it; zeros are
 * sent as a flag only when `zeros` (round 0 skips them: empty target). */
static int send_range(struct mig_src_disk *d, unsigned int i, struct mig_tx *tx, uint64_t off,
		      uint32_t len, bool zeros, char *err, size_t errlen)
{
	uint8_t *buf = mig_tx_disk_buf(tx, len);
	int r = virtio_blk_read_guest(d->dev, buf, len, off);

	if (r)
		return cv_errf(err, errlen, r, "reading disk %s: %s", d->name, strerror(-r));
	if (all_zero(buf, len)) {
		if (zeros)
			mig_tx_disk(tx, i, off, NULL, len, true);
		return 0;
	}
	mig_tx_disk(tx, i, off, buf, len, false);
	return 0;
}

int mig_disks_send_all(struct mig_disks *ds, struct mig_tx *tx, char *err, size_t errlen)
{
	int r;

	for (unsigned int i = 0; i < ds->n; i++) {
		struct mig_src_disk *d = &ds->d[i];
		uint64_t off = 0, data, end;

		while (off < d->size && !tx->err) {
			r = virtio_blk_next_data(d->dev, off, &data, &end);
			if (r == -ENXIO)
				break; /* only zeros are left */
			if (r)
				return cv_errf(err, errlen, r, "reading disk %s: %s", d->name,
					       strerror(-r));
			/* Extents are filesystem blocks or clusters; keep
			 * 512-byte records. */
			off = data & ~511ULL;
			while (off < end && !tx->err) {
				uint64_t n = end - off;

				n = n > MIG_DISK_CHUNK ? MIG_DISK_CHUNK : (n + 511) & ~511ULL;
				if (off + n > d->size)
					n = d->size - off;
				if ((r = send_range(d, i, tx, off, (uint32_t)n, false, err,
						    errlen)))
					return r;
				off += n;
			}
		}
	}
	mig_tx_flush(tx);
	return tx->err;
}

uint64_t mig_disks_collect(struct mig_disks *ds)
{
	uint64_t blocks = 0;

	for (unsigned int i = 0; i < ds->n; i++) {
		virtio_blk_track_take(ds->d[i].dev, ds->d[i].dirty);
		blocks += dirty_count(ds->d[i].dirty, (ds->d[i].nblocks + 63) / 64);
	}
	return blocks * BLOCK;
}

int mig_disks_send_dirty(struct mig_disks *ds, struct mig_tx *tx, char *err, size_t errlen)
{
	int r;

	for (unsigned int i = 0; i < ds->n; i++) {
		struct mig_src_disk *d = &ds->d[i];
		uint64_t b = 0;

		while (b < d->nblocks && !tx->err) {
			uint64_t run = 0, off, len;

			if (!(d->dirty[b / 64] >> (b % 64) & 1)) {
				b++;
				continue;
			}
			/* A run of written blocks, up to one record. */
			while (b + run < d->nblocks && run < MIG_DISK_CHUNK / BLOCK &&
			       (d->dirty[(b + run) / 64] >> ((b + run) % 64) & 1)) {
				d->dirty[(b + run) / 64] &= ~(1ULL << ((b + run) % 64));
				run++;
			}
			off = b * BLOCK;
			len = run * BLOCK;
			if (off + len > d->size)
				len = d->size - off;
			if ((r = send_range(d, i, tx, off, (uint32_t)len, true, err, errlen)))
				return r;
			b += run;
		}
	}
	mig_tx_flush(tx);
	return tx->err;
}

void mig_disks_stop(struct mig_disks *ds)
{
	for (unsigned int i = 0; i < ds->n; i++) {
		virtio_blk_track_stop(ds->d[i].dev);
		free(ds->d[i].dirty);
		ds->d[i].dirty = NULL;
	}
	ds->n = 0;
}

int mig_disks_quiesce(struct vm *vm)
{
	int r = 0;

	for (unsigned int i = 0; i < vm->nvirtio; i++)
		if (is_blk(vm->virtio[i]) && virtio_blk_quiesce(&vm->virtio[i]->dev))
			r = -EIO;
	return r;
}

void mig_disks_resume(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->nvirtio; i++)
		if (is_blk(vm->virtio[i]))
			virtio_blk_resume(&vm->virtio[i]->dev);
}

/* ---- target ---- */

/* A new standalone qcow2 image for disk i (the source's chain arrives
 * flattened), opened for the stream's writes. */
static int create_qcow2(struct mig_dst_disks *dd, unsigned int i, const struct mig_disk *md,
			char *err, size_t errlen)
{
	struct cv_error e = { 0 };
	int r = qcow2_create(dd->fd[i], md->size, md->cluster_bits);

	if (r == -EFBIG || r == -EINVAL)
		return cv_errf(err, errlen, r,
			       "the source's disk %s of %llu bytes does not fit a qcow2 image "
			       "with %u-byte clusters",
			       md->name, (unsigned long long)md->size, 1U << md->cluster_bits);
	if (r)
		return cv_errf(err, errlen, r, "%s: %s", dd->path[i], strerror(-r));
	if ((r = qcow2_open(&dd->q[i], dd->fd[i], dd->path[i], 0, &e)))
		return cv_errf(err, errlen, r, "%s", e.msg);
	return 0;
}

int mig_dst_disks_create(struct mig_dst_disks *dd, const struct mig_hello *h, const char *dir,
			 char *err, size_t errlen)
{
	memset(dd, 0, sizeof(*dd));
	for (unsigned int i = 0; i < MIG_MAX_DISKS; i++)
		dd->fd[i] = -1;
	if (!h->ndisks)
		return 0;
	if (!dir)
		return cv_errf(err, errlen, -EINVAL,
			       "the source sends its disk images: give --storage-dir DIR");
	if (strchr(dir, ','))
		return cv_errf(err, errlen, -EINVAL, "--storage-dir %s: the path may not hold ','",
			       dir);
	for (unsigned int i = 0; i < h->ndisks; i++) {
		const char *name = h->disks[i].name;
		int fd, r;

		/* A name from the wire: one plain file name in DIR. */
		if (strchr(name, '/') || strchr(name, ',') || !strcmp(name, ".") ||
		    !strcmp(name, ".."))
			return cv_errf(err, errlen, -EINVAL,
				       "the source's disk name '%s' is unsafe", name);
		for (unsigned int k = 0; k < i; k++)
			if (!strcmp(h->disks[k].name, name))
				return cv_errf(err, errlen, -EINVAL,
					       "two source disks are named %s: rename one", name);
		if (asprintf(&dd->path[i], "%s/%s", dir, name) < 0) {
			dd->path[i] = NULL;
			return cv_errf(err, errlen, -ENOMEM, "out of memory");
		}
		dd->n = i + 1;
		fd = open(dd->path[i], O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return cv_errf(err, errlen, -errno, "%s: %s%s", dd->path[i],
				       strerror(errno),
				       errno == EEXIST ? " (remove it, or choose another "
							 "--storage-dir)"
						       : "");
		dd->fd[i] = fd;
		dd->created[i] = true;
		if (h->disks[i].format == MIG_DISK_QCOW2) {
			if ((r = create_qcow2(dd, i, &h->disks[i], err, errlen)))
				return r;
		} else if (ftruncate(fd, (off_t)h->disks[i].size)) {
			return cv_errf(err, errlen, -errno, "%s: %s", dd->path[i], strerror(errno));
		}
	}
	return 0;
}

/* The --disk spec's format= for what disk i arrived as. */
const char *mig_dst_disk_format(const struct mig_dst_disks *dd, unsigned int i)
{
	return dd->q[i] ? "qcow2" : "raw";
}

/* A record into a target qcow2 image (no backing file). Zeros over a
 * range that holds no data already are skipped: writing them into part
 * of an unallocated cluster would allocate it. */
static int qcow2_put(struct qcow2 *q, uint64_t off, const uint8_t *data, uint32_t len, bool zero)
{
	struct iovec v = { (void *)data, len };
	uint64_t start, end;
	int r;

	if (!zero)
		return qcow2_writev(q, &v, 1, off, len);
	r = qcow2_next_data(q, off, off + len, &start, &end);
	if (r == -ENXIO)
		return 0;
	return r ? r : qcow2_zero(q, off, len);
}

int mig_dst_disk_write(void *ctx, uint32_t disk, uint64_t off, const uint8_t *data, uint32_t len,
		       bool zero)
{
	static const uint8_t zeros[MIG_PAGE_SIZE];
	struct mig_dst_disks *dd = ctx;
	int fd = disk < dd->n ? dd->fd[disk] : -1;
	uint32_t done = 0;

	if (fd < 0)
		return -EBADF;
	if (dd->q[disk])
		return qcow2_put(dd->q[disk], off, data, len, zero);
	if (zero && !fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, len))
		return 0;
	while (done < len) {
		const uint8_t *p = zero ? zeros : data + done;
		size_t n = len - done;
		ssize_t w;

		if (zero && n > sizeof(zeros))
			n = sizeof(zeros);
		w = pwrite(fd, p, n, (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		done += (uint32_t)w;
	}
	/* Start writeback now, so that the fsync in the downtime has little
	 * left to wait for. */
	(void)sync_file_range(fd, (off_t)off, len, SYNC_FILE_RANGE_WRITE);
	return 0;
}

int mig_dst_disks_finish(struct mig_dst_disks *dd, struct vm *vm, char *err, size_t errlen)
{
	unsigned int k = 0;
	int r = 0;

	for (unsigned int i = 0; i < dd->n; i++) {
		if (dd->q[i] && (r = qcow2_flush(dd->q[i])))
			return cv_errf(err, errlen, r, "%s: %s", dd->path[i], strerror(-r));
		if (dd->fd[i] >= 0 && fdatasync(dd->fd[i]))
			return cv_errf(err, errlen, -errno, "%s: %s", dd->path[i], strerror(errno));
	}
	/* The devices opened the qcow2 images empty, at the build: they read
	 * them again (disks in --disk order, as rewrite_disks set them). */
	for (unsigned int i = 0; i < vm->nvirtio && k < dd->n; i++) {
		struct cv_error e = { 0 };

		if (!is_blk(vm->virtio[i]))
			continue;
		if (dd->q[k] && (r = virtio_blk_reload(&vm->virtio[i]->dev, &e)))
			return cv_errf(err, errlen, r, "%s", e.msg);
		k++;
	}
	for (unsigned int i = 0; i < dd->n; i++) {
		qcow2_close(dd->q[i]);
		dd->q[i] = NULL;
		cv_close(&dd->fd[i]);
	}
	return 0;
}

void mig_dst_disks_abort(struct mig_dst_disks *dd)
{
	for (unsigned int i = 0; i < dd->n; i++) {
		qcow2_close(dd->q[i]);
		dd->q[i] = NULL;
		cv_close(&dd->fd[i]);
		/* A jailed target that failed after the jail sees no host
		 * path (README "Jail"): say what is left. */
		if (dd->created[i] && dd->path[i] && unlink(dd->path[i]) < 0)
			cv_warn("migration: %s: not removed (%s): remove it by hand", dd->path[i],
				strerror(errno));
		dd->created[i] = false;
	}
}

void mig_dst_disks_free(struct mig_dst_disks *dd)
{
	for (unsigned int i = 0; i < MIG_MAX_DISKS; i++) {
		free(dd->path[i]);
		dd->path[i] = NULL;
	}
}
