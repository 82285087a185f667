/* virtio_blk.h - the virtio block device (virtio 1.2 section 5.2) over a raw
 * image file or block device, with its I/O on io_uring.
 *
 * Threads: the core calls notify/reset/activate with dev->lock held (notify
 * on the main thread, reset also from vCPU threads). I/O completions arrive
 * through an eventfd on the main thread's evloop and take dev->lock. When
 * io_uring is unavailable the requests run synchronously on the main thread
 * (one warning). */
#ifndef CVISOR_VIRTIO_BLK_H
#define CVISOR_VIRTIO_BLK_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/evloop.h"
#include "cvisor/guest_mem.h"
#include "cvisor/ratelimit.h"
#include "cvisor/util.h"
#include "cvisor/virtio.h"

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status values (5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
/* virtio_blk_discard_write_zeroes.flags (5.2.6). */
#define VIRTIO_BLK_WZ_F_UNMAP 1

#define VIRTIO_BLK_SECTOR_SIZE 512
#define VIRTIO_BLK_ID_BYTES 20 /* GET_ID answer, not NUL-terminated at 20 */
#define VIRTIO_BLK_HDR_SIZE 16 /* le32 type, le32 reserved, le64 sector */

/* Byte offsets in the device configuration space (5.2.4). */
#define VIRTIO_BLK_CFG_CAPACITY 0
#define VIRTIO_BLK_CFG_SEG_MAX 12
#define VIRTIO_BLK_CFG_BLK_SIZE 20
#define VIRTIO_BLK_CFG_NUM_QUEUES 34
#define VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS 36
#define VIRTIO_BLK_CFG_MAX_DISCARD_SEG 40
#define VIRTIO_BLK_CFG_DISCARD_ALIGN 44
#define VIRTIO_BLK_CFG_MAX_WZ_SECTORS 48
#define VIRTIO_BLK_CFG_MAX_WZ_SEG 52
#define VIRTIO_BLK_CFG_WZ_MAY_UNMAP 56
#define VIRTIO_BLK_CFG_SIZE 60

#define VIRTIO_BLK_QUEUE_SIZE 256	      /* largest size offered per queue */
#define VIRTIO_BLK_INFLIGHT 64		      /* requests in flight per queue */
#define VIRTIO_BLK_MAX_DWZ_SEG 16	      /* discard / write-zeroes segments */
#define VIRTIO_BLK_MAX_DWZ_SECTORS (1U << 22) /* 2 GiB per segment */

/* The image format: detected from the header, or forced by format=. */
enum virtio_blk_format { VIRTIO_BLK_FMT_AUTO, VIRTIO_BLK_FMT_RAW, VIRTIO_BLK_FMT_QCOW2 };

/* One --disk. */
struct virtio_blk_config {
	char path[PATH_MAX];
	enum virtio_blk_format format;
	bool readonly;
	bool direct; /* O_DIRECT: bypass the host page cache */
	char serial[VIRTIO_BLK_ID_BYTES + 1];
	unsigned int num_queues; /* 0: min(2, host CPUs) */
	bool sync_io;		 /* skip io_uring (tests, benchmarks) */
	struct rate_limits rate; /* bw=, iops= and their bursts */
};

/* How a disk's rate limits are spelled: bw=, bw-burst=, iops=, iops-burst=. */
extern const struct rate_keys virtio_blk_rate_keys[1];

/* Parse the value of --disk: PATH[,format=raw|qcow2][,readonly][,serial=ID][,direct][,queues=N]
 * [,bw=RATE][,bw-burst=SIZE][,iops=N][,iops-burst=N] (PATH ends at the
 * first ','; "ro" = readonly; serial: 1 to 20 printable characters, no
 * spaces; queues: 1 to VIRTIO_MAX_QUEUES, default min(2, host CPUs); the
 * rate limits as in ratelimit.h: bytes and requests a second). Pure. Returns 0, or -EINVAL with e filled (one line naming
 * the bad part). */
int virtio_blk_parse(const char *spec, struct virtio_blk_config *c, struct cv_error *e) CV_MUST;

/* Open the image (O_RDWR, or O_RDONLY with readonly; a qcow2 image, by its
 * magic or format=qcow2, through src/block/qcow2.c), set up the I/O ring
 * and its completion eventfd on loop, and initialize d with the device's
 * ops (virtio_dev_init; the caller then sets d->transport). read_bytes and
 * write_bytes (may be NULL) count completed guest I/O. Returns 0, or
 * -errno with e filled (naming the image and what to do); nothing is left
 * to free then. */
int virtio_blk_create(struct virtio_dev *d, const struct virtio_blk_config *c,
		      const struct guest_mem *mem, struct evloop *loop,
		      _Atomic uint64_t *read_bytes, _Atomic uint64_t *write_bytes,
		      struct cv_error *e) CV_MUST;

/* The device table's create (devices.h): --disk SPEC, parsed and opened. */
int virtio_blk_device_create(struct virtio_dev *d, const char *spec, unsigned int index,
			     const struct virtio_env *env, struct cv_error *e) CV_MUST;

/* Wait for in-flight I/O, close the image and free everything create made.
 * Safe on a device whose create failed (and on a zeroed struct). */
void virtio_blk_destroy(struct virtio_dev *d);

/* For snapshots: stop taking new requests from the rings and wait until
 * every request in flight has completed and been returned to the guest.
 * After this virtio_dev_save succeeds (it returns -EBUSY while requests
 * are in flight). Main thread, vCPUs paused. Returns 0 or -errno. */
int virtio_blk_quiesce(struct virtio_dev *d) CV_MUST;

/* Undo virtio_blk_quiesce: process what the guest queued meanwhile. */
void virtio_blk_resume(struct virtio_dev *d);

/* What one disk did: guest reads and writes completed with status OK
 * (Cloud Hypervisor's vm.counters names). */
struct virtio_blk_stats {
	uint64_t read_bytes, write_bytes, read_ops, write_ops;
};

/* This disk's counts so far (main thread or any; takes the device lock). */
void virtio_blk_get_stats(struct virtio_dev *d, struct virtio_blk_stats *s);

/* Requests taken from the rings and not yet completed (tests, fuzzers). */
unsigned int virtio_blk_inflight(struct virtio_dev *d);

/* Capacity in 512-byte sectors. */
uint64_t virtio_blk_capacity(struct virtio_dev *d);

/* Storage migration (src/migrate/disk.c). Blocks of this size that a
 * completed write, discard or write-zeroes touched are recorded. */
#define VIRTIO_BLK_TRACK_BLOCK 4096U

/* Start recording written blocks (from a clean slate). 0 or -ENOMEM. */
int virtio_blk_track_start(struct virtio_dev *d) CV_MUST;

/* OR the blocks written since the start or the previous call into out
 * (one bit per block, ceil(capacity * 512 / 4096) bits), and forget them. */
void virtio_blk_track_take(struct virtio_dev *d, uint64_t *out);

/* Stop recording. Idempotent. */
void virtio_blk_track_stop(struct virtio_dev *d);

/* The image path, and a descriptor to read it through the page cache. */
const char *virtio_blk_path(struct virtio_dev *d);
/* True if the image is qcow2: its file's bytes are not the guest's. */
bool virtio_blk_is_qcow2(struct virtio_dev *d);
int virtio_blk_image_fd(struct virtio_dev *d);

/* Guest bytes [off, off+len) (inside the capacity) into buf, as the guest
 * reads them: through the qcow2 layer (its backing chain included), or
 * from a raw image (zeros past the end of its file). Takes dev->lock: any
 * thread. 0, -EINVAL (outside the disk) or -errno. */
int virtio_blk_read_guest(struct virtio_dev *d, void *buf, uint64_t len, uint64_t off) CV_MUST;

/* The next guest range at or after off that may hold data (what is
 * outside every such range reads as zeros): [*start, *end), inside the
 * capacity. qcow2_next_data for a qcow2 image; SEEK_DATA / SEEK_HOLE on a
 * raw one (all of it where the filesystem cannot tell). Takes dev->lock.
 * 0, -ENXIO when only zeros are left, or -errno. */
int virtio_blk_next_data(struct virtio_dev *d, uint64_t off, uint64_t *start,
			 uint64_t *end) CV_MUST;

/* log2 of a qcow2 image's cluster size; 0 for a raw image. */
unsigned int virtio_blk_cluster_bits(struct virtio_dev *d);

/* Open a qcow2 image again (nothing for raw), after something other than
 * this device wrote it (a storage migration's target, before the guest
 * runs): the tables in memory are the file's again. Takes dev->lock. 0,
 * or -errno with e filled; the old view is kept then. */
int virtio_blk_reload(struct virtio_dev *d, struct cv_error *e) CV_MUST;

#endif
